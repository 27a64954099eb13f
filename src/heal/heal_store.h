#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"
#include "source/redis_pool.h"

namespace wxcanary::heal {

/// The Redis key two wxcanary instances contend for before healing env's key:
/// "wxcanary:heal-lock:" + env.key. Pure; thread-safe.
std::string HealLockKey(const config::Environment& env);

/// The few atomic Redis operations healing needs, each against the Redis named env.redis and
/// env's key (or hash field). A narrow seam so the Healer is unit-tested with a fake.
/// Implementations are thread-safe.
class HealStore {
 public:
  virtual ~HealStore() = default;

  /// Deletes env's key (or hash field) only if it still holds exactly `expected`.
  /// 1 deleted, 0 changed (nothing deleted), nullopt on error (`error` set, never a value).
  virtual std::optional<int> CompareAndDelete(const config::Environment& env,
                                              const Secret& expected, std::string* error) = 0;

  /// Writes `value` with `ttl` only if env's key still holds `expected` (empty = only if
  /// absent). 1 written, 0 changed, nullopt on error.
  virtual std::optional<int> CompareAndSet(const config::Environment& env, const Secret& expected,
                                           const Secret& value, std::chrono::seconds ttl,
                                           std::string* error) = 0;

  /// SET HealLockKey(env) owner NX PX ttl in env's Redis. true acquired, false held by another
  /// owner, nullopt on error.
  virtual std::optional<bool> TryLock(const config::Environment& env, const std::string& owner,
                                      std::chrono::milliseconds ttl, std::string* error) = 0;

  /// Releases HealLockKey(env) only if `owner` still holds it. Best effort: the lock's TTL
  /// frees it anyway.
  virtual void Unlock(const config::Environment& env, const std::string& owner) = 0;
};

/// HealStore on real Redis servers: a source::RedisPool (one connection per Redis name, all
/// behind one mutex: heals are rare, so they may queue). Thread-safe.
class RedisHealStore final : public HealStore {
 public:
  /// `clock` (for the connections' backoff) must outlive the store.
  RedisHealStore(const std::map<std::string, config::Redis>& redis, Clock& clock);
  ~RedisHealStore() override;
  RedisHealStore(const RedisHealStore&) = delete;
  RedisHealStore& operator=(const RedisHealStore&) = delete;

  /// After a reload: keeps connections whose settings are unchanged, replaces the others,
  /// drops the Redis entries that are gone.
  void SetRedis(const std::map<std::string, config::Redis>& redis);

  std::optional<int> CompareAndDelete(const config::Environment& env, const Secret& expected,
                                      std::string* error) override;
  std::optional<int> CompareAndSet(const config::Environment& env, const Secret& expected,
                                   const Secret& value, std::chrono::seconds ttl,
                                   std::string* error) override;
  std::optional<bool> TryLock(const config::Environment& env, const std::string& owner,
                              std::chrono::milliseconds ttl, std::string* error) override;
  void Unlock(const config::Environment& env, const std::string& owner) override;

 private:
  source::RedisPool pool_;
};

}  // namespace wxcanary::heal
