#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "telemetry/log.h"

namespace wxcanary::telemetry {
namespace {

using std::chrono::milliseconds;

// 2026-11-30T06:01:02.123Z
const SystemTime kTs = SystemTime{std::chrono::seconds{1796018462}} + milliseconds{123};

std::vector<std::string> Keys(const nlohmann::ordered_json& j) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  return keys;
}

TEST(FormatJsonLine, puts_the_ecs_head_first_for_every_level) {
  struct Case {
    Level level;
    std::string name;
  };
  for (const auto& c : std::vector<Case>{{Level::kDebug, "debug"},
                                         {Level::kInfo, "info"},
                                         {Level::kWarn, "warn"},
                                         {Level::kError, "error"}}) {
    Fields fields = Fields::object();
    fields["event.outcome"] = "failure";
    fields["labels.app_id"] = "wx123";
    fields["wxcanary.wechat.errcode"] = 40001;
    std::string line = FormatJsonLine(kTs, c.level, "probe", "hello", fields);
    auto j = nlohmann::ordered_json::parse(line);
    EXPECT_EQ(Keys(j),
              (std::vector<std::string>{"@timestamp", "log.level", "message", "ecs.version",
                                        "service.name", "event.action", "event.outcome",
                                        "labels.app_id", "wxcanary.wechat.errcode"}))
        << c.name;
    EXPECT_EQ(j["@timestamp"], "2026-11-30T06:01:02.123Z");
    EXPECT_EQ(j["log.level"], c.name);
    EXPECT_EQ(j["message"], "hello");
    EXPECT_EQ(j["ecs.version"], "8.11.0");
    EXPECT_EQ(j["service.name"], "wxcanary");
    EXPECT_EQ(j["event.action"], "probe");
    EXPECT_EQ(j["wxcanary.wechat.errcode"], 40001);
    // The four ECS fields start the raw line itself, not just the parsed object.
    EXPECT_EQ(line.rfind("{\"@timestamp\":\"2026-11-30T06:01:02.123Z\",\"log.level\":\"" + c.name +
                             "\",\"message\":\"hello\",\"ecs.version\":\"8.11.0\",",
                         0),
              0u)
        << line;
  }
}

TEST(FormatJsonLine, pads_milliseconds_and_uses_utc) {
  auto line = FormatJsonLine(SystemTime{std::chrono::seconds{0}} + milliseconds{7}, Level::kInfo,
                             "x", "m", Fields::object());
  EXPECT_EQ(nlohmann::json::parse(line)["@timestamp"], "1970-01-01T00:00:00.007Z");
}

TEST(FormatJsonLine, a_field_cannot_override_or_reorder_the_head) {
  Fields fields = Fields::object();
  fields["message"] = "forged";
  fields["log.level"] = "debug";
  fields["@timestamp"] = "yesterday";
  fields["event.action"] = "other";
  fields["labels.app_id"] = "wx1";
  auto j =
      nlohmann::ordered_json::parse(FormatJsonLine(kTs, Level::kError, "probe", "real", fields));
  EXPECT_EQ(j["message"], "real");
  EXPECT_EQ(j["log.level"], "error");
  EXPECT_EQ(j["@timestamp"], "2026-11-30T06:01:02.123Z");
  EXPECT_EQ(j["event.action"], "probe");
  EXPECT_EQ(j.size(), 7u);
}

struct Hostile {
  std::string name;
  std::string text;
};

std::vector<Hostile> HostileStrings() {
  std::string ctl;
  for (int c = 0; c < 0x20; ++c) ctl.push_back(static_cast<char>(c));
  ctl.push_back('\x7f');
  return {
      {"quotes", R"(he said "40001" and \ left)"},
      {"newlines", "line1\nline2\r\nline3\n{\"@timestamp\":\"forged\"}"},
      {"control_chars", ctl},
      {"invalid_utf8", "bad \xff\xfe bytes \xc3 truncated \xe4\xbd"},
      {"overlong_and_surrogate", "\xc0\xaf \xed\xa0\x80 end"},
      {"valid_cjk", "invalid credential, access_token is invalid 特3456书"},
      {"one_megabyte", std::string(1 << 20, 'A') + "\n\xff" + std::string(100, '"')},
  };
}

TEST(FormatJsonLine, hostile_strings_give_exactly_one_parseable_line) {
  for (const auto& h : HostileStrings()) {
    Fields fields = Fields::object();
    fields["wxcanary.wechat.errmsg"] = h.text;
    fields[h.text] = h.text;  // hostile key too
    std::string line;
    ASSERT_NO_THROW(line = FormatJsonLine(kTs, Level::kError, h.text, h.text, fields)) << h.name;
    EXPECT_EQ(line.find('\n'), std::string::npos) << h.name;
    EXPECT_EQ(line.find('\r'), std::string::npos) << h.name;
    for (unsigned char c : line) ASSERT_GE(c, 0x20) << h.name;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << h.name;
    EXPECT_EQ(j["log.level"], "error");
    EXPECT_EQ(j.size(), 8u) << h.name;
  }
}

TEST(FormatJsonLine, keeps_valid_text_exactly_and_replaces_invalid_bytes) {
  auto valid = HostileStrings()[1].text;
  auto j = nlohmann::json::parse(FormatJsonLine(kTs, Level::kInfo, "a", valid, Fields::object()));
  EXPECT_EQ(j["message"], valid);

  auto bad = nlohmann::json::parse(
      FormatJsonLine(kTs, Level::kInfo, "a", std::string("ok\xff!"), Fields::object()));
  EXPECT_EQ(bad["message"], "ok\xEF\xBF\xBD!");  // U+FFFD
}

TEST(FormatTextLine, writes_one_logfmt_line_with_quoted_values_where_needed) {
  Fields fields = Fields::object();
  fields["labels.app_id"] = "wx123";
  fields["wxcanary.wechat.errcode"] = 40001;
  fields["wxcanary.wechat.errmsg"] = "invalid credential\nrid: x";
  fields["wxcanary.probe.content_flagged"] = true;
  EXPECT_EQ(FormatTextLine(kTs, Level::kWarn, "probe", "probe wx123/prod: token_invalid", fields),
            "2026-11-30T06:01:02.123Z level=warn action=probe "
            "msg=\"probe wx123/prod: token_invalid\" labels.app_id=wx123 "
            "wxcanary.wechat.errcode=40001 wxcanary.wechat.errmsg=\"invalid credential\\nrid: x\" "
            "wxcanary.probe.content_flagged=true");
}

TEST(FormatTextLine, hostile_strings_stay_on_one_line) {
  for (const auto& h : HostileStrings()) {
    Fields fields = Fields::object();
    fields["k"] = h.text;
    std::string line;
    ASSERT_NO_THROW(line = FormatTextLine(kTs, Level::kInfo, h.text, h.text, fields)) << h.name;
    EXPECT_EQ(line.find('\n'), std::string::npos) << h.name;
    for (unsigned char c : line) ASSERT_GE(c, 0x20) << h.name;
  }
}

TEST(Level, names_round_trip_and_unknown_names_are_rejected) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError})
    EXPECT_EQ(ParseLevel(LevelName(l)), l);
  EXPECT_EQ(ParseLevel("WARN"), std::nullopt);
  EXPECT_EQ(ParseLevel("warning"), std::nullopt);
  EXPECT_EQ(ParseLevel(""), std::nullopt);
}

}  // namespace
}  // namespace wxcanary::telemetry
