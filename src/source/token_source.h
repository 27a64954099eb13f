#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"
#include "source/value_decoder.h"

struct redisContext;
struct redisReply;

namespace wxcanary::source {

/// What Redis holds for one environment at one instant.
struct TokenRead {
  enum class Status { kOk, kMissing, kUndecodable, kRedisError };
  Status status = Status::kOk;
  Secret token;        // decoded token (kOk only)
  Secret raw_value;    // the stored string (string value or hash field) as read
  /// -2 no key, -1 no expiry. A key without a TTL whose value (env.expiry_path) or companion key
  /// (env.expiry_key) says when the token expires reports the seconds left until then (0 once
  /// past), so that TTL metrics and "Redis still holds it" see what the app sees.
  int64_t ttl_seconds = -2;
  std::optional<SystemTime> expires_at;  // from the value or the companion key, when configured
  std::string error;   // one line, for kUndecodable / kRedisError; never contains the value
                       // (also a short reason for kMissing: no key, no field, empty value)
};

/// One connection to one Redis server (under Sentinel: to the master the sentinels name at each
/// connect, so a failover is followed). Reconnects lazily after an error, with backoff
/// (100 ms doubling to 5 s, measured on `clock`); while backing off every call fails fast with
/// "reconnect backoff" without touching the network. Errors never contain values or passwords.
/// Not thread-safe: each worker owns its own.
class RedisConnection {
 public:
  explicit RedisConnection(config::Redis cfg, Clock& clock = RealClock::Instance());
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Reads the value and its TTL (and env.expiry_key, if set) in one round trip (pipelined).
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
  /// Asks cfg_.sentinels, in order, for the current address of cfg_.master_name.
  bool ResolveMaster(std::string* host, int* port, std::string* error);
  void Drop();
  void ScheduleReconnect();
  /// One command, one round trip. Null with `error` set on an I/O error (connection dropped).
  Reply Command(const std::vector<std::string>& argv, std::string* error);
  /// EVALSHA with a NOSCRIPT fallback to EVAL. Null with `error` set on any failure.
  Reply Eval(const std::string& script, const std::string& sha1,
             const std::vector<std::string>& keys, const std::vector<std::string>& args,
             const std::string& shown_key, std::string* error);
  /// Reads env.expiry_key's reply into out->expires_at. False with out's status and error set
  /// when it holds something that is not a time.
  bool CompanionExpiry(const config::Environment& env, const redisReply* reply, TokenRead* out) const;
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
