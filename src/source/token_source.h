#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

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
};

/// Extracts the token from a stored value: the value itself (kString, kHash without path), or a
/// string at a dotted json_path inside a JSON value. Returns nullopt with `error` set when the
/// value is empty or the path is absent / not a string. Pure; thread-safe.
std::optional<std::string> DecodeToken(const config::Environment& env, std::string_view raw,
                                       std::string* error);

/// One connection to one Redis server. Reconnects lazily (with backoff) after an error.
/// Not thread-safe: each worker owns its own.
class RedisConnection {
 public:
  explicit RedisConnection(config::Redis cfg);
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

  /// True after the last command succeeded (feeds wxcanary_redis_up).
  [[nodiscard]] bool healthy() const { return healthy_; }
  [[nodiscard]] const config::Redis& config() const { return cfg_; }

 private:
  bool EnsureConnected(std::string* error);
  void Drop();

  config::Redis cfg_;
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
  bool healthy_ = false;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
};

}  // namespace wxcanary::source
