// RedisConnection against a real 3-master Redis Cluster (redis-server --cluster-enabled yes x3,
// redis-cli --cluster create): the key slot agrees with the servers' own CLUSTER KEYSLOT, reads
// reach the node owning each key, a slot moved to another node is followed through ASK (during
// the migration) and MOVED (after it), and a compare-and-delete lands on the new owner.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "source/redis_connection.h"
#include "support/process.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"

namespace wxcanary::source {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using Status = TokenRead::Status;

class ClusterTest : public ::testing::Test {
 protected:
  // The cluster is made once per process, in SetUp so that a failure to make it fails the test
  // (a failure in SetUpTestSuite would show as a skip).
  void SetUp() override {
    if (!cluster_) cluster_ = std::make_unique<testing::RedisCluster>(3);
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  static const std::vector<std::unique_ptr<RedisServer>>& nodes() { return cluster_->nodes(); }
  static config::Redis Config() {
    config::Redis cfg;
    cfg.name = "c";
    cfg.cluster = {{"127.0.0.1", nodes()[0]->port()}};  // one seed: the map names the others
    return cfg;
  }
  // The node holding `key` (the one that answers GET without a redirection), or -1.
  static int Owner(const std::string& key) { return cluster_->Owner(key); }
  static void SetOn(const std::string& key, const std::string& value) {
    ASSERT_EQ(nodes()[Owner(key)]->Cli({"SET", key, value}), "OK");
  }

  static std::unique_ptr<testing::RedisCluster> cluster_;
};
std::unique_ptr<testing::RedisCluster> ClusterTest::cluster_;

TEST_F(ClusterTest, the_key_slot_agrees_with_the_servers_including_hash_tags_and_binary_keys) {
  EXPECT_EQ(ClusterKeySlot("foo"), 12182);
  EXPECT_EQ(ClusterKeySlot("123456789"), 0x31C3);  // CRC16/XMODEM's check value
  EXPECT_EQ(ClusterKeySlot("{user1000}.following"), ClusterKeySlot("{user1000}.followers"));
  EXPECT_EQ(ClusterKeySlot("{user1000}.following"), ClusterKeySlot("user1000"));
  EXPECT_NE(ClusterKeySlot("foo{}{bar}"), ClusterKeySlot("bar"));  // empty tag: the whole key
  EXPECT_EQ(ClusterKeySlot("foo{{bar}}zap"), ClusterKeySlot("{bar"));
  const std::vector<std::string> keys = {
      "foo",
      "wx:access_token:wx1234567890abcdef",
      "foo{}{bar}",
      "foo{{bar}}zap",
      "{}",
      "{",
      "a{b}c{d}",
      "gowechat_officialaccount__access_token_wxabcdef0123456789",
      std::string(200, 'k'),
      "\xac\xed\x05t\x03key\xff"};
  for (const std::string& key : keys) {
    // The server's own answer (redis-cli passes argv's bytes through unchanged).
    EXPECT_EQ(std::to_string(ClusterKeySlot(key)), nodes()[0]->Cli({"CLUSTER", "KEYSLOT", key}))
        << key;
  }
}

TEST_F(ClusterTest, reads_reach_the_node_owning_each_key) {
  RedisConnection conn(Config(), RealClock::Instance());
  std::vector<bool> seen(nodes().size());
  for (int i = 0; i < 24; ++i) {
    config::Environment env;
    env.name = "e" + std::to_string(i);
    env.key = "wx:access_token:wx" + std::to_string(1000 + i);
    const std::string token = "tok" + std::to_string(i);
    SetOn(env.key, token);
    seen[Owner(env.key)] = true;
    TokenRead r = conn.Read(env);
    ASSERT_EQ(r.status, Status::kOk) << env.key << ": " << r.error;
    EXPECT_EQ(r.token.Reveal(), token);
    EXPECT_GT(r.ttl_seconds, -2);
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "no key on node " << i;
  EXPECT_TRUE(conn.healthy());
  EXPECT_EQ(conn.cluster_stats().moved, 0u);  // the slot map was right from the start
}

TEST_F(ClusterTest,
       a_migrating_slot_is_followed_by_ask_then_moved_and_heals_delete_on_the_new_owner) {
  config::Environment env;
  env.name = "prod";
  env.key = "wx:access_token:wxmigrating";
  SetOn(env.key, "tokStale");
  RedisConnection conn(Config(), RealClock::Instance());
  TokenRead r = conn.Read(env);
  ASSERT_EQ(r.status, Status::kOk) << r.error;  // the connection now has the map

  const int from = Owner(env.key);
  const int to = (from + 1) % 3;
  RedisServer& a = *nodes()[from];
  RedisServer& b = *nodes()[to];
  const std::string slot = a.Cli({"CLUSTER", "KEYSLOT", env.key});
  const std::string a_id = a.Cli({"CLUSTER", "MYID"});
  const std::string b_id = b.Cli({"CLUSTER", "MYID"});
  ASSERT_EQ(b.Cli({"CLUSTER", "SETSLOT", slot, "IMPORTING", a_id}), "OK");
  ASSERT_EQ(a.Cli({"CLUSTER", "SETSLOT", slot, "MIGRATING", b_id}), "OK");
  ASSERT_EQ(a.Cli({"MIGRATE", "127.0.0.1", std::to_string(b.port()), env.key, "0", "5000"}), "OK");

  // Mid-migration: the old owner answers ASK for the moved key.
  r = conn.Read(env);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.token.Reveal(), "tokStale");
  EXPECT_GE(conn.cluster_stats().asked, 1u);

  for (const auto& n : nodes()) ASSERT_EQ(n->Cli({"CLUSTER", "SETSLOT", slot, "NODE", b_id}), "OK");
  r = conn.Read(env);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.token.Reveal(), "tokStale");
  EXPECT_GE(conn.cluster_stats().moved, 1u);

  // Compare-and-delete on the new owner: a changed value stays, the stale one goes.
  std::string error;
  ASSERT_EQ(b.Cli({"SET", env.key, "tokFresh"}), "OK");
  EXPECT_EQ(conn.CompareAndDelete(env, Secret("tokStale"), &error), 0) << error;
  EXPECT_EQ(b.Cli({"GET", env.key}), "tokFresh");
  ASSERT_EQ(b.Cli({"SET", env.key, "tokStale"}), "OK");
  EXPECT_EQ(conn.CompareAndDelete(env, Secret("tokStale"), &error), 1) << error;
  EXPECT_EQ(b.Cli({"EXISTS", env.key}), "0");
  EXPECT_TRUE(conn.healthy());
}

}  // namespace
}  // namespace wxcanary::source
