#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"

namespace wxcanary::daemon {

/// What `wxcanary discover` scans and how far.
struct DiscoverOptions {
  config::Redis redis;        // from config::LoadRedis: the same parsing as the config's
  std::string password_file;  // as given (absolute in the output), or ""
  std::string sentinel_password_file;
  std::string wechat_base_url;                // printed as wechat.base_url when set
  int count = 100;                            // SCAN ... COUNT
  int max_keys = 10'000;                      // keys looked at in all, over every node
  std::chrono::milliseconds timeout{10'000};  // wall clock for the scan and the reads
  std::vector<std::pair<std::string, std::string>> secrets;  // APPID, secret file
};

/// Largest hash whose fields discover reads (HGETALL); a bigger one is listed, not read.
inline constexpr size_t kDiscoverMaxHashFields = 1000;

/// SCANs the Redis (every master under Cluster, the master the sentinels name under Sentinel),
/// read-only (SCAN, TYPE, TTL, STRLEN, HLEN, GET, HGETALL) and bounded by max_keys and timeout,
/// for the keys where WeChat SDKs cache access tokens: every `sdk:` preset's key template
/// (optionally behind a Symfony-style "namespace:" prefix), JDK-serialized keys, and names
/// holding an AppId ("wx" + 16 hex). Each value is decoded as the daemon would (DecodeValue).
/// Prints to `out` a config (YAML) with one environment per usable key and the TTL seen, then,
/// as comments, the keys it could not use and why. Never prints a token, a secret, a password
/// or a secret-derived key (only its fingerprint). Returns 0 when it ran (even if it found
/// nothing), 1 when Redis cannot be read (one line on `err`, password scrubbed). The timeout
/// and Redis's reconnect backoff run on `clock`.
int Discover(const DiscoverOptions& options, Clock& clock, std::ostream& out, std::ostream& err);

}  // namespace wxcanary::daemon
