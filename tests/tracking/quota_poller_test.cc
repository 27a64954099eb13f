#include "tracking/quota_poller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <condition_variable>
#include <mutex>
#include <sstream>

#include "support/fakes.h"

namespace wxcanary::tracking {
namespace {

using std::chrono::minutes;
using testing::CapturingLogger;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "ACCESS-TOKEN-never-logged";

std::optional<double> Value(prometheus::Registry& registry, const std::string& series) {
  std::istringstream in(prometheus::TextSerializer().Serialize(registry.Collect()));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return std::nullopt;
}

wechat::HttpResponse Ok(std::string body) {
  wechat::HttpResponse r;
  r.transport_ok = true;
  r.http_status = 200;
  r.body = std::move(body);
  return r;
}

// A scripted WeChat: answers stable_token and quota/get, records every call.
struct FakeWeChat {
  struct Call {
    std::string path, body;
  };
  std::vector<Call> calls;
  wechat::HttpResponse stable =
      Ok(R"({"access_token":")" + std::string(kToken) + R"(","expires_in":7000})");
  wechat::HttpResponse quota =
      Ok(R"({"errcode":0,"errmsg":"ok","quota":{"daily_limit":2000,"used":17,"remain":1983}})");

  QuotaPoller::PostFn Fn() {
    return [this](const std::string& path, const std::string& body) {
      calls.push_back({path, body});
      return path.rfind("/cgi-bin/stable_token", 0) == 0 ? stable : quota;
    };
  }
};

class QuotaPollerTest : public ::testing::Test {
 protected:
  QuotaPollerTest() : poller_(registry_, logger_, clock_, config::Conflict{}, wechat_.Fn()) {
    poller_.SetApps({{"wxA", Secret("secret-A")}});
  }
  prometheus::Registry registry_;
  CapturingLogger logger_;
  FakeClock clock_;
  FakeWeChat wechat_;
  QuotaPoller poller_;
};

TEST_F(QuotaPollerTest, exports_used_and_limit_from_quota_get) {
  EXPECT_EQ(Value(registry_, R"(wxcanary_app_token_quota_used{app_id="wxA"})"), std::nullopt);
  EXPECT_EQ(poller_.PollDue(), 1);
  EXPECT_EQ(Value(registry_, R"(wxcanary_app_token_quota_used{app_id="wxA"})"), 17);
  EXPECT_EQ(Value(registry_, R"(wxcanary_app_token_quota_limit{app_id="wxA"})"), 2000);
  const auto events = logger_.WithAction("quota_read");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].level, telemetry::Level::kInfo);
  EXPECT_EQ(events[0].fields["wxcanary.quota.used"], 17);
}

TEST_F(QuotaPollerTest, gets_its_token_from_stable_token_without_force_and_never_calls_token) {
  poller_.PollDue();
  ASSERT_EQ(wechat_.calls.size(), 2u);
  EXPECT_EQ(wechat_.calls[0].path, "/cgi-bin/stable_token");
  EXPECT_EQ(nlohmann::json::parse(wechat_.calls[0].body),
            nlohmann::json({{"grant_type", "client_credential"},
                            {"appid", "wxA"},
                            {"secret", "secret-A"},
                            {"force_refresh", false}}));
  EXPECT_EQ(wechat_.calls[1].path,
            "/cgi-bin/openapi/quota/get?access_token=" + std::string(kToken));
  EXPECT_EQ(nlohmann::json::parse(wechat_.calls[1].body),
            nlohmann::json({{"cgi_path", "/cgi-bin/token"}}));
  for (const auto& c : wechat_.calls) {
    EXPECT_THAT(c.path, Not(HasSubstr("/cgi-bin/token?")));
    EXPECT_THAT(c.path, Not(HasSubstr("clear_quota")));
  }
}

TEST_F(QuotaPollerTest, polls_each_app_at_most_once_per_ten_minutes) {
  EXPECT_EQ(poller_.PollDue(), 1);
  EXPECT_EQ(poller_.PollDue(), 0);
  clock_.Advance(minutes{9});
  EXPECT_EQ(poller_.PollDue(), 0);
  clock_.Advance(minutes{1});
  EXPECT_EQ(poller_.PollDue(), 1);
  EXPECT_EQ(wechat_.calls.size(), 4u);

  // A configured interval below 10 minutes is raised to 10.
  config::Conflict fast;
  fast.quota_poll_interval = minutes{1};
  prometheus::Registry registry;
  FakeWeChat wechat;
  QuotaPoller poller(registry, logger_, clock_, fast, wechat.Fn());
  poller.SetApps({{"wxA", Secret("s")}});
  EXPECT_EQ(poller.PollDue(), 1);
  clock_.Advance(minutes{5});
  EXPECT_EQ(poller.PollDue(), 0);
}

TEST_F(QuotaPollerTest, a_failure_is_logged_without_the_token_and_not_retried_at_once) {
  struct Case {
    std::string name;
    wechat::HttpResponse stable, quota;
    std::string expected;
  };
  wechat::HttpResponse down;
  down.transport_error = "Connection refused";
  const Case cases[] = {
      {"stable_token_error", Ok(R"({"errcode":40125,"errmsg":"invalid appsecret rid: 1-2-3"})"),
       wechat_.quota, "stable_token: errcode 40125"},
      {"transport", down, wechat_.quota, "stable_token: transport error: Connection refused"},
      {"no_permission", wechat_.stable,
       Ok(R"({"errcode":76022,"errmsg":"no permission for )" + std::string(kToken) +
          R"( rid: 6565a1b2-0000abcd-12345678"})"),
       "quota/get answered errcode 76022"},
      {"not_json", wechat_.stable, Ok("<html>"), "quota/get: answer is not a JSON object"},
      {"no_quota", wechat_.stable, Ok(R"({"errcode":0})"), "no \"quota\" object"},
  };
  for (const auto& c : cases) {
    prometheus::Registry registry;
    CapturingLogger logger;
    FakeWeChat wechat;
    wechat.stable = c.stable;
    wechat.quota = c.quota;
    QuotaPoller poller(registry, logger, clock_, config::Conflict{}, wechat.Fn());
    poller.SetApps({{"wxA", Secret("secret-A")}});
    EXPECT_EQ(poller.PollDue(), 1) << c.name;
    EXPECT_EQ(poller.PollDue(), 0) << c.name;
    const auto events = logger.WithAction("quota_read");
    ASSERT_EQ(events.size(), 1u) << c.name;
    EXPECT_EQ(events[0].level, telemetry::Level::kWarn) << c.name;
    EXPECT_THAT(events[0].fields.value("error.message", ""), HasSubstr(c.expected)) << c.name;
    EXPECT_THAT(events[0].fields.dump() + events[0].message, Not(HasSubstr(kToken))) << c.name;
    EXPECT_THAT(events[0].fields.dump() + events[0].message, Not(HasSubstr("secret-A"))) << c.name;
    EXPECT_EQ(Value(registry, R"(wxcanary_app_token_quota_used{app_id="wxA"})"), std::nullopt)
        << c.name;
  }
}

TEST_F(QuotaPollerTest, dropping_an_app_removes_its_series) {
  poller_.PollDue();
  poller_.SetApps({});
  EXPECT_EQ(Value(registry_, R"(wxcanary_app_token_quota_used{app_id="wxA"})"), std::nullopt);
  clock_.Advance(minutes{10});
  EXPECT_EQ(poller_.PollDue(), 0);
}

// Two WeChat endpoints told apart by base_url: which one each call went to. Thread-safe (the
// background thread posts while the test reads).
struct TwoWeChats {
  std::mutex mu;
  std::condition_variable posted;
  std::vector<std::string> calls;  // "base_url path"
  QuotaPoller::PostFactory Factory() {
    return [this](const config::WeChat& w) -> QuotaPoller::PostFn {
      return [this, base = w.base_url](const std::string& path, const std::string&) {
        std::lock_guard lock(mu);
        calls.push_back(base + " " + path.substr(0, path.find('?')));
        posted.notify_all();
        return path.rfind("/cgi-bin/stable_token", 0) == 0
                   ? Ok(R"({"access_token":")" + std::string(kToken) + R"(","expires_in":7000})")
                   : Ok(R"({"errcode":0,"quota":{"daily_limit":2000,"used":3}})");
      };
    };
  }
  bool WaitForCalls(size_t n) {
    std::unique_lock lock(mu);
    return posted.wait_for(lock, std::chrono::seconds{10}, [&] { return calls.size() >= n; });
  }
  std::vector<std::string> Calls() {
    std::lock_guard lock(mu);
    return calls;
  }
};

config::Config PollerConfig(const std::string& base_url, const std::string& app) {
  config::Config cfg;
  cfg.wechat.base_url = base_url;
  cfg.apps.resize(1);
  cfg.apps[0].app_id = app;
  cfg.apps[0].secret_value = Secret("secret-" + app);
  return cfg;
}

TEST(QuotaPollerApply, after_a_reload_polls_go_to_the_new_wechat_settings_and_apps) {
  prometheus::Registry registry;
  CapturingLogger logger;
  FakeClock clock;
  TwoWeChats wechat;
  QuotaPoller poller(registry, logger, clock, PollerConfig("http://old", "wxA"), wechat.Factory());
  EXPECT_EQ(poller.PollDue(), 1);
  poller.Apply(PollerConfig("http://new", "wxB"));
  clock.Advance(minutes{10});
  EXPECT_EQ(poller.PollDue(), 1);  // wxB only: wxA left the config
  EXPECT_EQ(wechat.Calls(), (std::vector<std::string>{
                                "http://old /cgi-bin/stable_token",
                                "http://old /cgi-bin/openapi/quota/get",
                                "http://new /cgi-bin/stable_token",
                                "http://new /cgi-bin/openapi/quota/get",
                            }));
  EXPECT_EQ(Value(registry, R"(wxcanary_app_token_quota_used{app_id="wxA"})"), std::nullopt);
  EXPECT_EQ(Value(registry, R"(wxcanary_app_token_quota_used{app_id="wxB"})"), 3);
}

TEST(QuotaPollerApply, the_background_thread_waits_on_the_clock_between_polls) {
  prometheus::Registry registry;
  CapturingLogger logger;
  FakeClock clock;
  TwoWeChats wechat;
  QuotaPoller poller(registry, logger, clock, PollerConfig("http://old", "wxA"), wechat.Factory());
  poller.Start();
  ASSERT_TRUE(wechat.WaitForCalls(2));  // the first poll, at once
  poller.Apply(PollerConfig("http://new", "wxA"));
  // Until the thread waits on the clock again (after a poll or a check that found none due).
  auto waiting = [&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (clock.waiters() != 1)
      if (std::chrono::steady_clock::now() > until) return false;
    return true;
  };
  // Not due for 10 minutes of the clock; each second of it wakes the thread (it waits on the
  // clock, not on the wall) and it polls exactly when due.
  ASSERT_TRUE(waiting());
  for (int s = 0; s < 599; ++s) {
    clock.Advance(std::chrono::seconds{1});
    ASSERT_TRUE(waiting()) << s;
  }
  EXPECT_EQ(wechat.Calls().size(), 2u);
  clock.Advance(std::chrono::seconds{1});
  ASSERT_TRUE(wechat.WaitForCalls(4));
  EXPECT_EQ(wechat.Calls()[2], "http://new /cgi-bin/stable_token");
  poller.Stop();
}

TEST(AppSecrets, lists_only_apps_with_a_secret) {
  config::Config cfg;
  cfg.apps.resize(2);
  cfg.apps[0].app_id = "wxA";
  cfg.apps[0].secret_value = Secret("s");
  cfg.apps[1].app_id = "wxB";
  const auto secrets = AppSecrets(cfg);
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets.begin()->first, "wxA");
}

}  // namespace
}  // namespace wxcanary::tracking
