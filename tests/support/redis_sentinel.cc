#include "support/redis_sentinel.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace wxcanary::testing {

RedisSentinel::RedisSentinel(int master_port) : port_(FreePort()) {
  const auto conf = dir_.path() / "sentinel.conf";
  std::ofstream(conf) << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_.path().string()
                      << "\nsentinel monitor mymaster 127.0.0.1 " << master_port << " 1\n"
                      << "sentinel down-after-milliseconds mymaster 1000\n"
                      << "sentinel failover-timeout mymaster 10000\n";
  proc_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"redis-server", conf.string(), "--sentinel"},
      dir_.path() / "sentinel.log");
  if (!WaitForPort(port_)) throw std::runtime_error("sentinel: " + proc_->Output());
}

RedisSentinel::~RedisSentinel() = default;

std::string RedisSentinel::Cli(const std::string& args) const {
  return ShellOutput("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " " + args);
}

}  // namespace wxcanary::testing
