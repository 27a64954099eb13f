#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "source/redis_connection.h"

namespace wxcanary::source {
namespace {

using config::Storage;

config::Environment Env(Storage storage, std::string json_path = "", std::string field = "") {
  config::Environment env;
  env.name = "prod";
  env.key = "ACCESS_TOKEN_CACHE:wx1";
  env.storage = storage;
  env.json_path = std::move(json_path);
  env.hash_field = std::move(field);
  return env;
}

struct DecodeCase {
  const char* name;
  Storage storage;
  std::string json_path;
  std::string raw;
  std::optional<std::string> want;  // nullopt: rejected
  std::string want_error;           // exact message when rejected
};

// Keeps ctest names readable instead of a byte dump of the struct.
void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.name; }

class DecodeTokenTable : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeTokenTable, decodes_or_rejects_with_exact_reason) {
  const DecodeCase& c = GetParam();
  std::string error = "stale";
  auto got = DecodeToken(Env(c.storage, c.json_path, "token"), c.raw, &error);
  EXPECT_EQ(got, c.want);
  EXPECT_EQ(error, c.want_error);
  // A rejected value may itself be a token: its reason never quotes it.
  if (!got && c.raw.size() >= 6) {
    EXPECT_EQ(error.find(c.raw), std::string::npos);
  }
}

const std::string kBig(kMaxValueBytes + 1, 'a');

INSTANTIATE_TEST_SUITE_P(
    AllStorages, DecodeTokenTable,
    ::testing::Values(
        // string storage: the raw value, nothing trimmed
        DecodeCase{"string_plain", Storage::kString, "", "86_AbC-def.ghi", "86_AbC-def.ghi", ""},
        DecodeCase{"string_java_quoted", Storage::kString, "", "\"86_AbCdef\"", "86_AbCdef", ""},
        DecodeCase{"string_quoted_escape", Storage::kString, "", "\"a\\/b\"", "a/b", ""},
        DecodeCase{"string_single_quote_char", Storage::kString, "", "\"", "\"", ""},
        DecodeCase{"string_bad_quoted", Storage::kString, "", "\"abc\\q\"", std::nullopt,
                   "value looks JSON-quoted but is not a valid JSON string"},
        DecodeCase{"string_quoted_empty", Storage::kString, "", "\"\"", std::nullopt,
                   "value is empty"},
        DecodeCase{"string_empty", Storage::kString, "", "", std::nullopt, "value is empty"},
        DecodeCase{"string_trailing_newline", Storage::kString, "", "secrettoken\n", std::nullopt,
                   "value contains whitespace or a control character at byte 11 (tokens are "
                   "opaque printable strings)"},
        DecodeCase{"string_inner_space", Storage::kString, "", "secret token", std::nullopt,
                   "value contains whitespace or a control character at byte 6 (tokens are "
                   "opaque printable strings)"},
        DecodeCase{"string_del_char", Storage::kString, "", "secret\x7ftoken", std::nullopt,
                   "value contains whitespace or a control character at byte 6 (tokens are "
                   "opaque printable strings)"},
        DecodeCase{"string_too_long", Storage::kString, "", kBig, std::nullopt,
                   "value is 65537 bytes, over the 65536-byte limit"},
        DecodeCase{"string_exactly_limit", Storage::kString, "", std::string(kMaxValueBytes, 'b'),
                   std::string(kMaxValueBytes, 'b'), ""},
        DecodeCase{"string_with_json_path", Storage::kString, "t", R"({"t":"secrettok"})",
                   "secrettok", ""},
        // json storage: a dotted path to a string
        DecodeCase{"json_top_field", Storage::kJson, "access_token",
                   R"({"access_token":"secretA","expires_in":7200})", "secretA", ""},
        DecodeCase{"json_nested", Storage::kJson, "data.token", R"({"data":{"token":"secretB"}})",
                   "secretB", ""},
        DecodeCase{"json_array_index", Storage::kJson, "tokens.1.v",
                   R"({"tokens":[{"v":"x1"},{"v":"secretC"}]})", "secretC", ""},
        DecodeCase{"json_double_encoded", Storage::kJson, "access_token",
                   R"("{\"access_token\":\"secretD\"}")", "secretD", ""},
        DecodeCase{"json_whole_value_is_string", Storage::kJson, "", R"("secretE")", "secretE", ""},
        DecodeCase{"json_not_json", Storage::kJson, "access_token", "abc", std::nullopt,
                   "value is not JSON (parse error at byte 1)"},
        // Found by decode_token_fuzz: nlohmann throws out_of_range for the whole document; the
        // path is read anyway (issue 21.5) and here names the overflowing number itself.
        DecodeCase{"json_number_out_of_range", Storage::kJson, "access_token",
                   R"({"access_token":1e999})", std::nullopt,
                   R"(json_path "access_token" is a number, not a string)"},
        DecodeCase{"json_truncated", Storage::kJson, "access_token", R"({"access_token":"sec)",
                   std::nullopt, "value is not JSON (parse error at byte 21)"},
        DecodeCase{"json_path_missing", Storage::kJson, "data.token",
                   R"({"data":{"tok":"secretF"}})", std::nullopt,
                   R"(json_path "data.token" not found)"},
        DecodeCase{"json_path_through_string", Storage::kJson, "data.token",
                   R"({"data":"secretG"})", std::nullopt, R"(json_path "data.token" not found)"},
        DecodeCase{"json_path_index_out_of_range", Storage::kJson, "a.5", R"({"a":["x"]})",
                   std::nullopt, R"(json_path "a.5" not found)"},
        DecodeCase{"json_number", Storage::kJson, "access_token", R"({"access_token":12345678})",
                   std::nullopt, R"(json_path "access_token" is a number, not a string)"},
        DecodeCase{"json_object", Storage::kJson, "data", R"({"data":{"token":"x"}})", std::nullopt,
                   R"(json_path "data" is an object, not a string)"},
        DecodeCase{"json_null", Storage::kJson, "access_token", R"({"access_token":null})",
                   std::nullopt, R"(json_path "access_token" is null, not a string)"},
        DecodeCase{"json_bool", Storage::kJson, "ok", R"({"ok":true})", std::nullopt,
                   R"(json_path "ok" is a boolean, not a string)"},
        DecodeCase{"json_empty_token", Storage::kJson, "access_token", R"({"access_token":""})",
                   std::nullopt, R"(json_path "access_token" is empty)"},
        DecodeCase{"json_token_with_space", Storage::kJson, "t", R"({"t":"ab cd"})", std::nullopt,
                   R"(json_path "t" contains whitespace or a control character at byte 2 )"
                   R"((tokens are opaque printable strings))"},
        DecodeCase{"json_too_long", Storage::kJson, "t", kBig, std::nullopt,
                   "value is 65537 bytes, over the 65536-byte limit"},
        // hash storage: the field value, or a JSON path inside it
        DecodeCase{"hash_plain", Storage::kHash, "", "secretH", "secretH", ""},
        DecodeCase{"hash_quoted", Storage::kHash, "", "\"secretI\"", "secretI", ""},
        DecodeCase{"hash_json_path", Storage::kHash, "value.token",
                   R"({"value":{"token":"secretJ"}})", "secretJ", ""},
        DecodeCase{"hash_json_path_not_json", Storage::kHash, "token", "secretK", std::nullopt,
                   "value is not JSON (parse error at byte 1)"},
        DecodeCase{"hash_control_char", Storage::kHash, "", std::string("sec\0ret", 7),
                   std::nullopt,
                   "value contains whitespace or a control character at byte 3 (tokens are "
                   "opaque printable strings)"}),
    [](const ::testing::TestParamInfo<DecodeCase>& p) { return std::string(p.param.name); });

// The check reads eight bytes at a time: every offset, in and out of a word, and every byte
// it must refuse (and the nearest it must not) find the same answer.
TEST(DecodeToken, a_space_or_control_byte_is_found_at_every_offset_and_nothing_else_is) {
  std::vector<unsigned char> refused;
  for (int c = 0; c <= 0x20; ++c) refused.push_back(static_cast<unsigned char>(c));
  refused.push_back(0x7f);
  for (size_t len : {1u, 7u, 8u, 9u, 16u, 23u, 160u}) {
    for (size_t at = 0; at < len; ++at) {
      for (unsigned char c : refused) {
        // A value that starts with a control byte other than \t \n \r is named binary first.
        if (at == 0 && c < 0x20 && c != '\t' && c != '\n' && c != '\r') continue;
        std::string raw(len, 'x');
        raw[at] = static_cast<char>(c);
        std::string error;
        ASSERT_EQ(DecodeToken(Env(Storage::kString), raw, &error), std::nullopt)
            << "byte " << int(c) << " at " << at << " of " << len;
        ASSERT_EQ(error, "value contains whitespace or a control character at byte " +
                             std::to_string(at) + " (tokens are opaque printable strings)");
      }
    }
    // Printable ASCII and UTF-8 (bytes from 0x80 up) pass, whichever bytes share a word.
    for (std::string_view unit : {"!", "~", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80"}) {
      std::string raw;
      for (size_t i = 0; i < len; ++i) raw += unit;
      ASSERT_EQ(DecodeToken(Env(Storage::kString), raw, nullptr), raw) << raw.size() << " bytes";
    }
  }
}

TEST(DecodeToken, accepts_a_null_error_pointer) {
  EXPECT_EQ(DecodeToken(Env(Storage::kString), "tok", nullptr), "tok");
  EXPECT_EQ(DecodeToken(Env(Storage::kString), "", nullptr), std::nullopt);
}

}  // namespace
}  // namespace wxcanary::source
