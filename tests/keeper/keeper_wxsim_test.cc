// Keeper mode against wxsim and two real redis-servers (issue 20's done-when): one AppId, prod and
// test in separate Redis, test's app fetching /cgi-bin/token every few simulated minutes. The
// keepers, the tracker and the probes run in process on a FakeClock kept in step with wxsim's
// /admin/advance, so a simulated day takes seconds. (Redis TTLs run on real time and so barely
// move here: what is checked is what each key holds, not when Redis drops it.)

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/fingerprint.h"
#include "config/config.h"
#include "heal/stable_token.h"
#include "keeper/keeper.h"
#include "probe/probe.h"
#include "probe/runner.h"
#include "source/redis_connection.h"
#include "support/config_yaml.h"
#include "support/fakes.h"
#include "support/process.h"
#include "support/redis_server.h"
#include "support/scrape.h"
#include "support/wxsim.h"
#include "tracking/token_tracker.h"
#include "wechat/client.h"

namespace wxcanary::keeper {
namespace {

using namespace std::chrono_literals;
using wxcanary::testing::CapturingLogger;
using wxcanary::testing::ConfigYaml;
using wxcanary::testing::RedisServer;
using wxcanary::testing::Scrape;
using wxcanary::testing::WxSim;

const std::string kApp = WxSim::kAppId;
const std::string kKey = "ACCESS_TOKEN_CACHE:" + kApp;

// One wxcanary instance in process: probes of every target, the tracker and (when any
// environment is kept) the keeper, all on the test's clock.
class Instance {
 public:
  Instance(const config::Config& cfg, FakeClock& clock, const std::string& id)
      : cfg_(cfg),
        clock_(clock),
        tracker_(exposition_, log_, clock, cfg.conflict),
        fetcher_(cfg),
        store_(cfg.redis, clock),
        keeper_(store_, fetcher_, exposition_, log_, clock, id,
                [this](const std::string& app, const std::string& fp) {
                  tracker_.KeeperToken(app, fp);
                }),
        client_(cfg.wechat) {
    targets_ = probe::Runner::TargetsOf(cfg);
    for (const auto& t : targets_)
      conns_.push_back(std::make_unique<source::RedisConnection>(cfg.redis.at(t.env.redis), clock));
    tracker_.Apply(cfg);
    tracker_.SetTargets(targets_);
    keeper_.Apply(cfg);
    keeper_.SetTargets(targets_);
  }

  Keeper& keeper() { return keeper_; }
  CapturingLogger& log() { return log_; }

  // Probes every target once; returns the outcome per app_env.
  std::map<std::string, Outcome> ProbeAll() {
    std::map<std::string, Outcome> out;
    for (size_t i = 0; i < targets_.size(); ++i) {
      ProbeResult r = probe::RunProbe(targets_[i], *conns_[i], client_, clock_);
      tracker_.Record(targets_[i], r);
      keeper_.Record(targets_[i], r);
      out[targets_[i].app_env] = r.outcome;
    }
    return out;
  }

  double Metric(const std::string& name, std::map<std::string, std::string> labels) {
    labels["app_id"] = kApp;
    return Scrape(exposition_.Serialize()).Value(name, labels).value_or(-1);
  }

 private:
  config::Config cfg_;
  FakeClock& clock_;
  telemetry::Exposition exposition_;
  CapturingLogger log_;
  tracking::TokenTracker tracker_;
  heal::StableTokenFetcher fetcher_;
  RedisKeeperStore store_;
  Keeper keeper_;
  wechat::Client client_;
  std::vector<Target> targets_;
  std::vector<std::unique_ptr<source::RedisConnection>> conns_;
};

class KeeperWxSimTest : public ::testing::Test {
 protected:
  KeeperWxSimTest() { std::ofstream(dir_.path() / "secret") << WxSim::kSecret; }

  // prod in prod_redis_, test in test_redis_; env_fields on both, then per-env extras.
  config::Config Load(const ConfigYaml::Fields& fields, bool test_first = false,
                      const std::string& keeper = "keeper: {interval: 1m, margin: 1m}\n") {
    ConfigYaml c(sim_.base_url());
    c.Default("interval", "1m").Default("timeout", "2s");
    c.Redis("prod", prod_redis_.address()).Redis("test", test_redis_.address());
    c.App(kApp, {{"secret_file", (dir_.path() / "secret").string()}});
    if (test_first) c.Env("test", "test", fields).Env("prod", "prod", fields);
    else c.Env("prod", "prod", fields).Env("test", "test", fields);
    c.Section(keeper);
    return config::LoadString(c.str());
  }

  // Moves WeChat's time and ours together.
  void Advance(std::chrono::seconds d) {
    sim_.Advance(static_cast<double>(d.count()));
    clock_.Advance(d);
  }

  // An app as in the incident: fetch /cgi-bin/token, cache it for 7200 s.
  void AppFetches(RedisServer& redis) { redis.Cli({"SET", kKey, sim_.FetchToken(), "EX", "7200"}); }
  void AppFetchesIfMissing(RedisServer& redis) {
    if (Held(redis).empty()) AppFetches(redis);
  }

  // The token `redis` holds now ("" when none), read over a kept connection (a redis-cli
  // process per check would make the 1,000 rotations take minutes).
  std::string Held(RedisServer& redis) {
    auto& conn = conns_[redis.port()];
    if (!conn) {
      config::Redis r;
      r.name = "check";
      r.port = redis.port();
      conn = std::make_unique<source::RedisConnection>(r, clock_);
    }
    config::Environment env;
    env.redis = "check";
    env.key = kKey;
    auto read = conn->Read(env);
    return read.status == source::TokenRead::Status::kOk ? read.token.Reveal() : "";
  }

  // True when WeChat accepts the token `redis` holds now (a call like the probe's).
  bool Live(RedisServer& redis) {
    const std::string token = Held(redis);
    if (token.empty()) return true;  // nothing cached: the app fetches, nothing dead is served
    auto reply = sim_.Get("/cgi-bin/get_api_domain_ip?access_token=" + token).Json();
    return reply.is_object() && !reply.contains("errcode");
  }

  wxcanary::testing::TempDir dir_;
  RedisServer prod_redis_;
  RedisServer test_redis_;
  WxSim sim_;
  FakeClock clock_;
  std::map<int, std::unique_ptr<source::RedisConnection>> conns_;
};

TEST_F(KeeperWxSimTest, keeper_off_the_test_environment_produces_the_incident) {
  Instance wx(Load({}), clock_, "host-a:1");
  AppFetches(prod_redis_);
  int prod_token_errors = 0;
  for (int minute = 1; minute <= 60; ++minute) {
    Advance(60s);
    if (minute % 10 == 0) AppFetches(test_redis_);
    AppFetchesIfMissing(prod_redis_);
    if (IsTokenError(wx.ProbeAll()["prod"])) ++prod_token_errors;
  }
  // The first fetch by test kills prod's token after the 300 s grace: 40001 from then on.
  EXPECT_GT(prod_token_errors, 40);
  EXPECT_GE(
      wx.Metric("wxcanary_token_invalidations_total", {{"app_env", "prod"}, {"cause_env", "test"}}),
      1);
}

TEST_F(KeeperWxSimTest, keeper_on_prod_stays_ok_for_a_simulated_day_with_one_token) {
  Instance wx(Load({{"keep", "stable"}, {"owner", "true"}}), clock_, "host-a:1");
  AppFetches(prod_redis_);  // the app's own token was there first: owner takes it over
  AppFetches(test_redis_);
  int prod_token_errors = 0, prod_ok = 0, probes = 0, test_fetches = 0;
  for (int minute = 1; minute <= 24 * 60; ++minute) {
    Advance(60s);
    if (minute % 10 == 0) {
      AppFetches(test_redis_);  // a redeploy, a cron job, a developer's script...
      ++test_fetches;
    }
    AppFetchesIfMissing(prod_redis_);
    AppFetchesIfMissing(test_redis_);
    wx.keeper().RunOnce();
    auto outcomes = wx.ProbeAll();
    ++probes;
    if (IsTokenError(outcomes["prod"])) ++prod_token_errors;
    if (outcomes["prod"] == Outcome::kOk) ++prod_ok;
  }
  EXPECT_EQ(prod_token_errors, 0) << "of " << probes << " probes";
  EXPECT_EQ(prod_ok, probes);
  EXPECT_EQ(test_fetches, 144);
  EXPECT_EQ(wx.Metric("wxcanary_app_distinct_tokens", {}), 1);
  // The keeper's writes are not prod's refreshes, and nothing predicted prod's token to die.
  EXPECT_EQ(wx.Metric("wxcanary_token_refreshes_total", {{"app_env", "prod"}}), 0);
  EXPECT_EQ(wx.Metric("wxcanary_token_supersessions_total", {{"app_env", "prod"}}), 0);
  EXPECT_EQ(
      wx.Metric("wxcanary_token_invalidations_total", {{"app_env", "prod"}, {"cause_env", "test"}}),
      0);
  // Fingerprints, not tokens: a failure message must not print a token.
  EXPECT_EQ(Fingerprint(Held(prod_redis_)), Fingerprint(Held(test_redis_)));
  // A day holds about 12 stable rotations; each was written to both keys.
  EXPECT_GE(wx.Metric("wxcanary_keeper_writes_total", {{"app_env", "prod"}, {"result", "written"}}),
            12);
}

TEST_F(KeeperWxSimTest, a_failing_keeper_leaves_every_key_untouched) {
  AppFetches(prod_redis_);
  const std::string before = prod_redis_.Cli({"GET", kKey});
  // IP not whitelisted, then a wrong secret.
  sim_.InjectFault({{"path", "/cgi-bin/stable_token"}, {"errcode", 40164}});
  {
    Instance wx(Load({{"keep", "stable"}, {"owner", "true"}}), clock_, "host-a:1");
    for (int i = 0; i < 5; ++i) {
      Advance(60s);
      wx.keeper().RunOnce();
    }
    EXPECT_EQ(wx.Metric("wxcanary_keeper_fetch_errors_total", {{"errcode", "40164"}}), 5);
    EXPECT_EQ(wx.Metric("wxcanary_keeper_fetches_total", {{"result", "ok"}}), 0);
    const auto events = wx.log().WithAction("keeper_fetch_failed");
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0].fields["wxcanary.wechat.errcode"], 40164);
    EXPECT_FALSE(events[0].fields.value("wxcanary.wechat.rid", "").empty()) << events[0].message;
  }
  sim_.ClearFaults();
  std::ofstream(dir_.path() / "secret") << "not-the-secret";
  {
    Instance wx(Load({{"keep", "stable"}, {"owner", "true"}}), clock_, "host-a:1");
    Advance(60s);
    wx.keeper().RunOnce();
    EXPECT_EQ(wx.Metric("wxcanary_keeper_fetch_errors_total", {{"errcode", "40125"}}), 1);
  }
  EXPECT_EQ(prod_redis_.Cli({"GET", kKey}), before);
  EXPECT_EQ(test_redis_.Cli({"EXISTS", kKey}), "0");
}

// Two replicas on one config: one writer at a time; the writer killed every 250 rotations and
// the other taking over within the lease; after every keeper pass (one probe interval) across
// 1,000 rotations, no key holds a dead token.
TEST_F(KeeperWxSimTest, two_replicas_one_writer_takeover_and_no_dead_token_across_1000_rotations) {
  const auto cfg = Load({{"keep", "stable"}, {"owner", "true"}}, false,
                        "keeper: {interval: 1m, margin: 1m, lease_ttl: 1s}\n");
  std::array<std::unique_ptr<Instance>, 2> replicas;
  int next_id = 0;
  auto spawn = [&](size_t slot) {
    replicas[slot] =
        std::make_unique<Instance>(cfg, clock_, "host-" + std::to_string(next_id++) + ":1");
  };
  spawn(0);
  spawn(1);
  auto pass = [&] {
    int writers = 0;
    for (auto& r : replicas) {
      r->keeper().RunOnce();
      writers += r->keeper().Targets().at(0).lease_held ? 1 : 0;  // one AppId
    }
    return writers;
  };
  int dead_seen = 0, takeovers = 0, max_writers = 0;
  std::chrono::milliseconds worst_takeover{0};
  for (int rotation = 1; rotation <= 1000; ++rotation) {
    // Into the rotation window, through it, and past the old token's end.
    for (auto step : {6920s, 120s, 120s, 60s}) {
      Advance(step);
      max_writers = std::max(max_writers, pass());
      if (!Live(prod_redis_) || !Live(test_redis_)) ++dead_seen;
    }
    if (rotation % 250 == 0) {
      // Kill the writer: its lease is not released; the other must take over once it lapses.
      size_t writer = replicas[0]->keeper().Targets().at(0).lease_held ? 0 : 1;
      replicas[writer]->keeper().Abandon();
      replicas[writer].reset();
      const auto killed = std::chrono::steady_clock::now();
      Instance& survivor = *replicas[1 - writer];
      while (!survivor.keeper().Targets().at(0).lease_held) {
        ASSERT_LT(std::chrono::steady_clock::now() - killed, 5s) << "no takeover";
        std::this_thread::sleep_for(50ms);
        clock_.Advance(50ms);
        survivor.keeper().RunOnce();
      }
      worst_takeover =
          std::max(worst_takeover, std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - killed));
      ++takeovers;
      spawn(writer);  // the replica restarts
    }
  }
  EXPECT_EQ(dead_seen, 0);
  EXPECT_EQ(max_writers, 1);
  EXPECT_EQ(takeovers, 4);
  // lease_ttl 1 s; the survivor looks every lease_ttl / 6 (plus this loop's 50 ms steps).
  EXPECT_LE(worst_takeover, 1400ms);
  std::cout << "worst takeover after a killed writer: " << worst_takeover.count() << " ms\n";
}

// Two writers at once (each believes it holds the lease: here each keeps it in another Redis),
// fetching 30 s apart so that around each rotation one holds the new stable token and the other
// the old one: the double writes never leave a dead token in a key, and they do not fight (one
// write per key per rotation, not one per pass).
TEST_F(KeeperWxSimTest, two_writers_at_once_never_leave_a_dead_token_nor_fight) {
  const std::string keeper = "keeper: {interval: 1m, margin: 1m}\n";
  Instance a(Load({{"keep", "stable"}, {"owner", "true"}}, false, keeper), clock_, "host-a:1");
  Instance b(Load({{"keep", "stable"}, {"owner", "true"}}, true, keeper), clock_, "host-b:1");
  int dead_seen = 0, both_writers = 0, passes = 0;
  const int rotations = 12;
  for (int minute = 0; minute < rotations * 120; ++minute) {
    Advance(30s);
    a.keeper().RunOnce();
    Advance(30s);
    b.keeper().RunOnce();
    ++passes;
    if (a.keeper().Targets().at(0).lease_held && b.keeper().Targets().at(0).lease_held)
      ++both_writers;
    if (!Live(prod_redis_) || !Live(test_redis_)) ++dead_seen;
  }
  EXPECT_EQ(both_writers, passes) << "the scenario needs two writers at once";
  EXPECT_EQ(dead_seen, 0);
  for (const char* env : {"prod", "test"}) {
    const double writes =
        a.Metric("wxcanary_keeper_writes_total", {{"app_env", env}, {"result", "written"}}) +
        b.Metric("wxcanary_keeper_writes_total", {{"app_env", env}, {"result", "written"}});
    EXPECT_GE(writes, rotations) << env;
    EXPECT_LE(writes, rotations + 2) << env << ": the writers fought";
  }
}

}  // namespace
}  // namespace wxcanary::keeper
