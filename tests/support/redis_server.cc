#include "support/redis_server.h"

#include <signal.h>

#include <array>
#include <cstdio>
#include <stdexcept>

namespace wxcanary::testing {

RedisServer::RedisServer(std::vector<std::string> extra_args)
    : port_(FreePort()), extra_args_(std::move(extra_args)) {
  Start();
}

RedisServer::~RedisServer() { Kill(); }

void RedisServer::Start() {
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_.path().string()};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  proc_ = std::make_unique<Subprocess>(argv, dir_.path() / "redis.log");
  if (!WaitForPort(port_))
    throw std::runtime_error("redis-server did not start: " + proc_->Output());
}

void RedisServer::Kill() {
  if (proc_) {
    proc_->Signal(SIGKILL);
    proc_->Wait(std::chrono::seconds{5});
    proc_.reset();
  }
}

std::string RedisServer::Cli(const std::vector<std::string>& args, int db) const {
  std::string cmd =
      "redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " -n " + std::to_string(db);
  for (const auto& a : args) {
    std::string q = "'";
    for (char c : a) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
    cmd += " " + q + "'";
  }
  std::string out = ShellOutput(cmd);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace wxcanary::testing
