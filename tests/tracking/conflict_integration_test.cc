// Conflict detection end to end: a real redis-server (one database per environment), wxsim and
// the wxcanary binary, observed only through /metrics and the JSON log.
#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "common/fingerprint.h"
#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/fakes.h"
#include "tracking/quota_poller.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

const std::string kApp = WxSim::kAppId;
const std::string kSecret = WxSim::kSecret;

std::string Key() { return "ACCESS_TOKEN_CACHE:" + kApp; }

// envs[i] reads Redis database i.
std::string Config(const WxSim& sim, const RedisServer& redis, const std::vector<std::string>& envs,
                   const ConfigYaml::Fields& env_fields = {}) {
  ConfigYaml c(sim.base_url());
  c.Workers(4).Default("probe", "msg_sec_check");
  for (size_t i = 0; i < envs.size(); ++i)
    c.Redis("r" + std::to_string(i), redis.address(), {{"db", std::to_string(i)}});
  c.App(kApp);
  for (size_t i = 0; i < envs.size(); ++i) c.Env(envs[i], "r" + std::to_string(i), env_fields);
  return c;
}

Labels L(const std::string& env, Labels extra = {}) {
  extra["app_id"] = kApp;
  extra["app_env"] = env;
  return extra;
}

double Get(const Scrape& s, const std::string& name, const Labels& labels) {
  return s.Value(name, labels).value_or(-1);
}
double Ok(const Scrape& s, const std::string& env) {
  return Get(s, "wxcanary_probes_total", L(env, {{"outcome", "ok"}}));
}
double Invalidations(const Scrape& s, const std::string& env, const std::string& cause) {
  return Get(s, "wxcanary_token_invalidations_total", L(env, {{"cause_env", cause}}));
}
double AppValue(const Scrape& s, const std::string& name) {
  return Get(s, name, {{"app_id", kApp}});
}

std::vector<nlohmann::json> Events(const Daemon& d, const std::string& action) {
  std::vector<nlohmann::json> out;
  for (auto& e : d.LogEvents())
    if (e.value("event.action", "") == action) out.push_back(e);
  return out;
}

class ConflictTest : public ::testing::Test {
 protected:
  // An environment's app: fetch a token with /cgi-bin/token and cache it for 7200 s.
  std::string CacheFetchedToken(int db) {
    std::string token = sim_.FetchToken(kApp, kSecret);
    redis_.Cli({"SET", Key(), token, "EX", "7200"}, db);
    return token;
  }

  RedisServer redis_;
  WxSim sim_;
};

// The incident, explained: test fetches its own token for prod's AppId; after the grace prod's
// cached token fails, and wxcanary names test as the cause.
TEST_F(ConflictTest, names_the_environment_whose_refresh_invalidated_the_token) {
  // Both environments fetch with /cgi-bin/token, as in the incident. test's next fetch (the
  // third) kills prod's token at once, so prod's failing probe may be recorded before the probe
  // that shows test's refresh: the tracker's deferred attribution must still name test.
  const std::string prod_token = CacheFetchedToken(0);
  const std::string test_token = CacheFetchedToken(1);
  Daemon d(Config(sim_, redis_, {"prod", "test"}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Ok(s, "prod") >= 1 && Ok(s, "test") >= 1 &&
           AppValue(s, "wxcanary_app_distinct_tokens") == 2;
  })) << d.ScrapeMetrics().text();

  const std::string test_new = CacheFetchedToken(1);
  ASSERT_TRUE(d.WaitFor(
      [](const Scrape& s) { return Get(s, "wxcanary_token_refreshes_total", L("test")) == 1; }));
  sim_.Advance(301);  // dead already by the third fetch; past the grace in any case
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Invalidations(s, "prod", "test") == 1; }))
      << Events(d, "token_refreshed").size() << " refreshes; "
      << (Events(d, "token_invalidated").empty() ? std::string("no invalidation")
                                                 : Events(d, "token_invalidated")[0].dump());
  // A few more failing probes of the same token are not new invalidations.
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Get(s, "wxcanary_probes_total", L("prod", {{"outcome", "token_invalid"}})) >= 3;
  }));

  const auto s = d.ScrapeMetrics();
  EXPECT_EQ(Invalidations(s, "prod", "test"), 1);
  EXPECT_EQ(Invalidations(s, "prod", "unknown"), 0);
  EXPECT_EQ(Invalidations(s, "test", "prod"), 0);
  EXPECT_EQ(Invalidations(s, "test", "unknown"), 0);
  EXPECT_EQ(AppValue(s, "wxcanary_app_token_refreshes_total"), 1);

  const auto events = Events(d, "token_invalidated");
  ASSERT_EQ(events.size(), 1u) << d.Output();
  const auto& e = events[0];
  EXPECT_EQ(e["log.level"], "error");
  EXPECT_EQ(e["labels.app_env"], "prod");
  EXPECT_EQ(e["wxcanary.conflict.cause_env"], "test");
  EXPECT_TRUE(e.contains("wxcanary.conflict.cause_refreshed_at")) << e.dump();
  EXPECT_EQ(e["wxcanary.token.fingerprint"], Fingerprint(prod_token));
  EXPECT_GT(e.value("wxcanary.token.ttl_seconds", 0), 7000);
  EXPECT_EQ(e["wxcanary.wechat.errcode"], 40001);
  const std::string message = e.value("message", "");
  EXPECT_NE(message.find("env test fetched a new token"), std::string::npos) << message;
  EXPECT_NE(message.find("POST /cgi-bin/stable_token"), std::string::npos) << message;

  for (const auto& token : {prod_token, test_token, test_new}) {
    EXPECT_EQ(d.Output().find(token), std::string::npos);
    EXPECT_EQ(s.text().find(token), std::string::npos);
  }
}

TEST_F(ConflictTest, environments_sharing_a_stable_token_show_one_token_and_no_conflict) {
  const std::string stable = sim_.FetchStableToken(kApp, kSecret);
  EXPECT_EQ(sim_.FetchStableToken(kApp, kSecret), stable);
  redis_.Cli({"SET", Key(), stable, "EX", "7000"}, 0);
  redis_.Cli({"SET", Key(), stable, "EX", "7000"}, 1);
  Daemon d(Config(sim_, redis_, {"prod", "test"}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Ok(s, "prod") >= 3 && Ok(s, "test") >= 3; }));

  // Each environment asks again, as its cache would; still the same token for everybody.
  redis_.Cli({"SET", Key(), sim_.FetchStableToken(kApp, kSecret), "EX", "7000"}, 1);
  sim_.Advance(301);
  const auto before = d.ScrapeMetrics();
  ASSERT_TRUE(d.WaitFor([&](const Scrape& s) {
    return Ok(s, "prod") >= Ok(before, "prod") + 2 && Ok(s, "test") >= Ok(before, "test") + 2;
  }));
  const auto s = d.ScrapeMetrics();
  EXPECT_EQ(AppValue(s, "wxcanary_app_distinct_tokens"), 1);
  EXPECT_EQ(AppValue(s, "wxcanary_app_token_refreshes_total"), 0);
  EXPECT_EQ(s.Sum("wxcanary_token_invalidations_total"), 0);
  EXPECT_TRUE(Events(d, "token_invalidated").empty());
}

TEST_F(ConflictTest, a_refresh_from_outside_the_config_is_blamed_on_unknown) {
  CacheFetchedToken(0);
  // Both cached before the daemon starts: already there at its first probe, so neither is a
  // refresh that could be blamed. (Cached after the start, test's token may follow a probe
  // that saw no key, and a first token after "missing" is a refresh by design.)
  CacheFetchedToken(1);
  Daemon d(Config(sim_, redis_, {"prod", "test"}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Ok(s, "prod") >= 1 && Ok(s, "test") >= 1; }));

  sim_.FetchToken(kApp, kSecret);  // a caller wxcanary does not know, holding the secret
  sim_.Advance(301);
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Invalidations(s, "prod", "unknown") == 1 && Invalidations(s, "test", "unknown") == 1;
  })) << d.ScrapeMetrics().text();
  const auto s = d.ScrapeMetrics();
  EXPECT_EQ(Invalidations(s, "prod", "test"), 0);
  EXPECT_EQ(Invalidations(s, "test", "prod"), 0);
  const auto events = Events(d, "token_invalidated");
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e["wxcanary.conflict.cause_env"], "unknown");
    EXPECT_NE(e.value("message", "").find("outside this config"), std::string::npos);
  }
}

TEST_F(ConflictTest, a_refresh_storm_drives_the_quota_projection_above_one_before_45009) {
  CacheFetchedToken(0);
  CacheFetchedToken(1);
  Daemon d(Config(sim_, redis_, {"prod", "test"}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Ok(s, "test") >= 1; }));
  EXPECT_LT(AppValue(d.ScrapeMetrics(), "wxcanary_app_token_quota_projected_ratio"), 0.1);

  // test's app fetches a fresh token over and over; each one is cached and probed.
  int storm = 0;
  for (; storm < 20; ++storm) {
    CacheFetchedToken(1);  // throws if wxsim answered 45009
    const double want = storm + 1;
    ASSERT_TRUE(d.WaitFor([&](const Scrape& s) {
      return Get(s, "wxcanary_token_refreshes_total", L("test")) >= want;
    }));
    if (AppValue(d.ScrapeMetrics(), "wxcanary_app_token_quota_projected_ratio") > 1) break;
  }
  EXPECT_LT(storm, 20) << d.ScrapeMetrics().text();
  // 2 + storm + 1 calls of the 2000 a day: far from 45009.
  EXPECT_LE(storm + 1, 8);
}

// The optional quota reader against wxsim: the real usage of /cgi-bin/token, read with a
// stable_token (which costs nothing of that quota).
TEST(QuotaPollerWithWxSim, reads_the_real_token_usage_without_spending_it) {
  WxSim sim;
  for (int i = 0; i < 3; ++i) sim.FetchToken();
  config::Config cfg;
  cfg.wechat.base_url = sim.base_url();
  cfg.wechat.timeout = 2s;
  cfg.apps.resize(1);
  cfg.apps[0].app_id = kApp;
  cfg.apps[0].secret_value = Secret(kSecret);
  prometheus::Registry registry;
  CapturingLogger logger;
  FakeClock clock;
  auto poller = tracking::MakeQuotaPoller(registry, logger, clock, cfg);
  ASSERT_EQ(poller->PollDue(), 1);
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("wxcanary_app_token_quota_used{app_id=\"" + kApp + "\"} 3\n"),
            std::string::npos)
      << text << logger.events().size();
  EXPECT_NE(text.find("wxcanary_app_token_quota_limit{app_id=\"" + kApp + "\"} 2000\n"),
            std::string::npos)
      << text;
  // Polling did not spend /cgi-bin/token quota.
  ASSERT_EQ(poller->PollDue(), 0);
  clock.Advance(10min);
  ASSERT_EQ(poller->PollDue(), 1);
  const std::string again = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(again.find("wxcanary_app_token_quota_used{app_id=\"" + kApp + "\"} 3\n"),
            std::string::npos)
      << again;
}

// An expired token is the app's cache outliving it, not someone else's fetch: with WeChat's
// 42001, and with 40014 (as some deployments answer) once the expiry the app stored is past.
struct ExpiryCase {
  std::string name;
  std::vector<std::string> sim_args;
  bool stored_expiry;  // the app stores {"access_token", "expires_at"} (wechatpy-style)
  int errcode;
  std::string evidence;
};

void PrintTo(const ExpiryCase& c, std::ostream* os) { *os << c.name; }

class ExpiryTest : public ::testing::TestWithParam<ExpiryCase> {};

TEST_P(ExpiryTest, reports_an_expired_token_as_the_cache_outliving_it) {
  const auto& c = GetParam();
  RedisServer redis;
  WxSim sim(c.sim_args);
  // Taken before the fetch (and rounded down): the stored expiry never comes after WeChat's, or a
  // 40014 could arrive while the app's record still says the token is alive.
  const auto expires_at = std::chrono::duration_cast<std::chrono::seconds>(
      (std::chrono::system_clock::now() + 4s).time_since_epoch());
  const std::string token = sim.FetchToken(kApp, kSecret);
  ConfigYaml::Fields extra;
  if (c.stored_expiry) {
    redis.Cli({"SET", Key(),
               R"({"access_token":")" + token + R"(","expires_at":)" +
                   std::to_string(expires_at.count()) + "}",
               "EX", "600"});
    extra = {{"storage", "json"}, {"json_path", "access_token"}, {"expiry_path", "expires_at"}};
  } else {
    redis.Cli({"SET", Key(), token, "EX", "600"});
  }
  Daemon d(Config(sim, redis, {"prod"}, extra));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Ok(s, "prod") >= 1; })) << d.Output();
  if (!c.stored_expiry) sim.Advance(7201);  // WeChat's clock passes expires_in; 42001 says so

  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Get(s, "wxcanary_token_expirations_total", L("prod")) == 1;
  })) << d.Output();
  // A few more failing probes: still one expiry, and never an invalidation.
  const std::string outcome = c.errcode == 42001 ? "token_expired" : "token_malformed";
  ASSERT_TRUE(d.WaitFor([&](const Scrape& s) {
    return Get(s, "wxcanary_probes_total", L("prod", {{"outcome", outcome}})) >= 3;
  }));
  const auto s = d.ScrapeMetrics();
  EXPECT_EQ(Get(s, "wxcanary_token_expirations_total", L("prod")), 1);
  EXPECT_EQ(Invalidations(s, "prod", "unknown"), 0);
  EXPECT_EQ(Invalidations(s, "prod", "prod"), 0);
  EXPECT_TRUE(Events(d, "token_invalidated").empty()) << d.Output();

  const auto events = Events(d, "token_expired");
  ASSERT_EQ(events.size(), 1u) << d.Output();
  const auto& e = events[0];
  EXPECT_EQ(e["log.level"], "error");
  EXPECT_EQ(e["wxcanary.token.fingerprint"], Fingerprint(token));
  EXPECT_EQ(e["wxcanary.wechat.errcode"], c.errcode);
  EXPECT_EQ(e.contains("wxcanary.token.expires_at"), c.stored_expiry) << e.dump();
  const std::string message = e.value("message", "");
  EXPECT_NE(message.find(c.evidence), std::string::npos) << message;
  EXPECT_NE(message.find("s more: the app's cache outlives the token (the key's TTL is longer "
                         "than the token's remaining life)"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("outside this config"), std::string::npos) << message;
  EXPECT_EQ(d.Output().find(token), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Tracking, ExpiryTest,
    ::testing::Values(
        ExpiryCase{"errcode_42001",
                   {},
                   false,
                   42001,
                   "expired (errcode 42001: WeChat says it lived past its expires_in)"},
        ExpiryCase{"errcode_40014_after_the_stored_expiry",
                   {"--expires-in", "4", "--expired-errcode", "40014"},
                   true,
                   40014,
                   "expired (errcode 40014 after the expiry stored with it, "}),
    [](const auto& row) { return row.param.name; });

}  // namespace
}  // namespace wxcanary::testing
