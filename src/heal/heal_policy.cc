#include "heal/heal_policy.h"

#include <algorithm>

namespace wxcanary::heal {

Evidence EvidenceOf(Outcome o) {
  if (IsTokenError(o)) return Evidence::kDead;
  // We never got a verdict on the token: the call did not reach WeChat (transport) or the
  // token was never read (Redis). A flaky network must neither confirm a heal nor hide one.
  if (o == Outcome::kTransportError || o == Outcome::kRedisError) return Evidence::kNone;
  // ok, quota and other errcodes mean WeChat accepted the token; token_missing means there is
  // nothing stale left to evict; bad_response is an answer we can't read: no confirmation.
  return Evidence::kNotDead;
}

bool HealBudget::Take(MonotonicTime now, int per_hour) {
  while (!taken_.empty() && now - taken_.front() >= std::chrono::hours{1}) taken_.pop_front();
  if (static_cast<int>(taken_.size()) >= per_hour) return false;
  taken_.push_back(now);
  return true;
}

void HealBudget::Return(MonotonicTime taken) {
  auto it = std::find(taken_.rbegin(), taken_.rend(), taken);
  if (it != taken_.rend()) taken_.erase(std::next(it).base());
}

HealDecision HealPolicy::Decide(const HealObservation& obs, config::HealMode mode,
                                const config::Heal& settings, MonotonicTime now,
                                HealBudget& budget) {
  HealDecision d;
  switch (EvidenceOf(obs.outcome)) {
    case Evidence::kNone: d.streak = streak_; return d;
    case Evidence::kNotDead:
      if (obs.outcome == Outcome::kOk) {
        if (in_episode_ && healed_)
          d.recovered_seconds = std::chrono::duration<double>(now - episode_start_).count();
        in_episode_ = false;
        healed_ = false;
      }
      // The token the streak was about is gone or alive: the keeper or the app replaced it.
      streak_ = 0;
      fingerprint_.clear();
      return d;
    case Evidence::kDead: break;
  }

  if (!in_episode_) {
    in_episode_ = true;
    episode_start_ = now;
    healed_ = false;
  }
  if (streak_ > 0 && fingerprint_ == obs.fingerprint) {
    ++streak_;
  } else {
    fingerprint_ = std::string(obs.fingerprint);
    streak_ = 1;
  }
  d.streak = streak_;

  if (mode == config::HealMode::kOff) return d;
  if (streak_ < std::max(1, settings.confirmations)) return d;
  if (!obs.value_known) return d;
  if (last_action_ && now - *last_action_ < settings.cooldown) {
    d.verdict = HealDecision::Verdict::kSkipCooldown;
    d.since_last_action = now - *last_action_;
    return d;
  }
  d.verdict = budget.Take(now, settings.budget_per_hour) ? HealDecision::Verdict::kHeal
                                                         : HealDecision::Verdict::kSkipBudget;
  return d;
}

}  // namespace wxcanary::heal
