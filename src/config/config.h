#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/secret.h"
#include "wechat/probe_kinds.h"

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
  bool operator==(const SecretRef&) const = default;
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
  /// Sentinel: non-empty means the master of `master_name` is asked of these (in order) at
  /// every (re)connect, so a failover is followed without a restart; host/port are unused.
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master_name;
  SecretRef sentinel_password;  // AUTH to the sentinels (their own requirepass)
  Secret sentinel_password_value;
  /// Redis Cluster: non-empty means these seed nodes are asked for the slot map (CLUSTER SLOTS)
  /// and each command goes to the node owning its key's slot; host/port are unused, db is 0.
  /// The same username/password authenticate to every node.
  std::vector<std::pair<std::string, int>> cluster;
  /// "host:port", "unix:/path", "sentinel:<master_name>" or "cluster:host:port,...": never a
  /// password (a `redis://` address is stored parsed). The label value of
  /// wxcanary_redis_up{redis} is the name.
  [[nodiscard]] std::string Address() const;
  bool operator==(const Redis&) const = default;
};

enum class Storage { kString, kJson, kHash };
/// How the stored bytes wrap the value. kAuto takes a plain token, a JSON string literal, a
/// JDK-serialized String or a PHP-serialized string, whichever the bytes unambiguously are.
enum class Encoding { kAuto, kPlain, kJsonString, kJdk, kPhp };
/// How the key's bytes are written: as text, or JDK-serialized like Spring's default RedisTemplate.
enum class KeyEncoding { kPlain, kJdk };
/// The probe kinds and everything that differs between them live in one table there.
using ProbeKind = wechat::ProbeKind;
enum class HealMode { kOff, kDryRun, kEvict };
/// Keeper mode: `stable` makes wxcanary write getStableAccessToken's token into the key.
enum class KeepMode { kOff, kStable };

std::string_view StorageName(Storage s);
std::string_view EncodingName(Encoding e);
std::string_view KeyEncodingName(KeyEncoding e);
using wechat::ProbeKindName;
std::string_view HealModeName(HealMode m);
std::string_view KeepModeName(KeepMode m);

struct Environment {
  std::string name;          // the app_env label
  std::string redis;         // name of a Redis entry
  std::string sdk;           // preset that filled the fields below not set explicitly; "" none
  std::string key_template;  // as written (or from the preset), e.g. "ACCESS_TOKEN_CACHE:{app_id}"
  /// The key as it may be shown in logs, metrics and errors: the expanded template, or, when the
  /// template uses the app secret, "[secret-derived key <fingerprint>]". Never the bytes to send
  /// for a secret-derived or JDK-encoded key: use RedisKey(env) for that.
  std::string key;
  Secret redis_key;              // the bytes sent to Redis when they differ from `key`; empty = key
  bool key_from_secret = false;  // the template uses {secret}: the key itself is a secret
  KeyEncoding key_encoding = KeyEncoding::kPlain;
  Encoding encoding = Encoding::kAuto;
  std::string expiry_path;  // dotted path in the (JSON or PHP array) value to the expiry time
  std::string expiry_key_template;  // companion key holding the expiry time (wechatpy)
  std::string expiry_key;           // expanded; bytes as sent (encoded like the key)
  Storage storage = Storage::kString;
  std::string json_path;   // storage json: dotted path, e.g. "access_token" or "data.token"
  std::string hash_field;  // storage hash: the field holding the token (or a JSON value)
  ProbeKind probe = ProbeKind::kApiDomainIp;
  std::string content = "wxcanary canary";  // msg_sec_check(_v2) canary text: harmless
  std::string openid;                       // msg_sec_check_v2 only
  int scene = 1;                            // msg_sec_check_v2 only, 1..4
  milliseconds interval{30'000};
  milliseconds timeout{5'000};
  std::map<std::string, std::string> labels;  // extra constant labels
  HealMode heal = HealMode::kOff;
  bool heal_refresh = false;       // write a stable_token after evicting (needs the app secret)
  KeepMode keep = KeepMode::kOff;  // keeper mode (needs the app secret)
  bool owner = false;              // keep: the keeper may replace the app's own live token too
  bool keep_dry_run = false;       // keep: log what would be written, write nothing
  bool operator==(const Environment&) const = default;
};

/// The key bytes to send to Redis for env (its JDK form, or the secret-derived key).
inline const std::string& RedisKey(const Environment& env) {
  return env.redis_key.empty() ? env.key : env.redis_key.Reveal();
}

/// What a probe of env sends besides the token. Views into env: keep env alive for the call.
inline wechat::ProbeCall ProbeCallOf(const Environment& env) {
  return {.kind = env.probe, .content = env.content, .scene = env.scene, .openid = env.openid};
}

/// An SDK preset: the key, decoding and expiry source an SDK uses by default.
struct SdkPreset {
  std::string_view name = {};
  std::string_view key_template = {};  // "" = the app chooses: `key` stays required
  Encoding encoding = Encoding::kAuto;
  KeyEncoding key_encoding = KeyEncoding::kPlain;
  Storage storage = Storage::kString;
  std::string_view json_path = {};
  std::string_view expiry_path = {};
  std::string_view expiry_key_template = {};
  std::string_view unsupported =
      {};  // non-empty: the SDK's format cannot be read; why and what to do
};

/// Every preset `sdk:` accepts, in README order. Thread-safe (constant).
const std::vector<SdkPreset>& SdkPresets();

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
  bool operator==(const WeChat&) const = default;
};

struct Conflict {
  /// How far back a refresh elsewhere counts as the cause of an invalidation.
  /// Unset: the 300 s grace plus the victim's probe interval.
  std::optional<milliseconds> window;
  int daily_quota = 2000;                     // /cgi-bin/token calls per AppId per day
  milliseconds quota_poll_interval{600'000};  // never below 10 min
  bool operator==(const Conflict&) const = default;
};

struct Heal {
  int confirmations = 2;  // consecutive token errors before acting
  milliseconds cooldown{300'000};
  int budget_per_hour = 20;  // all heals of this daemon together
  milliseconds lock_ttl{10'000};
  milliseconds refresh_margin{300'000};  // TTL written = expires_in - margin
};

/// Keeper mode's settings, shared by every environment with keep: stable.
struct Keeper {
  milliseconds interval{60'000};   // each kept AppId: one stable_token fetch, a read of each key
  milliseconds margin{60'000};     // TTL written = the token's remaining life - margin
  milliseconds lease_ttl{30'000};  // the writer lease per AppId; renewed every lease_ttl / 3
  bool force_refresh_on_dead = false;  // force_refresh a stable token the probes confirmed dead
  bool operator==(const Keeper&) const = default;
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
  bool operator==(const LogSink&) const = default;
};

struct Logging {
  std::vector<LogSink> sinks;  // empty = one stdout sink
  bool operator==(const Logging&) const = default;
};

struct Config {
  std::filesystem::path source;  // file the config came from
  WeChat wechat;
  std::map<std::string, Redis> redis;
  std::vector<App> apps;
  Conflict conflict;
  Heal heal;
  Keeper keeper;
  Logging logging;
  // The event loop's keep-alive connections to the API, and the size of the worker pool that
  // probes Sentinel and Cluster targets (started only for such a config).
  int workers = 16;

  [[nodiscard]] size_t TargetCount() const;
};

/// The AppIds whose secret is configured, with it: the only apps whose quota can be read or
/// whose token can be refreshed. Pure.
inline std::map<std::string, Secret> AppSecrets(const Config& config) {
  std::map<std::string, Secret> out;
  for (const auto& app : config.apps)
    if (!app.secret_value.empty()) out.emplace(app.app_id, app.secret_value);
  return out;
}

/// Reads, decodes and validates a YAML config; resolves secrets (files, environment,
/// $CREDENTIALS_DIRECTORY). Throws ConfigError. Thread-safe (no shared state).
Config LoadFile(const std::filesystem::path& path);

/// As LoadFile, from text; relative paths resolve against base_dir.
Config LoadString(const std::string& yaml, const std::filesystem::path& base_dir = ".");

/// One `redis:` entry (a YAML map, as under `redis: {NAME: ...}`) decoded and validated as
/// LoadString does, secrets resolved; errors name `redis.NAME.<key>`. For tools that connect
/// without a whole config (wxcanary discover). Throws ConfigError. Thread-safe.
Redis LoadRedis(const std::string& name, const std::string& yaml,
                const std::filesystem::path& base_dir = ".");

/// Human-readable summary of what would be monitored (for --config.check). Never prints secrets.
std::string Describe(const Config& config);

}  // namespace wxcanary::config
