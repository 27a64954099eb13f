// DecodeValue on the bytes each SDK stores. JDK bytes: printed by testdata/JdkBytes.java
// (OpenJDK 17, `java JdkBytes.java 86_AbC-def.ghi`). PHP: serialize() output written out by
// hand from PHP's format (s:<bytes>:"<string>"; a:<count>:{<key><value>...}). Kryo: what
// Kryo's writeClassAndObject writes for an ASCII String (class id 1 + 2 = 0x03, the last char
// with its high bit set). igbinary: version header 00 00 00 02, then string8 (0x11) + length.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "source/value_decoder.h"

namespace wxcanary::source {
namespace {

using config::Encoding;
using config::Storage;
using namespace std::chrono_literals;

const std::string kToken = "86_AbC-def.ghi";
const std::string kJdkToken(
    "\xAC\xED\x00\x05\x74\x00\x0E"
    "86_AbC-def.ghi",
    21);
const std::string kKryoToken =
    "\x03"
    "86_AbC-def.gh\xE9";
const std::string kIgbinaryToken(
    "\x00\x00\x00\x02\x11\x0E"
    "86_AbC-def.ghi",
    20);
const std::string kPhpToken = R"(s:14:"86_AbC-def.ghi";)";
const std::string kPhpArray =
    R"(a:2:{s:12:"access_token";s:14:"86_AbC-def.ghi";s:10:"expires_in";i:7200;})";

struct Case {
  const char* name;
  Encoding encoding;
  Storage storage;
  std::string json_path;
  std::string raw;
  std::optional<std::string> want;
  std::string want_error;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class DecodeValueTable : public ::testing::TestWithParam<Case> {};

TEST_P(DecodeValueTable, decodes_or_names_the_format) {
  const Case& c = GetParam();
  config::Environment env;
  env.encoding = c.encoding;
  env.storage = c.storage;
  env.json_path = c.json_path;
  std::string error = "stale";
  auto got = DecodeToken(env, c.raw, &error);
  EXPECT_EQ(got, c.want);
  EXPECT_EQ(error, c.want_error);
  // Never the value, nor the token inside it, in the reason.
  if (!got) {
    EXPECT_EQ(error.find("AbC-def"), std::string::npos) << error;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Encodings, DecodeValueTable,
    ::testing::Values(
        Case{"auto_plain", Encoding::kAuto, Storage::kString, "", kToken, kToken, ""},
        Case{"auto_jdk", Encoding::kAuto, Storage::kString, "", kJdkToken, kToken, ""},
        Case{"jdk", Encoding::kJdk, Storage::kString, "", kJdkToken, kToken, ""},
        Case{"jdk_holding_json", Encoding::kJdk, Storage::kString, "access_token",
             std::string("\xAC\xED\x00\x05\x74\x00\x1C", 7) + R"({"access_token":"86_AbCdef"})",
             "86_AbCdef", ""},
        Case{"jdk_but_plain", Encoding::kJdk, Storage::kString, "", kToken, std::nullopt,
             "value is not JDK-serialized (encoding jdk expects bytes AC ED 00 05 74)"},
        Case{"jdk_cut_short", Encoding::kJdk, Storage::kString, "", kJdkToken.substr(0, 15),
             std::nullopt, "value is a cut-short or malformed JDK-serialized String"},
        Case{"jdk_object", Encoding::kAuto, Storage::kString, "",
             std::string("\xAC\xED\x00\x05\x73\x72\x00\x11java.util.HashMap", 25), std::nullopt,
             "value is a JDK-serialized object that is not a String: wxcanary reads a serialized "
             "String only (store the token itself, e.g. with StringRedisTemplate)"},
        Case{"auto_php_string", Encoding::kAuto, Storage::kString, "", kPhpToken, kToken, ""},
        Case{"php_string", Encoding::kPhp, Storage::kString, "", kPhpToken, kToken, ""},
        Case{"php_array", Encoding::kPhp, Storage::kString, "access_token", kPhpArray, kToken, ""},
        Case{"auto_php_array_with_path", Encoding::kAuto, Storage::kString, "access_token",
             kPhpArray, kToken, ""},
        Case{"php_array_without_path", Encoding::kPhp, Storage::kString, "", kPhpArray,
             std::nullopt,
             "value is a PHP array: set json_path to the member holding the token (e.g. "
             "access_token)"},
        Case{"php_nested_int_keys", Encoding::kPhp, Storage::kString, "data.0",
             R"(a:1:{s:4:"data";a:1:{i:0;s:5:"tok_1";}})", "tok_1", ""},
        Case{"php_length_wrong", Encoding::kPhp, Storage::kString, "", R"(s:15:"86_AbC-def.ghi";)",
             std::nullopt, "value is not valid PHP serialize() output (expected '\"' at byte 21)"},
        Case{"php_length_past_end", Encoding::kPhp, Storage::kString, "", R"(s:99:"86_AbC";)",
             std::nullopt,
             "value is not valid PHP serialize() output (string length 99 runs past the end)"},
        Case{"php_object", Encoding::kPhp, Storage::kString, "access_token",
             R"(O:8:"stdClass":1:{s:12:"access_token";s:3:"abc";})", std::nullopt,
             "value is not valid PHP serialize() output (a PHP object, not a string or array)"},
        Case{"php_int", Encoding::kPhp, Storage::kString, "", "i:7200;", std::nullopt,
             "value is PHP-serialized a number, not a string or array"},
        // The length must match exactly for auto to take it as PHP: otherwise it is plain text.
        Case{"auto_php_lookalike_is_plain", Encoding::kAuto, Storage::kString, "", R"(s:3:"ab";)",
             R"(s:3:"ab";)", ""},
        Case{"json_string", Encoding::kJsonString, Storage::kString, "", "\"" + kToken + "\"",
             kToken, ""},
        Case{"json_string_unquoted", Encoding::kJsonString, Storage::kString, "", kToken,
             std::nullopt,
             "value is not a JSON string literal (encoding json_string expects \"...\")"},
        Case{"plain_keeps_quotes", Encoding::kPlain, Storage::kString, "", "\"abc\"", "\"abc\"",
             ""},
        Case{"kryo", Encoding::kAuto, Storage::kString, "", kKryoToken, std::nullopt,
             "value looks Redisson/Kryo-encoded (Redisson's default codec): configure StringCodec "
             "on the RedissonClient the app uses, or store the token with a String serializer"},
        Case{"kryo_as_plain", Encoding::kPlain, Storage::kString, "", kKryoToken, std::nullopt,
             "value looks Redisson/Kryo-encoded (Redisson's default codec): configure StringCodec "
             "on the RedissonClient the app uses, or store the token with a String serializer"},
        Case{"kryo_in_json_storage", Encoding::kAuto, Storage::kJson, "access_token", kKryoToken,
             std::nullopt,
             "value looks Redisson/Kryo-encoded (Redisson's default codec): configure StringCodec "
             "on the RedissonClient the app uses, or store the token with a String serializer"},
        Case{"igbinary", Encoding::kAuto, Storage::kString, "", kIgbinaryToken, std::nullopt,
             "value looks igbinary-encoded (PHP's igbinary extension is loaded): have the cache "
             "use serialize() (Symfony DefaultMarshaller with useIgbinary: false)"},
        Case{"igbinary_as_php", Encoding::kPhp, Storage::kString, "", kIgbinaryToken, std::nullopt,
             "value looks igbinary-encoded (PHP's igbinary extension is loaded): have the cache "
             "use serialize() (Symfony DefaultMarshaller with useIgbinary: false)"},
        Case{"other_binary", Encoding::kAuto, Storage::kString, "",
             std::string("\x01\x00\xFE"
                         "86_AbC-def",
                         13),
             std::nullopt,
             "value is binary, not text (13 bytes of an unknown serialization, e.g. FST or "
             "Kryo): store the token as a string"},
        Case{"invalid_utf8", Encoding::kAuto, Storage::kString, "", "86_AbC-def\xFF\xFE",
             std::nullopt,
             "value is binary, not UTF-8 text (12 bytes of an unknown serialization): store the "
             "token as a string"}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

TEST(DecodeValue, reads_senparcs_expiry_from_the_value) {
  config::Environment env;
  env.storage = Storage::kJson;
  env.json_path = "AccessTokenResult.access_token";
  env.expiry_path = "AccessTokenExpireTime";
  // Newtonsoft's DateTimeOffset form, as Senparc's AccessTokenBag is stored.
  const std::string bag =
      R"({"Name":"","AppId":"wx1","AppSecret":"s3cr3t","AccessTokenExpireTime":)"
      R"("2023-11-15T06:13:20.1234567+08:00","AccessTokenResult":{"access_token":"86_AbC",)"
      R"("expires_in":7200,"errcode":0,"errmsg":""}})";
  std::string error;
  auto v = DecodeValue(env, bag, &error);
  ASSERT_TRUE(v) << error;
  EXPECT_EQ(v->token, "86_AbC");
  ASSERT_TRUE(v->expires_at);
  // 2023-11-14T22:13:20Z = 1700000000
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::milliseconds>(v->expires_at->time_since_epoch()),
      std::chrono::milliseconds(1'700'000'000'123));

  env.expiry_path = "AccessTokenResult.expires_in_missing";
  EXPECT_FALSE(DecodeValue(env, bag, &error));
  EXPECT_EQ(error, R"(expiry_path "AccessTokenResult.expires_in_missing" not found)");
  env.expiry_path = "Name";
  EXPECT_FALSE(DecodeValue(env, bag, &error));
  EXPECT_EQ(error, R"(expiry_path "Name" is a string that is not a time (Unix seconds or an ISO )"
                   R"(8601 date-time))");
  EXPECT_EQ(error.find("s3cr3t"), std::string::npos);
}

TEST(ParseExpiry, takes_unix_seconds_millis_and_iso_8601) {
  const SystemTime t0{std::chrono::seconds{1'700'000'000}};
  EXPECT_EQ(ParseExpiry("1700000000"), t0);
  EXPECT_EQ(ParseExpiry("1700000000.5"), t0 + 500ms);
  EXPECT_EQ(ParseExpiry("1700000000000"), t0);
  EXPECT_EQ(ParseExpiry("2023-11-14T22:13:20Z"), t0);
  EXPECT_EQ(ParseExpiry("2023-11-14T22:13:20"), t0);  // no offset: taken as UTC
  EXPECT_EQ(ParseExpiry("2023-11-15T06:13:20+08:00"), t0);
  EXPECT_EQ(ParseExpiry("2023-11-14T17:13:20.25-05:00"), t0 + 250ms);
  for (const char* bad : {"", "abc", "-5", "2023-13-01T00:00:00Z", "2023-11-14T22:13:20+8",
                          "2023-11-14", "1e999", "12ab"}) {
    EXPECT_EQ(ParseExpiry(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace wxcanary::source
