#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/redis_server.h"

namespace wxcanary::testing {

/// A real Redis Cluster of `masters` masters and no replicas on free loopback ports
/// (redis-server --cluster-enabled yes, then redis-cli --cluster create), all 16384 slots
/// covered and cluster_state:ok on every node; gone when destroyed. Not thread-safe.
class RedisCluster {
 public:
  /// Throws std::runtime_error with redis-cli's output when the cluster cannot be made.
  explicit RedisCluster(int masters = 3);

  [[nodiscard]] const std::vector<std::unique_ptr<RedisServer>>& nodes() const { return nodes_; }
  /// The node holding `key` (the one that answers GET without a redirection), or -1.
  [[nodiscard]] int Owner(const std::string& key) const;

 private:
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace wxcanary::testing
