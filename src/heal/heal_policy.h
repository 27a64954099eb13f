#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/outcome.h"
#include "config/config.h"

namespace wxcanary::heal {

/// What a probe outcome says about the token it used. Pure.
enum class Evidence { kDead, kNotDead, kNone };
Evidence EvidenceOf(Outcome o);

/// The heals of the last hour, across all targets (heal.budget_per_hour). Plain data: not
/// thread-safe, the caller guards it.
class HealBudget {
 public:
  /// Takes one heal at `now` unless `per_hour` were taken in the hour before it.
  bool Take(MonotonicTime now, int per_hour);
  /// Gives back the heal taken at `taken` (it did not act).
  void Return(MonotonicTime taken);

 private:
  std::deque<MonotonicTime> taken_;  // oldest first
};

/// One probe as the heal policy sees it: no token, only its fingerprint and whether the
/// stored value it came from is known (nothing to compare against: nothing to delete safely).
struct HealObservation {
  Outcome outcome = Outcome::kOk;
  std::string_view fingerprint;
  bool value_known = false;
};

struct HealDecision {
  enum class Verdict {
    kNone,          // nothing to do
    kSkipCooldown,  // confirmed dead, but this target healed less than heal.cooldown ago
    kSkipBudget,    // confirmed dead, but the hour's budget is spent
    kHeal,          // confirmed dead: take the lock and evict (one budget unit is taken)
  };
  Verdict verdict = Verdict::kNone;
  int streak = 0;  // consecutive token errors on one fingerprint, after this probe
  std::chrono::nanoseconds since_last_action{0};  // kSkipCooldown: how long ago it acted
  /// An ok probe ended an episode in which a heal evicted the stale token: seconds since the
  /// episode's first failure.
  std::optional<double> recovered_seconds;
};

/// The heal decisions of one target: heal.confirmations consecutive token errors on one
/// fingerprint whose stored value is known, then the cooldown and the budget. A function of
/// the observations and the times passed in (no clock, no lock, no I/O); the Healer executes
/// what it decides. Not thread-safe: the caller serializes every call.
class HealPolicy {
 public:
  /// Updates the streak and episode with `obs` and decides. `budget` is only touched for a
  /// confirmed-dead token past its cooldown.
  HealDecision Decide(const HealObservation& obs, config::HealMode mode,
                      const config::Heal& settings, MonotonicTime now, HealBudget& budget);
  /// The executor took the heal lock at `at`: the cooldown runs from then, whatever follows
  /// (a broken Redis is not hammered every probe).
  void Acted(MonotonicTime at) { last_action_ = at; }
  /// The stale token was evicted: the next ok probe ends the episode as a recovery.
  void Evicted() { healed_ = true; }
  int streak() const { return streak_; }

 private:
  int streak_ = 0;
  std::string fingerprint_;  // of the token the streak is about
  bool in_episode_ = false;  // a token error was seen and no ok probe since
  MonotonicTime episode_start_{};
  bool healed_ = false;  // a key was evicted during this episode
  std::optional<MonotonicTime> last_action_;
};

}  // namespace wxcanary::heal
