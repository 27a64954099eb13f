// RunProbe against a real redis-server and wxsim: the probe's one timeout covers the Redis read
// and the call, and a read that used it all does not send a doomed call.
#include <gtest/gtest.h>

#include <atomic>

#include "probe/probe.h"
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

}  // namespace
}  // namespace wxcanary::probe
