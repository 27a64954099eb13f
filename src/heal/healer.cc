#include "heal/healer.h"

#include <algorithm>
#include <bitset>

#include "common/duration.h"

namespace wxcanary::heal {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kEvict = "evict";
constexpr std::string_view kDryRun = "dry_run";
constexpr std::string_view kRefresh = "refresh";
constexpr std::array<std::string_view, 3> kActions = {kEvict, kDryRun, kRefresh};
constexpr std::array<std::string_view, 6> kResults = {
    "done", "skipped_changed", "skipped_cooldown", "skipped_budget", "skipped_locked", "error"};
constexpr size_t kHealSeries = kActions.size() * kResults.size();
using HealSet = std::bitset<kHealSeries>;  // which (action, result) series exist

template <size_t N>
size_t IndexOf(const std::array<std::string_view, N>& names, std::string_view name) {
  return static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

size_t SeriesSlot(std::string_view action, std::string_view result) {
  return IndexOf(kActions, action) * kResults.size() + IndexOf(kResults, result);
}

// Only a few per hour happen; the buckets span "next probe" to "next morning".
constexpr std::array<double, 12> kRecoveryBounds = {5,   15,   30,   60,   120,  300,
                                                    600, 1200, 1800, 3600, 7200, 21600};

std::string_view ActionOf(config::HealMode mode) {
  return mode == config::HealMode::kDryRun ? kDryRun : kEvict;
}

HealSet WantedSeries(const config::Environment& env) {
  HealSet out;
  if (env.heal == config::HealMode::kOff) return out;
  for (auto r : kResults) out.set(SeriesSlot(ActionOf(env.heal), r));
  if (env.heal == config::HealMode::kEvict && env.heal_refresh &&
      env.storage == config::Storage::kString) {
    for (auto r : kResults) out.set(SeriesSlot(kRefresh, r));
  }
  return out;
}

}  // namespace

struct Healer::State {
  // Serializes Record() of this target (its policy) and is held through its heal's Redis and
  // HTTP I/O. Scrapes, Snapshot() and SetTargets() never take it, so a stuck heal stalls none
  // of them.
  std::mutex record_mu;
  bool heal_queued = false;  // under record_mu: a heal of this target waits for or runs on the
                             // heal thread
  // Guards everything below that a scrape, Snapshot() or SetTargets() reads; never held
  // across I/O.
  std::mutex mu;
  config::HealMode mode = config::HealMode::kOff;

  int streak = 0;  // the policy's, copied for Snapshot()

  // The decisions; only Record() uses it (under record_mu).
  HealPolicy policy;

  // Exported values, written straight into the exposition (see AppendText).
  std::string labels;  // app_env, app_id rendered
  std::array<uint64_t, kHealSeries> heals{};
  HealSet exported;
  bool recovery_exported = false;
  std::array<uint64_t, kRecoveryBounds.size() + 1> recovery{};
  double recovery_sum = 0;

  // For Snapshot(): the last heal that acted (done, error) and the last one skipped.
  std::string_view last_decision_action;
  std::string_view last_decision_result;
  std::optional<SystemTime> last_decision_at;
  std::string_view last_skip_result;
  std::optional<SystemTime> last_skip_at;

  explicit State(const Target& target)
      : labels(telemetry::RenderTargetLabels(target.app_id, target.app_env)) {}
};

Healer::Healer(config::Heal settings, HealStore& store, TokenFetcher* fetcher,
               telemetry::Exposition& exposition, telemetry::Logger& logger, Clock& clock,
               std::string instance_id)
    : exposition_(exposition),
      store_(store),
      fetcher_(fetcher),
      logger_(logger),
      clock_(clock),
      instance_id_(std::move(instance_id)),
      settings_(settings) {
  exposition_.Add(*this);
}

void Healer::Apply(const config::Config& config) {
  std::lock_guard lock(settings_mu_);
  settings_ = config.heal;
}

config::Heal Healer::Settings() const {
  std::lock_guard lock(settings_mu_);
  return settings_;
}

Healer::~Healer() {
  {
    std::lock_guard lock(jobs_mu_);
    stopping_ = true;
  }
  jobs_cv_.notify_all();
  if (heal_thread_.joinable()) heal_thread_.join();
  for (const auto& job : jobs_) {
    std::lock_guard budget(budget_mu_);
    budget_.Return(job.now);
  }
  exposition_.Remove(*this);
}

void Healer::StartHealThread() {
  std::lock_guard lock(jobs_mu_);
  if (!heal_thread_.joinable()) heal_thread_ = std::thread([this] { HealLoop(); });
}

void Healer::HealLoop() {
  std::unique_lock lock(jobs_mu_);
  while (true) {
    jobs_cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    {
      std::lock_guard record(job.state->record_mu);
      Heal(*job.state, job.target, job.result, job.now, job.decision, job.settings);
      job.state->heal_queued = false;
    }
    lock.lock();
  }
}

void Healer::EnsureSeries(State& state, const Target& target) {
  const HealSet wanted = WantedSeries(target.env);
  for (size_t slot = 0; slot < kHealSeries; ++slot)
    if (state.exported[slot] && !wanted[slot]) state.heals[slot] = 0;  // removed: restarts at 0
  state.exported = wanted;
  const bool wants_recovery = target.env.heal == config::HealMode::kEvict;
  if (!wants_recovery && state.recovery_exported) {
    state.recovery = {};
    state.recovery_sum = 0;
  }
  state.recovery_exported = wants_recovery;
  state.mode = target.env.heal;
}

void Healer::SetTargets(const TargetList& targets) {
  std::lock_guard lock(mu_);
  States next;
  for (const auto& t : targets) {
    auto it = targets_.find(KeyView{t.app_id, t.app_env});
    // Healing off: nothing to export or show until a dead token (Record makes the state then),
    // so the many healthy targets cost nothing here (~760 bytes each at 100,000, issue 19).
    if (it == targets_.end() && t.env.heal == config::HealMode::kOff) continue;
    auto state = it != targets_.end() ? it->second : std::make_shared<State>(t);
    std::lock_guard state_lock(state->mu);
    EnsureSeries(*state, t);
    next[Key{t.app_id, t.app_env}] = state;
  }
  targets_ = std::move(next);  // the targets not in it are gone, and so are their series
  by_index_.clear();
  for (const auto& t : targets)
    if (auto it = targets_.find(KeyView{t.app_id, t.app_env}); it != targets_.end())
      Index(t.index, *it);
}

void Healer::Index(size_t index, const States::value_type& entry) {
  if (index >= by_index_.size()) by_index_.resize(index + 1, nullptr);
  if (by_index_[index] == nullptr) by_index_[index] = &entry;  // a shared index: first one
}

std::shared_ptr<Healer::State> Healer::StateFor(const Target& target, bool create) {
  std::lock_guard lock(mu_);
  if (target.index < by_index_.size()) {
    const States::value_type* entry = by_index_[target.index];
    if (entry != nullptr && entry->first.first == target.app_id &&
        entry->first.second == target.app_env)
      return entry->second;
  }
  auto it = targets_.find(KeyView{target.app_id, target.app_env});
  if (it != targets_.end()) return it->second;
  if (!create) return nullptr;
  it = targets_.emplace(Key{target.app_id, target.app_env}, std::make_shared<State>(target)).first;
  Index(target.index, *it);
  return it->second;
}

void Healer::Count(State& state, std::string_view action, std::string_view result) {
  std::lock_guard lock(state.mu);
  const size_t slot = SeriesSlot(action, result);
  state.exported.set(slot);
  ++state.heals[slot];
  // Views of static storage, not of the caller's strings.
  const std::string_view res = kResults[IndexOf(kResults, result)];
  if (res.substr(0, 8) == "skipped_") {
    state.last_skip_result = res;
    state.last_skip_at = clock_.SystemNow();
  } else {
    state.last_decision_action = kActions[IndexOf(kActions, action)];
    state.last_decision_result = res;
    state.last_decision_at = clock_.SystemNow();
  }
}

std::vector<Healer::TargetSnapshot> Healer::Snapshot() const {
  std::vector<std::pair<Key, std::shared_ptr<State>>> states;
  {
    std::lock_guard lock(mu_);
    states.assign(targets_.begin(), targets_.end());
  }
  std::vector<TargetSnapshot> out;
  out.reserve(states.size());
  for (const auto& [key, state] : states) {
    TargetSnapshot s;
    s.app_id = key.first;
    s.app_env = key.second;
    std::lock_guard lock(state->mu);
    s.mode = state->mode;
    s.last_action = std::string(state->last_decision_action);
    s.last_result = std::string(state->last_decision_result);
    s.last_at = state->last_decision_at;
    s.last_skip = std::string(state->last_skip_result);
    s.last_skip_at = state->last_skip_at;
    s.streak = state->streak;
    out.push_back(std::move(s));
  }
  return out;
}

void Healer::AppendText(telemetry::TextWriter& out) const {
  // A snapshot of the states, so probes looking up theirs never wait for a scrape.
  std::vector<std::shared_ptr<State>> states;
  {
    std::lock_guard lock(mu_);
    states.reserve(targets_.size());
    for (const auto& [key, state] : targets_) states.push_back(state);
  }
  out.Header("wxcanary_heals_total", "counter",
             "Self-heal decisions by action (evict, dry_run, refresh) and result.");
  for (const auto& state : states) {
    std::lock_guard lock(state->mu);
    for (size_t a = 0; a < kActions.size(); ++a)
      for (size_t r = 0; r < kResults.size(); ++r) {
        const size_t slot = a * kResults.size() + r;
        if (!state->exported[slot]) continue;
        out.Sample("wxcanary_heals_total", state->labels,
                   {{"action", kActions[a]}, {"result", kResults[r]}},
                   static_cast<double>(state->heals[slot]));
      }
  }
  out.Header("wxcanary_heal_recovery_seconds", "histogram",
             "From the first failing probe of an episode to the first ok probe after a heal "
             "evicted the stale token.");
  for (const auto& state : states) {
    std::lock_guard lock(state->mu);
    if (!state->recovery_exported) continue;
    out.Histogram("wxcanary_heal_recovery_seconds", state->labels, kRecoveryBounds, state->recovery,
                  state->recovery_sum);
  }
}

void Healer::Record(const Target& target, const ProbeResult& result) {
  // Healing off and no dead token: a state made now would stay as new (streak 0, nothing
  // exported), so none is made for a target that has not needed one yet.
  const bool dead = EvidenceOf(result.outcome) == Evidence::kDead;
  auto state_ptr = StateFor(target, dead || target.env.heal != config::HealMode::kOff);
  if (!state_ptr) return;
  State& state = *state_ptr;
  const bool own_thread = heal_thread_.joinable();
  std::unique_lock record(state.record_mu, std::defer_lock);
  if (own_thread) {
    // Never wait for this target's heal (its I/O may take seconds), and never feed its policy
    // while one is queued: the heal is acting on this episode.
    if (!record.try_lock() || state.heal_queued) return;
  } else {
    record.lock();
  }
  const config::Heal settings = Settings();
  const MonotonicTime now = clock_.MonotonicNow();
  HealDecision decision;
  {
    std::lock_guard budget_lock(budget_mu_);
    decision = state.policy.Decide({.outcome = result.outcome,
                                    .fingerprint = result.fingerprint,
                                    .value_known = !result.raw_value.empty()},
                                   target.env.heal, settings, now, budget_);
  }
  {
    std::lock_guard lock(state.mu);
    if (state.mode != target.env.heal) EnsureSeries(state, target);
    state.streak = decision.streak;
    if (decision.recovered_seconds && state.recovery_exported) {
      ++state.recovery[telemetry::BucketOf(kRecoveryBounds, *decision.recovered_seconds)];
      state.recovery_sum += *decision.recovered_seconds;
    }
  }
  if (decision.verdict == HealDecision::Verdict::kNone) return;
  // A skip (cooldown, budget) does no I/O: decided and logged here. Only a heal is queued.
  if (own_thread && decision.verdict == HealDecision::Verdict::kHeal) {
    state.heal_queued = true;
    {
      std::lock_guard lock(jobs_mu_);
      jobs_.push_back({state_ptr, target, result, now, decision, settings});
    }
    jobs_cv_.notify_one();
    return;
  }
  Heal(state, target, result, now, decision, settings);
}

namespace {

telemetry::Fields BaseFields(const Target& target, const std::string& fingerprint) {
  telemetry::Fields f = telemetry::Fields::object();
  f["labels.app_id"] = target.app_id;
  f["labels.app_env"] = target.app_env;
  f["wxcanary.redis.name"] = target.env.redis;
  f["wxcanary.redis.key"] = target.env.key;
  f["wxcanary.token.fingerprint"] = fingerprint;
  return f;
}

// event.outcome goes first, as every event of the project has it.
telemetry::Fields WithOutcome(std::string_view outcome, const telemetry::Fields& rest) {
  telemetry::Fields f = telemetry::Fields::object();
  f["event.outcome"] = outcome;
  for (const auto& [k, v] : rest.items()) f[k] = v;
  return f;
}

std::string KeyText(const Target& target) {
  if (target.env.storage == config::Storage::kHash) {
    return target.env.key + " field " + target.env.hash_field;
  }
  return target.env.key;
}

}  // namespace

void Healer::Heal(State& state, const Target& target, const ProbeResult& result, MonotonicTime now,
                  const HealDecision& decision, const config::Heal& settings) {
  const int streak = decision.streak;
  const std::string action(ActionOf(target.env.heal));
  const std::string cause =
      result.errcode ? std::to_string(*result.errcode) : std::string(OutcomeName(result.outcome));
  const std::string reason = std::to_string(streak) + " consecutive " + cause + " with redis ttl " +
                             std::to_string(result.ttl_seconds) + "s";
  const std::string where = KeyText(target);

  auto log = [&](telemetry::Level level, std::string_view event_action, std::string_view act,
                 std::string_view res, const std::string& message, const std::string& error = {},
                 const std::string& outcome = {}) {
    telemetry::Fields f = BaseFields(target, result.fingerprint);
    f["wxcanary.heal.action"] = act;
    f["wxcanary.heal.result"] = res;
    f["wxcanary.heal.reason"] = reason;
    if (!error.empty()) f["error.message"] = error;
    if (!outcome.empty()) f = WithOutcome(outcome, f);
    logger_.Log(level, event_action, message, f);
  };
  auto skip = [&](std::string_view res, const std::string& why) {
    Count(state, action, res);
    log(telemetry::Level::kWarn, "heal_skipped", action, res,
        action + " of " + where + " skipped: " + why + " (" + reason + ")");
  };

  if (decision.verdict == HealDecision::Verdict::kSkipCooldown) {
    skip("skipped_cooldown",
         "last heal of this target " +
             FormatDuration(duration_cast<milliseconds>(decision.since_last_action)) +
             " ago, cooldown " + FormatDuration(settings.cooldown));
    return;
  }
  if (decision.verdict == HealDecision::Verdict::kSkipBudget) {
    skip("skipped_budget",
         "budget of " + std::to_string(settings.budget_per_hour) + " heals per hour spent");
    return;
  }
  // kHeal: the policy took one unit of the budget, given back if nothing acts.
  auto return_budget = [&] {
    std::lock_guard lock(budget_mu_);
    budget_.Return(now);
  };
  std::string error;
  auto locked = store_.TryLock(target.env, instance_id_, settings.lock_ttl, &error);
  if (!locked.has_value()) {
    return_budget();
    Count(state, action, "error");
    log(telemetry::Level::kError, "heal_skipped", action, "error",
        action + " of " + where + " failed taking the heal lock", error, "failure");
    return;
  }
  if (!*locked) {
    return_budget();
    skip("skipped_locked", "another wxcanary instance holds " + HealLockKey(target.env));
    return;
  }
  // From here on the target has acted: the cooldown runs whatever the outcome, so a broken
  // Redis is not hammered every probe.
  state.policy.Acted(now);

  if (target.env.heal == config::HealMode::kDryRun) {
    // The lock stays held until its TTL, exactly as after a real eviction, so peers in
    // dry_run report skipped_locked as they would in evict mode.
    Count(state, kDryRun, "done");
    log(telemetry::Level::kWarn, "heal_dry_run", kDryRun, "done",
        "dry run: would evict stale token from " + where + " (" + reason + ")", {}, "success");
    return;
  }

  auto deleted = store_.CompareAndDelete(target.env, result.raw_value, &error);
  if (!deleted.has_value()) {
    store_.Unlock(target.env, instance_id_);
    Count(state, kEvict, "error");
    log(telemetry::Level::kError, "heal_skipped", kEvict, "error", "evict of " + where + " failed",
        error, "failure");
    return;
  }
  if (*deleted == 0) {
    // The app already wrote a new token: that is the fix, leave it alone.
    store_.Unlock(target.env, instance_id_);
    skip("skipped_changed", "the key no longer holds the failing token");
    return;
  }
  // Keep the lock until its TTL: a peer that confirmed the same episode sees skipped_locked
  // instead of racing our refresh.
  state.policy.Evicted();
  Count(state, kEvict, "done");
  log(telemetry::Level::kWarn, "token_evicted", kEvict, "done",
      "evicted stale token from " + where + " (" + reason + ")", {}, "success");

  if (target.env.heal_refresh) Refresh(state, target, result.fingerprint, reason, settings);
}

void Healer::Refresh(State& state, const Target& target, const std::string& stale_fingerprint,
                     const std::string& reason, const config::Heal& settings) {
  const std::string where = KeyText(target);
  auto log = [&](telemetry::Level level, std::string_view event_action, std::string_view res,
                 const std::string& message, const std::string& error = {},
                 const std::string& outcome = {}, const std::string& fresh = {}) {
    telemetry::Fields f = BaseFields(target, stale_fingerprint);
    if (!fresh.empty()) f["wxcanary.heal.new_fingerprint"] = fresh;
    f["wxcanary.heal.action"] = kRefresh;
    f["wxcanary.heal.result"] = res;
    f["wxcanary.heal.reason"] = reason;
    if (!error.empty()) f["error.message"] = error;
    if (!outcome.empty()) f = WithOutcome(outcome, f);
    logger_.Log(level, event_action, message, f);
  };

  // Writing a JSON document or a hash field back would mean guessing the app's format; only
  // the plain string layout is unambiguous. Not counted: no refresh series exist for it.
  if (target.env.storage != config::Storage::kString) {
    log(telemetry::Level::kWarn, "heal_skipped", "skipped_unsupported",
        "refresh of " + where + " skipped: refresh supports storage string only, not " +
            std::string(target.env.storage == config::Storage::kHash ? "hash" : "json"));
    return;
  }
  if (fetcher_ == nullptr) {
    log(telemetry::Level::kWarn, "heal_skipped", "skipped_unsupported",
        "refresh of " + where + " skipped: no app secret, so no token fetcher");
    return;
  }
  std::string error;
  auto fetched = fetcher_->Fetch(target.app_id, &error);
  if (!fetched.has_value()) {
    Count(state, kRefresh, "error");
    log(telemetry::Level::kError, "heal_skipped", "error",
        "refresh of " + where + " failed fetching a stable token", error, "failure");
    return;
  }
  const auto margin = duration_cast<seconds>(settings.refresh_margin);
  const seconds ttl = fetched->expires_in - margin;
  if (ttl <= seconds{0}) {
    Count(state, kRefresh, "error");
    log(telemetry::Level::kError, "heal_skipped", "error",
        "refresh of " + where + " skipped: expires_in " +
            std::to_string(fetched->expires_in.count()) + "s leaves no TTL after refresh_margin " +
            FormatDuration(settings.refresh_margin),
        {}, "failure");
    return;
  }
  const std::string fresh = fetched->token.Fingerprint();
  auto written = store_.CompareAndSet(target.env, Secret{}, fetched->token, ttl, &error);
  if (!written.has_value()) {
    Count(state, kRefresh, "error");
    log(telemetry::Level::kError, "heal_skipped", "error",
        "refresh of " + where + " failed writing the token", error, "failure", fresh);
    return;
  }
  if (*written == 0) {
    Count(state, kRefresh, "skipped_changed");
    log(telemetry::Level::kWarn, "heal_skipped", "skipped_changed",
        "refresh of " + where + " skipped: the app wrote a token first", {}, {}, fresh);
    return;
  }
  Count(state, kRefresh, "done");
  log(telemetry::Level::kWarn, "heal_refreshed", "done",
      "wrote a stable token to " + where + " with ttl " + std::to_string(ttl.count()) + "s", {},
      "success", fresh);
}

}  // namespace wxcanary::heal
