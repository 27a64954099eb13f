#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace wxcanary::testing {

/// A real redis-server on a free loopback port, no persistence, gone when destroyed.
/// Not thread-safe.
class RedisServer {
 public:
  /// extra_args are appended to the redis-server command line (e.g. {"--requirepass", "x"}).
  explicit RedisServer(std::vector<std::string> extra_args = {});
  ~RedisServer();

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Runs one command through redis-cli and returns its raw output, trailing newline removed.
  std::string Cli(const std::vector<std::string>& args, int db = 0) const;

  /// Kills the server (SIGKILL) and starts it again on the same port.
  void Kill();
  void Start();

 private:
  int port_;
  std::vector<std::string> extra_args_;
  TempDir dir_;
  std::unique_ptr<Subprocess> proc_;
};

}  // namespace wxcanary::testing
