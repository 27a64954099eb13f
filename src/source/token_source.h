#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"

struct redisContext;
struct redisReply;

namespace wxcanary::source {

/// What Redis holds for one environment at one instant.
struct TokenRead {
  enum class Status { kOk, kMissing, kUndecodable, kRedisError };
  Status status = Status::kOk;
  Secret token;        // decoded token (kOk only)
  Secret raw_value;    // the stored string (string value or hash field) as read
  int64_t ttl_seconds = -2;  // -2 no key, -1 no expiry
  std::string error;   // one line, for kUndecodable / kRedisError; never contains the value
                       // (also a short reason for kMissing: no key, no field, empty value)
};

/// Largest stored value DecodeToken accepts; real tokens are <= 512 chars.
inline constexpr size_t kMaxValueBytes = 64 * 1024;

/// Extracts the token from a stored value: the value itself (kString, kHash without path; a
/// JSON-quoted "\"abc\"" is unquoted), or a string at a dotted json_path inside a JSON value.
/// Returns nullopt with a one-line `error` (never containing the value) when the value is empty,
/// over kMaxValueBytes, holds whitespace/control chars, is not JSON, or the path is absent / not a
/// string. Pure; thread-safe.
std::optional<std::string> DecodeToken(const config::Environment& env, std::string_view raw,
                                       std::string* error);

/// One connection to one Redis server. Reconnects lazily after an error, with backoff
/// (100 ms doubling to 5 s, measured on `clock`); while backing off every call fails fast with
/// "reconnect backoff" without touching the network. Errors never contain values or passwords.
/// Not thread-safe: each worker owns its own.
class RedisConnection {
 public:
  explicit RedisConnection(config::Redis cfg, Clock& clock = RealClock::Instance());
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Reads the value and its TTL in one round trip (pipelined GET/HGET + TTL).
  TokenRead Read(const config::Environment& env);

  /// Atomically deletes env's key (or hash field) only if it still holds exactly `expected`
  /// (Lua compare-and-delete). Returns 1 deleted, 0 changed, nullopt on a Redis error.
  std::optional<int> CompareAndDelete(const config::Environment& env, const Secret& expected,
                                      std::string* error);

  /// Atomically writes `value` with a TTL only if the key (or field) still holds `expected`
  /// (empty expected = only if absent). Returns 1 written, 0 changed, nullopt on error.
  std::optional<int> CompareAndSet(const config::Environment& env, const Secret& expected,
                                   const Secret& value, std::chrono::seconds ttl,
                                   std::string* error);

  /// SET key value NX PX ttl. True when acquired.
  std::optional<bool> TryLock(const std::string& key, const std::string& owner,
                              std::chrono::milliseconds ttl, std::string* error);

  /// Releases a lock only if `owner` still holds it (compare-and-delete on the lock key).
  /// True when released, false when it expired or another owner holds it.
  std::optional<bool> Unlock(const std::string& key, const std::string& owner,
                             std::string* error);

  /// True after the last command succeeded (feeds wxcanary_redis_up).
  [[nodiscard]] bool healthy() const { return healthy_; }
  [[nodiscard]] const config::Redis& config() const { return cfg_; }

 private:
  struct ReplyDeleter {
    void operator()(redisReply* r) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

  bool EnsureConnected(std::string* error);
  void Drop();
  void ScheduleReconnect();
  /// One command, one round trip. Null with `error` set on an I/O error (connection dropped).
  Reply Command(const std::vector<std::string>& argv, std::string* error);
  /// EVALSHA with a NOSCRIPT fallback to EVAL. Null with `error` set on any failure.
  Reply Eval(const std::string& script, const std::string& sha1,
             const std::vector<std::string>& keys, const std::vector<std::string>& args,
             std::string* error);
  std::string Scrub(std::string message) const;

  config::Redis cfg_;
  Clock& clock_;
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
  bool healthy_ = false;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
};

}  // namespace wxcanary::source
