// Walks the probe-kind table: every kind has a name, a path and (for POST) a body, and its call
// against a real wxsim is classified ok with a live token and token_invalid with a dead one.
// A new kind gets its row checked here without a new test.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/wxsim.h"
#include "wechat/client.h"
#include "wechat/probe_kinds.h"

namespace wxcanary::wechat {
namespace {

using namespace std::chrono_literals;
using testing::WxSim;

ProbeCall CallFor(const ProbeKindEntry& kind) {
  // wxsim wants a 28-character openid for v2, as WeChat does.
  return {.kind = kind.kind,
          .content = "wxcanary canary",
          .scene = 2,
          .openid = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"};
}

TEST(ProbeKinds, every_entry_is_found_by_its_kind_and_name) {
  std::set<ProbeKind> kinds;
  std::set<std::string_view> names;
  for (const auto& k : ProbeKinds()) {
    kinds.insert(k.kind);
    names.insert(k.name);
    EXPECT_EQ(&KindEntry(k.kind), &k) << k.name;
    EXPECT_EQ(FindProbeKind(k.name), &k) << k.name;
    EXPECT_EQ(ProbeKindName(k.kind), k.name);
  }
  EXPECT_EQ(kinds.size(), ProbeKinds().size());
  EXPECT_EQ(names.size(), ProbeKinds().size());
  EXPECT_EQ(FindProbeKind("no_such_kind"), nullptr);
}

TEST(ProbeKinds, every_kind_has_a_path_and_a_body_that_matches_its_method) {
  for (const auto& k : ProbeKinds()) {
    SCOPED_TRACE(std::string(k.name));
    ASSERT_FALSE(k.path.empty());
    EXPECT_EQ(k.path.front(), '/');
    EXPECT_EQ(k.path.find('?'), std::string_view::npos);  // the token's query is the client's
    ASSERT_NE(k.check_success, nullptr);
    if (k.method == HttpMethod::kGet) {
      EXPECT_EQ(k.body, nullptr);
      EXPECT_FALSE(k.sends_content);
      continue;
    }
    ASSERT_NE(k.body, nullptr);
    const auto body = nlohmann::json::parse(k.body(CallFor(k)));
    ASSERT_TRUE(body.is_object());
    if (k.sends_content) {
      EXPECT_EQ(body.value("content", ""), "wxcanary canary");
    }
    if (k.takes_openid_scene) {
      EXPECT_EQ(body.value("openid", ""), "oAbCdEfGhIjKlMnOpQrStUvWxYz0");
      EXPECT_EQ(body.value("scene", 0), 2);
    }
  }
}

TEST(ProbeKinds, json_type_names_read_as_in_a_sentence) {
  EXPECT_EQ(JsonTypeName(JsonType::kNull), "null");
  EXPECT_EQ(JsonTypeName(JsonType::kBoolean), "a boolean");
  EXPECT_EQ(JsonTypeName(JsonType::kInteger), "a number");
  EXPECT_EQ(JsonTypeName(JsonType::kFloat), "a float");
  EXPECT_EQ(JsonTypeName(JsonType::kString), "a string");
  EXPECT_EQ(JsonTypeName(JsonType::kArray), "an array");
  EXPECT_EQ(JsonTypeName(JsonType::kObject), "an object");
}

// The success checks see only the answer's fields the classifier gathered: one carrying every
// kind's success (an ip_list array, a "pass" verdict) is a success for every kind, unflagged.
TEST(ProbeKinds, every_kind_accepts_an_answer_with_the_success_fields) {
  const AnswerFields fields{.ip_list = JsonType::kArray, .result_suggest = "pass"};
  for (const auto& k : ProbeKinds()) {
    SCOPED_TRACE(std::string(k.name));
    bool flagged = false;
    EXPECT_EQ(k.check_success(fields, &flagged), "");
    EXPECT_FALSE(flagged);
  }
}

TEST(ProbeKinds, api_domain_ip_needs_an_ip_list_array) {
  const auto& kind = KindEntry(ProbeKind::kApiDomainIp);
  bool flagged = false;
  EXPECT_EQ(kind.check_success({}, &flagged), "ip_list is missing");
  EXPECT_EQ(kind.check_success({.ip_list = JsonType::kString}, &flagged),
            "ip_list is a string, expected an array");
  EXPECT_EQ(kind.check_success({.ip_list = JsonType::kObject}, &flagged),
            "ip_list is an object, expected an array");
  EXPECT_EQ(kind.check_success({.ip_list = JsonType::kNull}, &flagged),
            "ip_list is null, expected an array");
  EXPECT_EQ(kind.check_success({.ip_list = JsonType::kArray}, &flagged), "");
  // A verdict is not api_domain_ip's business.
  EXPECT_EQ(kind.check_success({.ip_list = JsonType::kArray, .result_suggest = "risky"}, &flagged),
            "");
  EXPECT_FALSE(flagged);
}

TEST(ProbeKinds, msg_sec_check_v2_flags_a_risky_or_review_verdict) {
  const auto& v2 = KindEntry(ProbeKind::kMsgSecCheckV2);
  const auto& v1 = KindEntry(ProbeKind::kMsgSecCheck);
  struct Verdict {
    std::optional<std::string> suggest;
    bool flagged;
  };
  const std::vector<Verdict> verdicts = {{"risky", true},  {"review", true}, {"pass", false},
                                         {"RISKY", false}, {"", false},      {std::nullopt, false}};
  for (const auto& [suggest, want] : verdicts) {
    SCOPED_TRACE(suggest.value_or("(none)"));
    bool flagged = false;
    EXPECT_EQ(v2.check_success({.result_suggest = suggest}, &flagged), "");
    EXPECT_EQ(flagged, want);
    flagged = false;
    EXPECT_EQ(v1.check_success({.result_suggest = suggest}, &flagged), "");  // 87014 instead
    EXPECT_FALSE(flagged);
  }
}

TEST(ProbeKinds, every_kind_classifies_wxsims_success_and_40001_answers) {
  WxSim sim;
  config::WeChat cfg;
  cfg.base_url = sim.base_url();
  cfg.timeout = 2s;
  Client client(cfg);
  const Secret live(sim.FetchToken());
  // Same shape as a real token but never issued: wxsim answers 40001, as WeChat does.
  std::string dead_text = live.Reveal();
  dead_text.back() = dead_text.back() == 'A' ? 'B' : 'A';
  const Secret dead(dead_text);

  for (const auto& k : ProbeKinds()) {
    SCOPED_TRACE(std::string(k.name));
    const std::string path(k.path);
    const auto before = sim.State()["calls"];
    auto count = [&](const nlohmann::json& calls, const char* code) {
      return calls.contains(path) ? calls[path].value(code, 0) : 0;
    };

    const HttpResponse ok = client.Probe(CallFor(k), live, 2s);
    ASSERT_TRUE(ok.transport_ok) << ok.transport_error;
    const Classification got_ok = Classify(k.kind, ok, live);
    EXPECT_EQ(got_ok.outcome, Outcome::kOk) << ok.body;
    EXPECT_EQ(got_ok.errcode, 0);
    EXPECT_FALSE(got_ok.content_flagged);

    const HttpResponse bad = client.Probe(CallFor(k), dead, 2s);
    ASSERT_TRUE(bad.transport_ok) << bad.transport_error;
    const Classification got_bad = Classify(k.kind, bad, dead);
    EXPECT_EQ(got_bad.outcome, Outcome::kTokenInvalid);
    EXPECT_EQ(got_bad.errcode, 40001);

    // wxsim saw each call on the kind's path (a wrong method would have been 4300x there).
    const auto after = sim.State()["calls"];
    EXPECT_EQ(count(after, "0") - count(before, "0"), 1);
    EXPECT_EQ(count(after, "40001") - count(before, "40001"), 1);
  }
}

}  // namespace
}  // namespace wxcanary::wechat
