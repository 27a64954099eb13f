#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "config/config.h"
#include "source/redis_connection.h"

namespace wxcanary::source {

/// One RedisConnection per `redis:` entry, all behind one mutex (for the rare writers: heals and
/// the keeper, which may queue), kept across a reload when their entry is unchanged.
/// Thread-safe.
class RedisPool {
 public:
  /// `clock` (for the connections' backoff) must outlive the pool.
  RedisPool(const std::map<std::string, config::Redis>& redis, Clock& clock);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  /// After a reload: keeps connections whose settings are unchanged, replaces the others, drops
  /// the entries that are gone.
  void SetRedis(const std::map<std::string, config::Redis>& redis);

  /// Runs fn(RedisConnection&) on the connection named `name` with the pool's lock held and
  /// returns what it returns; `otherwise` (with `error` set) when no such entry is configured.
  template <typename Fn, typename R>
  R With(const std::string& name, std::string* error, R otherwise, Fn&& fn) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(name);
    if (it == conns_.end()) {
      if (error != nullptr) *error = "redis \"" + name + "\" is not configured";
      return otherwise;
    }
    return fn(*it->second);
  }

 private:
  Clock& clock_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<RedisConnection>> conns_;
};

}  // namespace wxcanary::source
