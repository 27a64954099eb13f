#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probe/shard.h"
#include "telemetry/log.h"

namespace wxcanary::daemon {

/// The default metrics address. 9100-9999 is taken by other exporters
/// (see the Prometheus "default port allocations" wiki page), so wxcanary sits above it.
inline constexpr const char* kDefaultListenAddress = ":10090";

struct Options {
  std::string config_file;
  std::string listen_address = kDefaultListenAddress;
  std::string web_config_file;  // exporter-toolkit style TLS/basic auth (optional)
  telemetry::Level log_level = telemetry::Level::kInfo;
  telemetry::Format log_format = telemetry::Format::kJson;
  bool config_check = false;
  probe::Shard shard;  // --shard=I/N: this instance probes only its slice of the apps
};

/// Result of parsing the command line: options, or an exit code and text for the terminal
/// (help, version, or a one-line error naming the bad flag/value).
struct ParsedOptions {
  std::optional<Options> options;
  int exit_code = 0;
  std::string output;
};

/// Parses Prometheus-exporter style flags (--config.file=PATH ...). Pure.
ParsedOptions ParseOptions(const std::vector<std::string>& args);

/// "host:port" or ":port" -> (host, port); host "" means all interfaces. nullopt when invalid.
std::optional<std::pair<std::string, int>> ParseListenAddress(const std::string& address);

}  // namespace wxcanary::daemon
