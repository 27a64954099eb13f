// For each SDK preset: store a real token exactly as that SDK does (its key, its bytes) in a
// real redis-server, then RunProbe it against wxsim: ok; after another fetch of the AppId's
// token (grace 0), the incident (40001); and the heal's compare-and-delete removes that key.
// JDK bytes come from JdkSerializeString, which tests/common/jdk_string_test.cc holds to the
// bytes Java itself writes; PHP and JSON forms are written out literally
// (tests/support/sdk_values).
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <memory>

#include "common/jdk_string.h"
#include "config/config.h"
#include "probe/probe.h"
#include "support/redis_server.h"
#include "support/sdk_values.h"
#include "support/wxsim.h"

namespace wxcanary::probe {
namespace {

using testing::AppRedis;
using testing::JsonStringValue;
using testing::PhpString;
using testing::RedisServer;
using testing::WxSim;

struct Layout {
  const char* sdk;
  const char* extra;  // more flow-map entries for the environment
  // The bytes the SDK stores for `token`.
  std::string (*store)(const std::string& token);
  int64_t expect_ttl;  // -1: the key has no TTL and no other expiry source; else about this
};

class SdkLayouts : public ::testing::TestWithParam<Layout> {
 protected:
  SdkLayouts() : sim_({"--grace", "0"}), app_(redis_.port()) {
    ::setenv("WXCANARY_TEST_LAYOUT_SECRET", WxSim::kSecret, 1);
  }

  Target LoadTarget(const Layout& l) {
    config::Config cfg =
        config::LoadString("redis: {r: {address: " + redis_.address() +
                           "}}\n"
                           "apps:\n"
                           "  - app_id: " +
                           std::string(WxSim::kAppId) +
                           "\n"
                           "    secret_env: WXCANARY_TEST_LAYOUT_SECRET\n"
                           "    environments:\n"
                           "      - {name: prod, redis: r, probe: msg_sec_check, sdk: " +
                           l.sdk + l.extra + "}\n");
    Target t;
    t.app_id = WxSim::kAppId;
    t.app_env = "prod";
    t.env = cfg.apps[0].environments[0];
    redis_cfg_ = cfg.redis.at("r");
    return t;
  }

  WxSim sim_;
  RedisServer redis_;
  AppRedis app_;
  config::Redis redis_cfg_;
};

TEST_P(SdkLayouts, probes_ok_detects_the_incident_and_heals) {
  const Layout& l = GetParam();
  Target target = LoadTarget(l);
  const std::string key = config::RedisKey(target.env);
  const std::string token = sim_.FetchToken();
  app_.Set(key, l.store(token));
  if (!target.env.expiry_key.empty())
    app_.Set(target.env.expiry_key, std::to_string(std::time(nullptr) + 7200));

  source::RedisConnection conn(redis_cfg_, RealClock::Instance());
  config::WeChat wc;
  wc.base_url = sim_.base_url();
  wechat::Client client(wc);

  ProbeResult ok = RunProbe(target, conn, client, RealClock::Instance());
  ASSERT_EQ(ok.outcome, Outcome::kOk) << OutcomeName(ok.outcome) << ": " << ok.detail;
  EXPECT_EQ(ok.fingerprint, Secret(token).Fingerprint());
  if (l.expect_ttl < 0) {
    EXPECT_EQ(ok.ttl_seconds, -1);
  } else {
    EXPECT_NEAR(static_cast<double>(ok.ttl_seconds), static_cast<double>(l.expect_ttl), 5.0);
  }

  // Another environment fetches a token of the same AppId: the cached one is dead (grace 0).
  sim_.FetchToken();
  ProbeResult dead = RunProbe(target, conn, client, RealClock::Instance());
  EXPECT_EQ(dead.outcome, Outcome::kTokenInvalid)
      << OutcomeName(dead.outcome) << ": " << dead.detail;
  EXPECT_EQ(dead.errcode, 40001);
  EXPECT_EQ(dead.fingerprint, ok.fingerprint);

  // The heal deletes exactly the bytes it read, under the SDK's key.
  std::string error;
  EXPECT_EQ(conn.CompareAndDelete(target.env, Secret("not-what-is-stored"), &error), 0) << error;
  EXPECT_EQ(app_.Exists(key), 1);
  EXPECT_EQ(conn.CompareAndDelete(target.env, dead.raw_value, &error), 1) << error;
  EXPECT_EQ(app_.Exists(key), 0);
  ProbeResult gone = RunProbe(target, conn, client, RealClock::Instance());
  EXPECT_EQ(gone.outcome, Outcome::kTokenMissing);
  // A secret-derived key is named only by its fingerprint.
  if (target.env.key_from_secret) {
    EXPECT_EQ(gone.detail.find(WxSim::kSecret), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EverySdk, SdkLayouts,
    ::testing::Values(
        Layout{"wxjava", "", [](const std::string& tok) { return tok; }, -1},
        Layout{"wxjava-ma", "", [](const std::string& tok) { return tok; }, -1},
        Layout{"silenceper", "", [](const std::string& tok) { return tok; }, -1},
        Layout{"silenceper-ma", "", [](const std::string& tok) { return tok; }, -1},
        Layout{"easywechat6", "", [](const std::string& tok) { return PhpString(tok); }, -1},
        Layout{"easywechat6-mini", "", [](const std::string& tok) { return PhpString(tok); }, -1},
        Layout{"easywechat4", "",
               [](const std::string& tok) { return testing::EasyWeChat4Value(tok); }, -1},
        Layout{"powerwechat", "",
               [](const std::string& tok) { return testing::PowerWeChatValue(tok); }, -1},
        // No TTL on the key: the expiry inside the bag is the TTL the metrics see.
        Layout{"senparc", "",
               [](const std::string& tok) {
                 return testing::SenparcBag(tok, WxSim::kAppId, WxSim::kSecret,
                                            std::time(nullptr) + 3600);
               },
               3600},
        // The companion _expires_at key gives the expiry.
        Layout{"wechatpy", "", [](const std::string& tok) { return JsonStringValue(tok); }, 7200},
        Layout{"spring-jdk", ", key: \"wx:token:{app_id}\"",
               [](const std::string& tok) { return JdkSerializeString(tok); }, -1},
        Layout{"spring-json", ", key: \"wx:token:{app_id}\"",
               [](const std::string& tok) { return JsonStringValue(tok); }, -1}),
    [](const ::testing::TestParamInfo<Layout>& p) {
      std::string n = p.param.sdk;
      for (char& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

// A value the app wrote in a format wxcanary cannot read: one line naming the format.
TEST(SdkLayoutsUndecodable, a_redisson_kryo_value_is_named_not_shown) {
  WxSim sim;
  RedisServer redis;
  AppRedis app(redis.port());
  const std::string token = sim.FetchToken();
  app.Set("wx:access_token:wx00000000000000a1", testing::KryoValue(token));
  config::Config cfg =
      config::LoadString("redis: {r: {address: " + redis.address() +
                         "}}\napps:\n  - app_id: wx00000000000000a1\n"
                         "    environments:\n"
                         "      - {name: prod, redis: r, sdk: wxjava, encoding: auto}\n");
  Target target{WxSim::kAppId, "prod", cfg.apps[0].environments[0], 0};
  source::RedisConnection conn(cfg.redis.at("r"), RealClock::Instance());
  config::WeChat wc;
  wc.base_url = sim.base_url();
  wechat::Client client(wc);
  ProbeResult r = RunProbe(target, conn, client, RealClock::Instance());
  EXPECT_EQ(r.outcome, Outcome::kTokenMissing);
  EXPECT_EQ(r.detail.rfind("value looks Redisson/Kryo-encoded", 0), 0u) << r.detail;
  EXPECT_EQ(r.detail.find(token.substr(0, 10)), std::string::npos);
}

}  // namespace
}  // namespace wxcanary::probe
