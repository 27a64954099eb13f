#include "tracking/app_tracker.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "telemetry/exposition.h"
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
// Refreshes of one kept environment waiting for the keeper to name them, at most.
constexpr size_t kMaxDeferred = 8;

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

AppTracker::AppTracker(std::string app_id, MonotonicTime tracked_since)
    : app_id_(std::move(app_id)),
      tracked_since_(tracked_since),
      labels_(telemetry::RenderLabels({{"app_id", app_id_}})) {}

void AppTracker::AddTarget(const std::string& app_env, std::chrono::milliseconds interval,
                           bool keep) {
  auto [it, inserted] = targets_.try_emplace(app_env);
  TargetState& t = it->second;
  t.interval = interval;  // a reload may change it; the history stays
  t.keep = keep;
  if (!inserted) return;
  t.app_env = app_env;
  t.labels = telemetry::RenderTargetLabels(app_id_, app_env);
}

void AppTracker::DropTarget(const std::string& app_env) {
  auto it = targets_.find(app_env);
  if (it == targets_.end()) return;
  if (it->second.pending) --pending_;  // nobody to blame on behalf of a target no longer watched
  targets_.erase(it);
}

void AppTracker::EnsureCauseSeries() {
  std::vector<std::string> causes{std::string(kUnknownCause)};
  for (const auto& [env, unused] : targets_) causes.push_back(env);
  for (auto& [env, t] : targets_) {
    size_t missing = 0;
    for (const auto& cause : causes) missing += t.invalidations.count(cause) == 0 ? 1 : 0;
    if (missing == 0) continue;
    t.invalidations.reserve(t.invalidations.size() + missing);
    for (const auto& cause : causes) t.invalidations.try_emplace(cause, 0);
  }
}

void AppTracker::UpdateGauges(MonotonicTime now, const TrackerSettings& settings) {
  std::set<std::string_view> distinct;
  for (const auto& [env, t] : targets_)
    if (!t.fingerprint.empty()) distinct.insert(t.fingerprint);
  distinct_ = static_cast<double>(distinct.size());

  quota_events_.erase(quota_events_.begin(),
                      std::find_if(quota_events_.begin(), quota_events_.end(),
                                   [&](MonotonicTime t) { return now - t <= kQuotaLongWindow; }));
  const auto short_count =
      std::count_if(quota_events_.begin(), quota_events_.end(),
                    [&](MonotonicTime t) { return now - t <= kQuotaShortWindow; });
  const double per_day = ProjectDailyCalls(
      static_cast<int>(short_count), static_cast<int>(quota_events_.size()), now - tracked_since_);
  projected_ = settings.daily_quota > 0 ? per_day / settings.daily_quota : 0.0;
}

void AppTracker::Observe(const std::string& app_env, const ProbeResult& result, MonotonicTime now,
                         SystemTime wall, const TrackerSettings& settings,
                         std::vector<TrackerEvent>* events) {
  auto t_it = targets_.find(app_env);
  if (t_it == targets_.end()) return;
  TargetState& t = t_it->second;
  const std::string& fp = result.token_present ? result.fingerprint : std::string();

  if (fp.empty()) {
    t.fingerprint.clear();
    t.seen_without_token = true;
  } else if (fp != t.fingerprint) {
    // Compared with the last token ever seen, so an evicted-then-refetched token is a refresh
    // but a key that briefly vanished and came back unchanged is not. An environment's first
    // token counts too when the daemon saw it without one: a newly deployed environment
    // fetching its first token is exactly how the incident began.
    const bool refresh =
        t.last_fingerprint.empty() ? t.seen_without_token : fp != t.last_fingerprint;
    const bool new_to_app = seen_.find(fp) == seen_.end();
    if (new_to_app) seen_.emplace(fp, now);
    t.fingerprint = fp;
    if (fp != t.last_fingerprint) t.first_seen = now;
    t.superseded.reset();  // about the token it held before
    t.kept = kept_.count(fp) != 0;
    if (refresh && !t.kept) {
      TargetState::Deferred d{fp,  t.last_fingerprint, now,       wall,
                              now, result.ttl_seconds, new_to_app};
      // In a kept environment another replica's keeper may have written it: wait for ours to
      // name it (it fetches every keeper.interval) before calling it the app's refresh.
      if (t.keep) {
        d.deadline = now + settings.keeper_interval + kAttributionSlack;
        // Each waits on its own (an app's fetch may be overwritten by the keeper's write within
        // the wait); a bounded few, the oldest counted early past that.
        if (t.deferred.size() >= kMaxDeferred) {
          const TargetState::Deferred oldest = t.deferred.front();
          t.deferred.erase(t.deferred.begin());
          Refreshed(t, oldest, events);
        }
        t.deferred.push_back(d);
      } else {
        Refreshed(t, d, events);
      }
    }
    t.last_fingerprint = fp;
  }
  // Named by the keeper: not the app's; past the wait: the app's, oldest first.
  std::erase_if(t.deferred,
                [&](const TargetState::Deferred& d) { return kept_.count(d.fingerprint) != 0; });
  while (!t.deferred.empty() && now >= t.deferred.front().deadline) {
    const TargetState::Deferred d = t.deferred.front();
    t.deferred.erase(t.deferred.begin());
    Refreshed(t, d, events);
  }
  if (fp.empty()) t.superseded.reset();  // no cached token left to die
  t.key_expires.reset();
  if (!fp.empty() && result.ttl_seconds >= 0) t.key_expires = now + seconds{result.ttl_seconds};
  t.age = t.fingerprint.empty() ? 0.0 : Seconds(now - t.first_seen);

  if (t.superseded && !t.superseded->confirmed) ConfirmSuperseded(t, result, now, events);
  if (IsTokenError(result.outcome)) {
    t.superseded.reset();  // the prediction came true (or something else killed it first)
  } else if (t.superseded && result.outcome == Outcome::kOk &&
             now > t.superseded->dies_at_mono + kAttributionSlack) {
    Outlived(t, wall, events);
  }
  if (IsTokenError(result.outcome) && !fp.empty() &&
      (result.ttl_seconds > 0 || result.ttl_seconds == -1) && fp != t.reported_fingerprint()) {
    t.Incident().reported_fingerprint = fp;
    Attribute(t, result, now, wall, settings, events);
  }
  // After the refresh above is known: it may be the culprit a pending failure waits for.
  ResolveDue(now, wall, events);

  for (auto* memory : {&seen_, &kept_}) {
    for (auto s = memory->begin(); s != memory->end();) {
      if (now - s->second > kSeenMemory) s = memory->erase(s);
      else ++s;
    }
  }
  UpdateGauges(now, settings);
}

std::optional<AppTracker::Refresh> AppTracker::LastRefresh(const std::string& except_env,
                                                           const std::string& exclude_fingerprint,
                                                           MonotonicTime now,
                                                           nanoseconds window) const {
  const TargetState* best = nullptr;
  const TargetState* self = nullptr;
  for (const auto& [env, t] : targets_) {
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

void AppTracker::Attribute(TargetState& victim, const ProbeResult& result, MonotonicTime now,
                           SystemTime wall, const TrackerSettings& settings,
                           std::vector<TrackerEvent>* events) {
  const nanoseconds window =
      settings.window ? nanoseconds(*settings.window) : nanoseconds(kTokenGrace + victim.interval);
  const nanoseconds seen_for = now - victim.first_seen;
  TargetState::Failure failure{result.outcome,     result.fingerprint,
                               result.ttl_seconds, result.errcode,
                               result.rid,         duration_cast<seconds>(seen_for).count()};
  // One wait per target: an older failure still waiting is settled with what is known now.
  if (victim.pending) ResolvePending(victim, now, wall, /*force=*/true, events);
  // Old age needs no culprit: the app's cache kept the token past its life.
  const std::string evidence = ExpiryEvidence(result, seen_for, wall);
  if (!evidence.empty()) {
    events->push_back(Expired(victim, result, evidence, wall));
    return;
  }
  const auto cause = LastRefresh(victim.app_env, result.fingerprint, now, window);
  if (cause) {
    events->push_back(Invalidated(victim, failure, cause, window, nanoseconds{0}, wall));
    return;
  }
  // Wait for the slowest environment of the app: the culprit's refresh shows only when it is
  // probed next.
  auto longest = victim.interval;
  for (const auto& [env, other] : targets_) longest = std::max(longest, other.interval);
  victim.pending =
      TargetState::Pending{now, now + longest + kAttributionSlack, window, std::move(failure)};
  ++pending_;
}

void AppTracker::ResolvePending(TargetState& victim, MonotonicTime now, SystemTime wall, bool force,
                                std::vector<TrackerEvent>* events) {
  if (!victim.pending) return;
  const auto& p = *victim.pending;
  // Only another environment's refresh seen since the failure: what the victim does after its
  // token died (fetch a new one) is the reaction, not the cause; refreshes before the failure
  // were already looked at. The earliest one is the closest to the moment the token died.
  const TargetState* culprit = nullptr;
  for (const auto& [env, t] : targets_) {
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
  events->push_back(Invalidated(victim, pending.failure, cause, pending.window,
                                pending.deadline - pending.failed_at, wall));
}

void AppTracker::ResolveDue(MonotonicTime now, SystemTime wall, std::vector<TrackerEvent>* events) {
  if (pending_ == 0) return;
  for (auto& [env, t] : targets_) ResolvePending(t, now, wall, /*force=*/false, events);
}

void AppTracker::KeeperToken(const std::string& fingerprint, MonotonicTime now) {
  kept_[fingerprint] = now;
  for (auto& [env, t] : targets_) {
    if (t.fingerprint == fingerprint) t.kept = true;
    std::erase_if(t.deferred,
                  [&](const TargetState::Deferred& d) { return d.fingerprint == fingerprint; });
  }
}

void AppTracker::Refreshed(TargetState& t, const TargetState::Deferred& d,
                           std::vector<TrackerEvent>* events) {
  t.refreshed = d.at;
  t.refreshed_wall = d.wall;
  t.refreshed_to = d.fingerprint;
  ++t.refreshes;
  ++refreshes_;
  if (d.new_to_app) {
    quota_events_.push_back(d.at);
    if (quota_events_.size() > kMaxQuotaEvents) quota_events_.erase(quota_events_.begin());
  }
  events->push_back(
      {.kind = TrackerEvent::Kind::kRefreshed,
       .app_env = t.app_env,
       .fingerprint = d.fingerprint,
       .cause_env = "",
       .level = telemetry::Level::kWarn,
       .action = "token_refreshed",
       .message = "cached token of app " + app_id_ + " env " + t.app_env + " changed (" +
                  (d.previous.empty() ? std::string("none") : d.previous) + " -> " + d.fingerprint +
                  ")",
       .fields = telemetry::Fields{{"labels.app_id", app_id_},
                                   {"labels.app_env", t.app_env},
                                   {"wxcanary.token.fingerprint", d.fingerprint},
                                   {"wxcanary.token.previous_fingerprint", d.previous},
                                   {"wxcanary.token.ttl_seconds", d.ttl_seconds}}});
  Supersede(t, d.fingerprint, d.at, d.wall);
}

void AppTracker::Supersede(const TargetState& refresher, const std::string& fingerprint,
                           MonotonicTime now, SystemTime wall) {
  if (refresher.isolated) return;  // its fetches were seen not to kill other tokens
  for (auto& [env, t] : targets_) {
    if (&t == &refresher || t.fingerprint.empty() || t.fingerprint == fingerprint) continue;
    // Already known dead, not sharing /cgi-bin/token's valid token, or already superseded by an
    // earlier fetch (whose grace ends first; a third fetch ends it at once).
    if (t.isolated || t.kept || t.reported_fingerprint() == t.fingerprint || t.superseded) continue;
    // A token first seen after this fetch (a deferred refresh counted late) is newer than it.
    if (t.first_seen > now) continue;
    t.superseded = TargetState::Superseded{refresher.app_env,  fingerprint,       wall,
                                           wall + kTokenGrace, now + kTokenGrace, false};
  }
}

void AppTracker::ConfirmSuperseded(TargetState& t, const ProbeResult& result, MonotonicTime now,
                                   std::vector<TrackerEvent>* events) {
  TargetState::Superseded& s = *t.superseded;
  // Redis drops the key first (its app fetches anew in time), the grace is already over (the
  // outcome tells), or the token failed: nothing to predict.
  if ((t.key_expires && *t.key_expires <= s.dies_at_mono) || now >= s.dies_at_mono ||
      IsTokenError(result.outcome)) {
    t.superseded.reset();
    return;
  }
  s.confirmed = true;
  ++t.supersessions;
  const int64_t seconds_left = duration_cast<seconds>(s.dies_at_mono - now).count();
  const std::string dies_at = FormatRfc3339(s.dies_at);
  events->push_back(
      {.kind = TrackerEvent::Kind::kSuperseded,
       .app_env = t.app_env,
       .fingerprint = t.fingerprint,
       .cause_env = s.by_env,
       .level = telemetry::Level::kWarn,
       .action = "token_superseded",
       .message = "token " + t.fingerprint + " of app " + app_id_ + " env " + t.app_env +
                  " will stop working by " + dies_at + " (in " + std::to_string(seconds_left) +
                  " s): env " + s.by_env + " fetched a new token (" + s.by_fingerprint +
                  ") for the same AppId at " + FormatRfc3339(s.refreshed_at) +
                  ", and WeChat keeps only the newest one valid after a " +
                  std::to_string(kTokenGrace.count()) + " s grace. Before then: stop " + s.by_env +
                  "'s fetches and evict " + t.app_env +
                  "'s key so its app fetches anew (evicting alone supersedes " + s.by_env +
                  "'s token instead). Fix: " + std::string(kFix),
       .fields = telemetry::Fields{
           {"labels.app_id", app_id_},
           {"labels.app_env", t.app_env},
           {"wxcanary.conflict.cause_env", s.by_env},
           {"wxcanary.conflict.cause_refreshed_at", FormatRfc3339(s.refreshed_at)},
           {"wxcanary.token.fingerprint", t.fingerprint},
           {"wxcanary.token.superseded_by", s.by_fingerprint},
           {"wxcanary.token.dies_at", dies_at},
           {"wxcanary.token.seconds_left", seconds_left},
           {"wxcanary.token.ttl_seconds", result.ttl_seconds}}});
}

void AppTracker::Outlived(TargetState& t, SystemTime wall, std::vector<TrackerEvent>* events) {
  const TargetState::Superseded s = *t.superseded;
  t.superseded.reset();
  t.isolated = true;
  events->push_back(
      {.kind = TrackerEvent::Kind::kOutlived,
       .app_env = t.app_env,
       .fingerprint = t.fingerprint,
       .cause_env = s.by_env,
       .level = telemetry::Level::kInfo,
       .action = "token_outlived_supersession",
       .message = "token " + t.fingerprint + " of app " + app_id_ + " env " + t.app_env +
                  " still works past " + FormatRfc3339(s.dies_at) +
                  ", the end of the grace after env " + s.by_env +
                  "'s fetch: its tokens do not share /cgi-bin/token's one valid token "
                  "(getStableAccessToken?), so other environments' fetches are no longer "
                  "predicted to kill them (until one of its tokens is invalidated)",
       .fields = telemetry::Fields{{"labels.app_id", app_id_},
                                   {"labels.app_env", t.app_env},
                                   {"wxcanary.conflict.cause_env", s.by_env},
                                   {"wxcanary.token.fingerprint", t.fingerprint},
                                   {"wxcanary.token.dies_at", FormatRfc3339(s.dies_at)},
                                   {"wxcanary.token.checked_at", FormatRfc3339(wall)}}});
}

TrackerEvent AppTracker::Expired(TargetState& victim, const ProbeResult& result,
                                 const std::string& evidence, SystemTime wall) {
  ++victim.expirations;
  victim.Incident().last_expiry = wall;

  std::string message = "token " + result.fingerprint + " of app " + app_id_ + " env " +
                        victim.app_env + " expired (" + evidence + ") while Redis still holds it ";
  if (result.ttl_seconds == -1) {
    message +=
        "without expiry: the app's cache outlives the token (the key has no TTL, so it "
        "outlives every token)";
  } else {
    message += "for " + std::to_string(result.ttl_seconds) +
               " s more: the app's cache outlives the token (the key's TTL is longer than the "
               "token's remaining life)";
  }
  message += ". Fix: " + std::string(kExpiryFix);

  telemetry::Fields fields{{"labels.app_id", app_id_},
                           {"labels.app_env", victim.app_env},
                           {"wxcanary.token.fingerprint", result.fingerprint},
                           {"wxcanary.token.ttl_seconds", result.ttl_seconds},
                           {"wxcanary.token.age_seconds", static_cast<int64_t>(victim.age)}};
  if (result.expires_at) fields["wxcanary.token.expires_at"] = FormatRfc3339(*result.expires_at);
  if (result.errcode) fields["wxcanary.wechat.errcode"] = *result.errcode;
  if (!result.rid.empty()) fields["wxcanary.wechat.rid"] = result.rid;

  return {.kind = TrackerEvent::Kind::kExpired,
          .app_env = victim.app_env,
          .fingerprint = result.fingerprint,
          .cause_env = "",
          .level = telemetry::Level::kError,
          .action = "token_expired",
          .message = std::move(message),
          .fields = std::move(fields)};
}

TrackerEvent AppTracker::Invalidated(TargetState& victim, const TargetState::Failure& result,
                                     const std::optional<Refresh>& cause, nanoseconds looked_back,
                                     nanoseconds waited, SystemTime wall) {
  const std::string cause_env = cause ? cause->app_env : std::string(kUnknownCause);

  ++victim.invalidations[cause_env];
  victim.isolated = false;  // its tokens can be killed by another environment's fetch after all
  victim.Incident().last_cause_env = cause_env;
  victim.Incident().last_invalidation = wall;

  const std::string ttl_text = result.ttl_seconds == -1
                                   ? std::string("without expiry")
                                   : "for " + std::to_string(result.ttl_seconds) + " s more";
  const std::string code =
      result.errcode ? std::to_string(*result.errcode) : std::string(OutcomeName(result.outcome));
  std::string message = "token " + result.fingerprint + " of app " + app_id_ + " env " +
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

  telemetry::Fields fields{{"labels.app_id", app_id_},
                           {"labels.app_env", victim.app_env},
                           {"wxcanary.conflict.cause_env", cause_env}};
  if (cause) fields["wxcanary.conflict.cause_refreshed_at"] = FormatRfc3339(cause->at);
  fields["wxcanary.token.fingerprint"] = result.fingerprint;
  fields["wxcanary.token.ttl_seconds"] = result.ttl_seconds;
  if (result.errcode) fields["wxcanary.wechat.errcode"] = *result.errcode;
  if (!result.rid.empty()) fields["wxcanary.wechat.rid"] = result.rid;

  return {.kind = TrackerEvent::Kind::kInvalidated,
          .app_env = victim.app_env,
          .fingerprint = result.fingerprint,
          .cause_env = cause_env,
          .level = telemetry::Level::kError,
          .action = "token_invalidated",
          .message = std::move(message),
          .fields = std::move(fields)};
}

}  // namespace wxcanary::tracking
