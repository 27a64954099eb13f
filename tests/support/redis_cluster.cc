#include "support/redis_cluster.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace wxcanary::testing {

RedisCluster::RedisCluster(int masters) {
  for (int i = 0; i < masters; ++i)
    nodes_.push_back(std::make_unique<RedisServer>(std::vector<std::string>{
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
        "5000",
        // The bus port defaults to port + 10000, past 65535 for a high free port.
        "--cluster-port", std::to_string(FreePort())}));
  std::string create = "redis-cli --cluster create";
  for (const auto& n : nodes_) create += " " + n->address();
  create += " --cluster-replicas 0 --cluster-yes";
  const std::string out = ShellOutput(create);
  if (out.find("All 16384 slots covered") == std::string::npos)
    throw std::runtime_error("redis-cli --cluster create: " + out);
  for (const auto& n : nodes_) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (n->Cli({"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) {
      if (std::chrono::steady_clock::now() > end)
        throw std::runtime_error("cluster node " + n->address() + " not ok after 20 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

int RedisCluster::Owner(const std::string& key) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const std::string get = nodes_[i]->Cli({"GET", key});
    if (get.find("MOVED") == std::string::npos && get.find("ASK ") == std::string::npos)
      return static_cast<int>(i);
  }
  return -1;
}

}  // namespace wxcanary::testing
