// Reload end to end (issue 18): the wxcanary binary, redis-server and two wxsims, observed
// through what they receive and what the daemon exposes. One SIGHUP must reach every part of
// the running daemon, or none.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/silent_listener.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

constexpr const char* kAppA = "wx00000000000000a1";
constexpr const char* kSecretA = "s3cr3t-for-tests-a";
constexpr const char* kAppB = "wx00000000000000b2";
constexpr const char* kSecretB = "s3cr3t-for-tests-b";
constexpr const char* kSecretEnvB = "WXCANARY_TEST_SECRET_B";

std::vector<std::string> SimApps() {
  return {"--app", std::string(kAppA) + ":" + kSecretA, "--app",
          std::string(kAppB) + ":" + kSecretB};
}

double Probes(const Scrape& s, const std::string& app, const std::string& outcome,
              const std::string& env = "prod") {
  return s.Value("wxcanary_probes_total", {{"app_id", app}, {"app_env", env}, {"outcome", outcome}})
      .value_or(0);
}

// Every call wxsim answered, whatever the path and errcode.
double SimCalls(WxSim& sim) {
  double n = 0;
  const nlohmann::json state = sim.State();
  for (const auto& [path, by_code] : state["calls"].items())
    for (const auto& [code, count] : by_code.items()) n += count.get<double>();
  return n;
}

std::vector<nlohmann::json> Events(const Daemon& d, const std::string& action) {
  std::vector<nlohmann::json> out;
  for (const auto& e : d.LogEvents())
    if (e.value("event.action", "") == action) out.push_back(e);
  return out;
}

bool WaitForEvent(const Daemon& d, const std::string& action, size_t n = 1,
                  std::chrono::milliseconds timeout = 15s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (Events(d, action).size() < n) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::string Head(const std::string& base_url, const RedisServer& redis,
                 const std::string& extra = "") {
  return "wechat:\n  base_url: " + base_url + "\n  timeout: 2s\n" +
         "workers: 2\n"
         "defaults:\n  interval: 500ms\n  timeout: 400ms\n  probe: api_domain_ip\n"
         "redis:\n  r0:\n    address: " +
         redis.address() + "\n    read_timeout: 300ms\n    connect_timeout: 300ms\n" + extra;
}

TEST(Reload, one_sighup_adds_a_healing_app_changes_the_window_and_moves_to_a_second_wxsim) {
  RedisServer redis;
  WxSim first(SimApps());
  WxSim second(SimApps());
  const std::string key_a = std::string("ACCESS_TOKEN_CACHE:") + kAppA;
  const std::string key_b = std::string("ACCESS_TOKEN_CACHE:") + kAppB;
  // Each wxsim knows only the tokens it issued: the key each config reads holds a token of the
  // wxsim that config names.
  redis.Cli({"SET", key_a, first.FetchToken(kAppA, kSecretA), "EX", "7200"});
  redis.Cli({"SET", key_a + ":v2", second.FetchToken(kAppA, kSecretA), "EX", "7200"});
  redis.Cli({"SET", key_b, second.FetchToken(kAppB, kSecretB), "EX", "7200"});

  const std::string before =
      Head(first.base_url(), redis) + "apps:\n  - app_id: " + kAppA +
      "\n    environments:\n"
      "      - {name: prod, redis: r0, key: \"ACCESS_TOKEN_CACHE:{app_id}\"}\n";
  Daemon d(before, {}, {std::string(kSecretEnvB) + "=" + kSecretB});
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Probes(s, kAppA, "ok") >= 1; })) << d.Output();

  // (a) app B with heal_refresh and its secret, (b) conflict.window 42 s instead of the default
  // (the 300 s grace plus the interval), (c) the second wxsim. A's environment gets a new name
  // (and key): the second wxsim's token for it is no refresh of the first one's.
  const std::string after =
      Head(second.base_url(), redis, "conflict:\n  window: 42s\nheal:\n  confirmations: 2\n") +
      "apps:\n  - app_id: " + kAppA +
      "\n    environments:\n"
      "      - {name: live, redis: r0, key: \"ACCESS_TOKEN_CACHE:{app_id}:v2\"}\n"
      "  - app_id: " +
      kAppB + "\n    secret_env: " + kSecretEnvB +
      "\n    environments:\n"
      "      - {name: prod, redis: r0, key: \"ACCESS_TOKEN_CACHE:{app_id}\", heal: evict,"
      " heal_refresh: true}\n";
  d.Reload(after);
  ASSERT_TRUE(WaitForEvent(d, "config_reloaded")) << d.Output();
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return Probes(s, kAppB, "ok") >= 2 && s.Value("wxcanary_config_last_reload_successful") == 1;
  })) << d.Output();
  // Probes in flight at the SIGHUP may still land on the first wxsim; none after them.
  std::this_thread::sleep_for(1s);
  const double first_calls = SimCalls(first);
  const double a_ok = Probes(d.ScrapeMetrics(), kAppA, "ok", "live");

  // Someone outside the config fetches both apps' tokens; past the grace the cached ones die.
  second.FetchToken(kAppA, kSecretA);
  second.FetchToken(kAppB, kSecretB);
  second.Advance(301);

  // (a) B is healed and refreshed through the second wxsim's stable_token with the secret the
  // reload brought.
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return s.Value(
                "wxcanary_heals_total",
                {{"app_id", kAppB}, {"app_env", "prod"}, {"action", "refresh"}, {"result", "done"}})
               .value_or(0) == 1;
  })) << d.ScrapeMetrics().text()
      << d.Output();
  EXPECT_EQ(d.Output().find("no secret configured"), std::string::npos);
  const std::string refreshed = redis.Cli({"GET", key_b});
  EXPECT_EQ(
      second.Get("/cgi-bin/getcallbackip?access_token=" + refreshed).Json().value("errcode", 0), 0)
      << "the token written by the refresh is the second wxsim's current one";
  EXPECT_GE(second.State()["apps"][kAppB]["calls"]["/cgi-bin/stable_token"]["0"].get<int>(), 1);

  // (b) A's invalidation is reported with the reloaded window.
  ASSERT_TRUE(WaitForEvent(d, "token_invalidated", 1, 20s)) << d.Output();
  bool a_reported = false;
  for (const auto& e : Events(d, "token_invalidated")) {
    if (e.value("labels.app_id", "") != kAppA) continue;
    a_reported = true;
    EXPECT_NE(e.value("message", "").find("refreshed it in the 42 s before the failure"),
              std::string::npos)
        << e.value("message", "");
  }
  EXPECT_TRUE(a_reported) << d.Output();

  // (c) Probes kept reaching the second wxsim, and the first got none since the reload.
  const auto now = d.ScrapeMetrics();
  EXPECT_GT(Probes(now, kAppA, "ok", "live") + Probes(now, kAppA, "token_invalid", "live"), a_ok);
  EXPECT_EQ(SimCalls(first), first_calls);
  const std::string out = d.Output();
  EXPECT_EQ(out.find(refreshed), std::string::npos);
  EXPECT_EQ(out.find(kSecretB), std::string::npos);
}

TEST(Reload, a_change_to_a_restart_only_setting_is_refused_naming_it_and_the_old_config_runs) {
  RedisServer redis;
  WxSim sim(SimApps());
  redis.Cli({"SET", std::string("ACCESS_TOKEN_CACHE:") + kAppA, sim.FetchToken(kAppA, kSecretA),
             "EX", "7200"});
  redis.Cli({"SET", std::string("ACCESS_TOKEN_CACHE:") + kAppB, sim.FetchToken(kAppB, kSecretB),
             "EX", "7200"});
  const std::string app_a =
      std::string("  - app_id: ") + kAppA +
      "\n    environments:\n"
      "      - {name: prod, redis: r0, key: \"ACCESS_TOKEN_CACHE:{app_id}\"}\n";
  const std::string app_b =
      std::string("  - app_id: ") + kAppB +
      "\n    environments:\n"
      "      - {name: prod, redis: r0, key: \"ACCESS_TOKEN_CACHE:{app_id}\"}\n";
  Daemon d(Head(sim.base_url(), redis) + "apps:\n" + app_a);
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Probes(s, kAppA, "ok") >= 1; })) << d.Output();

  // A second app and a log file: the whole reload is refused, not the log part alone.
  const auto log_file = d.config_path().parent_path() / "events.json";
  d.Reload(Head(sim.base_url(), redis,
                "logging:\n  sinks:\n    - type: stdout\n    - {type: file, path: " +
                    log_file.string() + "}\n") +
           "apps:\n" + app_a + app_b);
  ASSERT_TRUE(WaitForEvent(d, "config_reload_failed")) << d.Output();
  const auto failed = Events(d, "config_reload_failed");
  EXPECT_EQ(failed[0].value("log.level", ""), "error");
  EXPECT_EQ(failed[0].value("error.message", ""),
            "logging: the log sinks changed; they need a restart");
  EXPECT_EQ(d.ScrapeMetrics().Value("wxcanary_config_last_reload_successful"), 0);

  const double a_ok = Probes(d.ScrapeMetrics(), kAppA, "ok");
  EXPECT_TRUE(d.WaitFor([&](const Scrape& s) { return Probes(s, kAppA, "ok") > a_ok + 2; }))
      << "the old config keeps running";
  EXPECT_FALSE(d.ScrapeMetrics()
                   .Value("wxcanary_probes_total",
                          {{"app_id", kAppB}, {"app_env", "prod"}, {"outcome", "ok"}})
                   .has_value())
      << "part of the refused config was applied";
  EXPECT_FALSE(std::filesystem::exists(log_file));
  EXPECT_TRUE(Events(d, "config_reloaded").empty());
}

// Issue 18: a heal holding its target's lock through slow Redis I/O stalled every scrape. The
// heal's Redis writes hang (CLIENT PAUSE WRITE: the server takes the command and answers
// nothing until the pause ends) while probes keep reading; /metrics must not notice.
TEST(Reload, metrics_answer_within_100ms_while_a_heal_is_stuck_on_a_hung_redis) {
  RedisServer redis;
  WxSim sim(SimApps());
  const std::string key = std::string("ACCESS_TOKEN_CACHE:") + kAppA;
  redis.Cli({"SET", key, sim.FetchToken(kAppA, kSecretA), "EX", "7200"});
  const std::string yaml =
      "wechat:\n  base_url: " + sim.base_url() + "\n  timeout: 2s\n" +
      "workers: 2\n"
      "defaults:\n  interval: 500ms\n  timeout: 400ms\n  probe: api_domain_ip\n"
      "redis:\n  r0:\n    address: " +
      redis.address() +
      "\n    read_timeout: 4s\n    connect_timeout: 300ms\n"
      "heal:\n  confirmations: 2\n"
      "apps:\n  - app_id: " +
      kAppA +
      "\n    environments:\n"
      "      - {name: prod, redis: r0, key: \"ACCESS_TOKEN_CACHE:{app_id}\", heal: evict}\n";
  Daemon d(yaml);
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Probes(s, kAppA, "ok") >= 1; })) << d.Output();

  redis.Cli({"CLIENT", "PAUSE", "5000", "WRITE"});  // reads go on, the heal's lock SET hangs
  sim.FetchToken(kAppA, kSecretA);
  sim.Advance(301);
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Probes(s, kAppA, "token_invalid") >= 2; }, 3s))
      << d.Output();
  // The second token error started the heal; it now waits on Redis for up to its 4 s read
  // timeout (the pause lasts 5 s).
  std::vector<double> ms;
  const auto stuck_until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < stuck_until) {
    const auto t0 = std::chrono::steady_clock::now();
    auto [status, body] = d.Get("/metrics");
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_EQ(status, 200);
    EXPECT_NE(body.find("wxcanary_heals_total"), std::string::npos);
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(ms.size(), 10u);
  std::string all;
  for (double m : ms) all += std::to_string(m) + " ";
  std::cout << "/metrics during the stuck heal, ms: " << all << "\n";
  for (double m : ms) EXPECT_LT(m, 100.0) << all;
  // The heal was really under way meanwhile: it ends (done or error) only after the pause.
  EXPECT_EQ(d.ScrapeMetrics().Value(
                "wxcanary_heals_total",
                {{"app_id", kAppA}, {"app_env", "prod"}, {"action", "evict"}, {"result", "done"}}),
            0);
  redis.Cli({"CLIENT", "UNPAUSE"});
  EXPECT_TRUE(d.WaitFor([](const Scrape& s) {
    double ended = 0;
    for (const char* r : {"done", "error", "skipped_changed", "skipped_locked"})
      ended += s.Value("wxcanary_heals_total",
                       {{"app_id", kAppA}, {"app_env", "prod"}, {"action", "evict"}, {"result", r}})
                   .value_or(0);
    return ended >= 1;
  })) << d.Output();
}

}  // namespace
}  // namespace wxcanary::testing
