#include "probe/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "support/fakes.h"

namespace wxcanary::probe {
namespace {

using namespace std::chrono_literals;
using testing::MakeTarget;

std::vector<Target> ManyTargets(size_t n, std::chrono::milliseconds interval) {
  std::vector<Target> out;
  for (size_t i = 0; i < n; ++i) {
    auto t = MakeTarget("wx" + std::to_string(i / 3),
                        i % 3 == 0   ? "prod"
                        : i % 3 == 1 ? "test"
                                     : "dev",
                        i);
    t.env.interval = interval;
    out.push_back(t);
  }
  return out;
}

TEST(Schedule, spreads_first_runs_evenly_over_the_interval) {
  auto targets = ManyTargets(10'000, 10s);
  Schedule s;
  MonotonicTime start{123'456'789ns};
  s.Reset(targets, start);
  std::map<int64_t, int> per_second;
  size_t total = 0;
  for (auto now = start; now <= start + 10s; now += 100ms) {
    for (const auto& d : s.PopDue(now)) {
      EXPECT_LE(d.scheduled, now);
      per_second[std::chrono::duration_cast<std::chrono::seconds>(d.scheduled - start).count()]++;
      ++total;
    }
  }
  EXPECT_EQ(total, 10'000u);  // each target exactly once in its first interval
  double mean = 10'000.0 / 10;
  int busiest = 0;
  for (auto& [sec, n] : per_second) busiest = std::max(busiest, n);
  EXPECT_LE(busiest, 1.5 * mean) << "busiest second " << busiest;
}

TEST(Schedule, runs_each_target_once_per_interval_without_drift) {
  auto targets = ManyTargets(1, 30s);
  Schedule s;
  MonotonicTime start{0ns};
  s.Reset(targets, start);
  std::vector<MonotonicTime> runs;
  // Poll late and irregularly: the schedule must stay anchored.
  for (auto now = start; now < start + 301s; now += 7s) {
    for (const auto& d : s.PopDue(now)) runs.push_back(d.scheduled);
  }
  ASSERT_GE(runs.size(), 9u);
  for (size_t i = 1; i < runs.size(); ++i) EXPECT_EQ(runs[i] - runs[i - 1], 30s);
}

TEST(Schedule, phase_is_stable_across_resets_so_reload_does_not_bunch_probes) {
  auto targets = ManyTargets(50, 10s);
  Schedule a, b;
  a.Reset(targets, MonotonicTime{1000s});
  b.Reset(targets, MonotonicTime{1003s});
  // Both should produce the same run times once b has caught up to a's timeline.
  std::map<size_t, MonotonicTime> first_a, first_b;
  for (auto now = MonotonicTime{1003s}; now < MonotonicTime{1030s}; now += 10ms) {
    for (auto& d : a.PopDue(now))
      if (d.scheduled > MonotonicTime{1013s} && !first_a.count(d.target))
        first_a[d.target] = d.scheduled;
    for (auto& d : b.PopDue(now))
      if (d.scheduled > MonotonicTime{1013s} && !first_b.count(d.target))
        first_b[d.target] = d.scheduled;
  }
  ASSERT_EQ(first_a.size(), 50u);
  EXPECT_EQ(first_a, first_b);
}

TEST(Schedule, a_target_far_behind_runs_once_and_counts_the_missed_runs) {
  auto targets = ManyTargets(1, 10s);
  Schedule s;
  s.Reset(targets, MonotonicTime{0s});
  auto next = *s.NextDue();
  uint64_t skipped = 0;
  auto due = s.PopDue(next + 35s, &skipped);  // 3 whole intervals missed
  EXPECT_EQ(due.size(), 1u);
  EXPECT_EQ(skipped, 3u);
  EXPECT_GT(*s.NextDue(), next + 35s);
  EXPECT_LE(*s.NextDue(), next + 45s);
}

TEST(Schedule, different_intervals_keep_their_own_rate) {
  std::vector<Target> targets = {MakeTarget("a", "prod", 0), MakeTarget("b", "prod", 1)};
  targets[0].env.interval = 1s;
  targets[1].env.interval = 5s;
  Schedule s;
  s.Reset(targets, MonotonicTime{0s});
  std::map<size_t, int> runs;
  for (auto now = MonotonicTime{0s}; now <= MonotonicTime{60s}; now += 50ms)
    for (auto& d : s.PopDue(now)) runs[d.target]++;
  EXPECT_NEAR(runs[0], 60, 1);
  EXPECT_NEAR(runs[1], 12, 1);
}

}  // namespace
}  // namespace wxcanary::probe
