#include "heal/heal_store.h"

#include "source/redis_connection.h"

namespace wxcanary::heal {

using source::RedisConnection;

std::string HealLockKey(const config::Environment& env) { return "wxcanary:heal-lock:" + env.key; }

RedisHealStore::RedisHealStore(const std::map<std::string, config::Redis>& redis, Clock& clock)
    : pool_(redis, clock) {}

RedisHealStore::~RedisHealStore() = default;

void RedisHealStore::SetRedis(const std::map<std::string, config::Redis>& redis) {
  pool_.SetRedis(redis);
}

std::optional<int> RedisHealStore::CompareAndDelete(const config::Environment& env,
                                                    const Secret& expected, std::string* error) {
  return pool_.With(env.redis, error, std::optional<int>(), [&](RedisConnection& conn) {
    return conn.CompareAndDelete(env, expected, error);
  });
}

std::optional<int> RedisHealStore::CompareAndSet(const config::Environment& env,
                                                 const Secret& expected, const Secret& value,
                                                 std::chrono::seconds ttl, std::string* error) {
  return pool_.With(env.redis, error, std::optional<int>(), [&](RedisConnection& conn) {
    return conn.CompareAndSet(env, expected, value, ttl, error);
  });
}

std::optional<bool> RedisHealStore::TryLock(const config::Environment& env,
                                            const std::string& owner, std::chrono::milliseconds ttl,
                                            std::string* error) {
  return pool_.With(env.redis, error, std::optional<bool>(), [&](RedisConnection& conn) {
    return conn.TryLock(HealLockKey(env), owner, ttl, error);
  });
}

void RedisHealStore::Unlock(const config::Environment& env, const std::string& owner) {
  // A failed unlock costs at most lock_ttl of peers reporting skipped_locked.
  pool_.With(env.redis, nullptr, false, [&](RedisConnection& conn) {
    (void)conn.Unlock(HealLockKey(env), owner, nullptr);
    return true;
  });
}

}  // namespace wxcanary::heal
