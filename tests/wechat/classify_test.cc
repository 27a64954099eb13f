#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/fingerprint.h"
#include "wechat/classify.h"

namespace wxcanary::wechat {
namespace {

const Secret kToken("84_SecretTokenValue-XYZ.abc~def");
const std::string kRid = "6571e1e1-4ab1b77d-2e8b4a5f";

HttpResponse Ok200(std::string body) {
  HttpResponse r;
  r.transport_ok = true;
  r.http_status = 200;
  r.body = std::move(body);
  return r;
}

// True when nlohmann can dump the string with strict UTF-8 checking, i.e. the logger can too.
bool DumpsCleanly(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

struct Case {
  const char* name;
  ProbeKind kind;
  std::string body;
  Outcome outcome;
  std::optional<int> errcode;
  std::string errmsg = "";
  std::string rid = "";
  bool flagged = false;
  std::string detail_has = "";  // substring expected in detail ("" = detail must be empty)
};

std::string TokenErrmsg() { return "invalid credential, access_token is invalid or not latest"; }

std::vector<Case> Cases() {
  const auto kIp = ProbeKind::kApiDomainIp;
  const auto kV1 = ProbeKind::kMsgSecCheck;
  const auto kV2 = ProbeKind::kMsgSecCheckV2;
  return {
      {"ip_list_without_errcode_is_ok", kIp, R"({"ip_list":["101.89.47.18","101.91.34.103"]})",
       Outcome::kOk, 0},
      {"ip_list_with_errcode_0_is_ok", kIp, R"({"errcode":0,"errmsg":"ok","ip_list":[]})",
       Outcome::kOk, 0, "ok"},
      {"api_domain_ip_without_ip_list_is_bad", kIp, R"({"errcode":0,"errmsg":"ok"})",
       Outcome::kBadResponse, 0, "ok", "", false, "ip_list is missing"},
      {"api_domain_ip_empty_object_is_bad", kIp, "{}", Outcome::kBadResponse, std::nullopt, "", "",
       false, "ip_list is missing"},
      {"ip_list_not_an_array_is_bad", kIp, R"({"ip_list":"1.2.3.4"})", Outcome::kBadResponse,
       std::nullopt, "", "", false, "ip_list is a string"},
      {"v1_errcode_0_is_ok", kV1, R"({"errcode":0,"errmsg":"ok"})", Outcome::kOk, 0, "ok"},
      {"v1_missing_errcode_is_ok", kV1, R"({"errmsg":"ok"})", Outcome::kOk, 0, "ok"},
      {"v1_87014_is_ok_and_flagged", kV1,
       R"({"errcode":87014,"errmsg":"risky content rid: )" + kRid + "\"}", Outcome::kOk, 87014,
       "risky content", kRid, true},
      {"v2_87014_is_ok_and_flagged", kV2, R"({"errcode":87014,"errmsg":"risky content"})",
       Outcome::kOk, 87014, "risky content", "", true},
      {"api_domain_ip_87014_is_an_api_error", kIp, R"({"errcode":87014,"errmsg":"risky content"})",
       Outcome::kApiError, 87014, "risky content"},
      {"v2_pass_is_ok_not_flagged", kV2,
       R"({"errcode":0,"errmsg":"ok","result":{"suggest":"pass","label":100},"detail":[],"trace_id":")" +
           kRid + "\"}",
       Outcome::kOk, 0, "ok"},
      {"v2_risky_is_ok_and_flagged", kV2,
       R"({"errcode":0,"errmsg":"ok","result":{"suggest":"risky","label":20001}})", Outcome::kOk, 0,
       "ok", "", true},
      {"v2_review_is_ok_and_flagged", kV2,
       R"({"errcode":0,"errmsg":"ok","result":{"suggest":"review","label":20002}})", Outcome::kOk,
       0, "ok", "", true},
      {"v2_without_result_is_ok", kV2, R"({"errcode":0,"errmsg":"ok"})", Outcome::kOk, 0, "ok"},
      {"v1_ignores_v2_verdict", kV1, R"({"errcode":0,"result":{"suggest":"risky"}})", Outcome::kOk,
       0},
      {"40001_with_rid_is_token_invalid", kIp,
       R"({"errcode":40001,"errmsg":")" + TokenErrmsg() + " rid: " + kRid + "\"}",
       Outcome::kTokenInvalid, 40001, TokenErrmsg(), kRid},
      {"40001_with_old_hint_is_token_invalid", kV1,
       R"({"errcode":40001,"errmsg":")" + TokenErrmsg() + R"( hint: [Ud7ZKa0410vr31]"})",
       Outcome::kTokenInvalid, 40001, TokenErrmsg(), "Ud7ZKa0410vr31"},
      {"40014_is_token_malformed", kV1,
       R"({"errcode":40014,"errmsg":"invalid access_token rid: )" + kRid + "\"}",
       Outcome::kTokenMalformed, 40014, "invalid access_token", kRid},
      {"42001_is_token_expired", kV2, R"({"errcode":42001,"errmsg":"access_token expired"})",
       Outcome::kTokenExpired, 42001, "access_token expired"},
      {"45009_is_quota", kIp, R"({"errcode":45009,"errmsg":"reach max api daily quota limit"})",
       Outcome::kQuota, 45009, "reach max api daily quota limit"},
      {"45011_is_quota", kIp,
       R"({"errcode":45011,"errmsg":"api minute-quota reach limit must slower retry next minute"})",
       Outcome::kQuota, 45011, "api minute-quota reach limit must slower retry next minute"},
      {"token_errors_win_over_missing_ip_list", kIp, R"({"errcode":42001})", Outcome::kTokenExpired,
       42001},
      {"token_in_errmsg_is_replaced_by_fingerprint", kIp,
       R"({"errcode":40014,"errmsg":"invalid access_token )" + kToken.Reveal() + " rid: " + kRid +
           "\"}",
       Outcome::kTokenMalformed, 40014, "invalid access_token <" + kToken.Fingerprint() + ">",
       kRid},
      {"escaped_control_chars_in_errmsg_become_spaces", kIp,
       R"({"errcode":-1,"errmsg":"system\u0000error\u001b[31m\ttry later"})", Outcome::kApiError,
       -1, "system error [31m try later"},
      {"non_json_is_bad_and_not_echoed", kIp,
       "<html><body>502 Bad Gateway SECRET-BODY</body></html>", Outcome::kBadResponse, std::nullopt,
       "", "", false, "not JSON: syntax error at byte 1"},
      {"truncated_json_is_bad", kIp, R"({"errcode":40001,"errmsg":"inv)", Outcome::kBadResponse,
       std::nullopt, "", "", false, "syntax error at byte"},
      {"empty_body_is_bad", kIp, "", Outcome::kBadResponse, std::nullopt, "", "", false,
       "empty body"},
      {"whitespace_body_is_bad", kIp, " \r\n", Outcome::kBadResponse, std::nullopt, "", "", false,
       "empty body"},
      {"json_array_is_bad", kIp, R"([{"errcode":0}])", Outcome::kBadResponse, std::nullopt, "", "",
       false, "body is an array, expected a JSON object"},
      {"json_string_is_bad", kIp, R"("ok")", Outcome::kBadResponse, std::nullopt, "", "", false,
       "body is a string"},
      {"json_null_is_bad", kIp, "null", Outcome::kBadResponse, std::nullopt, "", "", false,
       "body is null"},
      {"errcode_as_string_is_bad", kIp, R"({"errcode":"40001","errmsg":"x"})",
       Outcome::kBadResponse, std::nullopt, "x", "", false,
       "errcode is a string, expected an integer"},
      {"errcode_as_float_is_bad", kIp, R"({"errcode":40001.0})", Outcome::kBadResponse,
       std::nullopt, "", "", false, "errcode is a float"},
      {"errcode_null_is_bad", kIp, R"({"errcode":null,"ip_list":[]})", Outcome::kBadResponse,
       std::nullopt, "", "", false, "errcode is null"},
      {"errcode_out_of_int_range_is_bad", kIp, R"({"errcode":99999999999})", Outcome::kBadResponse,
       std::nullopt, "", "", false, "errcode 99999999999 is out of range"},
      {"negative_errcode_out_of_range_is_bad", kIp, R"({"errcode":-99999999999})",
       Outcome::kBadResponse, std::nullopt, "", "", false, "out of range"},
      {"raw_control_char_in_string_is_bad", kIp, "{\"errcode\":0,\"errmsg\":\"a\x01b\"}",
       Outcome::kBadResponse, std::nullopt, "", "", false, "syntax error"},
      {"lone_surrogate_escape_is_bad", kIp, R"({"errcode":0,"errmsg":"\ud800"})",
       Outcome::kBadResponse, std::nullopt, "", "", false, "syntax error"},
      {"non_string_errmsg_is_ignored", kIp, R"({"errcode":40001,"errmsg":{"a":1}})",
       Outcome::kTokenInvalid, 40001},
  };
}

// Everything but the detail, which one table matches in part and the other exactly.
template <typename Case>
void ExpectAnswer(const Classification& got, const Case& c) {
  EXPECT_EQ(OutcomeName(got.outcome), OutcomeName(c.outcome));
  EXPECT_EQ(got.errcode, c.errcode);
  EXPECT_EQ(got.errmsg, c.errmsg);
  EXPECT_EQ(got.rid, c.rid);
  EXPECT_EQ(got.content_flagged, c.flagged);
}

TEST(Classify, maps_each_answer_to_its_outcome) {
  for (const auto& c : Cases()) {
    SCOPED_TRACE(c.name);
    const Classification got = Classify(c.kind, Ok200(c.body), kToken);
    ExpectAnswer(got, c);
    if (c.detail_has.empty()) {
      EXPECT_EQ(got.detail, "");
    } else {
      EXPECT_NE(got.detail.find(c.detail_has), std::string::npos) << got.detail;
    }
    EXPECT_EQ(got.detail.find("SECRET-BODY"), std::string::npos);
  }
}

// Every errcode in /work/shared/wechat-api.md, on every probe kind.
TEST(Classify, maps_every_documented_errcode) {
  struct Code {
    int code;
    Outcome outcome;
  };
  const std::vector<Code> codes = {
      {40001, Outcome::kTokenInvalid}, {40014, Outcome::kTokenMalformed},
      {42001, Outcome::kTokenExpired}, {45009, Outcome::kQuota},
      {45011, Outcome::kQuota},        {-1, Outcome::kApiError},
      {41001, Outcome::kApiError},     {40002, Outcome::kApiError},
      {40013, Outcome::kApiError},     {40125, Outcome::kApiError},
      {40164, Outcome::kApiError},     {40243, Outcome::kApiError},
      {41002, Outcome::kApiError},     {43002, Outcome::kApiError},
      {40003, Outcome::kApiError},     {40129, Outcome::kApiError},
      {43104, Outcome::kApiError},     {43302, Outcome::kApiError},
      {44002, Outcome::kApiError},     {47001, Outcome::kApiError},
      {61010, Outcome::kApiError},     {76021, Outcome::kApiError},
      {76022, Outcome::kApiError},     {76001, Outcome::kApiError},
      {76002, Outcome::kApiError},     {12345, Outcome::kApiError},
  };
  for (ProbeKind kind :
       {ProbeKind::kApiDomainIp, ProbeKind::kMsgSecCheck, ProbeKind::kMsgSecCheckV2}) {
    for (const auto& [code, outcome] : codes) {
      SCOPED_TRACE(code);
      const std::string body =
          R"({"errcode":)" + std::to_string(code) + R"(,"errmsg":"some error rid: )" + kRid + "\"}";
      const Classification got = Classify(kind, Ok200(body), kToken);
      EXPECT_EQ(OutcomeName(got.outcome), OutcomeName(outcome));
      EXPECT_EQ(got.errcode, code);
      EXPECT_EQ(got.errmsg, "some error");
      EXPECT_EQ(got.rid, kRid);
      EXPECT_FALSE(got.content_flagged);
    }
  }
}

// Bodies where a parser that does not build the whole document could go astray, each with
// the exact answer the classifier gives: repeated keys (the last one counts, as in a JSON
// object), fields nested below the top level (never counted), non-object roots, trailing bytes,
// escapes, numbers at and past the integer limits, and the syntax error's byte.
struct ExactCase {
  const char* name;
  ProbeKind kind;
  std::string body;
  Outcome outcome;
  std::optional<int> errcode;
  std::string errmsg;
  bool flagged;
  std::string detail;  // compared whole
  std::string rid = "";
};

std::string Nested(int levels, std::string_view inner) {
  return std::string(static_cast<size_t>(levels), '[') + std::string(inner) +
         std::string(static_cast<size_t>(levels), ']');
}

std::vector<ExactCase> ExactCases() {
  const auto kIp = ProbeKind::kApiDomainIp;
  const auto kV1 = ProbeKind::kMsgSecCheck;
  const auto kV2 = ProbeKind::kMsgSecCheckV2;
  const auto kOk = Outcome::kOk;
  const auto kBad = Outcome::kBadResponse;
  const auto kApi = Outcome::kApiError;
  const auto kInvalid = Outcome::kTokenInvalid;
  const auto kNo = std::nullopt;
  return {
      // Repeated keys: the last value counts, whatever its type.
      {"repeated_errcode_last_wins_ok", kIp, R"({"errcode":40001,"errcode":0,"ip_list":[]})", kOk,
       0, "", false, ""},
      {"repeated_errcode_last_wins_error", kIp, R"({"errcode":0,"ip_list":[],"errcode":40001})",
       kInvalid, 40001, "", false, ""},
      {"repeated_errcode_last_is_a_string", kIp, R"({"errcode":0,"errcode":"0","ip_list":[]})",
       kBad, kNo, "", false, "errcode is a string, expected an integer"},
      {"repeated_errmsg_last_wins", kIp, R"({"errcode":-1,"errmsg":"first","errmsg":"second"})",
       kApi, -1, "second", false, ""},
      {"repeated_errmsg_last_not_a_string", kIp, R"({"errcode":-1,"errmsg":"first","errmsg":1})",
       kApi, -1, "", false, ""},
      {"repeated_errmsg_string_after_object", kIp,
       R"({"errcode":-1,"errmsg":{"errmsg":"inner"},"errmsg":"outer"})", kApi, -1, "outer", false,
       ""},
      {"repeated_ip_list_last_not_an_array", kIp, R"({"ip_list":[],"ip_list":"1.2.3.4"})", kBad,
       kNo, "", false, "ip_list is a string, expected an array"},
      {"repeated_ip_list_last_an_array", kIp, R"({"ip_list":"1.2.3.4","ip_list":["1.2.3.4"]})", kOk,
       0, "", false, ""},
      {"repeated_result_last_without_suggest", kV2,
       R"({"errcode":0,"result":{"suggest":"risky"},"result":{"label":100}})", kOk, 0, "", false,
       ""},
      {"repeated_result_last_not_an_object", kV2, R"({"result":{"suggest":"risky"},"result":1})",
       kOk, 0, "", false, ""},
      {"repeated_result_last_risky", kV2,
       R"({"result":{"suggest":"pass"},"result":{"suggest":"review"}})", kOk, 0, "", true, ""},
      {"repeated_suggest_last_pass", kV2, R"({"result":{"suggest":"risky","suggest":"pass"}})", kOk,
       0, "", false, ""},
      {"repeated_suggest_last_risky", kV2, R"({"result":{"suggest":"pass","suggest":"risky"}})",
       kOk, 0, "", true, ""},
      {"repeated_suggest_last_not_a_string", kV2, R"({"result":{"suggest":"risky","suggest":2}})",
       kOk, 0, "", false, ""},
      // Fields below the top level are not the answer's.
      {"nested_errcode_is_not_top_level_ip", kIp, R"({"x":{"errcode":40001}})", kBad, kNo, "",
       false, "ip_list is missing"},
      {"nested_errcode_is_not_top_level_v1", kV1, R"({"x":{"errcode":40001,"errmsg":"inner"}})",
       kOk, 0, "", false, ""},
      {"nested_errcode_in_array", kIp, R"({"x":[{"errcode":40001,"errmsg":"no"}],"ip_list":[]})",
       kOk, 0, "", false, ""},
      {"nested_ip_list_is_not_top_level", kIp, R"({"data":{"ip_list":["1.2.3.4"]}})", kBad, kNo, "",
       false, "ip_list is missing"},
      {"nested_errcode_after_top_level_one", kIp, R"({"errcode":40001,"x":{"errcode":0}})",
       kInvalid, 40001, "", false, ""},
      {"nested_errcode_before_top_level_one", kIp,
       R"({"a":{"errcode":0,"b":[1,{"errcode":0}]},"errcode":40001,"errmsg":"top"})", kInvalid,
       40001, "top", false, ""},
      {"errcode_inside_errcode", kIp, R"({"errcode":{"errcode":0}})", kBad, kNo, "", false,
       "errcode is an object, expected an integer"},
      {"ip_list_inside_ip_list", kIp, R"({"ip_list":{"ip_list":[]}})", kBad, kNo, "", false,
       "ip_list is an object, expected an array"},
      {"nested_arrays_in_ip_list_then_errcode", kIp, R"({"ip_list":[["a"],[[]]],"errcode":40001})",
       kInvalid, 40001, "", false, ""},
      {"errcode_inside_result", kV2, R"({"result":{"errcode":40001,"errmsg":"inner"}})", kOk, 0, "",
       false, ""},
      {"suggest_at_top_level", kV2, R"({"errcode":0,"suggest":"risky"})", kOk, 0, "", false, ""},
      {"suggest_below_result", kV2, R"({"result":{"x":{"suggest":"risky"}}})", kOk, 0, "", false,
       ""},
      {"result_below_top_level", kV2, R"({"x":{"result":{"suggest":"risky"}}})", kOk, 0, "", false,
       ""},
      {"suggest_in_an_object_after_result", kV2,
       R"({"result":{"suggest":"pass"},"x":{"suggest":"risky"}})", kOk, 0, "", false, ""},
      {"result_is_an_array", kV2, R"({"result":[{"suggest":"risky"}]})", kOk, 0, "", false, ""},
      {"result_is_an_array_of_strings", kV2, R"({"result":["suggest","risky"]})", kOk, 0, "", false,
       ""},
      {"suggest_is_an_array", kV2, R"({"result":{"suggest":["risky"]}})", kOk, 0, "", false, ""},
      {"suggest_is_upper_case", kV2, R"({"result":{"suggest":"RISKY"}})", kOk, 0, "", false, ""},
      {"result_then_errcode", kV2,
       R"({"result":{"suggest":"risky","detail":[{"suggest":"pass"}]},"errcode":0,"errmsg":"ok"})",
       kOk, 0, "ok", true, ""},
      {"v2_87014_wins_over_result", kV2, R"({"errcode":87014,"result":{"suggest":"pass"}})", kOk,
       87014, "", true, ""},
      {"v2_error_wins_over_result", kV2, R"({"errcode":40001,"result":{"suggest":"risky"}})",
       kInvalid, 40001, "", false, ""},
      // Other types.
      {"errcode_array", kIp, R"({"errcode":[0]})", kBad, kNo, "", false,
       "errcode is an array, expected an integer"},
      {"errcode_boolean", kIp, R"({"errcode":true})", kBad, kNo, "", false,
       "errcode is a boolean, expected an integer"},
      {"errmsg_null", kIp, R"({"errcode":-1,"errmsg":null})", kApi, -1, "", false, ""},
      {"ip_list_null", kIp, R"({"ip_list":null})", kBad, kNo, "", false,
       "ip_list is null, expected an array"},
      {"ip_list_number", kIp, R"({"ip_list":1})", kBad, kNo, "", false,
       "ip_list is a number, expected an array"},
      {"ip_list_float", kIp, R"({"ip_list":1.5})", kBad, kNo, "", false,
       "ip_list is a float, expected an array"},
      {"ip_list_boolean", kIp, R"({"ip_list":false})", kBad, kNo, "", false,
       "ip_list is a boolean, expected an array"},
      {"ip_list_object", kIp, R"({"ip_list":{}})", kBad, kNo, "", false,
       "ip_list is an object, expected an array"},
      {"empty_key", kIp, R"({"":[],"ip_list ":[]})", kBad, kNo, "", false, "ip_list is missing"},
      // Keys are compared after unescaping, and whole.
      {"escaped_key", kIp, R"({"err\u0063ode":40001,"ip_list":[]})", kInvalid, 40001, "", false,
       ""},
      {"key_with_nul", kIp, R"({"errcode\u0000":40001,"ip_list":[]})", kOk, 0, "", false, ""},
      // Roots that are not objects, and bytes after the root.
      {"root_empty_array", kIp, "[]", kBad, kNo, "", false,
       "body is an array, expected a JSON object"},
      {"root_array_of_scalars", kIp, R"([1,"errcode",{"errcode":40001}])", kBad, kNo, "", false,
       "body is an array, expected a JSON object"},
      {"root_true", kIp, "true", kBad, kNo, "", false, "body is a boolean, expected a JSON object"},
      {"root_integer", kIp, "40001", kBad, kNo, "", false,
       "body is a number, expected a JSON object"},
      {"root_negative", kIp, "-1", kBad, kNo, "", false,
       "body is a number, expected a JSON object"},
      {"root_float", kIp, " 1.5 ", kBad, kNo, "", false, "body is a float, expected a JSON object"},
      {"root_string", kIp, R"("ok")", kBad, kNo, "", false,
       "body is a string, expected a JSON object"},
      {"trailing_whitespace_is_fine", kIp, "{\"ip_list\":[]} \r\n\t", kOk, 0, "", false, ""},
      {"trailing_garbage", kIp, R"({"errcode":0,"ip_list":[]} x)", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 28"},
      {"trailing_object", kIp, R"({"errcode":0,"ip_list":[]}{})", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 27"},
      {"trailing_comma", kIp, R"({"errcode":0,"ip_list":[]},)", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 27"},
      {"trailing_after_error_answer", kIp, R"({"errcode":40001}])", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 18"},
      {"trailing_after_array_root", kIp, "[] x", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 4"},
      {"trailing_after_string_root", kIp, R"("ok" 1)", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 6"},
      {"unclosed_array_root", kIp, "[1,", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 4"},  // the end of the input counts as a byte
      // Syntax errors inside the object, with their byte.
      {"truncated_string", kIp, R"({"errcode":40001,"errmsg":"inv)", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 31"},
      {"missing_value", kIp, R"({"errcode":})", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 12"},
      {"trailing_comma_in_object", kIp, R"({"errcode":0,})", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 14"},
      {"single_quotes", kIp, R"({'errcode':0})", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 2"},
      {"comment", kIp, R"({"errcode":0 /* ok */,"ip_list":[]})", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 14"},
      {"nan", kIp, R"({"errcode":NaN})", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 12"},
      {"leading_zero", kIp, R"({"errcode":040001})", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 17"},  // "0" then "40001": the second number
      {"error_after_a_good_prefix", kIp, R"({"errcode":40001,"errmsg":"x","ip_list":[1,]})", kBad,
       kNo, "", false, "body is not JSON: syntax error at byte 44"},
      // The byte counts the repaired body: each invalid byte became 3 (U+FFFD).
      {"error_after_repaired_utf8", kIp, "{\"errmsg\":\"\xFF\xFF\",x}", kBad, kNo, "", false,
       "body is not JSON: syntax error at byte 20"},
      // Escapes in errmsg are decoded; control characters become spaces.
      {"errmsg_escapes", kIp,
       R"({"errcode":-1,"errmsg":"q\" b\\ s\/ \u00e9 \ud83d\ude00 nul\u0000end rid: )" + kRid +
           "\"}",
       kApi, -1, "q\" b\\ s/ \xC3\xA9 \xF0\x9F\x98\x80 nul end", false, "", kRid},
      {"errmsg_only_escapes", kIp, R"({"errcode":-1,"errmsg":"\u0000\u0000"})", kApi, -1, "", false,
       ""},
      // Numbers: integers only, within int.
      {"errcode_minus_one", kIp, R"({"errcode":-1})", kApi, -1, "", false, ""},
      {"errcode_minus_zero", kIp, R"({"errcode":-0,"ip_list":[]})", kOk, 0, "", false, ""},
      {"errcode_exponent", kIp, R"({"errcode":4.0e4})", kBad, kNo, "", false,
       "errcode is a float, expected an integer"},
      {"errcode_integer_exponent", kIp, R"({"errcode":40001e0})", kBad, kNo, "", false,
       "errcode is a float, expected an integer"},
      // A number too big for a double is an overflow error, not a syntax error, wherever it is.
      {"errcode_huge_exponent", kIp, R"({"errcode":1e400})", kBad, kNo, "", false,
       "body could not be processed"},
      {"huge_exponent_elsewhere", kIp, R"({"ip_list":[],"x":[-1e400]})", kBad, kNo, "", false,
       "body could not be processed"},
      {"huge_exponent_after_syntax_error", kIp, R"({"ip_list":[],,"x":1e400})", kBad, kNo, "",
       false, "body is not JSON: syntax error at byte 15"},
      {"syntax_error_after_huge_exponent", kIp, R"({"x":1e400,,"ip_list":[]})", kBad, kNo, "",
       false, "body could not be processed"},
      {"errcode_tiny_exponent", kIp, R"({"errcode":1e-400})", kBad, kNo, "", false,
       "errcode is a float, expected an integer"},
      {"errcode_int_max", kIp, R"({"errcode":2147483647})", kApi, 2147483647, "", false, ""},
      {"errcode_int_max_plus_one", kIp, R"({"errcode":2147483648})", kBad, kNo, "", false,
       "errcode 2147483648 is out of range"},
      {"errcode_int_min", kIp, R"({"errcode":-2147483648})", kApi, -2147483647 - 1, "", false, ""},
      {"errcode_int_min_minus_one", kIp, R"({"errcode":-2147483649})", kBad, kNo, "", false,
       "errcode -2147483649 is out of range"},
      {"errcode_uint64_max", kIp, R"({"errcode":18446744073709551615})", kBad, kNo, "", false,
       "errcode 18446744073709551615 is out of range"},
      {"errcode_past_uint64", kIp, R"({"errcode":18446744073709551616})", kBad, kNo, "", false,
       "errcode is a float, expected an integer"},
      {"errcode_int64_min", kIp, R"({"errcode":-9223372036854775808})", kBad, kNo, "", false,
       "errcode -9223372036854775808 is out of range"},
      {"errcode_past_int64_min", kIp, R"({"errcode":-9223372036854775809})", kBad, kNo, "", false,
       "errcode is a float, expected an integer"},
      {"errmsg_kept_when_errcode_out_of_range", kIp, R"({"errmsg":"x","errcode":99999999999})",
       kBad, kNo, "x", false, "errcode 99999999999 is out of range"},
      // Deep but under the limit: 64 levels in all.
      {"nested_64_levels", kIp, R"({"x":)" + Nested(63, "") + R"(,"errcode":40001})", kInvalid,
       40001, "", false, ""},
      {"nested_65_levels", kIp, R"({"x":)" + Nested(64, "") + R"(,"errcode":40001})", kBad, kNo, "",
       false, "JSON nested deeper than 64 levels at byte 68"},
      {"nested_objects_64_levels", kIp,
       [] {
         std::string s = "{\"ip_list\":[],\"errcode\":40001";
         for (int i = 0; i < 63; ++i) s += ",\"errcode\":{\"errmsg\":\"deep\"";
         return s + std::string(63, '}') + ",\"errcode\":0}";
       }(),
       kOk, 0, "", false, ""},
  };
}

TEST(Classify, gives_the_exact_answer_for_tricky_bodies) {
  for (const auto& c : ExactCases()) {
    SCOPED_TRACE(c.name);
    const Classification got = Classify(c.kind, Ok200(c.body), kToken);
    ExpectAnswer(got, c);
    EXPECT_EQ(got.detail, c.detail);
  }
}

// The real get_api_domain_ip lists hundreds of addresses; a long list is just a success.
TEST(Classify, accepts_a_long_ip_list) {
  std::string body = R"({"ip_list":[)";
  for (int i = 0; i < 20'000; ++i) {
    if (i > 0) body += ',';
    body += "\"101." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) + ".27\"";
  }
  body += "]}";
  Classification got = Classify(ProbeKind::kApiDomainIp, Ok200(body), kToken);
  EXPECT_EQ(got.outcome, Outcome::kOk) << got.detail;
  EXPECT_EQ(got.errcode, 0);

  // The list first, the verdict after it.
  body.pop_back();
  body += R"(,"errcode":42001,"errmsg":"access_token expired"})";
  got = Classify(ProbeKind::kApiDomainIp, Ok200(body), kToken);
  EXPECT_EQ(got.outcome, Outcome::kTokenExpired);
  EXPECT_EQ(got.errcode, 42001);
  EXPECT_EQ(got.errmsg, "access_token expired");
}

TEST(Classify, transport_failure_keeps_curl_message_without_the_token) {
  HttpResponse r;
  r.transport_ok = false;
  r.transport_error = "Failed to connect to 127.0.0.1 port 1: Connection refused (curl error 7)";
  Classification got = Classify(ProbeKind::kApiDomainIp, r, kToken);
  EXPECT_EQ(got.outcome, Outcome::kTransportError);
  EXPECT_EQ(got.detail, r.transport_error);
  EXPECT_FALSE(got.errcode.has_value());

  r.transport_error = "bad thing near access_token=" + kToken.Reveal();
  got = Classify(ProbeKind::kApiDomainIp, r, kToken);
  EXPECT_EQ(got.detail, "bad thing near access_token=<" + kToken.Fingerprint() + ">");
}

TEST(Classify, non_200_is_a_transport_error_even_with_a_good_body) {
  for (long status : {500L, 502L, 404L, 204L, 301L}) {
    HttpResponse r = Ok200(R"({"errcode":0,"ip_list":[]})");
    r.http_status = status;
    const Classification got = Classify(ProbeKind::kApiDomainIp, r, kToken);
    EXPECT_EQ(got.outcome, Outcome::kTransportError);
    EXPECT_EQ(got.detail, "HTTP " + std::to_string(status));
    EXPECT_FALSE(got.errcode.has_value());
  }
}

TEST(Classify, truncates_errmsg_to_512_bytes_on_a_character_boundary) {
  std::string long_msg;
  for (int i = 0; i < 300; ++i) long_msg += "\xE5\xBE\xAE";  // U+5FAE, 3 bytes
  const Classification got =
      Classify(ProbeKind::kApiDomainIp,
               Ok200(R"({"errcode":-1,"errmsg":")" + long_msg + " rid: " + kRid + "\"}"), kToken);
  EXPECT_EQ(got.errmsg.size(), 510u);  // 170 whole characters; 512 would split one
  EXPECT_EQ(got.errmsg, long_msg.substr(0, 510));
  EXPECT_EQ(got.rid, kRid);  // the rid is split off before truncating, so it survives
}

TEST(Classify, repairs_invalid_utf8_in_errmsg_and_keeps_the_errcode) {
  const std::string body = "{\"errcode\":40001,\"errmsg\":\"bad \xFF\xFE bytes \xC0\xAF end\"}";
  const Classification got = Classify(ProbeKind::kApiDomainIp, Ok200(body), kToken);
  EXPECT_EQ(got.outcome, Outcome::kTokenInvalid);
  EXPECT_EQ(got.errmsg, "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes \xEF\xBF\xBD\xEF\xBF\xBD end");
  EXPECT_TRUE(DumpsCleanly(got.errmsg));
}

TEST(Classify, refuses_deep_nesting_without_recursing) {
  const std::string bomb = std::string(200'000, '[') + std::string(200'000, ']');
  Classification got = Classify(ProbeKind::kApiDomainIp, Ok200(bomb), kToken);
  EXPECT_EQ(got.outcome, Outcome::kBadResponse);
  EXPECT_EQ(got.detail, "JSON nested deeper than 64 levels at byte 64");

  // Brackets inside strings do not count, and moderate nesting is fine.
  const std::string fine =
      R"({"ip_list":[],"errmsg":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","x":)" +
      std::string(60, '[') + std::string(60, ']') + "}";
  got = Classify(ProbeKind::kApiDomainIp, Ok200(fine), kToken);
  EXPECT_EQ(got.outcome, Outcome::kOk) << got.detail;
}

// Too deep comes first, whatever else is wrong with the body, at the raw body's byte.
TEST(Classify, reports_excessive_nesting_before_other_faults) {
  const std::string deep = std::string(65, '[');
  struct DeepCase {
    const char* name;
    std::string body;
    std::string detail;
  };
  const std::vector<DeepCase> cases = {
      {"syntax_error_before", "x" + deep, "JSON nested deeper than 64 levels at byte 65"},
      {"syntax_error_after", "{\"a\":" + deep + "x",
       "JSON nested deeper than 64 levels at byte 68"},
      // ... but brackets in a string are not brackets, even an unclosed one.
      {"brackets_in_an_unclosed_string", "\"" + deep, "body is not JSON: syntax error at byte 67"},
      {"huge_number_before", "[1e400," + deep, "JSON nested deeper than 64 levels at byte 70"},
      {"valid_then_deep_trailer", R"({"ip_list":[]})" + deep,
       "JSON nested deeper than 64 levels at byte 78"},
      // Invalid UTF-8 is repaired after the check: the byte is the raw body's.
      {"invalid_utf8_before", "{\"errmsg\":\"\xFF\xFF\",\"x\":" + deep,
       "JSON nested deeper than 64 levels at byte 82"},
      {"objects",
       R"({"a":)" +
           [] {
             std::string s;
             for (int i = 0; i < 70; ++i) s += R"({"a":)";
             return s;
           }(),
       "JSON nested deeper than 64 levels at byte 320"},
      // Brackets in strings, escaped quotes included, do not count.
      {"strings_do_not_count",
       R"({"a":"\"[[[[","b":)" + std::string(63, '[') + "\"[[[[\\\"[[\"" + std::string(63, ']') +
           R"(,"c":)" + deep,
       "JSON nested deeper than 64 levels at byte 222"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Classification got = Classify(ProbeKind::kApiDomainIp, Ok200(c.body), kToken);
    EXPECT_EQ(got.outcome, Outcome::kBadResponse);
    EXPECT_EQ(got.detail, c.detail);
  }

  // Escaped quotes and brackets in strings keep a body at 64 levels parseable.
  const std::string at_limit = R"({"errmsg":"\"[{","x":)" + std::string(63, '[') + R"("]\\\"[")" +
                               std::string(63, ']') + R"(,"errcode":40001})";
  const Classification got = Classify(ProbeKind::kApiDomainIp, Ok200(at_limit), kToken);
  EXPECT_EQ(got.outcome, Outcome::kTokenInvalid) << got.detail;
  EXPECT_EQ(got.errmsg, "\"[{");
}

TEST(Classify, refuses_bodies_over_the_size_cap) {
  const std::string huge = R"({"ip_list":[],"pad":")" + std::string(kMaxResponseBytes, 'a') + "\"}";
  const Classification got = Classify(ProbeKind::kApiDomainIp, Ok200(huge), kToken);
  EXPECT_EQ(got.outcome, Outcome::kBadResponse);
  EXPECT_NE(got.detail.find("exceeds the 1048576-byte limit"), std::string::npos);

  // Just under the cap: parsed, errmsg cut to 512 bytes.
  const std::string big =
      R"({"errcode":-1,"errmsg":")" + std::string(kMaxResponseBytes - 64, 'e') + "\"}";
  const Classification big_got = Classify(ProbeKind::kApiDomainIp, Ok200(big), kToken);
  EXPECT_EQ(big_got.outcome, Outcome::kApiError);
  EXPECT_EQ(big_got.errmsg.size(), kMaxErrmsgBytes);
}

// Random bytes and mutated real answers: never throws, strings always dump as JSON, and the
// token never leaks even when it is sprinkled into the body.
TEST(Classify, survives_random_and_mutated_bodies) {
  std::mt19937 rng(12345);
  const std::vector<std::string> seeds = {
      R"({"errcode":40001,"errmsg":"invalid credential rid: 6571e1e1-4ab1b77d-2e8b4a5f"})",
      R"({"errcode":0,"errmsg":"ok","result":{"suggest":"risky","label":20001}})",
      R"({"ip_list":["1.2.3.4"]})",
      R"({"errcode":40014,"errmsg":"invalid access_token )" + kToken.Reveal() + R"( hint: [abc]"})",
  };
  for (int i = 0; i < 3000; ++i) {
    std::string body;
    if (i % 3 == 0) {
      const size_t n = rng() % 200;
      for (size_t k = 0; k < n; ++k) body.push_back(static_cast<char>(rng() & 0xFF));
    } else {
      body = seeds[rng() % seeds.size()];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !body.empty(); ++e) {
        body[rng() % body.size()] = static_cast<char>(rng() & 0xFF);
      }
    }
    for (ProbeKind kind : {ProbeKind::kApiDomainIp, ProbeKind::kMsgSecCheckV2}) {
      Classification got;
      ASSERT_NO_THROW(got = Classify(kind, Ok200(body), kToken)) << i;
      EXPECT_TRUE(DumpsCleanly(got.errmsg)) << i;
      EXPECT_TRUE(DumpsCleanly(got.rid)) << i;
      EXPECT_TRUE(DumpsCleanly(got.detail)) << i;
      EXPECT_EQ(got.errmsg.find(kToken.Reveal()), std::string::npos) << i;
      EXPECT_LE(got.errmsg.size(), kMaxErrmsgBytes);
    }
  }
}

struct RidCase {
  const char* in;
  const char* message;
  const char* rid;
};

TEST(SplitRid, splits_rid_or_hint_off_the_end_only) {
  const std::vector<RidCase> cases = {
      {"access_token expired rid: 6571e1e1-4ab1b77d-2e8b4a5f", "access_token expired",
       "6571e1e1-4ab1b77d-2e8b4a5f"},
      {"access_token expired rid: 6571e1e1-4ab1b77d-2e8b4a5f \n", "access_token expired",
       "6571e1e1-4ab1b77d-2e8b4a5f"},
      {"rid: 6571e1e1-4ab1b77d-2e8b4a5f", "", "6571e1e1-4ab1b77d-2e8b4a5f"},
      {"invalid credential hint: [Ud7ZKa0410vr31]", "invalid credential", "Ud7ZKa0410vr31"},
      {"hint: [x]", "", "x"},
      {"ok", "ok", ""},
      {"", "", ""},
      // Not a rid: uppercase hex, wrong group length, no space before, text after it.
      {"err rid: 6571E1E1-4AB1B77D-2E8B4A5F", "err rid: 6571E1E1-4AB1B77D-2E8B4A5F", ""},
      {"err rid: 6571e1e1-4ab1b77d-2e8b4a5", "err rid: 6571e1e1-4ab1b77d-2e8b4a5", ""},
      {"errrid: 6571e1e1-4ab1b77d-2e8b4a5f", "errrid: 6571e1e1-4ab1b77d-2e8b4a5f", ""},
      {"err rid: 6571e1e1-4ab1b77d-2e8b4a5f more", "err rid: 6571e1e1-4ab1b77d-2e8b4a5f more", ""},
      {"err rid:6571e1e1-4ab1b77d-2e8b4a5f", "err rid:6571e1e1-4ab1b77d-2e8b4a5f", ""},
      // Not a hint: empty brackets, spaces inside, other label.
      {"err hint: []", "err hint: []", ""},
      {"err hint: [a b]", "err hint: [a b]", ""},
      {"see [docs]", "see [docs]", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    std::string message = "stale", rid = "stale";
    SplitRid(c.in, &message, &rid);
    EXPECT_EQ(message, c.message);
    EXPECT_EQ(rid, c.rid);
  }
}

}  // namespace
}  // namespace wxcanary::wechat
