#include "tracking/token_tracker.h"

#include <algorithm>
#include <mutex>
#include <string_view>
#include <utility>

namespace wxcanary::tracking {

namespace {

const std::string& LabelsOf(const AppTracker& app) { return app.labels(); }
const std::string& LabelsOf(const AppTracker::TargetState& t) { return t.labels; }

}  // namespace

struct TokenTracker::AppState {
  AppState(std::string app_id, MonotonicTime tracked_since)
      : core(std::move(app_id), tracked_since) {}
  std::mutex mu;  // guards core
  AppTracker core;
};

TokenTracker::TokenTracker(telemetry::Exposition& exposition, telemetry::Logger& logger,
                           Clock& clock, const config::Conflict& conflict)
    : exposition_(exposition), logger_(logger), clock_(clock) {
  SetConflict(conflict);
  exposition_.Add(*this);
}

void TokenTracker::Apply(const config::Config& config) {
  SetConflict(config.conflict);
  keeper_interval_ms_ = config.keeper.interval.count();
}

void TokenTracker::KeeperToken(const std::string& app_id, const std::string& fingerprint) {
  std::shared_lock lock(mu_);
  auto it = apps_.find(app_id);
  if (it == apps_.end()) return;
  std::lock_guard app_lock(it->second->mu);
  it->second->core.KeeperToken(fingerprint, clock_.MonotonicNow());
}

void TokenTracker::SetConflict(const config::Conflict& conflict) {
  window_ms_ = conflict.window ? conflict.window->count() : -1;
  daily_quota_ = conflict.daily_quota;
}

namespace {
// A keeper (of this replica or another) writes env's key: its new tokens may be the keeper's.
bool KeeperWrites(const config::Environment& env) {
  return env.keep != config::KeepMode::kOff && !env.keep_dry_run;
}
}  // namespace

TrackerSettings TokenTracker::Settings() const {
  TrackerSettings s;
  const int64_t window_ms = window_ms_.load();
  if (window_ms >= 0) s.window = std::chrono::milliseconds(window_ms);
  s.daily_quota = daily_quota_.load();
  s.keeper_interval = std::chrono::milliseconds(keeper_interval_ms_.load());
  return s;
}

TokenTracker::~TokenTracker() { exposition_.Remove(*this); }

TokenTracker::AppState& TokenTracker::AppFor(const std::string& app_id) {
  auto& slot = apps_[app_id];
  if (!slot) slot = std::make_unique<AppState>(app_id, clock_.MonotonicNow());
  return *slot;
}

void TokenTracker::SetTargets(const TargetList& targets) {
  // (app_id, app_env) of every target, sorted: one array of views into `targets`, not a node
  // per target, so a reload leaves no holes between the states it allocates (issue 19).
  using Name = std::pair<std::string_view, std::string_view>;
  std::vector<Name> wanted;
  wanted.reserve(targets.size());
  for (const auto& t : targets) wanted.emplace_back(t.app_id, t.app_env);
  std::sort(wanted.begin(), wanted.end());
  auto app_wanted = [&](std::string_view app_id) {
    auto it = std::lower_bound(wanted.begin(), wanted.end(), Name{app_id, {}});
    return it != wanted.end() && it->first == app_id;
  };

  std::unique_lock lock(mu_);
  for (auto it = apps_.begin(); it != apps_.end();) {
    AppState& app = *it->second;
    const bool app_kept = app_wanted(it->first);
    {
      // Released before the erase below: the AppState owns this mutex (TSan found the unlock of
      // a freed mutex when a reload dropped an app).
      std::lock_guard app_lock(app.mu);
      std::vector<std::string> gone;
      for (const auto& [env, unused] : app.core.targets())
        if (!app_kept || !std::binary_search(wanted.begin(), wanted.end(), Name{it->first, env}))
          gone.push_back(env);
      const int before = app.core.pending();
      for (const auto& env : gone) app.core.DropTarget(env);
      pending_ += app.core.pending() - before;
    }
    if (!app_kept) {
      it = apps_.erase(it);
    } else {
      ++it;
    }
  }
  by_index_.clear();
  for (const auto& t : targets) {
    AppState& app = AppFor(t.app_id);
    std::lock_guard app_lock(app.mu);
    app.core.AddTarget(t.app_env, t.env.interval, KeeperWrites(t.env));
    if (t.index >= by_index_.size()) by_index_.resize(t.index + 1);
    by_index_[t.index] = &app;
  }
  const MonotonicTime now = clock_.MonotonicNow();
  const TrackerSettings settings = Settings();
  for (auto& [id, app] : apps_) {
    std::lock_guard app_lock(app->mu);
    app->core.EnsureCauseSeries();
    app->core.UpdateGauges(now, settings);
  }
}

void TokenTracker::Record(const Target& target, const ProbeResult& result) {
  std::vector<TrackerEvent> events;
  // A Redis error says nothing about the token: keep believing what we last saw.
  // Time still passes for the pending invalidations of others.
  if (result.outcome == Outcome::kRedisError) {
    SweepPending("", &events);
  } else {
    RecordLocked(target, result, &events);
    SweepPending(target.app_id, &events);
  }
  // Logged after every lock is released: a slow log sink never holds up a scrape.
  for (const auto& e : events) logger_.Log(e.level, e.action, e.message, e.fields);
}

void TokenTracker::RecordLocked(const Target& target, const ProbeResult& result,
                                std::vector<TrackerEvent>* events) {
  std::shared_lock lock(mu_);
  AppState* found = At(target);
  if (found == nullptr || !found->core.HasTarget(target.app_env)) {
    // Not announced through SetTargets (e.g. used standalone): add it on the fly.
    lock.unlock();
    {
      std::unique_lock write(mu_);
      AppState& app = AppFor(target.app_id);
      std::lock_guard app_lock(app.mu);
      app.core.AddTarget(target.app_env, target.env.interval, KeeperWrites(target.env));
      app.core.EnsureCauseSeries();
    }
    lock.lock();
    found = At(target);
    if (found == nullptr) return;  // a concurrent SetTargets dropped it again
  }
  AppState& app = *found;
  std::lock_guard app_lock(app.mu);
  const int before = app.core.pending();
  app.core.Observe(target.app_env, result, clock_.MonotonicNow(), clock_.SystemNow(), Settings(),
                   events);
  pending_ += app.core.pending() - before;
}

TokenTracker::AppState* TokenTracker::At(const Target& target) const {
  // The index from SetTargets first: one comparison instead of a walk down the map's string
  // keys, a cache miss each at 10,000 targets (issue 19). An index from another target set must
  // not land on another app, hence the check.
  if (target.index < by_index_.size()) {
    AppState* app = by_index_[target.index];
    if (app != nullptr && app->core.app_id() == target.app_id) return app;
  }
  auto it = apps_.find(target.app_id);
  return it == apps_.end() ? nullptr : it->second.get();
}

std::vector<TokenTracker::TargetSnapshot> TokenTracker::Snapshot() const {
  std::shared_lock lock(mu_);
  std::vector<TargetSnapshot> out;
  for (const auto& [id, app] : apps_) {
    std::lock_guard app_lock(app->mu);
    for (const auto& [env, t] : app->core.targets()) {
      TargetSnapshot s;
      s.app_id = id;
      s.app_env = env;
      s.fingerprint = t.fingerprint;
      s.token_age_seconds = t.age;
      s.distinct_tokens = static_cast<int>(app->core.distinct());
      s.refreshes = t.refreshes;
      for (const auto& [cause, n] : t.invalidations) s.invalidations += n;
      s.last_cause_env = t.last_cause_env();
      s.last_invalidation = t.last_invalidation();
      s.attribution_pending = t.pending.has_value();
      s.expirations = t.expirations;
      s.last_expiry = t.last_expiry();
      if (t.superseded && t.superseded->confirmed) {
        s.superseded_by = t.superseded->by_env;
        s.dies_at = t.superseded->dies_at;
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

void TokenTracker::SweepPending(const std::string& skip_app, std::vector<TrackerEvent>* events) {
  if (pending_.load() == 0) return;
  std::shared_lock lock(mu_);
  for (auto& [id, app] : apps_) {
    if (id == skip_app) continue;
    std::lock_guard app_lock(app->mu);
    const int before = app->core.pending();
    app->core.ResolveDue(clock_.MonotonicNow(), clock_.SystemNow(), events);
    pending_ += app->core.pending() - before;
  }
}

void TokenTracker::AppendText(telemetry::TextWriter& out) const {
  std::shared_lock lock(mu_);
  // A family's samples must be contiguous: one pass over the apps per family.
  auto each_app = [&](auto&& write) {
    for (const auto& [id, app] : apps_) {
      std::lock_guard app_lock(app->mu);
      write(app->core);
    }
  };
  auto each_target = [&](auto&& write) {
    each_app([&](const AppTracker& app) {
      for (const auto& [env, t] : app.targets()) write(t);
    });
  };

  // A family with one sample per state: its header, then `value` of each.
  auto family = [&](auto each, std::string_view name, std::string_view type, std::string_view help,
                    auto value) {
    out.Header(name, type, help);
    each([&](const auto& state) { out.Sample(name, LabelsOf(state), value(state)); });
  };
  family(each_target, "wxcanary_token_refreshes_total", "counter",
         "Times the cached token of this environment changed (new fingerprint).",
         [](const AppTracker::TargetState& t) { return static_cast<double>(t.refreshes); });
  family(each_target, "wxcanary_token_age_seconds", "gauge",
         "Seconds since the current token's fingerprint was first seen; 0 when no token is "
         "cached.",
         [](const AppTracker::TargetState& t) { return t.age; });
  family(each_app, "wxcanary_app_distinct_tokens", "gauge",
         "Different tokens the environments of this AppId hold right now; more than 1 past the "
         "grace period means they invalidate each other.",
         [](const AppTracker& app) { return app.distinct(); });
  family(each_app, "wxcanary_app_token_refreshes_total", "counter",
         "Token refreshes seen across all environments of this AppId.",
         [](const AppTracker& app) { return static_cast<double>(app.refreshes()); });
  family(each_app, "wxcanary_app_token_quota_projected_ratio", "gauge",
         "Projected /cgi-bin/token calls per day for this AppId over the daily quota (max of a "
         "5 min and a 1 h sliding-window rate).",
         [](const AppTracker& app) { return app.projected(); });
  family(each_target, "wxcanary_token_expirations_total", "counter",
         "Cached tokens that expired (42001, or 40014 past expires_in) while Redis still held "
         "them: the app's cache outlives its tokens.",
         [](const AppTracker::TargetState& t) { return static_cast<double>(t.expirations); });
  family(each_target, "wxcanary_token_supersessions_total", "counter",
         "Times another environment of this AppId fetched a new token while this one held an "
         "older one, predicting its death at the grace's end (see "
         "wxcanary_token_superseded_dies_at_timestamp_seconds).",
         [](const AppTracker::TargetState& t) { return static_cast<double>(t.supersessions); });
  out.Header("wxcanary_token_superseded_dies_at_timestamp_seconds", "gauge",
             "When the token this environment holds stops working (Unix time): another "
             "environment (cause_env) fetched a newer one and the 300 s grace ends then. Present "
             "only while predicted: gone once the token changes, fails or outlives it.");
  each_target([&](const AppTracker::TargetState& t) {
    if (!t.superseded || !t.superseded->confirmed) return;
    out.Sample("wxcanary_token_superseded_dies_at_timestamp_seconds", t.labels,
               {{"cause_env", t.superseded->by_env}},
               std::chrono::duration<double>(t.superseded->dies_at.time_since_epoch()).count());
  });
  out.Header("wxcanary_token_invalidations_total", "counter",
             "Cached tokens invalidated (not expired: see wxcanary_token_expirations_total) "
             "while Redis still held them, by the environment that refreshed the AppId most "
             "recently before (\"unknown\": none of the configured ones).");
  each_target([&](const AppTracker::TargetState& t) {
    for (const auto& [cause, count] : t.invalidations)
      out.Sample("wxcanary_token_invalidations_total", t.labels, {{"cause_env", cause}},
                 static_cast<double>(count));
  });
}

}  // namespace wxcanary::tracking
