#include "tracking/token_tracker.h"

#include <algorithm>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>

#include "common/rfc3339.h"

namespace wxcanary::tracking {

namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// Fingerprints an app has shown are remembered this long, so an environment picking up a token
// another one already showed (stable_token sharing, or both reading one Redis) is not counted
// twice against the quota. A token lives 7200 s; keep a little more.
constexpr seconds kSeenMemory{3 * 3600};
// Bounds memory during a pathological storm; the projection is far past 1 long before this.
constexpr size_t kMaxQuotaEvents = 20'000;

constexpr std::string_view kUnknownCause = "unknown";
constexpr std::string_view kFix =
    "one token source for the AppId, or getStableAccessToken (POST /cgi-bin/stable_token) in "
    "every environment";
constexpr std::string_view kExpiryFix =
    "cache tokens for less than expires_in (7200 s; the SDKs keep a 200-500 s margin, e.g. SET "
    "KEY TOKEN EX 7000) and drop the cached token on 40001/40014/42001; wxcanary evict replaces "
    "this one now";

double Seconds(nanoseconds d) { return std::chrono::duration<double>(d).count(); }

std::string ErrcodeText(const ProbeResult& r) {
  return r.errcode ? std::to_string(*r.errcode) : std::string(OutcomeName(r.outcome));
}

// Why the token of `r` died of old age, or "" when nothing says so: WeChat's own 42001, or a
// 40014 (some deployments' answer for an expired token) on a token past its life by the expiry
// the app stored with it or by how long wxcanary has seen it (a lower bound of its age).
std::string ExpiryEvidence(const ProbeResult& r, nanoseconds seen_for, SystemTime now) {
  if (r.outcome == Outcome::kTokenExpired)
    return "errcode " + ErrcodeText(r) + ": WeChat says it lived past its expires_in";
  if (r.outcome != Outcome::kTokenMalformed) return "";
  if (r.expires_at && *r.expires_at <= now)
    return "errcode " + ErrcodeText(r) + " after the expiry stored with it, " +
           FormatRfc3339(*r.expires_at);
  if (seen_for >= kTokenLifetime)
    return "errcode " + ErrcodeText(r) + " on a token seen for " +
           std::to_string(duration_cast<seconds>(seen_for).count()) + " s, past its " +
           std::to_string(kTokenLifetime.count()) + " s expires_in";
  return "";
}

}  // namespace

double ProjectDailyCalls(int refreshes_last_short, int refreshes_last_long,
                         std::chrono::nanoseconds tracked_for) {
  constexpr double kDay = 86400.0;
  const nanoseconds long_window =
      std::clamp<nanoseconds>(tracked_for, kQuotaMinLongWindow, kQuotaLongWindow);
  const double long_estimate = refreshes_last_long * kDay / Seconds(long_window);
  const double short_estimate =
      refreshes_last_short >= 2 ? refreshes_last_short * kDay / Seconds(kQuotaShortWindow) : 0.0;
  return std::max(long_estimate, short_estimate);
}

// What the log and counter need of the failing probe; no token, so it may wait in memory.
struct TokenTracker::Failure {
  Outcome outcome = Outcome::kOk;
  std::string fingerprint;
  int64_t ttl_seconds = 0;
  std::optional<int> errcode;
  std::string rid;
  int64_t seen_seconds = 0;  // how long this fingerprint had been seen at the failure
};

struct TokenTracker::TargetState {
  std::string app_env;
  std::chrono::milliseconds interval{30'000};

  std::string fingerprint;       // current, "" while no token is cached
  std::string last_fingerprint;  // last non-empty one, survives token_missing
  // Redis answered without a token at some point: the next token is one the app just fetched
  // (a refresh), unlike a token already cached when the daemon started.
  bool seen_without_token = false;
  MonotonicTime first_seen{};    // of `fingerprint`

  // The most recent refresh (fingerprint change) of this environment.
  std::optional<MonotonicTime> refreshed;
  SystemTime refreshed_wall{};
  std::string refreshed_to;

  std::string reported_fingerprint;  // last failing fingerprint already attributed (or pending)

  // A failure no configured environment explains yet: wxsim (like WeChat, for a third fetch)
  // kills a superseded token at once, so the victim's failing probe can come before the probe
  // that shows the culprit's refresh. Waits until `deadline` for that refresh.
  struct Pending {
    MonotonicTime failed_at;
    MonotonicTime deadline;
    nanoseconds window;  // looked back this far at the failure
    Failure failure;
  };
  std::optional<Pending> pending;

  // Exported values, written straight into the exposition (see AppendText).
  std::string labels;  // app_env, app_id rendered
  uint64_t refreshes = 0;
  double age = 0;
  std::map<std::string, uint64_t> invalidations;  // by cause_env
  uint64_t expirations = 0;
  std::optional<SystemTime> last_expiry;

  // The last invalidation reported, for Snapshot().
  std::string last_cause_env;
  std::optional<SystemTime> last_invalidation;
};

struct TokenTracker::AppState {
  std::string app_id;
  std::mutex mu;
  MonotonicTime tracked_since{};
  std::map<std::string, TargetState> targets;  // by app_env

  std::deque<MonotonicTime> quota_events;                  // distinct new fingerprints
  std::unordered_map<std::string, MonotonicTime> seen;     // fingerprint -> first seen in app

  std::string labels;  // app_id rendered
  double distinct = 0;
  uint64_t refreshes = 0;
  double projected = 0;
};

TokenTracker::TokenTracker(telemetry::Exposition& exposition, telemetry::Logger& logger,
                           Clock& clock, const config::Conflict& conflict)
    : exposition_(exposition), logger_(logger), clock_(clock) {
  SetConflict(conflict);
  exposition_.Add(*this);
}

void TokenTracker::Apply(const config::Config& config) { SetConflict(config.conflict); }

void TokenTracker::SetConflict(const config::Conflict& conflict) {
  window_ms_ = conflict.window ? conflict.window->count() : -1;
  daily_quota_ = conflict.daily_quota;
}

TokenTracker::~TokenTracker() { exposition_.Remove(*this); }

TokenTracker::AppState& TokenTracker::AppFor(const std::string& app_id) {
  auto& slot = apps_[app_id];
  if (!slot) {
    slot = std::make_unique<AppState>();
    slot->app_id = app_id;
    slot->tracked_since = clock_.MonotonicNow();
    slot->labels = telemetry::RenderLabels({{"app_id", app_id}});
  }
  return *slot;
}

void TokenTracker::AddTarget(AppState& app, const Target& target) {
  auto [it, inserted] = app.targets.try_emplace(target.app_env);
  TargetState& t = it->second;
  t.interval = target.env.interval;  // a reload may change it; the history stays
  if (!inserted) return;
  t.app_env = target.app_env;
  t.labels = telemetry::RenderLabels({{"app_id", app.app_id}, {"app_env", target.app_env}});
}

void TokenTracker::DropTarget(AppState& app, const std::string& app_env) {
  auto it = app.targets.find(app_env);
  if (it == app.targets.end()) return;
  if (it->second.pending) --pending_;  // nobody to blame on behalf of a target no longer watched
  app.targets.erase(it);
}

// Exports every possible cause at 0 from the start, so increase() sees the first invalidation.
void TokenTracker::EnsureCauseSeries(AppState& app) {
  std::vector<std::string> causes{std::string(kUnknownCause)};
  for (const auto& [env, unused] : app.targets) causes.push_back(env);
  for (auto& [env, t] : app.targets) {
    for (const auto& cause : causes) {
      t.invalidations.try_emplace(cause, 0);
    }
  }
}

void TokenTracker::SetTargets(const std::vector<Target>& targets) {
  std::map<std::string, std::set<std::string>> wanted;
  for (const auto& t : targets) wanted[t.app_id].insert(t.app_env);

  std::unique_lock lock(mu_);
  for (auto it = apps_.begin(); it != apps_.end();) {
    AppState& app = *it->second;
    const auto w = wanted.find(it->first);
    {
      // Released before the erase below: the AppState owns this mutex (TSan found the unlock of
      // a freed mutex when a reload dropped an app).
      std::lock_guard app_lock(app.mu);
      std::vector<std::string> gone;
      for (const auto& [env, unused] : app.targets)
        if (w == wanted.end() || !w->second.count(env)) gone.push_back(env);
      for (const auto& env : gone) DropTarget(app, env);
    }
    if (w == wanted.end()) {
      it = apps_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& t : targets) {
    AppState& app = AppFor(t.app_id);
    std::lock_guard app_lock(app.mu);
    AddTarget(app, t);
  }
  const MonotonicTime now = clock_.MonotonicNow();
  for (auto& [id, app] : apps_) {
    std::lock_guard app_lock(app->mu);
    EnsureCauseSeries(*app);
    UpdateAppGauges(*app, now);
  }
}

void TokenTracker::UpdateAppGauges(AppState& app, MonotonicTime now) {
  std::set<std::string_view> distinct;
  for (const auto& [env, t] : app.targets)
    if (!t.fingerprint.empty()) distinct.insert(t.fingerprint);
  app.distinct = static_cast<double>(distinct.size());

  while (!app.quota_events.empty() && now - app.quota_events.front() > kQuotaLongWindow)
    app.quota_events.pop_front();
  const auto short_count = std::count_if(app.quota_events.begin(), app.quota_events.end(),
                                         [&](MonotonicTime t) { return now - t <= kQuotaShortWindow; });
  const double per_day =
      ProjectDailyCalls(static_cast<int>(short_count), static_cast<int>(app.quota_events.size()),
                        now - app.tracked_since);
  const int daily_quota = daily_quota_.load();
  app.projected = daily_quota > 0 ? per_day / daily_quota : 0.0;
}

void TokenTracker::Record(const Target& target, const ProbeResult& result) {
  // A Redis error says nothing about the token: keep believing what we last saw.
  // Time still passes for the pending invalidations of others.
  if (result.outcome == Outcome::kRedisError) {
    SweepPending("");
    return;
  }
  RecordLocked(target, result);
  SweepPending(target.app_id);
}

void TokenTracker::RecordLocked(const Target& target, const ProbeResult& result) {
  std::shared_lock lock(mu_);
  auto it = apps_.find(target.app_id);
  if (it == apps_.end() || !it->second->targets.count(target.app_env)) {
    // Not announced through SetTargets (e.g. used standalone): add it on the fly.
    lock.unlock();
    {
      std::unique_lock write(mu_);
      AppState& app = AppFor(target.app_id);
      std::lock_guard app_lock(app.mu);
      AddTarget(app, target);
      EnsureCauseSeries(app);
    }
    lock.lock();
    it = apps_.find(target.app_id);
    if (it == apps_.end()) return;  // a concurrent SetTargets dropped it again
  }
  AppState& app = *it->second;
  std::lock_guard app_lock(app.mu);
  auto t_it = app.targets.find(target.app_env);
  if (t_it == app.targets.end()) return;
  TargetState& t = t_it->second;

  const MonotonicTime now = clock_.MonotonicNow();
  const std::string& fp = result.token_present ? result.fingerprint : std::string();

  if (fp.empty()) {
    t.fingerprint.clear();
    t.seen_without_token = true;
  } else if (fp != t.fingerprint) {
    // Compared with the last token ever seen, so an evicted-then-refetched token is a refresh
    // but a key that briefly vanished and came back unchanged is not. An environment's first
    // token counts too when the daemon saw it without one: a newly deployed environment
    // fetching its first token is exactly how the incident began.
    const bool refresh = t.last_fingerprint.empty() ? t.seen_without_token
                                                    : fp != t.last_fingerprint;
    const bool new_to_app = app.seen.find(fp) == app.seen.end();
    if (new_to_app) app.seen.emplace(fp, now);
    t.fingerprint = fp;
    if (fp != t.last_fingerprint) t.first_seen = now;
    if (refresh) {
      t.refreshed = now;
      t.refreshed_wall = clock_.SystemNow();
      t.refreshed_to = fp;
      ++t.refreshes;
      ++app.refreshes;
      if (new_to_app) {
        app.quota_events.push_back(now);
        if (app.quota_events.size() > kMaxQuotaEvents) app.quota_events.pop_front();
      }
      logger_.Log(telemetry::Level::kWarn, "token_refreshed",
                  "cached token of app " + app.app_id + " env " + t.app_env + " changed (" +
                      (t.last_fingerprint.empty() ? std::string("none") : t.last_fingerprint) +
                      " -> " + fp + ")",
                  telemetry::Fields{{"labels.app_id", app.app_id},
                                    {"labels.app_env", t.app_env},
                                    {"wxcanary.token.fingerprint", fp},
                                    {"wxcanary.token.previous_fingerprint", t.last_fingerprint},
                                    {"wxcanary.token.ttl_seconds", result.ttl_seconds}});
    }
    t.last_fingerprint = fp;
  }
  t.age = t.fingerprint.empty() ? 0.0 : Seconds(now - t.first_seen);

  if (IsTokenError(result.outcome) && !fp.empty() &&
      (result.ttl_seconds > 0 || result.ttl_seconds == -1) && fp != t.reported_fingerprint) {
    t.reported_fingerprint = fp;
    Attribute(app, t, result, now);
  }
  // After the refresh above is known: it may be the culprit a pending failure waits for.
  ResolvePendingOfApp(app, now);

  for (auto s = app.seen.begin(); s != app.seen.end();) {
    if (now - s->second > kSeenMemory)
      s = app.seen.erase(s);
    else
      ++s;
  }
  UpdateAppGauges(app, now);
}

std::optional<TokenTracker::Refresh> TokenTracker::LastRefreshLocked(
    const AppState& app, const std::string& except_env, const std::string& exclude_fingerprint,
    MonotonicTime now, nanoseconds window) const {
  const TargetState* best = nullptr;
  const TargetState* self = nullptr;
  for (const auto& [env, t] : app.targets) {
    if (!t.refreshed || now - *t.refreshed > window || *t.refreshed > now) continue;
    // Refreshing *to* the failing token cannot be what killed it.
    if (!exclude_fingerprint.empty() && t.refreshed_to == exclude_fingerprint && env != except_env)
      continue;
    if (env == except_env) {
      self = &t;
      continue;
    }
    if (!best || *t.refreshed > *best->refreshed) best = &t;
  }
  if (!best) best = self;
  if (!best) return std::nullopt;
  return Refresh{best->app_env, best->refreshed_wall, best->refreshed_to};
}

std::optional<TokenTracker::Refresh> TokenTracker::LastRefresh(
    const std::string& app_id, const std::string& except_env,
    std::chrono::milliseconds window) const {
  std::shared_lock lock(mu_);
  auto it = apps_.find(app_id);
  if (it == apps_.end()) return std::nullopt;
  std::lock_guard app_lock(it->second->mu);
  return LastRefreshLocked(*it->second, except_env, "", clock_.MonotonicNow(), window);
}

std::vector<std::string> TokenTracker::AppIds() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, unused] : apps_) ids.push_back(id);
  return ids;
}

std::vector<TokenTracker::TargetSnapshot> TokenTracker::Snapshot() const {
  std::shared_lock lock(mu_);
  std::vector<TargetSnapshot> out;
  for (const auto& [id, app] : apps_) {
    std::lock_guard app_lock(app->mu);
    for (const auto& [env, t] : app->targets) {
      TargetSnapshot s;
      s.app_id = id;
      s.app_env = env;
      s.fingerprint = t.fingerprint;
      s.token_age_seconds = t.age;
      s.distinct_tokens = static_cast<int>(app->distinct);
      s.refreshes = t.refreshes;
      for (const auto& [cause, n] : t.invalidations) s.invalidations += n;
      s.last_cause_env = t.last_cause_env;
      s.last_invalidation = t.last_invalidation;
      s.attribution_pending = t.pending.has_value();
      s.expirations = t.expirations;
      s.last_expiry = t.last_expiry;
      out.push_back(std::move(s));
    }
  }
  return out;
}

void TokenTracker::Attribute(AppState& app, TargetState& victim, const ProbeResult& result,
                             MonotonicTime now) {
  const int64_t window_ms = window_ms_.load();
  const nanoseconds window = window_ms >= 0 ? nanoseconds(std::chrono::milliseconds(window_ms))
                                            : nanoseconds(kTokenGrace + victim.interval);
  const nanoseconds seen_for = now - victim.first_seen;
  Failure failure{result.outcome, result.fingerprint, result.ttl_seconds, result.errcode,
                  result.rid, duration_cast<seconds>(seen_for).count()};
  // One wait per target: an older failure still waiting is settled with what is known now.
  if (victim.pending) ResolvePending(app, victim, now, /*force=*/true);
  // Old age needs no culprit: the app's cache kept the token past its life.
  const std::string evidence = ExpiryEvidence(result, seen_for, clock_.SystemNow());
  if (!evidence.empty()) {
    ReportExpiry(app, victim, result, evidence);
    return;
  }
  const auto cause = LastRefreshLocked(app, victim.app_env, result.fingerprint, now, window);
  if (cause) {
    Report(app, victim, failure, cause, window, nanoseconds{0});
    return;
  }
  // Wait for the slowest environment of the app: the culprit's refresh shows only when it is
  // probed next.
  auto longest = victim.interval;
  for (const auto& [env, other] : app.targets) longest = std::max(longest, other.interval);
  victim.pending = TargetState::Pending{now, now + longest + kAttributionSlack, window,
                                        std::move(failure)};
  ++pending_;
}

void TokenTracker::ResolvePending(AppState& app, TargetState& victim, MonotonicTime now,
                                  bool force) {
  if (!victim.pending) return;
  const auto& p = *victim.pending;
  // Only another environment's refresh seen since the failure: what the victim does after its
  // token died (fetch a new one) is the reaction, not the cause; refreshes before the failure
  // were already looked at. The earliest one is the closest to the moment the token died.
  const TargetState* culprit = nullptr;
  for (const auto& [env, t] : app.targets) {
    if (env == victim.app_env || !t.refreshed) continue;
    if (*t.refreshed < p.failed_at || *t.refreshed > p.deadline || *t.refreshed > now) continue;
    if (t.refreshed_to == p.failure.fingerprint) continue;
    if (!culprit || *t.refreshed < *culprit->refreshed) culprit = &t;
  }
  if (!culprit && now < p.deadline && !force) return;
  std::optional<Refresh> cause;
  if (culprit) cause = Refresh{culprit->app_env, culprit->refreshed_wall, culprit->refreshed_to};
  const auto pending = std::move(*victim.pending);
  victim.pending.reset();
  --pending_;
  Report(app, victim, pending.failure, cause, pending.window, pending.deadline - pending.failed_at);
}

void TokenTracker::ResolvePendingOfApp(AppState& app, MonotonicTime now) {
  for (auto& [env, t] : app.targets) ResolvePending(app, t, now, /*force=*/false);
}

void TokenTracker::SweepPending(const std::string& skip_app) {
  if (pending_.load() == 0) return;
  std::shared_lock lock(mu_);
  for (auto& [id, app] : apps_) {
    if (id == skip_app) continue;
    std::lock_guard app_lock(app->mu);
    ResolvePendingOfApp(*app, clock_.MonotonicNow());
  }
}

void TokenTracker::ReportExpiry(AppState& app, TargetState& victim, const ProbeResult& result,
                                const std::string& evidence) {
  ++victim.expirations;
  victim.last_expiry = clock_.SystemNow();

  std::string message = "token " + result.fingerprint + " of app " + app.app_id + " env " +
                        victim.app_env + " expired (" + evidence + ") while Redis still holds it ";
  if (result.ttl_seconds == -1) {
    message += "without expiry: the app's cache outlives the token (the key has no TTL, so it "
               "outlives every token)";
  } else {
    message += "for " + std::to_string(result.ttl_seconds) +
               " s more: the app's cache outlives the token (the key's TTL is longer than the "
               "token's remaining life)";
  }
  message += ". Fix: " + std::string(kExpiryFix);

  telemetry::Fields fields{{"labels.app_id", app.app_id},
                           {"labels.app_env", victim.app_env},
                           {"wxcanary.token.fingerprint", result.fingerprint},
                           {"wxcanary.token.ttl_seconds", result.ttl_seconds},
                           {"wxcanary.token.age_seconds", static_cast<int64_t>(victim.age)}};
  if (result.expires_at) fields["wxcanary.token.expires_at"] = FormatRfc3339(*result.expires_at);
  if (result.errcode) fields["wxcanary.wechat.errcode"] = *result.errcode;
  if (!result.rid.empty()) fields["wxcanary.wechat.rid"] = result.rid;
  logger_.Log(telemetry::Level::kError, "token_expired", message, fields);
}

void TokenTracker::Report(AppState& app, TargetState& victim, const Failure& result,
                          const std::optional<Refresh>& cause, nanoseconds looked_back,
                          nanoseconds waited) {
  const std::string cause_env = cause ? cause->app_env : std::string(kUnknownCause);

  ++victim.invalidations[cause_env];
  victim.last_cause_env = cause_env;
  victim.last_invalidation = clock_.SystemNow();

  const std::string ttl_text = result.ttl_seconds == -1
                                   ? std::string("without expiry")
                                   : "for " + std::to_string(result.ttl_seconds) + " s more";
  const std::string code =
      result.errcode ? std::to_string(*result.errcode) : std::string(OutcomeName(result.outcome));
  std::string message = "token " + result.fingerprint + " of app " + app.app_id + " env " +
                        victim.app_env + " was invalidated (errcode " + code +
                        ") while Redis still holds it " + ttl_text + "; ";
  if (!cause) {
    message += "no configured environment refreshed it in the " +
               std::to_string(duration_cast<seconds>(looked_back).count()) +
               " s before the failure nor the " +
               std::to_string(duration_cast<seconds>(waited).count()) +
               " s after: someone outside this config fetches tokens with the AppSecret";
    if (result.outcome == Outcome::kTokenMalformed)
      message += " (or the token is older than the " + std::to_string(result.seen_seconds) +
                 " s wxcanary has seen it and past its expires_in: 40014 answers both)";
  } else if (cause->app_env == victim.app_env) {
    message += "env " + victim.app_env + " itself fetched a new token at " +
               FormatRfc3339(cause->at) + " (several writers in one environment?)";
  } else {
    message += "env " + cause->app_env + " fetched a new token for the same AppId at " +
               FormatRfc3339(cause->at);
  }
  message += ". Fix: " + std::string(kFix);

  telemetry::Fields fields{{"labels.app_id", app.app_id},
                           {"labels.app_env", victim.app_env},
                           {"wxcanary.conflict.cause_env", cause_env}};
  if (cause) fields["wxcanary.conflict.cause_refreshed_at"] = FormatRfc3339(cause->at);
  fields["wxcanary.token.fingerprint"] = result.fingerprint;
  fields["wxcanary.token.ttl_seconds"] = result.ttl_seconds;
  if (result.errcode) fields["wxcanary.wechat.errcode"] = *result.errcode;
  if (!result.rid.empty()) fields["wxcanary.wechat.rid"] = result.rid;
  logger_.Log(telemetry::Level::kError, "token_invalidated", message, fields);
}

void TokenTracker::AppendText(telemetry::TextWriter& out) const {
  std::shared_lock lock(mu_);
  // A family's samples must be contiguous: one pass over the apps per family.
  auto each_app = [&](auto&& write) {
    for (const auto& [id, app] : apps_) {
      std::lock_guard app_lock(app->mu);
      write(*app);
    }
  };
  auto each_target = [&](auto&& write) {
    each_app([&](const AppState& app) {
      for (const auto& [env, t] : app.targets) write(t);
    });
  };

  // A family with one sample per state: its header, then `value` of each.
  auto family = [&](auto each, std::string_view name, std::string_view type,
                    std::string_view help, auto value) {
    out.Header(name, type, help);
    each([&](const auto& state) { out.Sample(name, state.labels, value(state)); });
  };
  family(each_target, "wxcanary_token_refreshes_total", "counter",
         "Times the cached token of this environment changed (new fingerprint).",
         [](const TargetState& t) { return static_cast<double>(t.refreshes); });
  family(each_target, "wxcanary_token_age_seconds", "gauge",
         "Seconds since the current token's fingerprint was first seen; 0 when no token is "
         "cached.",
         [](const TargetState& t) { return t.age; });
  family(each_app, "wxcanary_app_distinct_tokens", "gauge",
         "Different tokens the environments of this AppId hold right now; more than 1 past the "
         "grace period means they invalidate each other.",
         [](const AppState& app) { return app.distinct; });
  family(each_app, "wxcanary_app_token_refreshes_total", "counter",
         "Token refreshes seen across all environments of this AppId.",
         [](const AppState& app) { return static_cast<double>(app.refreshes); });
  family(each_app, "wxcanary_app_token_quota_projected_ratio", "gauge",
         "Projected /cgi-bin/token calls per day for this AppId over the daily quota (max of a "
         "5 min and a 1 h sliding-window rate).",
         [](const AppState& app) { return app.projected; });
  family(each_target, "wxcanary_token_expirations_total", "counter",
         "Cached tokens that expired (42001, or 40014 past expires_in) while Redis still held "
         "them: the app's cache outlives its tokens.",
         [](const TargetState& t) { return static_cast<double>(t.expirations); });
  out.Header("wxcanary_token_invalidations_total", "counter",
             "Cached tokens invalidated (not expired: see wxcanary_token_expirations_total) "
             "while Redis still held them, by the environment that refreshed the AppId most "
             "recently before (\"unknown\": none of the configured ones).");
  each_target([&](const TargetState& t) {
    for (const auto& [cause, count] : t.invalidations)
      out.Sample("wxcanary_token_invalidations_total", t.labels, {{"cause_env", cause}},
                 static_cast<double>(count));
  });
}

}  // namespace wxcanary::tracking
