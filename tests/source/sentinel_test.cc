// RedisConnection under a real Sentinel (redis-server --sentinel) with a real failover
// (SENTINEL FAILOVER): reads follow the new master without a restart, and a compare-and-delete
// lands on the new master.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "source/token_source.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace wxcanary::source {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;

// Polls `f` every 100 ms until it is true or `limit` passes.
template <typename F>
bool Eventually(F f, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return f();
}

class Sentinel {
 public:
  Sentinel(int master_port) : port_(testing::FreePort()) {
    const auto conf = dir_.path() / "sentinel.conf";
    std::ofstream(conf) << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_.path().string()
                        << "\nsentinel monitor mymaster 127.0.0.1 " << master_port << " 1\n"
                        << "sentinel down-after-milliseconds mymaster 1000\n"
                        << "sentinel failover-timeout mymaster 10000\n";
    proc_ = std::make_unique<testing::Subprocess>(
        std::vector<std::string>{"redis-server", conf.string(), "--sentinel"},
        dir_.path() / "sentinel.log");
    if (!testing::WaitForPort(port_)) throw std::runtime_error("sentinel: " + proc_->Output());
  }
  [[nodiscard]] int port() const { return port_; }
  std::string Cli(const std::string& args) const {
    std::string out;
    FILE* f = ::popen(("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " " + args + " 2>&1").c_str(), "r");
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
    return out;
  }

 private:
  int port_;
  testing::TempDir dir_;
  std::unique_ptr<testing::Subprocess> proc_;
};

TEST(RedisSentinel, reads_follow_a_failover_and_heals_delete_on_the_new_master) {
  RedisServer master;
  RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(master.port())});
  ASSERT_TRUE(Eventually([&] { return master.Cli({"INFO", "replication"}).find("connected_slaves:1") != std::string::npos; }, 10s));
  Sentinel sentinel(master.port());

  config::Redis cfg;
  cfg.name = "s";
  cfg.sentinels = {{"127.0.0.1", testing::FreePort()},  // a sentinel that is down: skipped
                   {"127.0.0.1", sentinel.port()}};
  cfg.master_name = "mymaster";
  RedisConnection conn(cfg, RealClock::Instance());
  config::Environment env;
  env.name = "prod";
  env.key = "wx:access_token:wx1";

  master.Cli({"SET", env.key, "tokBeforeFailover"});
  TokenRead r = conn.Read(env);
  ASSERT_EQ(r.status, TokenRead::Status::kOk) << r.error;
  EXPECT_EQ(r.token.Reveal(), "tokBeforeFailover");

  // Sentinel learns of the replica from the master's INFO; until then FAILOVER says NOGOODSLAVE.
  ASSERT_TRUE(Eventually([&] { return sentinel.Cli("SENTINEL FAILOVER mymaster").find("OK") == 0; }, 20s));
  ASSERT_TRUE(Eventually(
      [&] {
        return sentinel.Cli("SENTINEL get-master-addr-by-name mymaster").find(std::to_string(replica.port())) !=
               std::string::npos;
      },
      20s));
  ASSERT_TRUE(Eventually([&] { return replica.Cli({"SET", env.key, "tokAfterFailover"}) == "OK"; }, 10s));

  // No restart: the connection finds the new master by itself.
  ASSERT_TRUE(Eventually(
      [&] {
        r = conn.Read(env);
        return r.status == TokenRead::Status::kOk && r.token.Reveal() == "tokAfterFailover";
      },
      15s))
      << r.error;
  std::string error;
  EXPECT_EQ(conn.CompareAndDelete(env, Secret("tokBeforeFailover"), &error), 0) << error;
  EXPECT_EQ(conn.CompareAndDelete(env, Secret("tokAfterFailover"), &error), 1) << error;
  EXPECT_EQ(replica.Cli({"EXISTS", env.key}), "0");
}

TEST(RedisSentinel, no_sentinel_naming_the_master_is_one_line_naming_each) {
  RedisServer master;
  Sentinel sentinel(master.port());
  config::Redis cfg;
  cfg.name = "s";
  cfg.sentinels = {{"127.0.0.1", sentinel.port()}};
  cfg.master_name = "othermaster";
  RedisConnection conn(cfg, RealClock::Instance());
  config::Environment env;
  env.key = "k";
  TokenRead r = conn.Read(env);
  EXPECT_EQ(r.status, TokenRead::Status::kRedisError);
  EXPECT_EQ(r.error, "sentinel \"othermaster\": no sentinel named the master (127.0.0.1:" +
                         std::to_string(sentinel.port()) + ": does not know master \"othermaster\")");
}

}  // namespace
}  // namespace wxcanary::source
