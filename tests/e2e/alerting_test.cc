// The incident replayed through the real alert path: wxcanary scraped by Prometheus (every
// second, the shipped rules with `for:` shortened), Alertmanager routing with the shipped
// example config, and the page arriving at a webhook served by this test. Then every
// dashboard query and every rule's metrics are evaluated against that Prometheus.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <yaml-cpp/yaml.h>

#include "alerts/monitoring_files.h"
#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/process.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kAppId = WxSim::kAppId;
constexpr const char* kProdKey = "ACCESS_TOKEN_CACHE:wx00000000000000a1";
constexpr const char* kTestKey = "test:ACCESS_TOKEN_CACHE:wx00000000000000a1";

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Alertmanager webhook receiver: keeps every notification, by path.
class Webhook {
 public:
  struct Notification {
    std::string path;
    json body;
  };

  Webhook() {
    server_.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu_);
        notifications_.push_back({req.path, json::parse(req.body, nullptr, false)});
      }
      cv_.notify_all();
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Webhook() {
    server_.stop();
    thread_.join();
  }
  [[nodiscard]] int port() const { return port_; }

  // Waits for a notification on `path` with `status` holding an alert whose labels include
  // all of `labels`; returns that alert (null on timeout).
  json WaitFor(const std::string& path, const std::string& status,
               const std::map<std::string, std::string>& labels, seconds timeout) {
    std::unique_lock lock(mu_);
    json found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& n : notifications_) {
        if (n.path != path || !n.body.is_object()) continue;
        for (const auto& alert : n.body.value("alerts", json::array())) {
          if (alert.value("status", "") != status) continue;
          bool match = true;
          const json alert_labels = alert.value("labels", json::object());
          for (const auto& [k, v] : labels) match &= alert_labels.value(k, "") == v;
          if (match) {
            found = alert;
            return true;
          }
        }
      }
      return false;
    });
    return found;
  }

  std::string Summary() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& n : notifications_) {
      out += n.path + " " + n.body.value("status", "?") + " " +
             n.body.value("groupLabels", json::object()).dump() + "\n";
    }
    return out;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Notification> notifications_;
};

// A real prometheus-alertmanager with the shipped example config, its webhook URLs pointed at
// `webhook_port` and its group timers shortened.
class Alertmanager {
 public:
  explicit Alertmanager(int webhook_port) : port_(FreePort()) {
    YAML::Node config = YAML::LoadFile((SourceDir() / "alerts/alertmanager.example.yml").string());
    Shorten(config["route"]);
    for (auto receiver : config["receivers"]) {
      // The WeCom receivers would call qyapi.weixin.qq.com: amtool checks them (tests/alerts);
      // here nothing leaves loopback.
      receiver.remove("wechat_configs");
      for (auto hook : receiver["webhook_configs"]) {
        std::string url = hook["url"].as<std::string>();
        hook["url"] = "http://127.0.0.1:" + std::to_string(webhook_port) +
                      url.substr(url.find('/', std::string("http://").size()));
      }
    }
    YAML::Emitter out;
    out << config;
    std::ofstream(dir_.path() / "am.yml") << out.c_str() << "\n";
    proc_ = std::make_unique<Subprocess>(
        std::vector<std::string>{
            "prometheus-alertmanager", "--config.file=" + (dir_.path() / "am.yml").string(),
            "--storage.path=" + (dir_.path() / "data").string(),
            "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--cluster.listen-address="},
        dir_.path() / "am.log");
    if (!WaitForPort(port_, seconds{20})) {
      throw std::runtime_error("alertmanager did not start:\n" + proc_->Output());
    }
  }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string Output() const { return proc_->Output(); }

 private:
  static void Shorten(YAML::Node route) {
    if (route["group_wait"]) route["group_wait"] = "1s";
    if (route["group_interval"]) route["group_interval"] = "1s";
    for (auto child : route["routes"]) Shorten(child);
  }
  TempDir dir_;
  int port_;
  std::unique_ptr<Subprocess> proc_;
};

constexpr const char* kRunbookBase = "https://git.example.cn/ops/wxcanary/-/blob/main";

// A real prometheus scraping wxcanary every second and evaluating the shipped rules with
// every `for:` cut to 3 s.
class Prometheus {
 public:
  Prometheus(int wxcanary_port, int alertmanager_port) : port_(FreePort()) {
    std::ofstream(dir_.path() / "rules.yml")
        << RewriteFor(Slurp(SourceDir() / "alerts/wxcanary.rules.yml"), "3s");
    std::ofstream(dir_.path() / "prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "  external_labels:\n    runbook_base_url: " << kRunbookBase << "\n"
        << "rule_files:\n  - " << (dir_.path() / "rules.yml").string() << "\n"
        << "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:"
        << alertmanager_port << "']\n"
        << "scrape_configs:\n  - job_name: wxcanary\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << wxcanary_port << "']\n";
    proc_ = std::make_unique<Subprocess>(
        std::vector<std::string>{"prometheus",
                                 "--config.file=" + (dir_.path() / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (dir_.path() / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                 "--rules.alert.resend-delay=1s"},
        dir_.path() / "prometheus.log");
    if (!WaitForPort(port_, seconds{20})) {
      throw std::runtime_error("prometheus did not start:\n" + proc_->Output());
    }
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10, 0);
  }

  // GET an API path; the parsed JSON (null when unreachable or not JSON).
  json Api(const std::string& path, const httplib::Params& params = {}) {
    auto res = client_->Get(path, params, httplib::Headers{});
    if (!res) return nullptr;
    return json::parse(res->body, nullptr, false);
  }
  // An instant query; the whole API answer.
  json Query(const std::string& promql) { return Api("/api/v1/query", {{"query", promql}}); }
  [[nodiscard]] std::string Output() const { return proc_->Output(); }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Subprocess> proc_;
  std::unique_ptr<httplib::Client> client_;
};

bool Eventually(const std::function<bool()>& pred, seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{250});
  }
  return pred();
}

std::string Config(const WxSim& sim, const RedisServer& redis,
                   const std::filesystem::path& secret) {
  const ConfigYaml::Fields every = {{"interval", "1s"}, {"timeout", "500ms"}};
  ConfigYaml::Fields prod = every, test = every;
  // Keeper in dry run: its metrics are exported (the rules and the dashboard select them) and it
  // writes nothing, so the incident replays as without it.
  prod.insert(prod.end(), {{"labels", "{team: pay}"},
                           {"heal", "dry_run"},
                           {"keep", "stable"},
                           {"keep_dry_run", "true"}});
  test.emplace_back("key", "test:ACCESS_TOKEN_CACHE:{app_id}");
  return ConfigYaml(sim.base_url())
      .WeChat("timeout", "1s")
      .Redis("cache", redis.address())
      .App(kAppId, {{"secret_file", secret.string()}})
      .Env("prod", "cache", prod)
      .Env("test", "cache", test);
}

// The number of samples an instant query returned; -1 with `error` set when it failed.
int ResultSize(const json& answer, std::string* error) {
  if (!answer.is_object() || answer.value("status", "") != "success") {
    *error = answer.is_object() ? answer.value("error", answer.dump()) : "no answer";
    return -1;
  }
  const auto& data = answer["data"];
  if (data.value("resultType", "") == "scalar") return 1;
  return static_cast<int>(data["result"].size());
}

class AlertingE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(secret_dir_.path() / "app-secret") << WxSim::kSecret << "\n";
  }

  void SetToken(const char* key, const std::string& token) {
    ASSERT_EQ(redis_.Cli({"SET", key, token, "EX", "7200"}), "OK");
  }

  TempDir secret_dir_;
  RedisServer redis_;
  WxSim sim_{{"--grace", "300"}};
};

TEST_F(AlertingE2E, the_incident_pages_through_alertmanager_and_resolves_when_the_token_is_fixed) {
  // test's old token, then prod's: both valid while wxsim's clock stands still.
  SetToken(kTestKey, sim_.FetchToken());
  SetToken(kProdKey, sim_.FetchToken());

  Webhook webhook;
  Alertmanager alertmanager(webhook.port());
  Daemon daemon(Config(sim_, redis_, secret_dir_.path() / "app-secret"));
  Prometheus prometheus(daemon.port(), alertmanager.port());
  auto diagnostics = [&] {
    return "webhook:\n" + webhook.Summary() + "\nprometheus:\n" + prometheus.Output() +
           "\nalertmanager:\n" + alertmanager.Output() + "\nwxcanary:\n" + daemon.Output();
  };

  // Both environments probe ok and Prometheus has scraped it.
  ASSERT_TRUE(Eventually(
      [&] {
        std::string err;
        return ResultSize(prometheus.Query(R"(wxcanary_probes_total{outcome="ok"} > 0)"), &err) >=
               2;
      },
      seconds{30}))
      << diagnostics();

  // test fetches a token of its own: prod's cached token is superseded.
  SetToken(kTestKey, sim_.FetchToken());
  ASSERT_TRUE(daemon.WaitFor(
      [](const Scrape& s) {
        return s.Sum("wxcanary_token_refreshes_total", {{"app_env", "test"}}) >= 1;
      },
      seconds{15}))
      << diagnostics();
  // The early warning: prod's token is predicted to die at the grace's end, and that pages now,
  // with the time left, while prod's probes are still ok.
  const std::map<std::string, std::string> warning = {{"alertname", "WxCanaryTokenSuperseded"},
                                                      {"app_id", kAppId},
                                                      {"app_env", "prod"},
                                                      {"cause_env", "test"},
                                                      {"severity", "critical"}};
  json early = webhook.WaitFor("/page", "firing", warning, seconds{60});
  ASSERT_FALSE(early.is_null()) << diagnostics();
  const std::string early_summary = early["annotations"].value("summary", "");
  EXPECT_NE(
      early_summary.find(std::string("The token cached for ") + kAppId + "/prod stops working in "),
      std::string::npos)
      << early_summary;
  EXPECT_TRUE(early_summary.find("4m ") != std::string::npos ||
              early_summary.find("5m ") != std::string::npos)
      << "time left: " << early_summary;
  EXPECT_EQ(early["annotations"].value("runbook_url", ""),
            std::string(kRunbookBase) + "/alerts/runbook.md#wxcanarytokensuperseded");
  EXPECT_TRUE(
      webhook.WaitFor("/page", "firing", {{"alertname", "WxCanaryTokenInvalid"}}, seconds{0})
          .is_null())
      << "the warning came after the damage";
  int warned = 0;
  for (const auto& event : daemon.LogEvents()) {
    if (event.value("event.action", "") != "token_superseded") continue;
    ++warned;
    EXPECT_EQ(event.value("log.level", ""), "warn") << event;
    EXPECT_EQ(event.value("labels.app_env", ""), "prod") << event;
    EXPECT_EQ(event.value("wxcanary.conflict.cause_env", ""), "test") << event;
    EXPECT_FALSE(event.value("wxcanary.token.dies_at", "").empty()) << event;
  }
  EXPECT_EQ(warned, 1) << daemon.Output();
  std::cout << "early warning paged " << early_summary << "\n";

  // Five minutes later the overlap is over: prod's token answers 40001, Redis still holds it.
  sim_.Advance(301);

  const std::map<std::string, std::string> page = {{"alertname", "WxCanaryTokenInvalid"},
                                                   {"app_id", kAppId},
                                                   {"app_env", "prod"},
                                                   {"severity", "critical"}};
  auto start = Clock::now();
  json fired = webhook.WaitFor("/page", "firing", page, seconds{60});
  ASSERT_FALSE(fired.is_null()) << diagnostics();
  auto page_latency = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(page_latency, 30.0);
  // The external label makes the relative runbook link absolute.
  EXPECT_EQ(fired["annotations"].value("runbook_url", ""),
            std::string(kRunbookBase) + "/alerts/runbook.md#wxcanarytokeninvalid");
  // While it lasts, every query of the dashboard's "Failing now" table lists the target.
  for (const auto& q : LoadDashboardQueries(SourceDir() / "dashboards/wxcanary.json")) {
    if (q.panel != "Failing now") continue;
    std::string err;
    const std::string promql = ExpandGrafanaVariables(q.expr, "1m");
    const json answer = prometheus.Query(promql);
    EXPECT_GT(ResultSize(answer, &err), 0) << q.ref_id << ": " << promql << " " << err;
    EXPECT_NE(answer.dump().find("\"app_env\":\"prod\""), std::string::npos) << q.ref_id << answer;
  }
  EXPECT_NE(fired["annotations"].value("description", "").find(std::string(kAppId) + "/prod:"),
            std::string::npos);
  EXPECT_NE(fired["annotations"].value("summary", "").find(std::string(kAppId) + "/prod"),
            std::string::npos);
  std::cout << "page arrived " << page_latency << " s after the grace ended\n";

  // test's own token is fine: it never pages.
  EXPECT_TRUE(webhook
                  .WaitFor("/page", "firing",
                           {{"alertname", "WxCanaryTokenInvalid"}, {"app_env", "test"}}, seconds{0})
                  .is_null());

  // The fix: a fresh token in prod's key. The page resolves.
  SetToken(kProdKey, sim_.FetchToken());
  start = Clock::now();
  json resolved = webhook.WaitFor("/page", "resolved", page, seconds{60});
  ASSERT_FALSE(resolved.is_null()) << diagnostics();
  std::cout << "resolved " << std::chrono::duration<double>(Clock::now() - start).count()
            << " s after the fix\n";

  // Every rule evaluates without error in the real Prometheus.
  json rules = prometheus.Api("/api/v1/rules");
  ASSERT_EQ(rules.value("status", ""), "success") << rules.dump();
  int rule_count = 0;
  for (const auto& group : rules["data"]["groups"]) {
    for (const auto& rule : group["rules"]) {
      ++rule_count;
      EXPECT_EQ(rule.value("health", ""), "ok")
          << rule.value("name", "") << ": " << rule.value("lastError", "");
    }
  }
  EXPECT_EQ(rule_count,
            static_cast<int>(LoadRules(SourceDir() / "alerts/wxcanary.rules.yml").size()));

  // Every dashboard query returns data. The one exception: WeChat's own quota count exists
  // only once the daemon has read quota/get (optional, at most every 10 minutes); it may be
  // empty only if the daemon's log shows no successful quota_read.
  // Likewise the keeper's failed fetches by errcode exist only after a failure.
  bool quota_read = false;
  bool keeper_fetch_failed = false;
  for (const auto& event : daemon.LogEvents()) {
    quota_read |= event.value("event.action", "") == "quota_read" &&
                  event.value("event.outcome", "") == "success";
    keeper_fetch_failed |= event.value("event.action", "") == "keeper_fetch_failed";
  }
  auto dashboard = LoadDashboardQueries(SourceDir() / "dashboards/wxcanary.json");
  ASSERT_FALSE(dashboard.empty());
  for (const auto& q : dashboard) {
    std::string err;
    std::string promql = ExpandGrafanaVariables(q.expr, "1m");
    int n = ResultSize(prometheus.Query(promql), &err);
    // "Failing now" is empty once the incident is over: it was checked while it lasted.
    const bool may_be_empty =
        (!quota_read && promql.find("wxcanary_app_token_quota_used") != std::string::npos) ||
        (!keeper_fetch_failed &&
         promql.find("wxcanary_keeper_fetch_errors_total") != std::string::npos) ||
        q.panel == "Failing now";
    if (n == 0 && may_be_empty) {
      std::cout << "note: panel \"" << q.panel << "\" " << q.ref_id
                << " empty: no quota/get read or no failed keeper fetch yet\n";
      continue;
    }
    EXPECT_GT(n, 0) << "dashboard panel \"" << q.panel << "\" " << q.ref_id << ": " << promql
                    << (n < 0 ? " failed: " + err : " returned no data");
  }

  // Every rule expression is valid, and every metric it selects exists, so no rule is
  // silently watching a metric name nobody exports.
  std::set<std::string> checked;
  for (const auto& rule : LoadRules(SourceDir() / "alerts/wxcanary.rules.yml")) {
    std::string err;
    EXPECT_GE(ResultSize(prometheus.Query(rule.expr), &err), 0) << rule.name << ": " << err;
    for (const auto& metric : SelectedMetrics(rule.expr)) {
      if (!checked.insert(metric).second) continue;
      // Exported at any time during the run: a series that ended (the superseded token's
      // death time, gone once it died) gets a staleness marker, and an instant query of it is
      // empty although Prometheus scraped it (the early page proved it did).
      std::string selector =
          "last_over_time(" + (metric == "up" ? R"(up{job="wxcanary"})" : metric) + "[1h])";
      EXPECT_GT(ResultSize(prometheus.Query(selector), &err), 0)
          << rule.name << " selects " << metric << ", which has no data" << err;
    }
  }
}

}  // namespace
}  // namespace wxcanary::testing
