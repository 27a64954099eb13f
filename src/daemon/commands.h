#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace wxcanary::daemon {

/// True when args (argv without the program name) start with a one-shot command
/// ("probe", "evict", "discover") rather than the daemon's flags.
bool IsCommand(const std::vector<std::string>& args);

/// Runs a one-shot command for an operator at a terminal and returns the exit code:
///   wxcanary probe --config.file=F (--target APP_ID/APP_ENV | --all)
///     one probe now, its trail step by step (or a table with --all); 0 ok, 1 not ok.
///   wxcanary evict --config.file=F --target APP_ID/APP_ENV [--fingerprint FP] [--yes]
///     the self-heal's compare-and-delete by hand: deletes the key only if it still holds the
///     token with fingerprint FP (default: the token failing now); asks on `in` unless --yes
///     (no answer = no). 0 deleted, 1 refused or nothing deleted.
///   wxcanary discover --redis.address=ADDR [...]
///     SCANs a Redis read-only for the keys SDKs cache tokens in and prints a config for them
///     (discover.h); 0 when it ran, 1 when Redis cannot be read.
/// Usage and config errors: exit 2 with one line naming the value. Tokens, passwords and
/// secrets never reach `out`/`err`: tokens appear only as fingerprints.
int RunCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
               std::ostream& err);

}  // namespace wxcanary::daemon
