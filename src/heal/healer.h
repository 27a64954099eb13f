#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"
#include "heal/heal_policy.h"
#include "heal/heal_store.h"
#include "probe/result_sink.h"
#include "telemetry/exposition.h"
#include "telemetry/log.h"
#include "wechat/stable_token.h"

namespace wxcanary::heal {

/// A token obtained for a refresh, and how long WeChat says it lives.
using wechat::FetchedToken;

/// Gets a token for an app without invalidating anybody's (getStableAccessToken,
/// force_refresh false). Implementations are thread-safe.
class TokenFetcher {
 public:
  virtual ~TokenFetcher() = default;
  /// nullopt with `error` set (one line, no secret, no token), and `failure` when given (the
  /// errcode and rid), when there is no token. force_refresh only for the keeper's explicit
  /// `force_refresh_on_dead`.
  virtual std::optional<FetchedToken> FetchToken(const std::string& app_id, bool force_refresh,
                                                 std::string* error,
                                                 wechat::FetchFailure* failure) = 0;
  /// Normal mode, which invalidates nobody's token: what a heal's refresh uses.
  std::optional<FetchedToken> Fetch(const std::string& app_id, std::string* error) {
    return FetchToken(app_id, /*force_refresh=*/false, error, nullptr);
  }
};

/// Evicts a confirmed-dead token from Redis, never a fresh one: N consecutive token errors on
/// one fingerprint, then cooldown -> budget -> Redis lock -> compare-and-delete (or dry run),
/// then an optional stable_token refresh. Exports wxcanary_heals_total{action,result} and
/// wxcanary_heal_recovery_seconds for the targets with healing on, written from its state at
/// scrape time. Record(), SetTargets(), Apply() and scrapes are thread-safe; the Redis and
/// stable_token I/O of a heal runs outside every lock a scrape or Snapshot() takes.
/// The decisions are HealPolicy's (pure, one per target, with one HealBudget); this class
/// executes them: the lock, compare-and-delete, refresh, the logs and the metrics.
class Healer final : public ResultSink, private telemetry::TextCollectable {
 public:
  /// `fetcher` may be null (refresh then never happens). `instance_id` owns the Redis locks,
  /// so it must differ between wxcanary instances sharing a Redis.
  Healer(config::Heal settings, HealStore& store, TokenFetcher* fetcher,
         telemetry::Exposition& exposition, telemetry::Logger& logger, Clock& clock,
         std::string instance_id);
  /// Stops the heal thread, if started; heals still queued are dropped (their budget returned).
  ~Healer() override;
  /// From now on a heal's Redis and stable_token I/O runs on a thread of its own, not in the
  /// Record() that decided it: the probe engine records from its event loop, which a heal
  /// waiting seconds on a refresh would stall. Record() then decides, queues the heal and
  /// returns (a skip, which does no I/O, it still logs in place); results of a target whose
  /// heal is queued or running are not fed to its policy (the heal is acting on that episode;
  /// an ok probe in that time does not end the recovery histogram's episode, the next one
  /// does). Heals run one after another. Without it (tests) Record() heals in place.
  void StartHealThread();
  Healer(const Healer&) = delete;
  Healer& operator=(const Healer&) = delete;

  void SetTargets(const TargetList& targets) override;
  void Record(const Target& target, const ProbeResult& result) override;

  /// Takes config.heal for the heals that start from now on (a reload); the targets come
  /// through SetTargets.
  void Apply(const config::Config& config);

  /// The last heal decisions of one target, for the status page.
  struct TargetSnapshot {
    std::string app_id;
    std::string app_env;
    config::HealMode mode = config::HealMode::kOff;
    std::string last_action;  // of the last heal that acted: evict, dry_run, refresh; "" if none
    std::string last_result;  // done or error
    std::optional<SystemTime> last_at;
    std::string last_skip;  // the last skip: skipped_cooldown, skipped_changed, ...; "" if none
    std::optional<SystemTime> last_skip_at;
    int streak = 0;  // consecutive token errors on one token so far
  };
  /// Every target's, by (app_id, app_env), but those with healing off that never saw a dead
  /// token: theirs would be all defaults (mode off, no heal, streak 0). Thread-safe; O(targets).
  std::vector<TargetSnapshot> Snapshot() const;

 private:
  struct State;
  using Key = std::pair<std::string, std::string>;  // (app_id, app_env)
  using KeyView = std::pair<std::string_view, std::string_view>;
  // Orders keys and lets a probe look its target up by views of the names (no key built).
  struct KeyLess {
    using is_transparent = void;
    static KeyView View(const Key& k) { return {k.first, k.second}; }
    static KeyView View(const KeyView& k) { return k; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return View(a) < View(b);
    }
  };
  using States = std::map<Key, std::shared_ptr<State>, KeyLess>;

  // The target's state; made when absent only if `create` (else null).
  std::shared_ptr<State> StateFor(const Target& target, bool create);
  // Puts targets_' `entry` at by_index_[index] unless another holds that slot. Caller holds mu_.
  void Index(size_t index, const States::value_type& entry);
  void EnsureSeries(State& state, const Target& target);
  // Executes a decision other than kNone. Caller holds state.record_mu, not state.mu: this
  // does the I/O.
  void Heal(State& state, const Target& target, const ProbeResult& result, MonotonicTime now,
            const HealDecision& decision, const config::Heal& settings);
  void Refresh(State& state, const Target& target, const std::string& stale_fingerprint,
               const std::string& reason, const config::Heal& settings);
  // Takes state.mu.
  void Count(State& state, std::string_view action, std::string_view result);
  void AppendText(telemetry::TextWriter& out) const override;
  config::Heal Settings() const;

  telemetry::Exposition& exposition_;
  HealStore& store_;
  TokenFetcher* fetcher_;
  telemetry::Logger& logger_;
  Clock& clock_;
  const std::string instance_id_;

  mutable std::mutex settings_mu_;
  config::Heal settings_;  // guarded by settings_mu_; Record() takes a copy

  mutable std::mutex mu_;  // guards targets_ and by_index_ (not the states: each has its own)
  States targets_;
  // targets_' entries again by Target::index, so a probe finds its own without walking the map
  // (issue 19). Checked by name: an index from another target set, or one two targets share,
  // must not land on another target's state; those go to the map. Sized to the highest index
  // that has a state (healing off, a healthy target has none).
  std::vector<const States::value_type*> by_index_;

  std::mutex budget_mu_;  // held only around the policy's decision and a budget return
  HealBudget budget_;

  // The heal thread (StartHealThread) and what it has to do.
  struct Job {
    std::shared_ptr<State> state;
    Target target;
    ProbeResult result;
    MonotonicTime now;
    HealDecision decision;
    config::Heal settings;
  };
  void HealLoop();
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Job> jobs_;   // guarded by jobs_mu_
  bool stopping_ = false;  // guarded by jobs_mu_
  std::thread heal_thread_;
};

}  // namespace wxcanary::heal
