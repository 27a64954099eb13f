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

TEST(Classify, maps_each_answer_to_its_outcome) {
  for (const auto& c : Cases()) {
    SCOPED_TRACE(c.name);
    const Classification got = Classify(c.kind, Ok200(c.body), kToken);
    EXPECT_EQ(OutcomeName(got.outcome), OutcomeName(c.outcome));
    EXPECT_EQ(got.errcode, c.errcode);
    EXPECT_EQ(got.errmsg, c.errmsg);
    EXPECT_EQ(got.rid, c.rid);
    EXPECT_EQ(got.content_flagged, c.flagged);
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
