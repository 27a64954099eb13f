#include "heal/heal_store.h"

#include "source/redis_connection.h"

namespace wxcanary::heal {

namespace {

// Same server, same credentials, same timeouts: the connection can be kept across a reload.
bool SameRedis(const config::Redis& a, const config::Redis& b) {
  return a.host == b.host && a.port == b.port && a.unix_socket == b.unix_socket && a.db == b.db &&
         a.username == b.username && a.password_value == b.password_value &&
         a.connect_timeout == b.connect_timeout && a.read_timeout == b.read_timeout &&
         a.sentinels == b.sentinels && a.master_name == b.master_name &&
         a.sentinel_password_value == b.sentinel_password_value && a.cluster == b.cluster;
}

}  // namespace

std::string HealLockKey(const config::Environment& env) { return "wxcanary:heal-lock:" + env.key; }

RedisHealStore::RedisHealStore(const std::map<std::string, config::Redis>& redis, Clock& clock)
    : clock_(clock) {
  SetRedis(redis);
}

RedisHealStore::~RedisHealStore() = default;

void RedisHealStore::SetRedis(const std::map<std::string, config::Redis>& redis) {
  std::lock_guard lock(mu_);
  std::map<std::string, std::unique_ptr<source::RedisConnection>> next;
  for (const auto& [name, cfg] : redis) {
    auto it = conns_.find(name);
    if (it != conns_.end() && SameRedis(it->second->config(), cfg)) {
      next[name] = std::move(it->second);
    } else {
      next[name] = std::make_unique<source::RedisConnection>(cfg, clock_);
    }
  }
  conns_ = std::move(next);
}

source::RedisConnection* RedisHealStore::ConnectionFor(const config::Environment& env,
                                                       std::string* error) {
  auto it = conns_.find(env.redis);
  if (it == conns_.end()) {
    if (error != nullptr) *error = "redis \"" + env.redis + "\" is not configured";
    return nullptr;
  }
  return it->second.get();
}

std::optional<int> RedisHealStore::CompareAndDelete(const config::Environment& env,
                                                    const Secret& expected, std::string* error) {
  std::lock_guard lock(mu_);
  auto* conn = ConnectionFor(env, error);
  if (conn == nullptr) return std::nullopt;
  return conn->CompareAndDelete(env, expected, error);
}

std::optional<int> RedisHealStore::CompareAndSet(const config::Environment& env,
                                                 const Secret& expected, const Secret& value,
                                                 std::chrono::seconds ttl, std::string* error) {
  std::lock_guard lock(mu_);
  auto* conn = ConnectionFor(env, error);
  if (conn == nullptr) return std::nullopt;
  return conn->CompareAndSet(env, expected, value, ttl, error);
}

std::optional<bool> RedisHealStore::TryLock(const config::Environment& env,
                                            const std::string& owner, std::chrono::milliseconds ttl,
                                            std::string* error) {
  std::lock_guard lock(mu_);
  auto* conn = ConnectionFor(env, error);
  if (conn == nullptr) return std::nullopt;
  return conn->TryLock(HealLockKey(env), owner, ttl, error);
}

void RedisHealStore::Unlock(const config::Environment& env, const std::string& owner) {
  std::lock_guard lock(mu_);
  auto* conn = ConnectionFor(env, nullptr);
  if (conn == nullptr) return;
  // A failed unlock costs at most lock_ttl of peers reporting skipped_locked.
  (void)conn->Unlock(HealLockKey(env), owner, nullptr);
}

}  // namespace wxcanary::heal
