#pragma once

#include <memory>
#include <string>

#include "support/process.h"

namespace wxcanary::testing {

/// A real Sentinel (redis-server --sentinel) on a free loopback port monitoring the master at
/// 127.0.0.1:master_port as "mymaster" (quorum 1, down after 1 s); gone when destroyed.
/// Not thread-safe.
class RedisSentinel {
 public:
  /// Throws std::runtime_error with its output when it does not start.
  explicit RedisSentinel(int master_port);
  ~RedisSentinel();

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Runs `redis-cli ... ARGS` (one shell word list) against it; its output.
  std::string Cli(const std::string& args) const;

 private:
  int port_;
  TempDir dir_;
  std::unique_ptr<Subprocess> proc_;
};

}  // namespace wxcanary::testing
