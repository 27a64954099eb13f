// RunProbe against a real redis-server and wxsim: the probe's one timeout covers the Redis read
// and the call, and a read that used it all does not send a doomed call.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include <prometheus/registry.h>

#include <map>
#include <thread>

#include "probe/probe.h"
#include "probe/runner.h"
#include "support/fakes.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::probe {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::WxSim;

// Monotonic time moves `step` on every reading, so whatever RunProbe times between two
// readings (the Redis read) appears to have taken `step`.
class SteppingClock final : public Clock {
 public:
  explicit SteppingClock(std::chrono::milliseconds step) : step_(step) {}
  SystemTime SystemNow() override { return SystemTime{std::chrono::seconds{1'700'000'000}}; }
  MonotonicTime MonotonicNow() override { return MonotonicTime{} + step_ * readings_++; }
  void WaitUntil(std::condition_variable&, std::unique_lock<std::mutex>&, MonotonicTime) override {}

 private:
  std::chrono::milliseconds step_;
  std::atomic<int> readings_{0};
};

class RunProbeTest : public ::testing::Test {
 protected:
  RunProbeTest() {
    token_ = sim_.FetchToken();
    EXPECT_EQ(redis_.Cli({"SET", "tok", token_}), "OK");
    config::Redis rc;
    rc.name = "r";
    rc.host = "127.0.0.1";
    rc.port = redis_.port();
    redis_conn_ = std::make_unique<source::RedisConnection>(rc, RealClock::Instance());
    config::WeChat wc;
    wc.base_url = sim_.base_url();
    client_ = std::make_unique<wechat::Client>(wc);
    target_.app_id = WxSim::kAppId;
    target_.app_env = "prod";
    target_.env.name = "prod";
    target_.env.redis = "r";
    target_.env.key = "tok";
    target_.env.probe = config::ProbeKind::kMsgSecCheck;
    target_.env.timeout = 900ms;
  }

  int CallsSeen() {
    auto calls = sim_.State()["apps"][WxSim::kAppId]["calls"];
    return calls.contains("/wxa/msg_sec_check") ? calls["/wxa/msg_sec_check"].value("0", 0) : 0;
  }

  WxSim sim_;
  RedisServer redis_;
  std::string token_;
  std::unique_ptr<source::RedisConnection> redis_conn_;
  std::unique_ptr<wechat::Client> client_;
  Target target_;
};

TEST_F(RunProbeTest, a_read_within_the_timeout_leaves_the_rest_to_the_call) {
  SteppingClock clock(100ms);
  ProbeResult r = RunProbe(target_, *redis_conn_, *client_, clock);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.detail;
  EXPECT_EQ(r.fingerprint, Secret(token_).Fingerprint());
  EXPECT_EQ(CallsSeen(), 1);
}

TEST_F(RunProbeTest, a_read_that_used_the_whole_timeout_skips_the_call_and_says_so) {
  SteppingClock clock(900ms);
  ProbeResult r = RunProbe(target_, *redis_conn_, *client_, clock);
  EXPECT_EQ(r.outcome, Outcome::kTransportError);
  EXPECT_EQ(r.detail, "probe timeout 900 ms used up before the call: the Redis read took 900 ms");
  EXPECT_TRUE(r.token_present);  // the token was read; only the call was not made
  EXPECT_EQ(CallsSeen(), 0);
}

TEST_F(RunProbeTest, less_than_the_minimum_call_budget_left_also_skips_the_call) {
  SteppingClock clock(target_.env.timeout - kMinCallBudget + 1ms);  // 9 ms left
  ProbeResult r = RunProbe(target_, *redis_conn_, *client_, clock);
  EXPECT_EQ(r.outcome, Outcome::kTransportError);
  EXPECT_EQ(r.detail, "probe timeout 900 ms used up before the call: the Redis read took 891 ms");
  EXPECT_EQ(CallsSeen(), 0);
}

// Issue 21.5: the reader's precise reason reaches the probe result (and so the log), instead of
// one "no token at key" for an absent key, an empty value and a JSON null alike.
TEST_F(RunProbeTest, a_missing_token_keeps_the_readers_reason) {
  SteppingClock clock(1ms);
  target_.env.key = "absent";
  EXPECT_EQ(RunProbe(target_, *redis_conn_, *client_, clock).detail, "key does not exist");
  redis_.Cli({"SET", "empty", ""});
  target_.env.key = "empty";
  ProbeResult empty = RunProbe(target_, *redis_conn_, *client_, clock);
  EXPECT_EQ(empty.outcome, Outcome::kTokenMissing);
  EXPECT_EQ(empty.detail, "value is empty");
  redis_.Cli({"SET", "null", R"({"access_token":null})"});
  target_.env.key = "null";
  target_.env.storage = config::Storage::kJson;
  target_.env.json_path = "access_token";
  EXPECT_EQ(RunProbe(target_, *redis_conn_, *client_, clock).detail,
            R"(json_path "access_token" is null, not a string)");
  EXPECT_EQ(CallsSeen(), 0);
}

// The runner's event loop against the same real servers: targets on one plain Redis are probed
// with no worker thread at all, each outcome what RunProbe would say, and a reload that changes
// their Redis entry moves them to a new connection without a false "Redis down".
TEST_F(RunProbeTest, the_runner_probes_a_plain_redis_on_its_event_loop_with_no_worker_threads) {
  redis_.Cli({"RPUSH", "alist", "x"});
  redis_.Cli({"SET", "bogus", "not-a-token-the-api-issued"});
  config::Config cfg;
  cfg.workers = 4;
  config::Redis rc;
  rc.name = "r";
  rc.host = "127.0.0.1";
  rc.port = redis_.port();
  cfg.redis["r"] = rc;
  cfg.wechat.base_url = sim_.base_url();
  config::App app;
  app.app_id = WxSim::kAppId;
  for (const auto& [name, key] : std::map<std::string, std::string>{
           {"prod", "tok"}, {"absent", "absent"}, {"list", "alist"}, {"bogus", "bogus"}}) {
    config::Environment e = target_.env;
    e.name = name;
    e.key = key;
    e.interval = 200ms;
    app.environments.push_back(e);
  }
  cfg.apps.push_back(app);

  prometheus::Registry registry;
  testing::RecordingSink sink;
  std::mutex health_mu;
  std::vector<std::pair<bool, std::string>> health;
  Runner runner(RealClock::Instance(), registry, {&sink},
                [&](const std::string& redis, bool up, const std::string& error) {
                  std::lock_guard lock(health_mu);
                  health.emplace_back(up, redis + ": " + error);
                });
  runner.Start(cfg);
  EXPECT_EQ(runner.worker_count(), 0u);
  auto records_of = [&](const std::string& env) {
    std::vector<ProbeResult> out;
    for (const auto& [t, r] : sink.records())
      if (t.app_env == env) out.push_back(r);
    return out;
  };
  auto wait_for = [&](auto pred) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (!pred() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
    return pred();
  };
  ASSERT_TRUE(wait_for([&] {
    for (const char* env : {"prod", "absent", "list", "bogus"})
      if (records_of(env).size() < 3) return false;
    return true;
  }));
  for (const auto& r : records_of("prod")) {
    EXPECT_EQ(r.outcome, Outcome::kOk) << r.detail;
    EXPECT_EQ(r.fingerprint, Secret(token_).Fingerprint());
    EXPECT_GT(r.duration.count(), 0);
  }
  for (const auto& r : records_of("absent")) EXPECT_EQ(r.detail, "key does not exist");
  for (const auto& r : records_of("list")) {
    EXPECT_EQ(r.outcome, Outcome::kTokenMissing);
    EXPECT_EQ(r.detail, "key alist holds a list, not the string that storage string reads");
  }
  for (const auto& r : records_of("bogus")) {  // the API's verdict on a token it never issued
    EXPECT_EQ(r.outcome, Outcome::kTokenMalformed) << r.detail;
    EXPECT_EQ(r.errcode, 40014);
  }

  // A new Redis entry (another db, where nothing is stored): new connection, same targets.
  cfg.redis["r"].db = 1;
  runner.Start(cfg);
  ASSERT_TRUE(wait_for([&] {
    const auto prod = records_of("prod");
    return !prod.empty() && prod.back().outcome == Outcome::kTokenMissing;
  }));
  runner.Stop();
  EXPECT_EQ(runner.in_flight_count(), 0u);
  // What the API received: one accepted canary call per ok probe recorded (one more at most:
  // a call answered as the stop ended its probe).
  const auto records = sink.records();
  const auto ok =
      static_cast<int>(std::count_if(records.begin(), records.end(), [](const auto& rec) {
        return rec.second.outcome == Outcome::kOk;
      }));
  EXPECT_GE(CallsSeen(), ok);
  EXPECT_LE(CallsSeen(), ok + 1);
  std::lock_guard lock(health_mu);
  ASSERT_FALSE(health.empty());
  for (const auto& [up, what] : health) EXPECT_TRUE(up) << what;  // never a false "down"
}

}  // namespace
}  // namespace wxcanary::probe
