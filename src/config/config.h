#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/secret.h"

namespace wxcanary::config {

using std::chrono::milliseconds;

/// A config that cannot be used. what() is one line naming the key and the offending value,
/// e.g. `apps[0].environments[1].interval: "5s" is shorter than timeout "10s"`.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where a secret comes from: never the config file itself.
struct SecretRef {
  enum class Kind { kNone, kFile, kEnv, kCredential };
  Kind kind = Kind::kNone;
  std::string name;  // path, variable name, or systemd credential name
  [[nodiscard]] bool set() const { return kind != Kind::kNone; }
};

struct Redis {
  std::string name;
  std::string host = "127.0.0.1";  // set when address is host:port
  int port = 6379;
  std::string unix_socket;  // set instead of host/port when address is unix:/path
  int db = 0;
  std::string username;  // Redis 6 ACL user; empty = default user
  SecretRef password;
  Secret password_value;  // resolved at load time
  milliseconds connect_timeout{1000};
  milliseconds read_timeout{1000};
  /// "host:port" or "unix:/path": the label value of wxcanary_redis_up{redis} is the name.
  [[nodiscard]] std::string Address() const;
};

enum class Storage { kString, kJson, kHash };
enum class ProbeKind { kMsgSecCheck, kMsgSecCheckV2, kApiDomainIp };
enum class HealMode { kOff, kDryRun, kEvict };

std::string_view StorageName(Storage s);
std::string_view ProbeKindName(ProbeKind k);
std::string_view HealModeName(HealMode m);

struct Environment {
  std::string name;  // the app_env label
  std::string redis;  // name of a Redis entry
  std::string key_template;  // as written, e.g. "ACCESS_TOKEN_CACHE:{app_id}"
  std::string key;           // expanded ({app_id}, {app_env})
  Storage storage = Storage::kString;
  std::string json_path;   // storage json: dotted path, e.g. "access_token" or "data.token"
  std::string hash_field;  // storage hash: the field holding the token (or a JSON value)
  ProbeKind probe = ProbeKind::kApiDomainIp;
  std::string content = "wxcanary canary";  // msg_sec_check(_v2) canary text: harmless
  std::string openid;   // msg_sec_check_v2 only
  int scene = 1;        // msg_sec_check_v2 only, 1..4
  milliseconds interval{30'000};
  milliseconds timeout{5'000};
  std::map<std::string, std::string> labels;  // extra constant labels
  HealMode heal = HealMode::kOff;
  bool heal_refresh = false;  // write a stable_token after evicting (needs the app secret)
};

struct App {
  std::string app_id;
  SecretRef secret;     // optional: enables quota reading and heal refresh
  Secret secret_value;  // resolved at load time
  std::vector<Environment> environments;
};

struct WeChat {
  std::string base_url = "https://api.weixin.qq.com";
  std::string ca_file;  // optional CA bundle used instead of the system one; always verified
  milliseconds timeout{5'000};
};

struct Conflict {
  /// How far back a refresh elsewhere counts as the cause of an invalidation.
  /// Unset: the 300 s grace plus the victim's probe interval.
  std::optional<milliseconds> window;
  int daily_quota = 2000;  // /cgi-bin/token calls per AppId per day
  milliseconds quota_poll_interval{600'000};  // never below 10 min
};

struct Heal {
  int confirmations = 2;  // consecutive token errors before acting
  milliseconds cooldown{300'000};
  int budget_per_hour = 20;  // all heals of this daemon together
  milliseconds lock_ttl{10'000};
  milliseconds refresh_margin{300'000};  // TTL written = expires_in - margin
};

struct LogSink {
  enum class Kind { kStdout, kFile, kTcp };
  Kind kind = Kind::kStdout;
  std::string path;  // file
  int64_t max_size_bytes = 100 * 1024 * 1024;
  int max_files = 5;
  std::string host;  // tcp
  int port = 0;
  int queue_size = 8192;
};

struct Logging {
  std::vector<LogSink> sinks;  // empty = one stdout sink
};

struct Config {
  std::filesystem::path source;  // file the config came from
  WeChat wechat;
  std::map<std::string, Redis> redis;
  std::vector<App> apps;
  Conflict conflict;
  Heal heal;
  Logging logging;
  int workers = 16;  // probe worker threads

  [[nodiscard]] size_t TargetCount() const;
};

/// Reads, decodes and validates a YAML config; resolves secrets (files, environment,
/// $CREDENTIALS_DIRECTORY). Throws ConfigError. Thread-safe (no shared state).
Config LoadFile(const std::filesystem::path& path);

/// As LoadFile, from text; relative paths resolve against base_dir.
Config LoadString(const std::string& yaml, const std::filesystem::path& base_dir = ".");

/// Human-readable summary of what would be monitored (for --config.check). Never prints secrets.
std::string Describe(const Config& config);

}  // namespace wxcanary::config
