// RedisConnection under a real Sentinel (redis-server --sentinel) with a real failover
// (SENTINEL FAILOVER): reads follow the new master without a restart, and a compare-and-delete
// lands on the new master.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "source/redis_connection.h"
#include "support/process.h"
#include "support/redis_sentinel.h"
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

using Sentinel = testing::RedisSentinel;

TEST(RedisSentinel, reads_follow_a_failover_and_heals_delete_on_the_new_master) {
  RedisServer master;
  RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(master.port())});
  ASSERT_TRUE(Eventually(
      [&] {
        return master.Cli({"INFO", "replication"}).find("connected_slaves:1") != std::string::npos;
      },
      10s));
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
  ASSERT_TRUE(
      Eventually([&] { return sentinel.Cli("SENTINEL FAILOVER mymaster").find("OK") == 0; }, 20s));
  ASSERT_TRUE(Eventually(
      [&] {
        return sentinel.Cli("SENTINEL get-master-addr-by-name mymaster")
                   .find(std::to_string(replica.port())) != std::string::npos;
      },
      20s));
  ASSERT_TRUE(Eventually(
      [&] {
        return replica.Cli({"SET", env.key, "tokAfterFailover"}) == "OK";
      },
      10s));

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
                         std::to_string(sentinel.port()) +
                         ": does not know master \"othermaster\")");
}

}  // namespace
}  // namespace wxcanary::source
