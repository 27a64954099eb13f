// The incident healed end to end: wxcanary (the binary), a real redis-server and wxsim.
#include <gtest/gtest.h>

#include "common/fingerprint.h"
#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kApp = "wx00000000000000a1";
constexpr const char* kSecret = "s3cr3t-for-tests";

std::string Key() { return std::string("ACCESS_TOKEN_CACHE:") + kApp; }

std::string Config(const WxSim& sim, const RedisServer& redis) {
  return ConfigYaml(sim.base_url())
      .Redis("r0", redis.address())
      .App(kApp)
      .Env("prod", "r0", {{"heal", "evict"}})
      .Section("heal:\n  confirmations: 2\n");
}

std::map<std::string, std::string> Heal(const std::string& result) {
  return {{"app_id", kApp}, {"app_env", "prod"}, {"action", "evict"}, {"result", result}};
}

TEST(HealEndToEnd, the_incident_is_healed_stale_key_evicted_app_refetches_probes_recover) {
  RedisServer redis;
  WxSim sim({"--app", std::string(kApp) + ":" + kSecret});
  const std::string stale = sim.FetchToken(kApp, kSecret);
  redis.Cli({"SET", Key(), stale, "EX", "7200"});

  Daemon d(Config(sim, redis));
  const std::map<std::string, std::string> prod = {{"app_id", kApp}, {"app_env", "prod"}};
  ASSERT_TRUE(d.WaitFor([&](const Scrape& s) {
    return s.Value("wxcanary_probes_total", {{"app_env", "prod"}, {"outcome", "ok"}}) >= 1;
  })) << d.Output();
  EXPECT_EQ(d.ScrapeMetrics().Value("wxcanary_heals_total", Heal("done")), 0);

  sim.FetchToken(kApp, kSecret);  // the test environment fetches: prod's token will die
  sim.Advance(301);               // past the grace: 40001 while Redis still has ~2 h of TTL

  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return s.Value("wxcanary_heals_total", Heal("done")).value_or(0) == 1;
  })) << d.ScrapeMetrics().text();
  EXPECT_EQ(redis.Cli({"EXISTS", Key()}), "0");

  // The app finds no cached token and fetches a new one, as its SDK does.
  const std::string fresh = sim.FetchToken(kApp, kSecret);
  redis.Cli({"SET", Key(), fresh, "EX", "7200"});
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return s.Value("wxcanary_heal_recovery_seconds_count", {{"app_env", "prod"}}).value_or(0) == 1;
  })) << d.ScrapeMetrics().text();
  auto s = d.ScrapeMetrics();
  EXPECT_GT(*s.Value("wxcanary_heal_recovery_seconds_sum", {{"app_env", "prod"}}), 0);
  EXPECT_EQ(s.Value("wxcanary_heals_total", Heal("done")), 1);
  EXPECT_EQ(s.Value("wxcanary_heals_total", Heal("skipped_changed")), 0);
  EXPECT_EQ(redis.Cli({"GET", Key()}), fresh);  // the fresh token is untouched

  int evicted = 0;
  for (const auto& e : d.LogEvents()) {
    if (e.value("event.action", "") != "token_evicted") continue;
    ++evicted;
    EXPECT_EQ(e.value("log.level", ""), "warn");
    EXPECT_EQ(e.value("wxcanary.token.fingerprint", ""), Fingerprint(stale));
    EXPECT_EQ(e.value("wxcanary.redis.key", ""), Key());
  }
  EXPECT_EQ(evicted, 1);
  const std::string out = d.Output();
  EXPECT_EQ(out.find(stale), std::string::npos);
  EXPECT_EQ(out.find(fresh), std::string::npos);
}

}  // namespace
}  // namespace wxcanary::testing
