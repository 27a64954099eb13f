#include "keeper/keeper_store.h"

namespace wxcanary::keeper {

using source::RedisConnection;
using source::TokenRead;

std::string LeaseKey(const std::string& app_id) { return "wxcanary:keeper-lease:" + app_id; }
std::string TokensKey(const std::string& app_id) { return "wxcanary:keeper-tokens:" + app_id; }

RedisKeeperStore::RedisKeeperStore(const std::map<std::string, config::Redis>& redis, Clock& clock)
    : pool_(redis, clock) {}

TokenRead RedisKeeperStore::Read(const config::Environment& env) {
  TokenRead missing;
  missing.status = TokenRead::Status::kRedisError;
  return pool_.With(env.redis, &missing.error, missing,
                    [&](RedisConnection& conn) { return conn.Read(env); });
}

std::optional<int> RedisKeeperStore::CompareAndSet(const config::Environment& env,
                                                   const Secret& expected, const Secret& value,
                                                   std::chrono::seconds ttl, std::string* error) {
  return pool_.With(env.redis, error, std::optional<int>(), [&](RedisConnection& conn) {
    return conn.CompareAndSet(env, expected, value, ttl, error);
  });
}

std::optional<bool> RedisKeeperStore::HoldLease(const std::string& redis, const std::string& key,
                                                const std::string& owner,
                                                std::chrono::milliseconds ttl, std::string* error) {
  return pool_.With(redis, error, std::optional<bool>(),
                    [&](RedisConnection& conn) { return conn.HoldLease(key, owner, ttl, error); });
}

std::optional<bool> RedisKeeperStore::RememberToken(const std::string& redis,
                                                    const std::string& key,
                                                    const std::string& fingerprint,
                                                    std::chrono::seconds ttl, std::string* error) {
  return pool_.With(redis, error, std::optional<bool>(), [&](RedisConnection& conn) {
    return conn.Remember(key, fingerprint, ttl, error);
  });
}

std::optional<bool> RedisKeeperStore::RemembersToken(const std::string& redis,
                                                     const std::string& key,
                                                     const std::string& fingerprint,
                                                     std::string* error) {
  return pool_.With(redis, error, std::optional<bool>(),
                    [&](RedisConnection& conn) { return conn.Remembers(key, fingerprint, error); });
}

void RedisKeeperStore::ReleaseLease(const std::string& redis, const std::string& key,
                                    const std::string& owner) {
  pool_.With(redis, nullptr, false, [&](RedisConnection& conn) {
    (void)conn.Unlock(key, owner, nullptr);
    return true;
  });
}

}  // namespace wxcanary::keeper
