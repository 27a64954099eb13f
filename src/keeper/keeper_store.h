#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"
#include "source/redis_connection.h"
#include "source/redis_pool.h"

namespace wxcanary::keeper {

/// The Redis key of the writer lease of `app_id`: "wxcanary:keeper-lease:" + app_id. Pure.
std::string LeaseKey(const std::string& app_id);
/// The Redis set of the fingerprints of the stable tokens the keepers of `app_id` wrote, beside
/// the lease: "wxcanary:keeper-tokens:" + app_id. Pure.
std::string TokensKey(const std::string& app_id);

/// The Redis operations the keeper needs. A narrow seam so the Keeper is unit-tested with a
/// fake. Implementations are thread-safe.
class KeeperStore {
 public:
  virtual ~KeeperStore() = default;
  /// What env's key (or hash field) holds now, decoded as a probe decodes it.
  virtual source::TokenRead Read(const config::Environment& env) = 0;
  /// Writes `value` with `ttl` only if env's key (or field) still holds exactly `expected`
  /// (empty: only if absent). 1 written, 0 changed, nullopt on error.
  virtual std::optional<int> CompareAndSet(const config::Environment& env, const Secret& expected,
                                           const Secret& value, std::chrono::seconds ttl,
                                           std::string* error) = 0;
  /// Takes or renews the lease `key` in the Redis named `redis` for `owner`: true when `owner`
  /// holds it afterwards, false when another does, nullopt on error.
  virtual std::optional<bool> HoldLease(const std::string& redis, const std::string& key,
                                        const std::string& owner, std::chrono::milliseconds ttl,
                                        std::string* error) = 0;
  /// Gives the lease up if `owner` still holds it. Best effort: its TTL frees it anyway.
  virtual void ReleaseLease(const std::string& redis, const std::string& key,
                            const std::string& owner) = 0;
  /// Adds `fingerprint` to the set `key` in the Redis named `redis`, which then expires after
  /// `ttl`. nullopt on error.
  virtual std::optional<bool> RememberToken(const std::string& redis, const std::string& key,
                                            const std::string& fingerprint,
                                            std::chrono::seconds ttl, std::string* error) = 0;
  /// True when that set holds `fingerprint`; nullopt on error.
  virtual std::optional<bool> RemembersToken(const std::string& redis, const std::string& key,
                                             const std::string& fingerprint,
                                             std::string* error) = 0;
};

/// KeeperStore on the configured Redis servers (a source::RedisPool of its own). Thread-safe.
class RedisKeeperStore final : public KeeperStore {
 public:
  /// `clock` (for the connections' backoff) must outlive the store.
  RedisKeeperStore(const std::map<std::string, config::Redis>& redis, Clock& clock);

  /// After a reload (see source::RedisPool::SetRedis).
  void SetRedis(const std::map<std::string, config::Redis>& redis) { pool_.SetRedis(redis); }

  source::TokenRead Read(const config::Environment& env) override;
  std::optional<int> CompareAndSet(const config::Environment& env, const Secret& expected,
                                   const Secret& value, std::chrono::seconds ttl,
                                   std::string* error) override;
  std::optional<bool> HoldLease(const std::string& redis, const std::string& key,
                                const std::string& owner, std::chrono::milliseconds ttl,
                                std::string* error) override;
  void ReleaseLease(const std::string& redis, const std::string& key,
                    const std::string& owner) override;
  std::optional<bool> RememberToken(const std::string& redis, const std::string& key,
                                    const std::string& fingerprint, std::chrono::seconds ttl,
                                    std::string* error) override;
  std::optional<bool> RemembersToken(const std::string& redis, const std::string& key,
                                     const std::string& fingerprint, std::string* error) override;

 private:
  source::RedisPool pool_;
};

}  // namespace wxcanary::keeper
