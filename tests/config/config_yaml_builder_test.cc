// The tests' config builder (tests/support/config_yaml.h) writes what the real loader reads.

#include <gtest/gtest.h>

#include "config/config.h"
#include "support/config_yaml.h"

namespace wxcanary::config {
namespace {

TEST(ConfigYamlBuilder, what_it_writes_loads_with_every_field_where_it_was_put) {
  const Config c =
      LoadString(testing::ConfigYaml("http://127.0.0.1:1")
                     .WeChat("timeout", "1s")
                     .Workers(3)
                     .Default("probe", "msg_sec_check")
                     .Redis("r0", "127.0.0.1:6379", {{"db", "2"}, {"read_timeout", "1s"}})
                     .App("wx1234567890abcdef")
                     .Env("prod", "r0", {{"labels", "{team: pay}"}, {"heal", "dry_run"}})
                     .Env("test", "r0", {{"key", "k:{app_env}: \"x\""}})
                     .Section("heal:\n  confirmations: 3\n")
                     .str(),
                 ".");
  EXPECT_EQ(c.wechat.base_url, "http://127.0.0.1:1");
  EXPECT_EQ(c.wechat.timeout, std::chrono::seconds{1});
  EXPECT_EQ(c.workers, 3);
  ASSERT_EQ(c.redis.count("r0"), 1u);
  EXPECT_EQ(c.redis.at("r0").db, 2);
  EXPECT_EQ(c.redis.at("r0").read_timeout, std::chrono::seconds{1});
  EXPECT_EQ(c.redis.at("r0").connect_timeout, std::chrono::milliseconds{300});
  ASSERT_EQ(c.apps.size(), 1u);
  ASSERT_EQ(c.apps[0].environments.size(), 2u);
  const auto& prod = c.apps[0].environments[0];
  EXPECT_EQ(prod.key, "ACCESS_TOKEN_CACHE:wx1234567890abcdef");
  EXPECT_EQ(prod.interval, std::chrono::milliseconds{500});
  EXPECT_EQ(prod.probe, ProbeKind::kMsgSecCheck);
  EXPECT_EQ(prod.heal, HealMode::kDryRun);
  EXPECT_EQ(prod.labels.at("team"), "pay");
  // A value YAML would misread (": ", quotes) arrives as written.
  EXPECT_EQ(c.apps[0].environments[1].key, "k:test: \"x\"");
  EXPECT_EQ(c.heal.confirmations, 3);
}

}  // namespace
}  // namespace wxcanary::config
