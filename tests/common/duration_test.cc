#include "common/duration.h"

#include <gtest/gtest.h>

namespace wxcanary {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, accepts_prometheus_units_and_sums_compounds) {
  struct Case {
    const char* text;
    int64_t ms;
  } cases[] = {{"0", 0},          {"250ms", 250},       {"30s", 30'000},     {"5m", 300'000},
               {"1h", 3'600'000}, {"1h30m", 5'400'000}, {"2d", 172'800'000}, {"1m500ms", 60'500}};
  for (const auto& c : cases) {
    auto d = ParseDuration(c.text);
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDuration, rejects_bare_numbers_negatives_and_unknown_units) {
  for (const char* bad : {"", "30", "-5s", "5 s", "5x", "s", "1.5s", "5sec"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(FormatDuration, round_trips) {
  for (int64_t ms : {0, 250, 30'000, 90'000, 5'400'000}) {
    EXPECT_EQ(ParseDuration(FormatDuration(milliseconds{ms}))->count(), ms);
  }
}

}  // namespace
}  // namespace wxcanary
