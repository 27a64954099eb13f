// The status page as an operator sees it: Debian's chromium, headless, loads `/` of a real
// daemon (redis-server + wxsim) with one healthy and one failing target, and we read the DOM it
// rendered. Also saves a screenshot under the build folder (status-page.png).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/fingerprint.h"
#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

const std::string kApp = WxSim::kAppId;
const std::string kSecret = WxSim::kSecret;

std::string Key() { return "ACCESS_TOKEN_CACHE:" + kApp; }

// prod reads Redis db 0 (self-heal in dry run), dev db 1; one AppId, as in the incident.
std::string Config(const WxSim& sim, const RedisServer& redis) {
  return ConfigYaml(sim.base_url())
      .Workers(4)
      .Default("probe", "msg_sec_check")
      .Redis("r0", redis.address(), {{"db", "0"}})
      .Redis("r1", redis.address(), {{"db", "1"}})
      .App(kApp)
      .Env("prod", "r0", {{"heal", "dry_run"}})
      .Env("dev", "r1");
}

Labels L(const std::string& env, Labels extra = {}) {
  extra["app_id"] = kApp;
  extra["app_env"] = env;
  return extra;
}

std::optional<std::filesystem::path> FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::filesystem::path p = std::filesystem::path(dir) / name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Headless chromium, kept off every network but loopback: no background fetches, no component
// updates, every host name resolving to nothing (the page is loaded by IP).
class Chromium {
 public:
  explicit Chromium(std::filesystem::path binary) : binary_(std::move(binary)) {}

  // Runs chromium with `args` + url; returns its stdout. Fails the test on a non-zero exit.
  std::string Run(const std::vector<std::string>& args, const std::string& url) {
    std::vector<std::string> argv = {binary_.string(),
                                     "--headless",
                                     "--no-sandbox",
                                     "--disable-gpu",
                                     "--disable-background-networking",
                                     "--disable-component-update",
                                     "--disable-sync",
                                     "--disable-default-apps",
                                     "--disable-extensions",
                                     "--no-first-run",
                                     "--no-pings",
                                     "--disable-domain-reliability",
                                     "--disable-client-side-phishing-detection",
                                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                                     "--user-data-dir=" + (dir_.path() / "profile").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    std::string cmd;
    for (const auto& a : argv) cmd += "'" + a + "' ";
    const auto out = dir_.path() / "stdout", err = dir_.path() / "stderr";
    cmd += "> '" + out.string() + "' 2> '" + err.string() + "'";
    Subprocess p({"/bin/sh", "-c", cmd}, dir_.path() / "sh.out");
    const int status = p.Wait(90s);
    EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "chromium failed (status " << status << "):\n"
        << ReadFile(err);
    return ReadFile(out);
  }
  std::string Dom(const std::string& url) { return Run({"--dump-dom"}, url); }

 private:
  std::filesystem::path binary_;
  TempDir dir_;
};

struct Row {
  std::string app_env;
  std::string state;
  std::string html;
};

// The table rows chromium rendered, in order.
std::vector<Row> Rows(const std::string& dom) {
  std::vector<Row> rows;
  static const std::regex kRow(
      "<tr class=\"[a-z_]+\" data-app-id=\"[^\"]*\" data-app-env=\"([^\"]*)\" "
      "data-state=\"([a-z_]+)\">([\\s\\S]*?)</tr>");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), kRow); it != std::sregex_iterator();
       ++it)
    rows.push_back({(*it)[1], (*it)[2], (*it)[3]});
  return rows;
}

TEST(StatusPageBrowser, chromium_shows_the_failing_target_first_with_its_errcode_and_cause) {
  const auto chromium = FindInPath("chromium");
  if (!chromium) GTEST_SKIP() << "chromium is not installed (scripts/bootstrap installs it)";

  RedisServer redis;
  WxSim sim;
  auto cache = [&](int db) {
    std::string token = sim.FetchToken(kApp, kSecret);
    redis.Cli({"SET", Key(), token, "EX", "7200"}, db);
    return token;
  };
  const std::string prod_token = cache(0);
  const std::string dev_token = cache(1);
  Daemon d(Config(sim, redis));
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    return s.Value("wxcanary_probes_total", L("prod", {{"outcome", "ok"}})).value_or(0) >= 1 &&
           s.Value("wxcanary_probes_total", L("dev", {{"outcome", "ok"}})).value_or(0) >= 1;
  })) << d.ScrapeMetrics().text();

  // dev fetches its own token for prod's AppId: prod's cached one dies (the incident).
  const std::string dev_new = cache(1);
  sim.Advance(301);
  ASSERT_TRUE(d.WaitFor(
      [](const Scrape& s) {
        return s.Value("wxcanary_token_invalidations_total", L("prod", {{"cause_env", "dev"}}))
                       .value_or(0) == 1 &&
               s.Value("wxcanary_heals_total",
                       L("prod", {{"action", "dry_run"}, {"result", "done"}}))
                       .value_or(0) == 1 &&
               s.Value("wxcanary_probes_total", L("dev", {{"outcome", "ok"}})).value_or(0) >= 3;
      },
      20s))
      << d.ScrapeMetrics().text();

  Chromium browser(*chromium);
  const std::string base = "http://127.0.0.1:" + std::to_string(d.port()) + "/";
  const std::string dom = browser.Dom(base);
  const auto rows = Rows(dom);
  ASSERT_EQ(rows.size(), 2u) << dom;
  // Failing first although "dev" sorts before "prod".
  EXPECT_EQ(rows[0].app_env, "prod");
  EXPECT_EQ(rows[0].state, "failing");
  EXPECT_NE(rows[0].html.find("<td class=\"errcode\">40001</td>"), std::string::npos)
      << rows[0].html;
  EXPECT_NE(rows[0].html.find("token_invalid"), std::string::npos);
  EXPECT_NE(rows[0].html.find("last invalidated by <b class=\"cause\">dev</b>"), std::string::npos)
      << rows[0].html;
  EXPECT_NE(rows[0].html.find("dry_run <b>done</b>"), std::string::npos) << rows[0].html;
  EXPECT_NE(rows[0].html.find(Fingerprint(prod_token)), std::string::npos);
  EXPECT_EQ(rows[1].app_env, "dev");
  EXPECT_EQ(rows[1].state, "ok");
  EXPECT_NE(rows[1].html.find(Fingerprint(dev_new)), std::string::npos);
  EXPECT_NE(dom.find("<span id=\"count-targets\">2 targets</span>"), std::string::npos) << dom;
  EXPECT_NE(dom.find(">1 failing</span>"), std::string::npos);

  // The filter form is a GET: its URL is what submitting it loads.
  const std::string filtered = browser.Dom(base + "?app_id=&app_env=dev");
  const auto dev_rows = Rows(filtered);
  ASSERT_EQ(dev_rows.size(), 1u) << filtered;
  EXPECT_EQ(dev_rows[0].app_env, "dev");
  EXPECT_NE(filtered.find("value=\"dev\""), std::string::npos);  // the form keeps the filter
  EXPECT_NE(filtered.find("of 1 matching targets"), std::string::npos);

  for (const std::string* page : {&dom, &filtered}) {
    for (const std::string& secret : {prod_token, dev_token, dev_new, kSecret})
      EXPECT_EQ(page->find(secret), std::string::npos) << "a token or secret is in the DOM";
  }

  // The picture for the README (docs/status-page.png is a copy of it).
  const auto png = BuiltBinary("wxcanary").parent_path().parent_path() / "status-page.png";
  std::filesystem::remove(png);
  browser.Run({"--hide-scrollbars", "--window-size=1400,900", "--screenshot=" + png.string()},
              base + "?refresh=off");
  const std::string bytes = ReadFile(png);
  ASSERT_GT(bytes.size(), 10'000u) << png;
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::cout << "screenshot: " << png.string() << "\n";
}

}  // namespace
}  // namespace wxcanary::testing
