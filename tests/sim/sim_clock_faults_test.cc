#include <gtest/gtest.h>

#include "sim/faults.h"
#include "sim/sim_clock.h"

namespace wxcanary::sim {
namespace {

using nlohmann::json;
using std::chrono::seconds;

TEST(SimClock, runs_time_scale_times_faster_than_its_base_plus_advances) {
  FakeClock base;
  SimClock clock(base, 60.0);
  auto start = clock.SystemNow();
  auto mono = clock.MonotonicNow();
  base.Advance(seconds{10});
  EXPECT_EQ(clock.SystemNow() - start, seconds{600});
  clock.Advance(seconds{300});
  EXPECT_EQ(clock.SystemNow() - start, seconds{900});
  EXPECT_EQ(clock.MonotonicNow() - mono, seconds{900});
  clock.Advance(seconds{-100});  // ignored: sim time never goes back
  EXPECT_EQ(clock.SystemNow() - start, seconds{900});
  EXPECT_EQ(clock.offset(), seconds{300});
}

TEST(ParseFault, accepts_every_kind) {
  auto f = std::get<Fault>(ParseFault(json{{"path", "/wxa/msg_sec_check"},
                                           {"latency_ms", 250},
                                           {"http_status", 500},
                                           {"reset", true},
                                           {"body", "truncated"},
                                           {"errcode", -1},
                                           {"count", 3}}));
  EXPECT_EQ(f.path, "/wxa/msg_sec_check");
  EXPECT_EQ(f.latency_ms, 250);
  EXPECT_EQ(f.http_status, 500);
  EXPECT_TRUE(f.reset);
  EXPECT_EQ(f.body, Fault::Body::kTruncated);
  EXPECT_EQ(f.errcode, -1);
  EXPECT_EQ(f.count, 3);
}

TEST(ParseFault, rejects_bad_input_with_one_line_naming_key_and_value) {
  struct Case {
    json in;
    std::string message;
  } cases[] = {
      {json::array(), "fault: body must be a JSON object, got []"},
      {{{"latency_ms", 5}},
       "fault: \"path\" must be an API path like \"/wxa/msg_sec_check\" or \"*\", got nothing"},
      {{{"path", "x"}, {"reset", true}},
       "fault: \"path\" must be an API path like \"/wxa/msg_sec_check\" or \"*\", got \"x\""},
      {{{"path", "/admin/state"}, {"reset", true}},
       "fault: \"path\" cannot be an admin path, got \"/admin/state\""},
      {{{"path", "/a"}, {"latency_ms", -1}},
       "fault: \"latency_ms\" must be an integer in [0, 600000], got -1"},
      {{{"path", "/a"}, {"http_status", 42}}, "fault: \"http_status\" must be 100..599, got 42"},
      {{{"path", "/a"}, {"body", "empty"}},
       "fault: \"body\" must be \"truncated\" or \"garbage\", got \"empty\""},
      {{{"path", "/a"}, {"reset", 1}}, "fault: \"reset\" must be true or false, got 1"},
      {{{"path", "/a"}, {"errcode", "x"}},
       "fault: \"errcode\" must be an integer errcode, got \"x\""},
      {{{"path", "/a"}, {"colour", 1}}, "fault: unknown key \"colour\""},
      {{{"path", "/a"}},
       "fault: nothing to inject for \"/a\" (set latency_ms, http_status, reset, body or "
       "errcode)"},
  };
  for (const auto& c : cases) {
    auto r = ParseFault(c.in);
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << c.in.dump();
    EXPECT_EQ(std::get<std::string>(r), c.message);
  }
}

TEST(FaultTable, counted_fault_expires_and_exact_path_beats_wildcard) {
  FaultTable table;
  Fault exact;
  exact.path = "/a";
  exact.errcode = -1;
  exact.count = 2;
  Fault any;
  any.path = "*";
  any.latency_ms = 5;
  table.Set(exact);
  table.Set(any);
  EXPECT_EQ(table.Take("/a")->errcode, -1);
  EXPECT_EQ(table.Take("/a")->errcode, -1);
  auto third = table.Take("/a");
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->errcode);
  EXPECT_EQ(third->latency_ms, 5);
  EXPECT_EQ(table.Take("/b")->latency_ms, 5);  // count 0: until cleared
  EXPECT_EQ(table.ToJson().size(), 1u);
  table.Clear();
  EXPECT_FALSE(table.Take("/b"));
}

}  // namespace
}  // namespace wxcanary::sim
