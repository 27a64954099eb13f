// The tracker's decision core on its own: observations and times in, decisions out. No
// logger, no exposition, no lock; a FakeClock gives the times.

#include "tracking/app_tracker.h"

#include <gtest/gtest.h>

#include "common/fingerprint.h"
#include "support/fakes.h"

namespace wxcanary::tracking {
namespace {

using std::chrono::seconds;
using Kind = TrackerEvent::Kind;

class AppTrackerTest : public ::testing::Test {
 protected:
  AppTrackerTest() : app_("wxA", clock_.MonotonicNow()) {
    app_.AddTarget("prod", std::chrono::milliseconds{30'000});
    app_.AddTarget("test", std::chrono::milliseconds{30'000});
    app_.EnsureCauseSeries();
  }

  std::vector<TrackerEvent> Observe(const std::string& env, const ProbeResult& result) {
    std::vector<TrackerEvent> events;
    app_.Observe(env, result, clock_.MonotonicNow(), clock_.SystemNow(), settings_, &events);
    return events;
  }
  std::vector<TrackerEvent> ResolveDue() {
    std::vector<TrackerEvent> events;
    app_.ResolveDue(clock_.MonotonicNow(), clock_.SystemNow(), &events);
    return events;
  }
  static ProbeResult Ok(const std::string& token) { return testing::MakeResult(token); }
  static ProbeResult Dead(const std::string& token, int64_t ttl = 5400) {
    return testing::MakeResult(token, Outcome::kTokenInvalid, ttl, 40001);
  }

  FakeClock clock_;
  TrackerSettings settings_;
  AppTracker app_;
};

TEST_F(AppTrackerTest,
       a_refresh_is_detected_and_the_invalidation_attributed_to_the_env_that_refreshed) {
  EXPECT_TRUE(Observe("prod", Ok("prod-token")).empty());  // first sightings are no refresh
  EXPECT_TRUE(Observe("test", Ok("test-old")).empty());
  clock_.Advance(seconds{30});

  const auto refreshed = Observe("test", Ok("test-new"));
  ASSERT_EQ(refreshed.size(), 1u);
  EXPECT_EQ(refreshed[0].kind, Kind::kRefreshed);
  EXPECT_EQ(refreshed[0].app_env, "test");
  EXPECT_EQ(refreshed[0].fingerprint, Fingerprint("test-new"));
  EXPECT_EQ(refreshed[0].action, "token_refreshed");
  EXPECT_EQ(app_.targets().at("test").refreshes, 1u);
  EXPECT_EQ(app_.targets().at("prod").refreshes, 0u);

  clock_.Advance(seconds{30});
  const auto died = Observe("prod", Dead("prod-token"));
  ASSERT_EQ(died.size(), 1u);
  EXPECT_EQ(died[0].kind, Kind::kInvalidated);
  EXPECT_EQ(died[0].app_env, "prod");
  EXPECT_EQ(died[0].cause_env, "test");
  EXPECT_EQ(died[0].fingerprint, Fingerprint("prod-token"));
  EXPECT_EQ(app_.targets().at("prod").invalidations.at("test"), 1u);
  EXPECT_EQ(app_.targets().at("prod").invalidations.at("unknown"), 0u);
  // The event carries fingerprints only.
  EXPECT_EQ(died[0].message.find("prod-token"), std::string::npos);
  EXPECT_EQ(died[0].fields.dump().find("prod-token"), std::string::npos);
}

TEST_F(AppTrackerTest, an_unexplained_death_waits_for_a_culprit_then_is_unknown) {
  Observe("prod", Ok("prod-token"));
  Observe("test", Ok("test-token"));
  clock_.Advance(seconds{400});  // past grace + interval: no refresh in the window
  EXPECT_TRUE(Observe("prod", Dead("prod-token")).empty());
  EXPECT_EQ(app_.pending(), 1);

  clock_.Advance(seconds{30});  // the wait is one interval plus the slack
  EXPECT_TRUE(ResolveDue().empty());
  clock_.Advance(kAttributionSlack);
  const auto settled = ResolveDue();
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0].kind, Kind::kInvalidated);
  EXPECT_EQ(settled[0].cause_env, "unknown");
  EXPECT_EQ(app_.pending(), 0);
}

TEST_F(AppTrackerTest, a_culprit_refresh_after_the_failure_settles_the_wait) {
  Observe("prod", Ok("prod-token"));
  Observe("test", Ok("test-old"));
  clock_.Advance(seconds{400});
  EXPECT_TRUE(Observe("prod", Dead("prod-token")).empty());
  clock_.Advance(seconds{10});
  const auto events = Observe("test", Ok("test-new"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kRefreshed);
  EXPECT_EQ(events[1].kind, Kind::kInvalidated);
  EXPECT_EQ(events[1].cause_env, "test");
  EXPECT_EQ(app_.pending(), 0);
}

TEST_F(AppTrackerTest, nothing_is_decided_for_a_token_redis_no_longer_holds) {
  Observe("prod", Ok("prod-token"));
  clock_.Advance(seconds{30});
  Observe("test", Ok("test-new"));
  EXPECT_TRUE(Observe("prod", Dead("prod-token", /*ttl=*/-2)).empty());
  EXPECT_EQ(app_.pending(), 0);
  EXPECT_EQ(app_.targets().at("prod").invalidations.at("test"), 0u);
}

TEST_F(AppTrackerTest, a_42001_is_an_expiry_not_an_invalidation) {
  Observe("prod", Ok("prod-token"));
  clock_.Advance(seconds{30});
  Observe("test", Ok("test-new"));
  const auto events =
      Observe("prod", testing::MakeResult("prod-token", Outcome::kTokenExpired, 600, 42001));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kExpired);
  EXPECT_EQ(events[0].action, "token_expired");
  EXPECT_EQ(app_.targets().at("prod").expirations, 1u);
}

TEST_F(AppTrackerTest, the_quota_projection_reads_the_settings_it_is_given) {
  Observe("prod", Ok("t1"));
  for (int i = 2; i <= 5; ++i) {
    clock_.Advance(seconds{20});
    Observe("prod", Ok("t" + std::to_string(i)));  // 4 refreshes in a minute: a storm
  }
  EXPECT_EQ(app_.projected(), 0);  // no quota configured
  settings_.daily_quota = 1000;
  app_.UpdateGauges(clock_.MonotonicNow(), settings_);
  // 4 in the 5 min window: 4 * 86400 / 300 = 1152 a day.
  EXPECT_DOUBLE_EQ(app_.projected(), 1.152);
}

}  // namespace
}  // namespace wxcanary::tracking
