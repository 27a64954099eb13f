// The heal policy on its own: observations and times in, decisions out. No Redis, no HTTP,
// no lock; a FakeClock gives the times.

#include "heal/heal_policy.h"

#include <gtest/gtest.h>

#include "common/fingerprint.h"

namespace wxcanary::heal {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using Verdict = HealDecision::Verdict;

const std::string kOld = Fingerprint("old-token");
const std::string kNew = Fingerprint("new-token");

HealObservation Dead(const std::string& fp, bool value_known = true) {
  return {.outcome = Outcome::kTokenInvalid, .fingerprint = fp, .value_known = value_known};
}
HealObservation Seen(Outcome outcome, const std::string& fp) {
  return {.outcome = outcome, .fingerprint = fp, .value_known = true};
}

class HealPolicyTest : public ::testing::Test {
 protected:
  HealPolicyTest() {
    settings_.confirmations = 2;
    settings_.cooldown = minutes{5};
    settings_.budget_per_hour = 3;
  }
  HealDecision Decide(HealPolicy& policy, const HealObservation& obs,
                      config::HealMode mode = config::HealMode::kEvict) {
    return policy.Decide(obs, mode, settings_, clock_.MonotonicNow(), budget_);
  }

  FakeClock clock_;
  config::Heal settings_;
  HealBudget budget_;
  HealPolicy policy_;
};

TEST_F(HealPolicyTest, heals_only_a_token_confirmed_dead_and_still_in_redis) {
  EXPECT_EQ(Decide(policy_, Dead(kOld)).verdict, Verdict::kNone);  // 1 of 2 confirmations
  const HealDecision d = Decide(policy_, Dead(kOld));
  EXPECT_EQ(d.verdict, Verdict::kHeal);
  EXPECT_EQ(d.streak, 2);

  HealPolicy no_value;  // the stored value is unknown: nothing to compare-and-delete against
  Decide(no_value, Dead(kOld, false));
  EXPECT_EQ(Decide(no_value, Dead(kOld, false)).verdict, Verdict::kNone);
  EXPECT_EQ(no_value.streak(), 2);

  HealPolicy off;
  Decide(off, Dead(kOld), config::HealMode::kOff);
  EXPECT_EQ(Decide(off, Dead(kOld), config::HealMode::kOff).verdict, Verdict::kNone);

  HealPolicy dry;
  Decide(dry, Dead(kOld), config::HealMode::kDryRun);
  EXPECT_EQ(Decide(dry, Dead(kOld), config::HealMode::kDryRun).verdict, Verdict::kHeal);
}

TEST_F(HealPolicyTest, decides_nothing_for_a_token_the_keeper_or_app_replaced) {
  Decide(policy_, Dead(kOld));
  // The app wrote a new token: it works, the streak about the old one is over.
  EXPECT_EQ(Decide(policy_, Seen(Outcome::kOk, kNew)).verdict, Verdict::kNone);
  EXPECT_EQ(policy_.streak(), 0);
  EXPECT_EQ(Decide(policy_, Dead(kOld)).verdict, Verdict::kNone);  // starts again at 1

  // A different dead token is not a confirmation of the first one.
  HealPolicy other;
  Decide(other, Dead(kOld));
  const HealDecision d = Decide(other, Dead(kNew));
  EXPECT_EQ(d.verdict, Verdict::kNone);
  EXPECT_EQ(d.streak, 1);

  // The key is gone (the keeper evicted it): nothing stale left.
  HealPolicy gone;
  Decide(gone, Dead(kOld));
  EXPECT_EQ(Decide(gone, Seen(Outcome::kTokenMissing, "")).verdict, Verdict::kNone);
  EXPECT_EQ(Decide(gone, Dead(kOld)).verdict, Verdict::kNone);
}

TEST_F(HealPolicyTest, a_flaky_network_neither_confirms_nor_resets_the_streak) {
  Decide(policy_, Dead(kOld));
  const HealDecision blind = Decide(policy_, Seen(Outcome::kTransportError, kOld));
  EXPECT_EQ(blind.verdict, Verdict::kNone);
  EXPECT_EQ(blind.streak, 1);
  EXPECT_EQ(Decide(policy_, Seen(Outcome::kRedisError, "")).streak, 1);
  EXPECT_EQ(Decide(policy_, Dead(kOld)).verdict, Verdict::kHeal);
}

TEST_F(HealPolicyTest, the_cooldown_runs_from_when_the_executor_acted) {
  Decide(policy_, Dead(kOld));
  ASSERT_EQ(Decide(policy_, Dead(kOld)).verdict, Verdict::kHeal);
  policy_.Acted(clock_.MonotonicNow());
  clock_.Advance(minutes{2});
  const HealDecision d = Decide(policy_, Dead(kOld));
  EXPECT_EQ(d.verdict, Verdict::kSkipCooldown);
  EXPECT_EQ(d.since_last_action, minutes{2});
  clock_.Advance(minutes{3});
  EXPECT_EQ(Decide(policy_, Dead(kOld)).verdict, Verdict::kHeal);
}

TEST_F(HealPolicyTest, the_budget_is_shared_by_all_targets_and_frees_after_an_hour) {
  HealPolicy targets[4];
  for (auto& t : targets) Decide(t, Dead(kOld));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Decide(targets[i], Dead(kOld)).verdict, Verdict::kHeal);
  EXPECT_EQ(Decide(targets[3], Dead(kOld)).verdict, Verdict::kSkipBudget);

  // A heal that did not act (the lock was held elsewhere) gives its unit back.
  budget_.Return(clock_.MonotonicNow());
  EXPECT_EQ(Decide(targets[3], Dead(kOld)).verdict, Verdict::kHeal);
  HealPolicy fifth;
  Decide(fifth, Dead(kOld));
  EXPECT_EQ(Decide(fifth, Dead(kOld)).verdict, Verdict::kSkipBudget);
  clock_.Advance(std::chrono::hours{1});
  EXPECT_EQ(Decide(fifth, Dead(kOld)).verdict, Verdict::kHeal);
}

TEST_F(HealPolicyTest, an_ok_probe_after_an_eviction_is_a_recovery_from_the_first_failure) {
  Decide(policy_, Dead(kOld));
  clock_.Advance(seconds{30});
  ASSERT_EQ(Decide(policy_, Dead(kOld)).verdict, Verdict::kHeal);
  policy_.Acted(clock_.MonotonicNow());
  policy_.Evicted();
  clock_.Advance(seconds{10});
  const HealDecision d = Decide(policy_, Seen(Outcome::kOk, kNew));
  ASSERT_TRUE(d.recovered_seconds.has_value());
  EXPECT_DOUBLE_EQ(*d.recovered_seconds, 40.0);
  // Without an eviction an ok probe is no recovery.
  HealPolicy plain;
  Decide(plain, Dead(kOld));
  EXPECT_FALSE(Decide(plain, Seen(Outcome::kOk, kOld)).recovered_seconds.has_value());
}

}  // namespace
}  // namespace wxcanary::heal
