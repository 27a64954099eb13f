#include "source/redis_pool.h"

namespace wxcanary::source {

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

RedisPool::RedisPool(const std::map<std::string, config::Redis>& redis, Clock& clock)
    : clock_(clock) {
  SetRedis(redis);
}

RedisPool::~RedisPool() = default;

void RedisPool::SetRedis(const std::map<std::string, config::Redis>& redis) {
  std::lock_guard lock(mu_);
  std::map<std::string, std::unique_ptr<RedisConnection>> next;
  for (const auto& [name, cfg] : redis) {
    auto it = conns_.find(name);
    if (it != conns_.end() && SameRedis(it->second->config(), cfg)) {
      next[name] = std::move(it->second);
    } else {
      next[name] = std::make_unique<RedisConnection>(cfg, clock_);
    }
  }
  conns_ = std::move(next);
}

}  // namespace wxcanary::source
