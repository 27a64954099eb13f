// `sdk:` presets: the key each SDK writes (the bytes sent to Redis), how its value is decoded
// and where its expiry comes from; every field overridable; secret-derived keys shown only as a
// fingerprint.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/fingerprint.h"
#include "common/jdk_string.h"
#include "config/config.h"

namespace wxcanary::config {
namespace {

constexpr const char* kAppId = "wx00000000000000a1";
constexpr const char* kSecret = "0123456789abcdef0123456789abcdef";

class SdkPresets : public ::testing::Test {
 protected:
  SdkPresets() { ::setenv("WXCANARY_TEST_SDK_SECRET", kSecret, 1); }
  ~SdkPresets() override { ::unsetenv("WXCANARY_TEST_SDK_SECRET"); }

  // One environment with `env_lines` (flow-map entries) under an app holding kSecret.
  static Config Load(const std::string& env_lines) {
    return LoadString(std::string("redis: {r: {address: 127.0.0.1:6379}}\n"
                                  "apps:\n"
                                  "  - app_id: ") +
                      kAppId +
                      "\n"
                      "    secret_env: WXCANARY_TEST_SDK_SECRET\n"
                      "    environments:\n"
                      "      - {name: prod, redis: r, " +
                      env_lines + "}\n");
  }
};

struct PresetCase {
  const char* sdk;
  std::string redis_key;  // bytes sent to Redis
  Encoding encoding;
  Storage storage;
  const char* json_path;
  const char* expiry_path;
  std::string expiry_key;
};

class PresetTable : public SdkPresets, public ::testing::WithParamInterface<PresetCase> {};

TEST_P(PresetTable, sets_key_decoding_and_expiry_source) {
  const PresetCase& c = GetParam();
  const std::string extra =
      std::string(c.sdk) == "spring-jdk" || std::string(c.sdk) == "spring-json"
          ? ", key: \"wx:token:{app_id}\""
          : "";
  Config cfg = Load(std::string("sdk: ") + c.sdk + extra);
  const Environment& env = cfg.apps[0].environments[0];
  EXPECT_EQ(RedisKey(env), c.redis_key);
  EXPECT_EQ(env.encoding, c.encoding);
  EXPECT_EQ(env.storage, c.storage);
  EXPECT_EQ(env.json_path, c.json_path);
  EXPECT_EQ(env.expiry_path, c.expiry_path);
  EXPECT_EQ(env.expiry_key, c.expiry_key);
  // A key built from the secret is itself a secret: only its fingerprint is shown.
  const bool secret_key = c.redis_key.find(kSecret) != std::string::npos ||
                          std::string(c.sdk).find("easywechat4") == 0 ||
                          std::string(c.sdk) == "powerwechat";
  EXPECT_EQ(env.key_from_secret, secret_key);
  if (secret_key) {
    EXPECT_EQ(env.key, "[secret-derived key " + Fingerprint(c.redis_key) + "]");
    const std::string text = Describe(cfg);
    EXPECT_EQ(text.find(kSecret), std::string::npos) << text;
    EXPECT_EQ(text.find(c.redis_key), std::string::npos) << text;
    EXPECT_NE(text.find(env.key), std::string::npos) << text;
  }
}

// md5 values: python3 -c 'import hashlib; print(hashlib.md5(b"...").hexdigest())' on
// appid+secret (PowerWeChat) and on EasyWeChat 4's json_encode() of its credentials,
// {"grant_type":"client_credential","appid":"wx00000000000000a1","secret":"0123...cdef"}.
INSTANTIATE_TEST_SUITE_P(
    EverySdk, PresetTable,
    ::testing::Values(
        PresetCase{"wxjava", "wx:access_token:wx00000000000000a1", Encoding::kPlain,
                   Storage::kString, "", "", ""},
        PresetCase{"wxjava-ma", "wa:access_token:wx00000000000000a1", Encoding::kPlain,
                   Storage::kString, "", "", ""},
        PresetCase{"silenceper", "gowechat_officialaccount__access_token_wx00000000000000a1",
                   Encoding::kPlain, Storage::kString, "", "", ""},
        PresetCase{"silenceper-stable",
                   "gowechat_officialaccount__stable_access_token_wx00000000000000a1",
                   Encoding::kPlain, Storage::kString, "", "", ""},
        PresetCase{"silenceper-ma", "gowechat_miniprogram__access_token_wx00000000000000a1",
                   Encoding::kPlain, Storage::kString, "", "", ""},
        PresetCase{
            "easywechat6",
            std::string("official_account.access_token.wx00000000000000a1.") + kSecret + ".0",
            Encoding::kPhp, Storage::kString, "", "", ""},
        PresetCase{"easywechat6-mini",
                   std::string("mini_app.access_token.wx00000000000000a1.") + kSecret + ".0",
                   Encoding::kPhp, Storage::kString, "", "", ""},
        PresetCase{"easywechat4", "easywechat.kernel.access_token.769a7170623782c4739be4b039bd96e6",
                   Encoding::kPhp, Storage::kString, "access_token", "", ""},
        PresetCase{"powerwechat", "powerwechat.access_token.261a065c961e72ea67a83a2d34b86848",
                   Encoding::kAuto, Storage::kJson, "access_token", "", ""},
        PresetCase{"senparc",
                   "Senparc:DefaultCache:Container:Senparc.Weixin.MP.Containers.AccessTokenBag:"
                   "wx00000000000000a1",
                   Encoding::kAuto, Storage::kJson, "AccessTokenResult.access_token",
                   "AccessTokenExpireTime", ""},
        PresetCase{"wechatpy", "wechatpy:wx00000000000000a1_access_token", Encoding::kJsonString,
                   Storage::kString, "", "", "wechatpy:wx00000000000000a1_access_token_expires_at"},
        PresetCase{"spring-jdk", JdkSerializeString("wx:token:wx00000000000000a1"), Encoding::kJdk,
                   Storage::kString, "", "", ""},
        PresetCase{"spring-json", "wx:token:wx00000000000000a1", Encoding::kJsonString,
                   Storage::kString, "", "", ""}),
    [](const ::testing::TestParamInfo<PresetCase>& p) {
      std::string n = p.param.sdk;
      for (char& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

TEST_F(SdkPresets, every_field_of_a_preset_can_be_overridden) {
  Config cfg = Load("sdk: wxjava, key: \"myprefix:access_token:{app_id}\", encoding: auto");
  const Environment& env = cfg.apps[0].environments[0];
  EXPECT_EQ(env.key, "myprefix:access_token:wx00000000000000a1");
  EXPECT_EQ(env.encoding, Encoding::kAuto);

  cfg = Load("sdk: senparc, storage: hash, hash_field: \"{app_id}x\", expiry_path: Expire");
  EXPECT_EQ(cfg.apps[0].environments[0].storage, Storage::kHash);
  EXPECT_EQ(cfg.apps[0].environments[0].expiry_path, "Expire");
  EXPECT_EQ(cfg.apps[0].environments[0].json_path, "AccessTokenResult.access_token");

  // A Symfony cache namespace in front of EasyWeChat 6's key.
  cfg = Load("sdk: easywechat6, key: \"ns:official_account.access_token.{app_id}.{secret}.1\"");
  EXPECT_EQ(RedisKey(cfg.apps[0].environments[0]),
            std::string("ns:official_account.access_token.wx00000000000000a1.") + kSecret + ".1");

  cfg = Load("sdk: wechatpy, expiry_key: \"other:{app_id}\"");
  EXPECT_EQ(cfg.apps[0].environments[0].expiry_key, "other:wx00000000000000a1");
}

TEST_F(SdkPresets, a_preset_in_defaults_applies_to_every_environment) {
  Config cfg = LoadString(std::string("redis: {r: {address: 127.0.0.1:6379}}\n"
                                      "defaults: {sdk: silenceper-ma}\n"
                                      "apps:\n"
                                      "  - app_id: ") +
                          kAppId +
                          "\n"
                          "    environments:\n"
                          "      - {name: prod, redis: r}\n"
                          "      - {name: test, redis: r, key: \"t:{app_env}\"}\n");
  EXPECT_EQ(cfg.apps[0].environments[0].key,
            "gowechat_miniprogram__access_token_wx00000000000000a1");
  EXPECT_EQ(cfg.apps[0].environments[1].key, "t:test");
  EXPECT_EQ(cfg.apps[0].environments[1].encoding, Encoding::kPlain);
}

TEST_F(SdkPresets, describe_prints_the_resolved_key_and_decoding) {
  Config cfg = Load("sdk: wechatpy");
  EXPECT_EQ(Describe(cfg),
            "wxcanary: 1 targets in 1 apps, 1 redis connections, 16 workers, wechat "
            "https://api.weixin.qq.com\n"
            "wx00000000000000a1/prod  redis=r(127.0.0.1:6379) key=wechatpy:wx00000000000000a1_"
            "access_token storage=string sdk=wechatpy encoding=json_string "
            "expiry=key(wechatpy:wx00000000000000a1_access_token_expires_at) probe=api_domain_ip "
            "interval=30s timeout=5s heal=off\n");
  cfg = Load("sdk: spring-jdk, key: \"tok:{app_id}\"");
  EXPECT_NE(Describe(cfg).find(" key=tok:wx00000000000000a1 storage=string sdk=spring-jdk "
                               "encoding=jdk key_encoding=jdk expiry=ttl "),
            std::string::npos)
      << Describe(cfg);
  cfg = Load("sdk: senparc");
  EXPECT_NE(Describe(cfg).find("storage=json(AccessTokenResult.access_token) sdk=senparc "
                               "encoding=auto expiry=value(AccessTokenExpireTime) "),
            std::string::npos)
      << Describe(cfg);
  cfg = Load("sdk: easywechat4");
  EXPECT_NE(Describe(cfg).find("storage=string(access_token) sdk=easywechat4 encoding=php "),
            std::string::npos)
      << Describe(cfg);
}

}  // namespace
}  // namespace wxcanary::config

namespace wxcanary::config {
namespace {

TEST(SentinelConfig, sentinels_master_name_and_their_password_load) {
  ::setenv("WXCANARY_TEST_SENTINEL_PW", "sentinel-pw-7", 1);
  Config cfg = LoadString(
      "redis:\n"
      "  ha: {sentinels: [10.0.0.1:26379, \"[::1]:26380\"], master_name: mymaster,\n"
      "       sentinel_password_env: WXCANARY_TEST_SENTINEL_PW, db: 1}\n"
      "apps:\n"
      "  - app_id: wx1\n"
      "    environments:\n"
      "      - {name: prod, redis: ha, key: \"t:{app_id}\"}\n");
  ::unsetenv("WXCANARY_TEST_SENTINEL_PW");
  const Redis& r = cfg.redis.at("ha");
  ASSERT_EQ(r.sentinels.size(), 2u);
  EXPECT_EQ(r.sentinels[0], std::make_pair(std::string("10.0.0.1"), 26379));
  EXPECT_EQ(r.sentinels[1], std::make_pair(std::string("::1"), 26380));
  EXPECT_EQ(r.master_name, "mymaster");
  EXPECT_EQ(r.sentinel_password_value.Reveal(), "sentinel-pw-7");
  EXPECT_EQ(r.Address(), "sentinel:mymaster");
  EXPECT_EQ(Describe(cfg).find("sentinel-pw-7"), std::string::npos);
  EXPECT_NE(Describe(cfg).find("redis=ha(sentinel:mymaster,db=1)"), std::string::npos)
      << Describe(cfg);
}

}  // namespace
}  // namespace wxcanary::config
