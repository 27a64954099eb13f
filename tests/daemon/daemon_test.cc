// The daemon end to end: a real redis-server, wxsim, and the wxcanary binary, observed only
// through /metrics and the JSON log, as a user would.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <thread>

#include "common/fingerprint.h"
#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

constexpr const char* kApp = "wx00000000000000a1";
constexpr const char* kSecret = "s3cr3t-for-tests";

struct Env {
  Env(std::string n, int d = 0, std::string s = "string", ConfigYaml::Fields f = {})
      : name(std::move(n)), db(d), storage(std::move(s)), fields(std::move(f)) {}
  std::string name;
  int db;
  std::string storage;
  ConfigYaml::Fields fields;  // more keys of the environment
};

// envs[i] reads Redis database envs[i].db.
std::string Config(const WxSim& sim, const RedisServer& redis, const std::vector<Env>& envs,
                   const std::string& interval = "500ms", const std::string& timeout = "400ms") {
  ConfigYaml c(sim.base_url());
  c.Workers(4).Default("interval", interval).Default("timeout", timeout);
  c.Default("probe", "msg_sec_check");
  for (const auto& e : envs)
    c.Redis("r" + std::to_string(e.db), redis.address(), {{"db", std::to_string(e.db)}});
  c.App(kApp);
  for (const auto& e : envs) {
    ConfigYaml::Fields f = {{"storage", e.storage}};
    f.insert(f.end(), e.fields.begin(), e.fields.end());
    c.Env(e.name, "r" + std::to_string(e.db), f);
  }
  return c;
}

std::string Key() { return std::string("ACCESS_TOKEN_CACHE:") + kApp; }

Labels L(const std::string& env, Labels extra = {}) {
  extra["app_id"] = kApp;
  extra["app_env"] = env;
  return extra;
}

double Outcomes(const Scrape& s, const std::string& env, const std::string& outcome) {
  return s.Value("wxcanary_probes_total", L(env, {{"outcome", outcome}})).value_or(-1);
}

class DaemonTest : public ::testing::Test {
 protected:
  RedisServer redis_;
  WxSim sim_{{"--app", std::string(kApp) + ":" + kSecret}};

  // What the incident's app does: fetch a token, cache it for 7200 s.
  std::string CacheFreshToken(int db = 0) {
    std::string token = sim_.FetchToken(kApp, kSecret);
    redis_.Cli({"SET", Key(), token, "EX", "7200"}, db);
    return token;
  }
};

TEST_F(DaemonTest, probes_ok_and_counts_a_refresh_when_the_app_writes_a_new_token) {
  CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "ok") >= 2; }))
      << d.ScrapeMetrics().text();
  auto s = d.ScrapeMetrics();
  EXPECT_EQ(s.Value("wxcanary_token_present", L("prod")), 1);
  EXPECT_GT(*s.Value("wxcanary_token_ttl_seconds", L("prod")), 7000);
  EXPECT_EQ(s.Value("wxcanary_token_refreshes_total", L("prod")), 0);
  for (const char* o : {"token_invalid", "token_expired", "token_missing", "redis_error",
                        "transport_error", "bad_response", "api_error", "quota", "token_malformed"})
    EXPECT_EQ(Outcomes(s, "prod", o), 0) << o;  // every outcome exported from the start
  EXPECT_EQ(s.Value("wxcanary_redis_up", {{"redis", "r0"}}), 1);
  EXPECT_EQ(s.Value("wxcanary_config_last_reload_successful"), 1);
  EXPECT_TRUE(s.Value("wxcanary_build_info").has_value());

  CacheFreshToken();  // the app refreshed
  EXPECT_TRUE(d.WaitFor([](const Scrape& x) {
    return x.Value("wxcanary_token_refreshes_total", L("prod")).value_or(0) == 1;
  }));
  auto [status, body] = d.Get("/");
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("href=\"metrics\""), std::string::npos) << body;
  EXPECT_EQ(d.Get("/-/healthy").first, 200);
}

TEST_F(DaemonTest, the_incident_reports_token_invalid_within_one_interval_while_redis_has_ttl) {
  std::string prod_token = CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}, "1s", "800ms"));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "ok") >= 1; }));

  sim_.FetchToken(kApp, kSecret);  // someone else (a test environment) fetches a token
  sim_.Advance(301);               // past the 300 s grace
  auto failed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "token_invalid") >= 1; }, 5s));
  EXPECT_LE(std::chrono::steady_clock::now() - failed_at, 2500ms);  // one interval + scrape slack
  auto s = d.ScrapeMetrics();
  EXPECT_GE(s.Value("wxcanary_probe_errcode_total", L("prod", {{"errcode", "40001"}})).value_or(0),
            1);
  EXPECT_GT(*s.Value("wxcanary_token_ttl_seconds", L("prod")), 7000);  // Redis still holds it
  EXPECT_EQ(s.Value("wxcanary_token_present", L("prod")), 1);

  // The log has the ERROR event with the parsed rid and the fingerprint, never the token.
  bool found = false;
  for (const auto& e : d.LogEvents()) {
    if (e.value("event.action", "") != "probe" ||
        e.value("wxcanary.probe.outcome", "") != "token_invalid")
      continue;
    found = true;
    EXPECT_EQ(e["log.level"], "error");
    EXPECT_EQ(e["wxcanary.wechat.errcode"], 40001);
    EXPECT_TRUE(std::regex_match(e.value("wxcanary.wechat.rid", ""),
                                 std::regex("[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}")))
        << e.dump();
    EXPECT_EQ(e["wxcanary.token.fingerprint"], Fingerprint(prod_token));
    EXPECT_EQ(e.value("wxcanary.wechat.errmsg", "").find("rid:"), std::string::npos);
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(d.Output().find(prod_token), std::string::npos);
  EXPECT_EQ(s.text().find(prod_token), std::string::npos);
}

// /api/v1/targets (the status page's data as JSON): the failing target first, with its
// errcode, rid and the environment whose refresh killed its token; the token only by fingerprint.
TEST_F(DaemonTest, api_targets_lists_the_failing_target_first_with_its_errcode) {
  const std::string prod_token = CacheFreshToken(0);
  const std::string dev_token = CacheFreshToken(1);
  Daemon d(Config(sim_, redis_, {{"prod", 0}, {"dev", 1}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Outcomes(s, "prod", "ok") >= 1 && Outcomes(s, "dev", "ok") >= 1;
  }));
  auto [status, body] = d.Get("/api/v1/targets");
  ASSERT_EQ(status, 200);
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["counts"]["targets"], 2);
  EXPECT_EQ(j["counts"]["failing"], 0);
  EXPECT_EQ(j["targets"][0]["app_env"], "dev");  // all ok: by name

  const std::string dev_new = CacheFreshToken(1);  // dev fetches: prod's token dies
  sim_.Advance(301);
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return s.Value("wxcanary_token_invalidations_total", L("prod", {{"cause_env", "dev"}}))
               .value_or(0) == 1;
  }));
  std::tie(status, body) = d.Get("/api/v1/targets");
  ASSERT_EQ(status, 200);
  j = nlohmann::json::parse(body);
  EXPECT_EQ(j["counts"]["failing"], 1);
  ASSERT_EQ(j["targets"].size(), 2u) << body;
  const auto& prod = j["targets"][0];
  EXPECT_EQ(prod["app_env"], "prod") << body;
  EXPECT_EQ(prod["state"], "failing");
  EXPECT_EQ(prod["last_outcome"], "token_invalid");
  EXPECT_EQ(prod["errcode"], 40001);
  EXPECT_TRUE(
      std::regex_match(prod.value("rid", ""), std::regex("[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}")))
      << prod.dump();
  EXPECT_EQ(prod["token"]["fingerprint"], Fingerprint(prod_token));
  EXPECT_GT(prod["token"]["ttl_seconds"].get<int>(), 7000);
  EXPECT_EQ(prod["conflict"]["cause_env"], "dev");
  EXPECT_TRUE(prod["failing_since"].is_string());
  EXPECT_EQ(j["targets"][1]["app_env"], "dev");
  EXPECT_EQ(j["targets"][1]["state"], "ok");
  EXPECT_EQ(j["targets"][1]["token"]["fingerprint"], Fingerprint(dev_new));

  // The filter applies to the API too; the HTML page shows the same row first.
  j = nlohmann::json::parse(d.Get("/api/v1/targets?app_env=dev").second);
  ASSERT_EQ(j["targets"].size(), 1u);
  EXPECT_EQ(j["targets"][0]["app_env"], "dev");
  const std::string page = d.Get("/").second;
  EXPECT_LT(page.find("data-app-env=\"prod\""), page.find("data-app-env=\"dev\"")) << page;
  for (const std::string& token : {prod_token, dev_token, dev_new}) {
    EXPECT_EQ(body.find(token), std::string::npos);
    EXPECT_EQ(page.find(token), std::string::npos);
  }
}

TEST_F(DaemonTest, reports_expired_missing_and_ttl_less_tokens) {
  CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "ok") >= 1; }));

  sim_.Advance(7201);  // the token outlives expires_in
  EXPECT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "token_expired") >= 1; }));

  redis_.Cli({"DEL", Key()});
  EXPECT_TRUE(d.WaitFor([](const Scrape& s) {
    return Outcomes(s, "prod", "token_missing") >= 1 &&
           s.Value("wxcanary_token_present", L("prod")) == 0;
  }));

  std::string token = sim_.FetchToken(kApp, kSecret);
  redis_.Cli({"SET", Key(), token});  // cached without a TTL: a bug worth an alert
  EXPECT_TRUE(d.WaitFor([](const Scrape& s) {
    return s.Value("wxcanary_token_ttl_seconds", L("prod")) == -1 &&
           s.Value("wxcanary_token_present", L("prod")) == 1;
  }));
}

TEST_F(DaemonTest, reads_every_storage_layout) {
  std::string token = sim_.FetchToken(kApp, kSecret);
  redis_.Cli({"SET", Key(), token, "EX", "7200"}, 0);
  redis_.Cli(
      {"SET", Key(), R"({"access_token":")" + token + R"(","expires_in":7200})", "EX", "7200"}, 1);
  redis_.Cli({"HSET", Key(), "token", token}, 2);
  redis_.Cli({"EXPIRE", Key(), "7200"}, 2);
  Daemon d(Config(sim_, redis_,
                  {{"plain", 0, "string"},
                   {"json", 1, "json", {{"json_path", "access_token"}}},
                   {"hash", 2, "hash", {{"hash_field", "token"}}}}));
  EXPECT_TRUE(d.WaitFor([](const Scrape& s) {
    return Outcomes(s, "plain", "ok") >= 1 && Outcomes(s, "json", "ok") >= 1 &&
           Outcomes(s, "hash", "ok") >= 1;
  })) << d.ScrapeMetrics().text();
}

TEST_F(DaemonTest, survives_redis_going_away_and_recovers) {
  CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "ok") >= 1; }));
  redis_.Kill();
  EXPECT_TRUE(d.WaitFor([](const Scrape& s) {
    return Outcomes(s, "prod", "redis_error") >= 1 &&
           s.Value("wxcanary_redis_up", {{"redis", "r0"}}) == 0;
  }));
  redis_.Start();
  CacheFreshToken();  // a fresh server has no data
  double ok_before = Outcomes(d.ScrapeMetrics(), "prod", "ok");
  EXPECT_TRUE(d.WaitFor(
      [&](const Scrape& s) {
        return Outcomes(s, "prod", "ok") > ok_before &&
               s.Value("wxcanary_redis_up", {{"redis", "r0"}}) == 1;
      },
      20s));
  EXPECT_TRUE(d.process().running());
  bool down = false, up = false;
  for (const auto& e : d.LogEvents()) {
    down |= e.value("event.action", "") == "redis_down";
    up |= e.value("event.action", "") == "redis_up";
  }
  EXPECT_TRUE(down && up);
}

// Issue 21.2: a key of the wrong type on a healthy Redis is that target's problem. It used to
// set wxcanary_redis_up to 0 and log redis_down, paging WxCanaryRedisDown for a healthy server.
TEST_F(DaemonTest, a_key_of_the_wrong_type_is_the_targets_problem_not_redis_down) {
  CacheFreshToken(0);
  redis_.Cli({"RPUSH", Key(), "not", "a", "token"}, 1);
  Daemon d(Config(sim_, redis_, {{"prod", 0}, {"listed", 1}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Outcomes(s, "listed", "token_missing") >= 3 && Outcomes(s, "prod", "ok") >= 3;
  })) << d.ScrapeMetrics().text();
  const Scrape s = d.ScrapeMetrics();
  EXPECT_EQ(s.Value("wxcanary_redis_up", {{"redis", "r1"}}), 1);
  EXPECT_EQ(Outcomes(s, "listed", "redis_error"), 0);
  bool named = false;
  for (const auto& e : d.LogEvents()) {
    EXPECT_NE(e.value("event.action", ""), "redis_down") << e.dump();
    if (e.value("labels.app_env", "") == "listed")
      named |= e.dump().find("holds a list, not the string that storage string reads") !=
               std::string::npos;
  }
  EXPECT_TRUE(named) << "no log event names the type found";
}

TEST_F(DaemonTest, classifies_api_faults_and_recovers) {
  CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "ok") >= 1; }));
  struct Case {
    nlohmann::json fault;
    std::string outcome;
  } cases[] = {
      {{{"path", "/wxa/msg_sec_check"}, {"latency_ms", 1500}}, "transport_error"},
      {{{"path", "/wxa/msg_sec_check"}, {"http_status", 500}}, "transport_error"},
      {{{"path", "/wxa/msg_sec_check"}, {"reset", true}}, "transport_error"},
      {{{"path", "/wxa/msg_sec_check"}, {"body", "garbage"}}, "bad_response"},
      {{{"path", "/wxa/msg_sec_check"}, {"body", "truncated"}}, "bad_response"},
      {{{"path", "/wxa/msg_sec_check"}, {"errcode", -1}}, "api_error"},
  };
  for (const auto& c : cases) {
    double before = Outcomes(d.ScrapeMetrics(), "prod", c.outcome);
    sim_.InjectFault(c.fault);
    EXPECT_TRUE(d.WaitFor([&](const Scrape& s) { return Outcomes(s, "prod", c.outcome) > before; }))
        << c.fault.dump();
    sim_.ClearFaults();
    double ok = Outcomes(d.ScrapeMetrics(), "prod", "ok");
    EXPECT_TRUE(d.WaitFor([&](const Scrape& s) { return Outcomes(s, "prod", "ok") > ok; }))
        << "no recovery after " << c.fault.dump();
  }
  EXPECT_TRUE(d.process().running());
}

TEST_F(DaemonTest, reload_applies_a_valid_config_and_keeps_the_old_one_on_error) {
  CacheFreshToken();
  CacheFreshToken(1);
  Daemon d(Config(sim_, redis_, {{"prod"}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "ok") >= 1; }));

  d.Reload(Config(sim_, redis_, {{"prod"}, {"test", 1}}));
  EXPECT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "test", "ok") >= 1; }));

  d.Reload("apps: [this is not a valid config");
  EXPECT_TRUE(d.WaitFor(
      [](const Scrape& s) { return s.Value("wxcanary_config_last_reload_successful") == 0; }));
  double ok = Outcomes(d.ScrapeMetrics(), "test", "ok");
  EXPECT_TRUE(d.WaitFor([&](const Scrape& s) { return Outcomes(s, "test", "ok") > ok; }))
      << "the old config must keep running";
  bool failed_logged = false;
  for (const auto& e : d.LogEvents())
    failed_logged |= e.value("event.action", "") == "config_reload_failed";
  EXPECT_TRUE(failed_logged);
}

TEST_F(DaemonTest, stops_cleanly_on_sigterm_within_two_seconds) {
  CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}));
  auto start = std::chrono::steady_clock::now();
  int status = d.Stop();
  EXPECT_LE(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(DaemonTest, log_lines_are_ecs_json_with_the_head_in_order) {
  CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcomes(s, "prod", "ok") >= 1; }));
  d.Stop();
  std::istringstream in(d.Output());
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::ordered_json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end() && keys.size() < 4; ++it) keys.push_back(it.key());
    EXPECT_EQ(keys,
              (std::vector<std::string>{"@timestamp", "log.level", "message", "ecs.version"}));
    ++lines;
  }
  EXPECT_GE(lines, 2);
}

// promtool's exit status and findings for `text` on its stdin (`check metrics` parses strictly
// and lints names, types, help and duplicates).
std::pair<int, std::string> PromtoolCheckMetrics(const TempDir& dir, const std::string& text,
                                                 const std::string& name) {
  const auto file = dir.path() / (name + ".prom");
  std::ofstream(file) << text;
  Subprocess p({"sh", "-c", "exec promtool check metrics < '" + file.string() + "'"},
               dir.path() / (name + ".out"));
  const int status = p.Wait(std::chrono::seconds{30});
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, p.Output()};
}

TEST_F(DaemonTest, metrics_pass_promtool_check_metrics_with_every_per_target_family) {
  CacheFreshToken();
  // Extra labels that sort around the merged ones and need escaping; healing on, so its
  // families are exported too.
  Daemon d(Config(
      sim_, redis_,
      {{"prod", 0, "string", {{"heal", "evict"}, {"labels", "{team: 'pay\"x\\y', zone: a}"}}},
       {"test", 1, "string", {{"heal", "dry_run"}}}}));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Outcomes(s, "prod", "ok") >= 1 && Outcomes(s, "test", "token_missing") >= 1;
  }));
  const std::string text = d.ScrapeMetrics().text();
  for (const char* family :
       {"wxcanary_probes_total", "wxcanary_probe_errcode_total", "wxcanary_probe_duration_seconds",
        "wxcanary_probe_last_success_timestamp_seconds", "wxcanary_probe_interval_seconds",
        "wxcanary_token_present", "wxcanary_token_ttl_seconds", "wxcanary_token_refreshes_total",
        "wxcanary_token_age_seconds", "wxcanary_app_distinct_tokens",
        "wxcanary_token_invalidations_total", "wxcanary_heals_total",
        "wxcanary_heal_recovery_seconds", "wxcanary_probe_lateness_seconds", "wxcanary_build_info"})
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  EXPECT_NE(text.find(R"(outcome="ok",team="pay\"x\\y",zone="a"})"), std::string::npos) << text;

  TempDir dir;
  const auto [status, findings] = PromtoolCheckMetrics(dir, text, "scrape");
  EXPECT_EQ(status, 0) << findings;
  EXPECT_EQ(findings, "");
  // The check itself is live: the same text with the label value left unescaped fails.
  std::string unescaped = text;
  const auto at = unescaped.find(R"(pay\"x)");
  ASSERT_NE(at, std::string::npos);
  unescaped.erase(at + 3, 1);  // pay"x
  EXPECT_NE(PromtoolCheckMetrics(dir, unescaped, "unescaped").first, 0);
}

TEST(DaemonCli, config_check_prints_targets_and_rejects_bad_files) {
  TempDir dir;
  auto good = dir.path() / "good.yml";
  std::ofstream(good) << "redis:\n  main:\n    address: 127.0.0.1:6379\napps:\n"
                         "  - app_id: wx1\n    environments:\n      - name: prod\n"
                         "        redis: main\n        key: \"k:{app_id}\"\n";
  Subprocess ok(
      {BuiltBinary("wxcanary").string(), "--config.file=" + good.string(), "--config.check"},
      dir.path() / "ok.out");
  int st = ok.Wait(10s);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ok.Output();
  EXPECT_NE(ok.Output().find("wx1/prod"), std::string::npos) << ok.Output();

  auto bad = dir.path() / "bad.yml";
  std::ofstream(bad) << "apps: []\nbogus: 1\n";
  Subprocess ko(
      {BuiltBinary("wxcanary").string(), "--config.file=" + bad.string(), "--config.check"},
      dir.path() / "ko.out");
  st = ko.Wait(10s);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0);
  EXPECT_NE(ko.Output().find(bad.string()), std::string::npos) << ko.Output();
}

// Issue 17.1: a second wxcanary on the port of a running one must fail, not share the port
// (SO_REUSEPORT let both listen: scrapes alternated and every target was probed twice).
TEST_F(DaemonTest, a_second_daemon_on_the_same_port_exits_1_naming_the_address) {
  CacheFreshToken();
  Daemon first(Config(sim_, redis_, {{"prod"}}));
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  TempDir dir;
  Subprocess second(
      {BuiltBinary("wxcanary").string(), "--config.file=" + first.config_path().string(),
       "--web.listen-address=" + address},
      dir.path() / "second.out");
  const int st = second.Wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << second.Output();
  EXPECT_EQ(WEXITSTATUS(st), 1);
  EXPECT_EQ(second.Output(), "wxcanary: --web.listen-address: cannot listen on \"" + address +
                                 "\": Address already in use\n");
  EXPECT_TRUE(first.process().running());
  EXPECT_EQ(first.Get("/-/healthy").first, 200);
}

// The main thread waits for signals and for the next watchdog ping. It rounded the wait down to
// whole milliseconds, so the last fraction of one before every ping became a zero wait it spun
// on: ~1 ms of CPU per ping. Its own CPU time (schedstat, in ns) over 2 s of pings every 100 ms
// was ~20 ms; asleep it is well under a millisecond.
TEST_F(DaemonTest, the_main_thread_sleeps_until_each_watchdog_ping_rather_than_spinning) {
  CacheFreshToken();
  Daemon d(Config(sim_, redis_, {{"prod"}}), {}, {"WATCHDOG_USEC=200000"});
  const pid_t pid = d.process().pid();
  const auto on_cpu = [pid] {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                     "/schedstat");
    long long ns = -1;
    in >> ns;
    return std::chrono::nanoseconds{ns};
  };
  std::this_thread::sleep_for(300ms);  // past startup's last work on the main thread
  const auto before = on_cpu();
  ASSERT_GE(before.count(), 0) << "no schedstat for the daemon's main thread";
  std::this_thread::sleep_for(2s);
  const auto used = on_cpu() - before;
  EXPECT_LT(used, 5ms) << "main thread on CPU for "
                       << std::chrono::duration_cast<std::chrono::microseconds>(used).count()
                       << " us in 2 s";
  EXPECT_TRUE(d.process().running());
}

}  // namespace
}  // namespace wxcanary::testing
