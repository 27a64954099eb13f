// The tracker's decision core on its own: observations and times in, decisions out. No
// logger, no exposition, no lock; a FakeClock gives the times.

#include "tracking/app_tracker.h"

#include <gtest/gtest.h>

#include "common/fingerprint.h"
#include "common/rfc3339.h"
#include "support/fakes.h"

namespace wxcanary::tracking {
namespace {

using std::chrono::seconds;
using Kind = TrackerEvent::Kind;

TEST(CauseCounts, keeps_causes_in_name_order_like_the_map_it_replaces) {
  CauseCounts c;
  EXPECT_TRUE(c.empty());
  EXPECT_TRUE(c.try_emplace("unknown", 0));
  EXPECT_TRUE(c.try_emplace("prod", 0));
  EXPECT_FALSE(c.try_emplace("prod", 5));  // present: unchanged
  ++c["test"];                             // absent: added at 0, then counted
  ++c["prod"];
  ++c["prod"];
  std::vector<std::pair<std::string, uint64_t>> all(c.begin(), c.end());
  EXPECT_EQ(all, (std::vector<std::pair<std::string, uint64_t>>{
                     {"prod", 2}, {"test", 1}, {"unknown", 0}}));
  EXPECT_EQ(c.at("prod"), 2u);
  EXPECT_EQ(c.count("test"), 1u);
  EXPECT_EQ(c.count("staging"), 0u);
  EXPECT_THROW((void)c.at("staging"), std::out_of_range);
  EXPECT_THROW((void)c.at("pro"), std::out_of_range);
}

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
  static ProbeResult Ok(const std::string& token, int64_t ttl = 7000) {
    return testing::MakeResult(token, Outcome::kOk, ttl);
  }
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

// The early warning: the moment another environment's fetch supersedes a token that Redis will
// still hold when the grace ends, its death is predicted, before the first 40001.
std::vector<TrackerEvent> OfKind(const std::vector<TrackerEvent>& events, Kind kind) {
  std::vector<TrackerEvent> out;
  for (const auto& e : events)
    if (e.kind == kind) out.push_back(e);
  return out;
}

TEST_F(AppTrackerTest, another_envs_fetch_predicts_the_older_tokens_death_at_the_grace_end) {
  Observe("prod", Ok("prod-token"));
  Observe("test", Ok("test-old"));
  clock_.Advance(seconds{30});
  const SystemTime refreshed_at = clock_.SystemNow();
  // Said at prod's next probe, once prod's key is seen still holding the older token.
  EXPECT_TRUE(OfKind(Observe("test", Ok("test-new")), Kind::kSuperseded).empty());
  EXPECT_FALSE(app_.targets().at("prod").superseded->confirmed);
  clock_.Advance(seconds{20});

  const auto warned = OfKind(Observe("prod", Ok("prod-token")), Kind::kSuperseded);
  ASSERT_EQ(warned.size(), 1u);
  EXPECT_EQ(warned[0].app_env, "prod");
  EXPECT_EQ(warned[0].cause_env, "test");
  EXPECT_EQ(warned[0].fingerprint, Fingerprint("prod-token"));
  EXPECT_EQ(warned[0].level, telemetry::Level::kWarn);
  EXPECT_EQ(warned[0].action, "token_superseded");
  const std::string dies_at = FormatRfc3339(refreshed_at + kTokenGrace);
  EXPECT_NE(warned[0].message.find("will stop working by " + dies_at + " (in 280 s)"),
            std::string::npos)
      << warned[0].message;
  EXPECT_NE(warned[0].message.find("env test fetched a new token (" + Fingerprint("test-new") +
                                   ") for the same AppId at " + FormatRfc3339(refreshed_at)),
            std::string::npos)
      << warned[0].message;
  EXPECT_EQ(warned[0].fields.at("wxcanary.token.dies_at"), dies_at);
  EXPECT_EQ(warned[0].fields.at("wxcanary.token.seconds_left"), 280);
  EXPECT_EQ(warned[0].fields.at("wxcanary.token.superseded_by"), Fingerprint("test-new"));
  for (const char* secret : {"prod-token", "test-new", "test-old"}) {
    EXPECT_EQ(warned[0].message.find(secret), std::string::npos);
    EXPECT_EQ(warned[0].fields.dump().find(secret), std::string::npos);
  }
  const auto& prod = app_.targets().at("prod");
  ASSERT_TRUE(prod.superseded.has_value());
  EXPECT_TRUE(prod.superseded->confirmed);
  EXPECT_EQ(prod.superseded->dies_at, refreshed_at + kTokenGrace);
  EXPECT_EQ(prod.supersessions, 1u);
  EXPECT_FALSE(app_.targets().at("test").superseded.has_value());  // the newest token is safe

  // Later probes within the grace say nothing new; the prediction stands.
  clock_.Advance(seconds{200});
  EXPECT_TRUE(Observe("prod", Ok("prod-token")).empty());
  EXPECT_TRUE(app_.targets().at("prod").superseded.has_value());
  EXPECT_EQ(app_.targets().at("prod").supersessions, 1u);

  // It comes true: the 40001 is attributed as before and the prediction ends.
  clock_.Advance(seconds{81});
  const auto died = Observe("prod", Dead("prod-token"));
  ASSERT_EQ(OfKind(died, Kind::kInvalidated).size(), 1u);
  EXPECT_EQ(OfKind(died, Kind::kInvalidated)[0].cause_env, "test");
  EXPECT_FALSE(app_.targets().at("prod").superseded.has_value());
}

TEST_F(AppTrackerTest, no_prediction_when_the_environments_hold_the_same_token) {
  Observe("prod", Ok("shared-old"));
  Observe("test", Ok("shared-old"));
  clock_.Advance(seconds{30});
  // One cache read by both (or one stable_token): test sees the new token first, prod's next
  // probe sees it too. Nothing dies, nothing is said.
  EXPECT_TRUE(OfKind(Observe("test", Ok("shared-new")), Kind::kSuperseded).empty());
  clock_.Advance(seconds{15});
  EXPECT_TRUE(OfKind(Observe("prod", Ok("shared-new")), Kind::kSuperseded).empty());
  EXPECT_EQ(app_.distinct(), 1);
  EXPECT_FALSE(app_.targets().at("prod").superseded.has_value());
  EXPECT_FALSE(app_.targets().at("test").superseded.has_value());
  EXPECT_EQ(app_.targets().at("prod").supersessions, 0u);
}

TEST_F(AppTrackerTest, no_prediction_when_redis_drops_the_older_token_before_the_grace_ends) {
  // stable_token rotation: the new token appears in the token's last 300 s, and each app's key
  // expires with its token, so every app fetches the new one in time.
  Observe("prod", Ok("stable-1", /*ttl=*/240));
  Observe("test", Ok("stable-1", /*ttl=*/240));
  clock_.Advance(seconds{30});
  Observe("test", Ok("stable-2", 7000));
  clock_.Advance(seconds{10});
  EXPECT_TRUE(OfKind(Observe("prod", Ok("stable-1", 200)), Kind::kSuperseded).empty());
  EXPECT_FALSE(app_.targets().at("prod").superseded.has_value());
  // The same with a key that outlives the grace is a prediction.
  Observe("prod", Ok("prod-own", /*ttl=*/7000));
  clock_.Advance(seconds{30});
  Observe("test", Ok("stable-3", 7000));
  EXPECT_EQ(OfKind(Observe("prod", Ok("prod-own", 6970)), Kind::kSuperseded).size(), 1u);
}

TEST_F(AppTrackerTest, a_prediction_ends_when_the_token_changes) {
  Observe("prod", Ok("prod-token"));
  Observe("test", Ok("test-old"));
  clock_.Advance(seconds{30});
  Observe("test", Ok("test-new"));
  ASSERT_EQ(OfKind(Observe("prod", Ok("prod-token")), Kind::kSuperseded).size(), 1u);
  clock_.Advance(seconds{30});
  // prod fetches its own: now test's token is the older one, said at test's next probe.
  EXPECT_TRUE(OfKind(Observe("prod", Ok("prod-new")), Kind::kSuperseded).empty());
  EXPECT_FALSE(app_.targets().at("prod").superseded.has_value());
  const auto warned = OfKind(Observe("test", Ok("test-new")), Kind::kSuperseded);
  ASSERT_EQ(warned.size(), 1u);
  EXPECT_EQ(warned[0].app_env, "test");
  EXPECT_EQ(warned[0].cause_env, "prod");
  // The key vanishing ends it too.
  Observe("test", testing::MakeResult("", Outcome::kTokenMissing));
  EXPECT_FALSE(app_.targets().at("test").superseded.has_value());
}

TEST_F(AppTrackerTest, a_token_that_outlives_its_prediction_marks_its_env_isolated) {
  Observe("prod", Ok("prod-stable"));
  Observe("test", Ok("test-old"));
  clock_.Advance(seconds{30});
  Observe("test", Ok("test-new"));
  ASSERT_EQ(OfKind(Observe("prod", Ok("prod-stable")), Kind::kSuperseded).size(), 1u);

  // Past the grace (and the slack) prod's token still works: prod's tokens do not share
  // /cgi-bin/token's one valid token.
  clock_.Advance(kTokenGrace + kAttributionSlack + seconds{1});
  const auto outlived = OfKind(Observe("prod", Ok("prod-stable")), Kind::kOutlived);
  ASSERT_EQ(outlived.size(), 1u);
  EXPECT_EQ(outlived[0].level, telemetry::Level::kInfo);
  EXPECT_EQ(outlived[0].action, "token_outlived_supersession");
  EXPECT_FALSE(app_.targets().at("prod").superseded.has_value());
  EXPECT_TRUE(app_.targets().at("prod").isolated);

  // test's next fetch predicts nothing for prod, and prod's new tokens predict nothing for test.
  clock_.Advance(seconds{30});
  Observe("test", Ok("test-newer"));
  EXPECT_TRUE(OfKind(Observe("prod", Ok("prod-stable")), Kind::kSuperseded).empty());
  EXPECT_FALSE(app_.targets().at("prod").superseded.has_value());
  Observe("prod", Ok("prod-stable-2"));
  EXPECT_TRUE(OfKind(Observe("test", Ok("test-newer")), Kind::kSuperseded).empty());
  EXPECT_FALSE(app_.targets().at("test").superseded.has_value());
  EXPECT_EQ(app_.targets().at("prod").supersessions, 1u);

  // Until one of prod's tokens is invalidated after all: predictions resume.
  clock_.Advance(seconds{30});
  Observe("test", Ok("test-newest"));
  Observe("prod", Dead("prod-stable-2"));
  EXPECT_FALSE(app_.targets().at("prod").isolated);
  Observe("prod", Ok("prod-3"));
  clock_.Advance(seconds{30});
  Observe("test", Ok("test-5"));
  EXPECT_EQ(OfKind(Observe("prod", Ok("prod-3")), Kind::kSuperseded).size(), 1u);
}

// Keeper mode: a kept environment changing to the keeper's stable token did not refresh, and
// holding it is safe from another environment's /cgi-bin/token fetch.
TEST_F(AppTrackerTest, the_keepers_token_is_no_refresh_and_no_fetch_supersedes_it) {
  app_.AddTarget("prod", std::chrono::milliseconds{30'000}, /*keep=*/true);
  Observe("prod", Ok("prod-own"));
  Observe("test", Ok("test-old"));
  clock_.Advance(seconds{30});
  app_.KeeperToken(Fingerprint("stable-1"), clock_.MonotonicNow());
  EXPECT_TRUE(Observe("prod", Ok("stable-1")).empty());
  EXPECT_EQ(app_.targets().at("prod").refreshes, 0u);
  EXPECT_TRUE(app_.targets().at("prod").kept);
  // test's app fetches: a refresh, but prod's stable token is not predicted to die.
  const auto events = Observe("test", Ok("test-new"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kRefreshed);
  EXPECT_FALSE(app_.targets().at("prod").superseded.has_value());
}

// Another replica's keeper may write the next stable token before this one's keeper fetched
// it: in a kept environment an unnamed token waits one keeper interval for the keeper to name
// it, and counts as the app's refresh only if it does not.
TEST_F(AppTrackerTest, a_new_token_in_a_kept_environment_waits_for_the_keeper_to_name_it) {
  app_.AddTarget("prod", std::chrono::milliseconds{30'000}, /*keep=*/true);
  Observe("prod", Ok("stable-1"));
  Observe("test", Ok("test-own"));
  clock_.Advance(seconds{30});
  EXPECT_TRUE(Observe("prod", Ok("stable-2")).empty()) << "written by the other replica?";
  clock_.Advance(seconds{30});
  app_.KeeperToken(Fingerprint("stable-2"), clock_.MonotonicNow());  // it was
  clock_.Advance(seconds{60});
  EXPECT_TRUE(Observe("prod", Ok("stable-2")).empty());
  EXPECT_EQ(app_.targets().at("prod").refreshes, 0u);
  EXPECT_FALSE(app_.targets().at("test").superseded.has_value());

  // The app's own fetch: nobody names it, so after the keeper interval (+ slack) it counts,
  // as of when it was seen, and test's older token is predicted to die.
  clock_.Advance(seconds{30});
  const auto seen_at = clock_.SystemNow();
  EXPECT_TRUE(Observe("prod", Ok("prod-own-fetch")).empty());
  clock_.Advance(settings_.keeper_interval + kAttributionSlack);
  const auto events = Observe("prod", Ok("prod-own-fetch"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kRefreshed);
  EXPECT_EQ(events[0].fingerprint, Fingerprint("prod-own-fetch"));
  EXPECT_EQ(app_.targets().at("prod").refreshes, 1u);
  EXPECT_EQ(app_.targets().at("prod").refreshed_wall, seen_at);
  ASSERT_TRUE(app_.targets().at("test").superseded.has_value());
  EXPECT_EQ(app_.targets().at("test").superseded->by_env, "prod");
  EXPECT_EQ(app_.targets().at("test").superseded->refreshed_at, seen_at);
}

// On a standby: the app's own fetch A (waiting), then within the wait the writer's keeper puts
// the next stable token B over it, which this replica's keeper names a little later. A was a
// real /cgi-bin/token fetch and still counts; B does not.
TEST_F(AppTrackerTest, an_app_fetch_overwritten_by_the_keeper_within_the_wait_still_counts) {
  app_.AddTarget("prod", std::chrono::milliseconds{30'000}, /*keep=*/true);
  Observe("prod", Ok("stable-1"));
  Observe("test", Ok("test-own"));
  app_.KeeperToken(Fingerprint("stable-1"), clock_.MonotonicNow());
  clock_.Advance(seconds{30});
  EXPECT_TRUE(Observe("prod", Ok("app-fetch-A")).empty());
  clock_.Advance(seconds{30});
  EXPECT_TRUE(Observe("prod", Ok("stable-2")).empty());
  app_.KeeperToken(Fingerprint("stable-2"), clock_.MonotonicNow());
  clock_.Advance(settings_.keeper_interval);
  const auto events = Observe("prod", Ok("stable-2"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fingerprint, Fingerprint("app-fetch-A"));
  EXPECT_EQ(app_.targets().at("prod").refreshes, 1u);
  // test's token is older than A: its death is predicted; a token first seen after A is not.
  EXPECT_TRUE(app_.targets().at("test").superseded.has_value());
}

// A refresh counted late does not predict the death of a token first seen after it.
TEST_F(AppTrackerTest, a_late_counted_refresh_does_not_supersede_a_newer_token) {
  app_.AddTarget("prod", std::chrono::milliseconds{30'000}, /*keep=*/true);
  Observe("prod", Ok("prod-1"));
  Observe("test", Ok("test-1"));
  clock_.Advance(seconds{30});
  EXPECT_TRUE(Observe("prod", Ok("prod-2")).empty());  // waits for the keeper
  clock_.Advance(seconds{30});
  const auto test_events = Observe("test", Ok("test-2"));  // test fetches after prod did
  ASSERT_EQ(test_events.size(), 1u);
  clock_.Advance(settings_.keeper_interval);
  const auto events = Observe("prod", Ok("prod-2"));
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const TrackerEvent& e) { return e.kind == Kind::kRefreshed; }),
            1);
  EXPECT_EQ(app_.targets().at("prod").refreshes, 1u);
  EXPECT_FALSE(app_.targets().at("test").superseded.has_value()) << "test-2 is newer than prod-2";
}

}  // namespace
}  // namespace wxcanary::tracking
