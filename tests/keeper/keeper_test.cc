// The keeper against a real redis-server, with a scripted getStableAccessToken: what each kept
// key holds afterwards, in the app's own encoding, and what the keeper leaves alone.

#include "keeper/keeper.h"

#include <gtest/gtest.h>

#include <deque>
#include <fstream>

#include "common/fingerprint.h"
#include "config/config.h"
#include "source/redis_connection.h"
#include "support/config_yaml.h"
#include "support/fakes.h"
#include "support/process.h"
#include "support/redis_server.h"
#include "support/scrape.h"
#include "support/sdk_values.h"

namespace wxcanary::keeper {
namespace {

using namespace std::chrono_literals;
using wxcanary::testing::CapturingLogger;
using wxcanary::testing::ConfigYaml;
using wxcanary::testing::RedisServer;
using wxcanary::testing::Scrape;

const std::string kApp = "wx00000000000000a1";
const std::string kKey = "ACCESS_TOKEN_CACHE:" + kApp;
const std::string kStable1 = "STABLE-TOKEN-ONE-0123456789";
const std::string kStable2 = "STABLE-TOKEN-TWO-0123456789";
const std::string kAppOwn = "APPS-OWN-TOKEN-0123456789";

// getStableAccessToken as scripted by the test: the current token and its remaining life, or a
// WeChat error. Records every call. Thread-safe.
class ScriptedFetcher final : public heal::TokenFetcher {
 public:
  std::optional<heal::FetchedToken> FetchToken(const std::string& /*app_id*/, bool force_refresh,
                                               std::string* error,
                                               wechat::FetchFailure* failure) override {
    std::lock_guard lock(mu_);
    calls_.push_back(force_refresh);
    if (errcode_ != 0) {
      *error = "stable_token: errcode " + std::to_string(errcode_) + " invalid appsecret";
      if (failure != nullptr)
        *failure = {std::to_string(errcode_), errcode_, "6561b1c0-1a2b3c4d-5e6f7a8b"};
      return std::nullopt;
    }
    if (force_refresh && !after_force_.empty()) token_ = after_force_;
    if (!queue_.empty()) {
      token_ = queue_.front();
      queue_.pop_front();
    }
    return heal::FetchedToken{Secret(token_), expires_in_};
  }
  void Set(std::string token, std::chrono::seconds expires_in = 7200s) {
    std::lock_guard lock(mu_);
    token_ = std::move(token);
    expires_in_ = expires_in;
  }
  // The tokens the next calls return, in order (then the last one stays).
  void Queue(std::vector<std::string> tokens) {
    std::lock_guard lock(mu_);
    queue_.assign(tokens.begin(), tokens.end());
  }
  void Fail(int errcode) {
    std::lock_guard lock(mu_);
    errcode_ = errcode;
  }
  void AfterForce(std::string token) {
    std::lock_guard lock(mu_);
    after_force_ = std::move(token);
  }
  std::vector<bool> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::string token_ = kStable1;
  std::string after_force_;
  std::deque<std::string> queue_;
  std::chrono::seconds expires_in_{7200};
  int errcode_ = 0;
  std::vector<bool> calls_;
};

class KeeperTest : public ::testing::Test {
 protected:
  KeeperTest() { std::ofstream(dir_.path() / "secret") << "s3cr3t"; }

  // prod and test in databases 0 and 1 of one server; env_fields apply to both.
  config::Config Load(const ConfigYaml::Fields& prod, const ConfigYaml::Fields& test = {},
                      const std::string& sections = "") {
    ConfigYaml c("http://127.0.0.1:1");
    c.Redis("r0", redis_.address(), {{"db", "0"}}).Redis("r1", redis_.address(), {{"db", "1"}});
    c.App(kApp, {{"secret_file", (dir_.path() / "secret").string()}});
    c.Env("prod", "r0", prod);
    if (!test.empty()) c.Env("test", "r1", test);
    c.Section("keeper:\n  interval: 1m\n  margin: 1m\n  lease_ttl: 30s\n" + sections);
    return config::LoadString(c.str());
  }

  Keeper& Make(const config::Config& cfg, const std::string& instance = "host-a:1") {
    store_ = std::make_unique<RedisKeeperStore>(cfg.redis, clock_);
    keeper_ = std::make_unique<Keeper>(*store_, fetcher_, exposition_, log_, clock_, instance,
                                       [this](const std::string& app, const std::string& fp) {
                                         hooked_.push_back(app + "/" + fp);
                                       });
    keeper_->Apply(cfg);
    return *keeper_;
  }

  double Writes(const std::string& env, const std::string& result) {
    return Scrape(exposition_.Serialize())
        .Value("wxcanary_keeper_writes_total",
               {{"app_id", kApp}, {"app_env", env}, {"result", result}})
        .value_or(-1);
  }
  double AppMetric(const std::string& name, const std::map<std::string, std::string>& extra = {}) {
    auto labels = extra;
    labels["app_id"] = kApp;
    return Scrape(exposition_.Serialize()).Value(name, labels).value_or(-1);
  }

  // What a probe of `env` would record after WeChat answered `outcome` for the token there.
  void Probe(const config::Config& cfg, size_t env, Outcome outcome) {
    Target t;
    t.app_id = kApp;
    t.env = cfg.apps[0].environments[env];
    t.app_env = t.env.name;
    source::RedisConnection conn(cfg.redis.at(t.env.redis), clock_);
    auto read = conn.Read(t.env);
    ProbeResult r;
    r.outcome = outcome;
    r.token_present = read.status == source::TokenRead::Status::kOk;
    r.token = read.token;
    r.raw_value = read.raw_value;
    r.fingerprint = read.token.empty() ? "" : read.token.Fingerprint();
    keeper_->Record(t, r);
  }

  // The token a probe of `env` reads now ("" when none), decoded as the daemon decodes it.
  std::string Held(const config::Config& cfg, size_t env) {
    const auto& e = cfg.apps[0].environments[env];
    source::RedisConnection conn(cfg.redis.at(e.redis), clock_);
    auto read = conn.Read(e);
    return read.status == source::TokenRead::Status::kOk ? read.token.Reveal() : "";
  }

  // Every logged event's action and message, for failure messages.
  std::string Events() const {
    std::string out;
    for (const auto& e : log_.events()) out += e.action + ": " + e.message + "\n";
    return out;
  }

  // No event carries a token, the app secret or a key made from it: only fingerprints.
  void ExpectNoTokenLogged(const std::vector<std::string>& secret_keys = {}) {
    std::vector<std::string> secrets = {kStable1, kStable2, kAppOwn, "s3cr3t"};
    secrets.insert(secrets.end(), secret_keys.begin(), secret_keys.end());
    for (const auto& e : log_.events()) {
      const std::string text = e.message + e.fields.dump();
      for (const auto& t : secrets)
        EXPECT_EQ(text.find(t), std::string::npos) << e.action << ": " << text;
    }
  }

  RedisServer redis_;
  wxcanary::testing::TempDir dir_;
  FakeClock clock_;
  ScriptedFetcher fetcher_;
  telemetry::Exposition exposition_;
  CapturingLogger log_;
  std::vector<std::string> hooked_;
  std::unique_ptr<RedisKeeperStore> store_;
  std::unique_ptr<Keeper> keeper_;
};

TEST_F(KeeperTest, fills_an_empty_key_with_the_stable_token_and_its_ttl) {
  auto cfg = Load({{"keep", "stable"}});
  Make(cfg).RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kStable1);
  // TTL = 7200 s of life - 60 s margin.
  const int ttl = std::stoi(redis_.Cli({"TTL", kKey}));
  EXPECT_GE(ttl, 7138);
  EXPECT_LE(ttl, 7140);
  EXPECT_EQ(Writes("prod", "written"), 1);
  EXPECT_EQ(AppMetric("wxcanary_keeper_fetches_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(AppMetric("wxcanary_keeper_lease_held"), 1);
  EXPECT_EQ(AppMetric("wxcanary_keeper_token_remaining_seconds"), 7200);
  EXPECT_EQ(redis_.Cli({"GET", LeaseKey(kApp)}), "host-a:1");
  ASSERT_EQ(hooked_.size(), 1u);
  EXPECT_EQ(hooked_[0], kApp + "/" + Fingerprint(kStable1));
  ASSERT_EQ(log_.WithAction("keeper_wrote").size(), 1u);
  // A second pass with the same token writes nothing more.
  clock_.Advance(61s);
  keeper_->RunOnce();
  EXPECT_EQ(Writes("prod", "written"), 1);
  ExpectNoTokenLogged();
}

TEST_F(KeeperTest, leaves_the_apps_own_live_token_unless_owner) {
  redis_.Cli({"SET", kKey, kAppOwn, "EX", "7000"}, 0);
  redis_.Cli({"SET", kKey, kAppOwn, "EX", "7000"}, 1);
  auto cfg = Load({{"keep", "stable"}}, {{"keep", "stable"}, {"owner", "true"}});
  Make(cfg).RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}, 0), kAppOwn);   // prod: not owner
  EXPECT_EQ(redis_.Cli({"GET", kKey}, 1), kStable1);  // test: owner
  EXPECT_EQ(Writes("prod", "skipped_owner"), 1);
  EXPECT_EQ(Writes("test", "written"), 1);
  ASSERT_EQ(log_.WithAction("keeper_overwrote_app_token").size(), 1u);
  EXPECT_EQ(log_.WithAction("keeper_overwrote_app_token")[0].level, telemetry::Level::kWarn);
  // Counted and logged once per token, not at every pass.
  clock_.Advance(61s);
  keeper_->RunOnce();
  EXPECT_EQ(Writes("prod", "skipped_owner"), 1);
  EXPECT_EQ(log_.WithAction("keeper_skipped_owner").size(), 1u);
  ExpectNoTokenLogged();
}

TEST_F(KeeperTest, replaces_a_token_the_probes_confirmed_dead) {
  redis_.Cli({"SET", kKey, kAppOwn, "EX", "7000"});
  auto cfg = Load({{"keep", "stable"}});
  Make(cfg).RunOnce();
  ASSERT_EQ(redis_.Cli({"GET", kKey}), kAppOwn);
  Probe(cfg, 0, Outcome::kTokenInvalid);
  keeper_->RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kAppOwn) << "one token error is not a confirmation";
  Probe(cfg, 0, Outcome::kTokenInvalid);
  keeper_->RunOnce();  // woken by the confirmation: no need to wait for the interval
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kStable1);
  EXPECT_EQ(Writes("prod", "written"), 1);
}

TEST_F(KeeperTest, writes_the_rotated_token_over_its_own_while_the_old_still_works) {
  auto cfg = Load({{"keep", "stable"}}, {{"keep", "stable"}});
  Make(cfg).RunOnce();
  ASSERT_EQ(Held(cfg, 0), kStable1);
  ASSERT_EQ(Held(cfg, 1), kStable1);
  // WeChat rotates in the last 300 s: the next fetch returns a new token.
  clock_.Advance(7200s - 250s);
  fetcher_.Set(kStable2);
  keeper_->RunOnce();
  EXPECT_EQ(Held(cfg, 0), kStable2);
  EXPECT_EQ(Held(cfg, 1), kStable2);
  EXPECT_EQ(Writes("prod", "written"), 2);
  EXPECT_EQ(hooked_.size(), 2u);
}

TEST_F(KeeperTest, writes_each_environment_in_its_own_encoding) {
  using namespace wxcanary::testing;
  // PowerWeChat's JSON document, Senparc's hash field holding JSON, a Spring JDK string, and
  // EasyWeChat 6's PHP string: each read back as the daemon decodes it.
  const std::string senparc_key = "Senparc:DefaultCache:Container:AccessTokenBag";
  redis_.Cli({"HSET", senparc_key, "other-app", "keep-me"}, 1);
  ConfigYaml c("http://127.0.0.1:1");
  c.Redis("r0", redis_.address(), {{"db", "0"}}).Redis("r1", redis_.address(), {{"db", "1"}});
  c.App(kApp, {{"secret_file", (dir_.path() / "secret").string()}});
  c.Env("power", "r0",
        {{"sdk", "powerwechat"},
         {"key", "powerwechat.access_token.{md5(app_id+secret)}"},
         {"keep", "stable"},
         {"owner", "true"}});
  c.Env("senparc", "r1",
        {{"sdk", "senparc"},
         {"key", senparc_key},
         {"storage", "hash"},
         {"hash_field", kApp},
         {"keep", "stable"},
         {"owner", "true"}});
  c.Env("spring", "r0", {{"sdk", "spring-jdk"}, {"key", "wx:token:{app_id}"}, {"keep", "stable"}});
  c.Env("easy", "r0",
        {{"sdk", "easywechat6"},
         {"key", "official_account.access_token.{app_id}.{secret}.0"},
         {"keep", "stable"}});
  auto cfg = config::LoadString(c.str());
  // The documents exist (the apps wrote them, with more than the token): the keeper keeps the
  // token in them.
  const auto& envs = cfg.apps[0].environments;
  redis_.Cli({"SET", config::RedisKey(envs[0]), PowerWeChatValue(kAppOwn)}, 0);
  redis_.Cli({"HSET", senparc_key, kApp, SenparcBag(kAppOwn, kApp, "s3cr3t", 1700007000)}, 1);
  Make(cfg).RunOnce();
  for (size_t i = 0; i < cfg.apps[0].environments.size(); ++i)
    EXPECT_EQ(Held(cfg, i), kStable1) << cfg.apps[0].environments[i].name << "\n" << Events();
  EXPECT_EQ(redis_.Cli({"HGET", senparc_key, "other-app"}, 1), "keep-me");
  EXPECT_EQ(redis_.Cli({"TTL", senparc_key}, 1), "-1") << "other apps' fields get no TTL";
  const std::string power = redis_.Cli({"GET", config::RedisKey(cfg.apps[0].environments[0])});
  EXPECT_NE(power.find("\"expires_in\""), std::string::npos) << "the app's document, kept";
  const std::string bag = redis_.Cli({"HGET", senparc_key, kApp}, 1);
  EXPECT_NE(bag.find("\"AppId\""), std::string::npos) << "Senparc's bag keeps its members";
  // EasyWeChat 6's key is made from the secret: logged only as its fingerprint.
  ASSERT_TRUE(envs[3].key_from_secret);
  ExpectNoTokenLogged({config::RedisKey(envs[3])});
  EXPECT_FALSE(log_.WithAction("keeper_wrote").empty());
}

TEST_F(KeeperTest, dry_run_logs_what_it_would_write_and_writes_nothing) {
  auto cfg = Load({{"keep", "stable"}, {"keep_dry_run", "true"}});
  Make(cfg).RunOnce();
  EXPECT_EQ(redis_.Cli({"EXISTS", kKey}), "0");
  EXPECT_EQ(Writes("prod", "dry_run"), 1);
  EXPECT_EQ(Writes("prod", "written"), 0);
  auto events = log_.WithAction("keeper_dry_run");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields["wxcanary.token.fingerprint"], Fingerprint(kStable1));
  ExpectNoTokenLogged();
}

TEST_F(KeeperTest, a_failed_fetch_leaves_every_key_alone_and_is_counted_with_its_errcode) {
  redis_.Cli({"SET", kKey, kAppOwn, "EX", "7000"});
  fetcher_.Fail(40125);
  auto cfg = Load({{"keep", "stable"}, {"owner", "true"}});
  Make(cfg).RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kAppOwn);
  EXPECT_EQ(AppMetric("wxcanary_keeper_fetches_total", {{"result", "error"}}), 1);
  EXPECT_EQ(AppMetric("wxcanary_keeper_fetch_errors_total", {{"errcode", "40125"}}), 1);
  EXPECT_EQ(AppMetric("wxcanary_keeper_token_remaining_seconds"), 0);
  auto events = log_.WithAction("keeper_fetch_failed");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].level, telemetry::Level::kError);
  EXPECT_EQ(events[0].fields["wxcanary.wechat.errcode"], 40125);
  EXPECT_EQ(events[0].fields["wxcanary.wechat.rid"], "6561b1c0-1a2b3c4d-5e6f7a8b");
  EXPECT_EQ(Writes("prod", "written"), 0);
  // The same failure again: counted, logged at DEBUG only; then the recovery.
  clock_.Advance(61s);
  keeper_->RunOnce();
  EXPECT_EQ(AppMetric("wxcanary_keeper_fetches_total", {{"result", "error"}}), 2);
  events = log_.WithAction("keeper_fetch_failed");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].level, telemetry::Level::kDebug);
  fetcher_.Fail(0);
  clock_.Advance(61s);
  keeper_->RunOnce();
  EXPECT_EQ(log_.WithAction("keeper_fetch_recovered").size(), 1u);
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kStable1);
}

TEST_F(KeeperTest, a_replica_without_the_lease_fetches_but_never_writes) {
  redis_.Cli({"SET", LeaseKey(kApp), "host-b:2", "PX", "30000"});
  auto cfg = Load({{"keep", "stable"}});
  Make(cfg).RunOnce();
  EXPECT_EQ(redis_.Cli({"EXISTS", kKey}), "0");
  EXPECT_EQ(AppMetric("wxcanary_keeper_lease_held"), 0);
  EXPECT_EQ(AppMetric("wxcanary_keeper_fetches_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(hooked_.size(), 1u) << "its tracker still learns the token";
  // The other replica dies: its lease runs out, this one takes over at its next look.
  redis_.Cli({"DEL", LeaseKey(kApp)});
  clock_.Advance(5s);  // lease_ttl / 6
  keeper_->RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kStable1);
  EXPECT_EQ(AppMetric("wxcanary_keeper_lease_held"), 1);
  EXPECT_EQ(log_.WithAction("keeper_lease_acquired").size(), 1u);
}

TEST_F(KeeperTest, stop_gives_the_lease_up_and_abandon_leaves_it_to_expire) {
  auto cfg = Load({{"keep", "stable"}});
  Make(cfg).RunOnce();
  ASSERT_EQ(redis_.Cli({"GET", LeaseKey(kApp)}), "host-a:1");
  keeper_->Abandon();
  EXPECT_EQ(redis_.Cli({"GET", LeaseKey(kApp)}), "host-a:1");
  keeper_.reset();
  EXPECT_EQ(redis_.Cli({"GET", LeaseKey(kApp)}), "host-a:1") << "a dead replica releases nothing";
  Make(cfg, "host-c:3").RunOnce();
  keeper_->Stop();
  EXPECT_EQ(redis_.Cli({"GET", LeaseKey(kApp)}), "host-a:1") << "not ours: left alone";
  redis_.Cli({"DEL", LeaseKey(kApp)});
  Make(cfg, "host-c:3").RunOnce();
  ASSERT_EQ(redis_.Cli({"GET", LeaseKey(kApp)}), "host-c:3");
  keeper_->Stop();
  EXPECT_EQ(redis_.Cli({"EXISTS", LeaseKey(kApp)}), "0");
}

TEST_F(KeeperTest, a_dead_stable_token_is_force_refreshed_only_when_allowed_and_spaced) {
  auto cfg = Load({{"keep", "stable"}});
  Make(cfg).RunOnce();
  ASSERT_EQ(Held(cfg, 0), kStable1);
  fetcher_.AfterForce(kStable2);
  Probe(cfg, 0, Outcome::kTokenInvalid);
  Probe(cfg, 0, Outcome::kTokenInvalid);
  keeper_->RunOnce();
  // Off by default: nothing forced, the dead token is not written anywhere again.
  for (bool forced : fetcher_.calls()) EXPECT_FALSE(forced);
  EXPECT_EQ(log_.WithAction("keeper_token_dead").size(), 1u);

  auto forcing = Load({{"keep", "stable"}}, {}, "  force_refresh_on_dead: true\n");
  keeper_->Apply(forcing);
  clock_.Advance(61s);
  keeper_->RunOnce();
  auto calls = fetcher_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), true), 1);
  EXPECT_EQ(Held(cfg, 0), kStable2);
  EXPECT_EQ(log_.WithAction("keeper_force_refresh").size(), 1u);
  // The new one dies too within 30 s: WeChat's spacing holds the next force back.
  Probe(cfg, 0, Outcome::kTokenInvalid);
  Probe(cfg, 0, Outcome::kTokenInvalid);
  clock_.Advance(10s);
  keeper_->RunOnce();
  calls = fetcher_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), true), 1);
}

TEST_F(KeeperTest, an_environment_no_longer_kept_is_left_as_it_is) {
  auto cfg = Load({{"keep", "stable"}});
  Make(cfg).RunOnce();
  ASSERT_EQ(redis_.Cli({"GET", kKey}), kStable1);
  keeper_->Apply(Load({{"keep", "off"}}));
  keeper_->RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kStable1) << "the app takes over at the next expiry";
  EXPECT_EQ(redis_.Cli({"EXISTS", LeaseKey(kApp)}), "0") << "the lease is given up";
  EXPECT_EQ(Scrape(exposition_.Serialize()).Count("wxcanary_keeper_lease_held"), 0u);
}

TEST_F(KeeperTest, an_empty_document_key_is_left_for_the_app_only_when_it_keeps_app_state) {
  // Senparc's bag (its expiry inside, and the AppId and AppSecret): the app creates it.
  const std::string bag_key =
      "Senparc:DefaultCache:Container:Senparc.Weixin.MP.Containers.AccessTokenBag:" + kApp;
  // A bare {"access_token", "expires_in"} (PowerWeChat): the keeper writes it whole.
  auto cfg = Load({{"sdk", "senparc"}, {"key", bag_key}, {"keep", "stable"}},
                  {{"storage", "json"}, {"json_path", "access_token"}, {"keep", "stable"}});
  Make(cfg).RunOnce();
  EXPECT_EQ(redis_.Cli({"EXISTS", bag_key}, 0), "0");
  EXPECT_EQ(log_.WithAction("keeper_skipped_empty").size(), 1u);
  EXPECT_EQ(Held(cfg, 1), kStable1) << Events();
  clock_.Advance(61s);
  keeper_->RunOnce();
  EXPECT_EQ(log_.WithAction("keeper_skipped_empty").size(), 1u) << "logged once";
}

// Senparc's string layout: no TTL, the expiry inside the bag. The keeper keeps it that way (a TTL
// would drop the bag, AppSecret included, when the keeper stops) and writes the expiry the TTL
// would have: the token's end minus the margin.
TEST_F(KeeperTest,
       a_key_without_ttl_stays_without_one_and_its_stored_expiry_is_the_end_less_margin) {
  const std::string key =
      "Senparc:DefaultCache:Container:Senparc.Weixin.MP.Containers.AccessTokenBag:" + kApp;
  redis_.Cli({"SET", key, wxcanary::testing::SenparcBag(kAppOwn, kApp, "s3cr3t", 1700007000)});
  auto cfg = Load({{"sdk", "senparc"}, {"key", key}, {"keep", "stable"}, {"owner", "true"}});
  Make(cfg).RunOnce();
  EXPECT_EQ(Held(cfg, 0), kStable1) << Events();
  EXPECT_EQ(redis_.Cli({"TTL", key}), "-1");
  const auto& env = cfg.apps[0].environments[0];
  source::RedisConnection conn(cfg.redis.at(env.redis), clock_);
  const auto read = conn.Read(env);
  ASSERT_TRUE(read.expires_at.has_value());
  EXPECT_EQ(*read.expires_at, clock_.SystemNow() + 7200s - 60s);
}

// Another replica wrote the next stable token between this one's fetch and its read of the key:
// the keeper asks WeChat again before calling it the app's token, and writes nothing back.
TEST_F(KeeperTest, a_token_nobody_named_is_checked_with_wechat_before_an_owner_takeover) {
  auto cfg = Load({{"keep", "stable"}, {"owner", "true"}});
  Make(cfg).RunOnce();
  ASSERT_EQ(redis_.Cli({"GET", kKey}), kStable1);
  clock_.Advance(7200s - 250s);
  redis_.Cli({"SET", kKey, kStable2, "EX", "7000"});  // the other replica's write
  fetcher_.Queue({kStable1, kStable2});  // this pass's fetch came just before the rotation
  keeper_->RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}), kStable2);
  EXPECT_TRUE(log_.WithAction("keeper_overwrote_app_token").empty()) << Events();
  EXPECT_EQ(fetcher_.calls().size(), 3u);
}

TEST_F(KeeperTest, a_dry_run_never_force_refreshes) {
  auto cfg =
      Load({{"keep", "stable"}, {"keep_dry_run", "true"}}, {}, "  force_refresh_on_dead: true\n");
  redis_.Cli({"SET", kKey, kStable1, "EX", "7000"});  // as if kept before the dry run
  Make(cfg).RunOnce();
  Probe(cfg, 0, Outcome::kTokenInvalid);
  Probe(cfg, 0, Outcome::kTokenInvalid);
  clock_.Advance(61s);
  keeper_->RunOnce();
  for (bool forced : fetcher_.calls()) EXPECT_FALSE(forced);
  EXPECT_EQ(log_.WithAction("keeper_token_dead").size(), 1u) << Events();
}

TEST_F(KeeperTest, force_refresh_stops_at_twenty_a_beijing_day) {
  // The clock starts at 2023-11-14 22:13:20 UTC, 06:13 in Beijing.
  auto cfg = Load({{"keep", "stable"}}, {}, "  force_refresh_on_dead: true\n");
  Make(cfg).RunOnce();
  int n = 0;
  auto forced_after_a_death = [&] {
    fetcher_.AfterForce("FORCED-TOKEN-" + std::to_string(n++) + "-0123456789");
    Probe(cfg, 0, Outcome::kTokenInvalid);
    Probe(cfg, 0, Outcome::kTokenInvalid);
    clock_.Advance(61s);
    keeper_->RunOnce();
    auto calls = fetcher_.calls();
    return static_cast<int>(std::count(calls.begin(), calls.end(), true));
  };
  int forced = 0;
  for (int i = 0; i < 25; ++i) forced = forced_after_a_death();
  EXPECT_EQ(forced, 20);
  EXPECT_EQ(log_.WithAction("keeper_force_refresh").size(), 20u);
  bool limit_logged = false;
  for (const auto& e : log_.WithAction("keeper_token_dead"))
    limit_logged |= e.message.find("force refreshes are spent") != std::string::npos;
  EXPECT_TRUE(limit_logged) << Events();
  // Past midnight UTC (08:00 in Beijing): still the same day for WeChat.
  clock_.Advance(2h);
  EXPECT_EQ(forced_after_a_death(), 20);
  // Past 16:00 UTC, midnight in Beijing: a new day.
  clock_.Advance(16h);
  EXPECT_EQ(forced_after_a_death(), 21);
}

// A keeper restarted during a rotation (its memory gone) finds the previous stable token in the
// key: the keepers remember what they wrote in Redis, so it is the keeper's, not the app's.
TEST_F(KeeperTest, a_restarted_keeper_knows_the_stable_token_a_keeper_wrote_before) {
  auto cfg = Load({{"keep", "stable"}}, {{"keep", "stable"}, {"owner", "true"}});
  Make(cfg).RunOnce();
  ASSERT_EQ(redis_.Cli({"GET", kKey}, 0), kStable1);
  EXPECT_EQ(redis_.Cli({"SISMEMBER", TokensKey(kApp), Fingerprint(kStable1)}), "1");
  keeper_.reset();         // stops, gives the lease up
  fetcher_.Set(kStable2);  // the rotation happened meanwhile
  Make(cfg, "host-a:2").RunOnce();
  EXPECT_EQ(redis_.Cli({"GET", kKey}, 0), kStable2) << Events();  // not skipped as the app's
  EXPECT_EQ(redis_.Cli({"GET", kKey}, 1), kStable2);
  EXPECT_TRUE(log_.WithAction("keeper_skipped_owner").empty()) << Events();
  EXPECT_TRUE(log_.WithAction("keeper_overwrote_app_token").empty()) << Events();
  EXPECT_EQ(redis_.Cli({"SISMEMBER", TokensKey(kApp), kStable1}), "0") << "fingerprints only";
}

}  // namespace
}  // namespace wxcanary::keeper
