// EncodeValue is the inverse of DecodeValue: for every encoding, storage and SDK preset, the
// bytes it writes decode back to the same token (and expiry), with and without a value the app
// stored there before.
#include "source/value_encoder.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "common/jdk_string.h"
#include "config/config.h"
#include "source/value_decoder.h"
#include "support/sdk_values.h"

namespace wxcanary::source {
namespace {

using config::Encoding;
using config::Storage;
using namespace std::chrono_literals;

const std::string kOld = "86_OldToken-aaa.bbb";
const std::string kNew = "86_NewToken-ccc.ddd";
const SystemTime kExpires = SystemTime{std::chrono::seconds{1'900'000'000}};

TokenToWrite Write() { return {.token = kNew, .expires_at = kExpires, .expires_in = 6900s}; }

struct Case {
  const char* name;
  Encoding encoding;
  Storage storage;
  std::string json_path;
  std::string expiry_path;
  std::string previous;  // what the app stored before ("" none)
  std::string prefix;    // the written bytes start with this
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class EncodeRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(EncodeRoundTrip, decodes_back_to_the_written_token) {
  const Case& c = GetParam();
  config::Environment env;
  env.encoding = c.encoding;
  env.storage = c.storage;
  env.json_path = c.json_path;
  env.expiry_path = c.expiry_path;
  env.hash_field = c.storage == Storage::kHash ? "token" : "";
  std::string error;
  auto bytes = EncodeValue(env, Write(), c.previous, &error);
  ASSERT_TRUE(bytes) << error;
  EXPECT_EQ(bytes->rfind(c.prefix, 0), 0u) << *bytes;
  auto back = DecodeValue(env, *bytes, &error);
  ASSERT_TRUE(back) << error << " in " << *bytes;
  EXPECT_EQ(back->token, kNew);
  if (!c.expiry_path.empty()) {
    ASSERT_TRUE(back->expires_at);
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(*back->expires_at - kExpires), 0s);
  }
  // With encoding auto the written form is the one the app used, so the app reads it too.
  if (c.encoding == Encoding::kAuto && !c.previous.empty()) {
    EXPECT_EQ(LooksJdkSerialized(*bytes), LooksJdkSerialized(c.previous));
    EXPECT_EQ(bytes->front(), c.previous.front()) << *bytes;
  }
}

const std::string kJdkOld = JdkSerializeString(kOld);

INSTANTIATE_TEST_SUITE_P(
    Encodings, EncodeRoundTrip,
    ::testing::Values(
        Case{"plain", Encoding::kPlain, Storage::kString, "", "", "", kNew},
        Case{"auto_fresh_is_plain", Encoding::kAuto, Storage::kString, "", "", "", kNew},
        Case{"auto_keeps_plain", Encoding::kAuto, Storage::kString, "", "", kOld, kNew},
        Case{"json_string", Encoding::kJsonString, Storage::kString, "", "", "", "\"86_New"},
        Case{"auto_keeps_json_string", Encoding::kAuto, Storage::kString, "", "",
             testing::JsonStringValue(kOld), "\"86_New"},
        Case{"jdk", Encoding::kJdk, Storage::kString, "", "", "", "\xAC\xED"},
        Case{"auto_keeps_jdk", Encoding::kAuto, Storage::kString, "", "", kJdkOld, "\xAC\xED"},
        Case{"php_string", Encoding::kPhp, Storage::kString, "", "", "", "s:19:\"86_New"},
        Case{"auto_keeps_php_string", Encoding::kAuto, Storage::kString, "", "",
             testing::PhpString(kOld), "s:19:"},
        Case{"php_array", Encoding::kPhp, Storage::kString, "access_token", "", "", "a:2:{"},
        Case{"auto_keeps_php_array", Encoding::kAuto, Storage::kString, "access_token", "",
             testing::EasyWeChat4Value(kOld), "a:2:{"},
        Case{"json_fresh", Encoding::kAuto, Storage::kJson, "data.access_token", "", "", "{"},
        Case{"json_keeps_members", Encoding::kAuto, Storage::kJson, "access_token", "",
             testing::PowerWeChatValue(kOld), "{"},
        Case{"json_with_iso_expiry", Encoding::kAuto, Storage::kJson, "AccessToken",
             "AccessTokenExpireTime", "", "{"},
        Case{"senparc_bag", Encoding::kAuto, Storage::kJson, "AccessToken", "AccessTokenExpireTime",
             testing::SenparcBag(kOld, "wx1234567890abcdef", "s3cret-x", 1'800'000'000), "{"},
        Case{"json_with_unix_expiry", Encoding::kAuto, Storage::kJson, "token", "expire_at",
             R"({"token":"86_OldToken-aaa.bbb","expire_at":1800000000})", "{"},
        Case{"json_with_millis_expiry", Encoding::kAuto, Storage::kJson, "token", "expire_at",
             R"({"token":"86_OldToken-aaa.bbb","expire_at":1800000000000})", "{"},
        Case{"jdk_json", Encoding::kJdk, Storage::kJson, "access_token", "", "", "\xAC\xED"},
        Case{"hash_field", Encoding::kAuto, Storage::kHash, "", "", "", kNew},
        Case{"hash_field_json", Encoding::kAuto, Storage::kHash, "access_token", "", "", "{"}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

TEST(EncodeValue, keeps_the_apps_other_members_and_updates_expires_in) {
  config::Environment env;
  env.storage = Storage::kJson;
  env.json_path = "access_token";
  std::string error;
  auto bytes = EncodeValue(env, Write(), testing::PowerWeChatValue(kOld), &error);
  ASSERT_TRUE(bytes) << error;
  EXPECT_EQ(*bytes, R"({"access_token":"86_NewToken-ccc.ddd","expires_in":6900})");
}

TEST(EncodeValue, writes_an_easywechat4_array_as_the_sdk_does) {
  config::Environment env;
  env.encoding = Encoding::kPhp;
  env.json_path = "access_token";
  auto bytes = EncodeValue(env, Write(), "", nullptr);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes,
            R"(a:2:{s:12:"access_token";s:19:"86_NewToken-ccc.ddd";s:10:"expires_in";i:6900;})");
}

TEST(EncodeValue, every_readable_sdk_preset_round_trips) {
  int presets = 0;
  for (const auto& preset : config::SdkPresets()) {
    if (!preset.unsupported.empty()) continue;
    config::Environment env;
    env.sdk = std::string(preset.name);
    env.encoding = preset.encoding;
    env.storage = preset.storage;
    env.json_path = std::string(preset.json_path);
    env.expiry_path = std::string(preset.expiry_path);
    std::string error;
    auto bytes = EncodeValue(env, Write(), "", &error);
    ASSERT_TRUE(bytes) << preset.name << ": " << error;
    auto back = DecodeValue(env, *bytes, &error);
    ASSERT_TRUE(back) << preset.name << ": " << error;
    EXPECT_EQ(back->token, kNew) << preset.name;
    if (!env.expiry_path.empty()) {
      EXPECT_TRUE(back->expires_at) << preset.name;
    }
    ++presets;
  }
  EXPECT_GE(presets, 10);
}

TEST(EncodeValue, replaces_a_value_of_another_layout_and_refuses_an_empty_token) {
  config::Environment env;
  env.storage = Storage::kJson;
  env.json_path = "data.access_token";
  std::string error;
  auto bytes = EncodeValue(env, Write(), R"({"data":5})", &error);
  // A previous value that is not this layout is replaced by a fresh document.
  ASSERT_TRUE(bytes) << error;
  EXPECT_EQ(*bytes, R"({"data":{"access_token":"86_NewToken-ccc.ddd"}})");
  EXPECT_FALSE(EncodeValue(env, {.token = ""}, "", &error));
  EXPECT_EQ(error, "encode: the token is empty");
}

}  // namespace
}  // namespace wxcanary::source
