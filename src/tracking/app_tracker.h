#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/boxed.h"
#include "common/clock.h"
#include "probe/result_sink.h"
#include "telemetry/log.h"

namespace wxcanary::tracking {

/// The sliding windows of the quota projection (see ProjectDailyCalls).
inline constexpr std::chrono::seconds kQuotaShortWindow{300};
inline constexpr std::chrono::seconds kQuotaLongWindow{3600};
/// The long window is never taken shorter than this, so one refresh just after start does not
/// project a storm.
inline constexpr std::chrono::seconds kQuotaMinLongWindow{900};
/// Grace of /cgi-bin/token: the old token keeps working this long after a new one is issued.
inline constexpr std::chrono::seconds kTokenGrace{300};
/// expires_in of every access_token: a 40014 on a token seen for longer is old age, not a
/// conflict (some deployments answer 40014 instead of 42001 for an expired token).
inline constexpr std::chrono::seconds kTokenLifetime{7200};
/// A token error with no culprit yet waits this long past one probe interval of the victim for
/// a configured environment to show a refresh (its probe may run just after the victim's)
/// before it is counted with cause_env="unknown".
inline constexpr std::chrono::seconds kAttributionSlack{5};

/// Projected /cgi-bin/token calls per day for one AppId. Pure; thread-safe.
///  - long estimate: refreshes in the last hour / min(1 h, max(15 min, time tracked)) * 1 day;
///    the shorter denominator at start keeps a burst in the first minutes from being
///    diluted by an hour nobody watched.
///  - short estimate: refreshes in the last 5 min / 5 min * 1 day, used only with at least two
///    of them (one refresh in 5 min is normal operation, two is a rate), so a storm pages
///    within a minute or two rather than after an hour.
///  The projection is the larger of the two.
double ProjectDailyCalls(int refreshes_last_short, int refreshes_last_long,
                         std::chrono::nanoseconds tracked_for);

/// Invalidations by cause_env, in name order: the part of std::map<std::string, uint64_t>'s
/// interface its users need, in one sorted array. Every target has a series per cause from the
/// start (the environments of its AppId and "unknown"): as a map that was ~350 bytes a target in
/// four nodes, ~170 here (issue 19).
class CauseCounts {
 public:
  using value_type = std::pair<std::string, uint64_t>;
  using const_iterator = std::vector<value_type>::const_iterator;

  /// The count of `cause`, added at 0 when absent.
  uint64_t& operator[](std::string_view cause) { return Insert(cause, 0)->second; }
  /// Adds `cause` at `n` when absent; true when it was added.
  bool try_emplace(std::string_view cause, uint64_t n) {
    const size_t before = counts_.size();
    Insert(cause, n);
    return counts_.size() != before;
  }
  /// The count of `cause`; throws std::out_of_range when absent.
  [[nodiscard]] const uint64_t& at(std::string_view cause) const {
    auto it = Find(cause);
    if (it == counts_.end() || it->first != cause) throw std::out_of_range("CauseCounts::at");
    return it->second;
  }
  [[nodiscard]] size_t count(std::string_view cause) const {
    auto it = Find(cause);
    return it != counts_.end() && it->first == cause ? 1 : 0;
  }
  /// Room for `n` causes, so adding them one by one does not overallocate.
  void reserve(size_t n) { counts_.reserve(n); }
  [[nodiscard]] size_t size() const { return counts_.size(); }
  [[nodiscard]] bool empty() const { return counts_.empty(); }
  [[nodiscard]] const_iterator begin() const { return counts_.begin(); }
  [[nodiscard]] const_iterator end() const { return counts_.end(); }

 private:
  [[nodiscard]] const_iterator Find(std::string_view cause) const {
    return std::lower_bound(
        counts_.begin(), counts_.end(), cause,
        [](const value_type& a, std::string_view b) { return std::string_view(a.first) < b; });
  }
  std::vector<value_type>::iterator Insert(std::string_view cause, uint64_t n) {
    auto it = counts_.begin() + (Find(cause) - counts_.cbegin());
    if (it != counts_.end() && it->first == cause) return it;
    return counts_.emplace(it, std::string(cause), n);
  }
  std::vector<value_type> counts_;
};

/// The settings a tracker decision reads; a reload changes them (conflict.*).
struct TrackerSettings {
  /// How far back an invalidation looks for the culprit's refresh; nullopt: the token grace
  /// plus the victim's probe interval.
  std::optional<std::chrono::milliseconds> window;
  int daily_quota = 0;  // 0: no quota projection (ratio 0)
  /// keeper.interval: how long a new token in a kept environment waits for this instance's
  /// keeper to name it (another replica's keeper may have written it) before it counts as the
  /// environment's own refresh.
  std::chrono::milliseconds keeper_interval{60'000};
};

/// A decision of the tracker: what it saw, with the log line it asks for. No token in it
/// (fingerprints only).
struct TrackerEvent {
  enum class Kind { kRefreshed, kInvalidated, kExpired, kSuperseded, kOutlived };
  Kind kind = Kind::kRefreshed;
  std::string app_env;      // the environment it is about (the victim of an invalidation)
  std::string fingerprint;  // the new token (kRefreshed) or the dead one
  std::string cause_env;    // kInvalidated: the culprit, or "unknown" when none configured;
                            // kSuperseded: the environment whose fetch superseded the token
  telemetry::Level level = telemetry::Level::kWarn;
  std::string action;  // the log line's event.action: token_refreshed, token_invalidated, ...
  std::string message;
  telemetry::Fields fields;
};

/// The decision core of token tracking for one AppId: refresh detection, the quota projection
/// and the attribution of each token that dies while Redis still holds it (an expiry, or an
/// invalidation by the environment that refreshed the AppId most recently, or, when none did
/// yet, that refreshes within one probe interval of the slowest environment plus
/// kAttributionSlack after the failure), and the prediction that comes before: when one
/// environment fetches a new token, every other one holding an older token will lose it at the
/// grace's end (kSuperseded). A function of the observations and the times passed
/// in: no clock, no lock, no I/O; decisions come back as TrackerEvents for the caller to log.
/// Not thread-safe: the caller serializes every call.
class AppTracker {
 public:
  /// What the tracker knows of one environment; read for the metrics and the status page.
  struct TargetState {
    std::string app_env;
    std::chrono::milliseconds interval{30'000};

    std::string fingerprint;       // current, "" while no token is cached
    std::string last_fingerprint;  // last non-empty one, survives token_missing
    // Redis answered without a token at some point: the next token is one the app just
    // fetched (a refresh), unlike a token already cached when the daemon started.
    bool seen_without_token = false;
    MonotonicTime first_seen{};  // of `fingerprint`

    // The most recent refresh (fingerprint change) of this environment.
    std::optional<MonotonicTime> refreshed;
    SystemTime refreshed_wall{};
    std::string refreshed_to;

    // Another environment fetched a new token while this one still holds an older one: the
    // older dies when /cgi-bin/token's grace ends. Confirmed by this environment's next probe
    // (its key may hold the new token already: one cache read by both), then logged and
    // exported before the first 40001; it ends when the token changes, fails, or outlives it.
    struct Superseded {
      std::string by_env;          // the environment whose fetch superseded it
      std::string by_fingerprint;  // the newer token
      SystemTime refreshed_at{};   // when the newer token was seen
      SystemTime dies_at{};        // the grace's end, counted from then
      MonotonicTime dies_at_mono{};
      bool confirmed = false;  // this environment's key still held the older token afterwards
    };
    Boxed<Superseded> superseded;  // rarely set: on the heap (~100 bytes less per target)
    // When Redis drops the cached token by its TTL, as of the last probe (nullopt: no TTL, or
    // no token). A key that expires before the grace ends is refetched by its app in time:
    // nothing to predict (how stable_token rotation looks).
    std::optional<MonotonicTime> key_expires;
    // The current token is one wxcanary's keeper fetched (getStableAccessToken): it came from
    // the keeper, not from this environment's app, and no /cgi-bin/token fetch can kill it.
    bool kept = false;
    // The environment is kept (keep: stable): a token no keeper named yet may be one another
    // replica's keeper just wrote, so its refresh waits (`deferred`) for this one's keeper.
    bool keep = false;
    struct Deferred {
      std::string fingerprint;
      std::string previous;
      MonotonicTime at{};
      SystemTime wall{};
      MonotonicTime deadline{};
      int64_t ttl_seconds = 0;
      bool new_to_app = false;
    };
    std::vector<Deferred> deferred;  // oldest first
    // A token of this environment outlived a supersession: its tokens do not share
    // /cgi-bin/token's single valid token (getStableAccessToken is isolated from it), so other
    // environments' fetches are not predicted to kill them. Cleared by an invalidation.
    bool isolated = false;

    // What the log and counter need of a failing probe; no token, so it may wait in memory.
    struct Failure {
      Outcome outcome = Outcome::kOk;
      std::string fingerprint;
      int64_t ttl_seconds = 0;
      std::optional<int> errcode;
      std::string rid;
      int64_t seen_seconds = 0;  // how long this fingerprint had been seen at the failure
    };
    // A failure no configured environment explains yet: wxsim (like WeChat, for a third
    // fetch) kills a superseded token at once, so the victim's failing probe can come before
    // the probe that shows the culprit's refresh. Waits until `deadline` for that refresh.
    struct Pending {
      MonotonicTime failed_at;
      MonotonicTime deadline;
      std::chrono::nanoseconds window;  // looked back this far at the failure
      Failure failure;
    };
    Boxed<Pending> pending;  // rarely set: on the heap (~120 bytes less per target)

    // Exported values.
    std::string labels;  // app_env, app_id rendered
    uint64_t refreshes = 0;
    double age = 0;
    CauseCounts invalidations;  // by cause_env
    uint64_t expirations = 0;
    uint64_t supersessions = 0;  // predictions made for this environment's tokens

    // What its token errors left behind; a healthy environment has none, so it waits on the heap
    // until its first (~90 bytes less per target, issue 19).
    struct Incidents {
      std::string reported_fingerprint;  // last failing fingerprint already attributed (or pending)
      std::string last_cause_env;        // of the last invalidation reported
      std::optional<SystemTime> last_invalidation;
      std::optional<SystemTime> last_expiry;
    };
    Boxed<Incidents> incidents;
    /// The incidents, made on first use.
    Incidents& Incident() {
      if (!incidents) incidents = Incidents{};
      return *incidents;
    }
    /// incidents->reported_fingerprint, or "" while there are none.
    [[nodiscard]] const std::string& reported_fingerprint() const {
      static const std::string kNone;
      return incidents ? incidents->reported_fingerprint : kNone;
    }
    [[nodiscard]] const std::string& last_cause_env() const {
      static const std::string kNone;
      return incidents ? incidents->last_cause_env : kNone;
    }
    [[nodiscard]] std::optional<SystemTime> last_invalidation() const {
      return incidents ? incidents->last_invalidation : std::nullopt;
    }
    [[nodiscard]] std::optional<SystemTime> last_expiry() const {
      return incidents ? incidents->last_expiry : std::nullopt;
    }
  };

  /// The environment that refreshed, when and to which fingerprint.
  struct Refresh {
    std::string app_env;
    SystemTime at;
    std::string fingerprint;
  };

  AppTracker(std::string app_id, MonotonicTime tracked_since);

  const std::string& app_id() const { return app_id_; }
  /// Adds app_env, or updates its interval and whether it is kept, keeping its history.
  void AddTarget(const std::string& app_env, std::chrono::milliseconds interval, bool keep = false);
  void DropTarget(const std::string& app_env);
  bool HasTarget(const std::string& app_env) const { return targets_.count(app_env) != 0; }
  /// Exports every possible cause at 0 from the start, so increase() sees the first one.
  void EnsureCauseSeries();

  /// One probe result of app_env (a known target) at `now` / `wall`. Appends its decisions
  /// (a refresh, an expiry, an invalidation, pending ones it settles) to *events.
  void Observe(const std::string& app_env, const ProbeResult& result, MonotonicTime now,
               SystemTime wall, const TrackerSettings& settings, std::vector<TrackerEvent>* events);
  /// `fingerprint` is a stable token wxcanary's keeper fetched (and may write into any kept
  /// environment's key): an environment changing to it did not refresh (no count, no quota, no
  /// log, no supersession), and holding it is safe from other environments' fetches.
  void KeeperToken(const std::string& fingerprint, MonotonicTime now);
  /// Settles the pending invalidations whose culprit showed or whose wait is over.
  void ResolveDue(MonotonicTime now, SystemTime wall, std::vector<TrackerEvent>* events);
  /// Recomputes distinct tokens and the quota projection at `now`.
  void UpdateGauges(MonotonicTime now, const TrackerSettings& settings);

  /// The most recent refresh within `window` of now by an environment other than
  /// `except_env` when any did, else by except_env itself; a refresh *to*
  /// `exclude_fingerprint` (by another environment) does not count.
  std::optional<Refresh> LastRefresh(const std::string& except_env,
                                     const std::string& exclude_fingerprint, MonotonicTime now,
                                     std::chrono::nanoseconds window) const;

  /// Invalidations waiting for a culprit.
  int pending() const { return pending_; }
  const std::map<std::string, TargetState>& targets() const { return targets_; }
  const std::string& labels() const { return labels_; }  // app_id rendered
  double distinct() const { return distinct_; }
  uint64_t refreshes() const { return refreshes_; }
  double projected() const { return projected_; }

 private:
  void Attribute(TargetState& victim, const ProbeResult& result, MonotonicTime now, SystemTime wall,
                 const TrackerSettings& settings, std::vector<TrackerEvent>* events);
  // Settles the victim's pending invalidation if a culprit showed up, the deadline passed or
  // `force`.
  void ResolvePending(TargetState& victim, MonotonicTime now, SystemTime wall, bool force,
                      std::vector<TrackerEvent>* events);
  // `refresher` just fetched a new token: every other environment still holding an older,
  // unfailed one (and not isolated) may lose it when the grace ends; its next probe tells.
  void Supersede(const TargetState& refresher, const std::string& fingerprint, MonotonicTime now,
                 SystemTime wall);
  // t's app fetched the token `d` names: counts it, logs it, and predicts the older tokens'
  // deaths.
  void Refreshed(TargetState& t, const TargetState::Deferred& d, std::vector<TrackerEvent>* events);
  // t's probe after a supersession: still the older token, in a key that outlives the grace,
  // the prediction stands (kSuperseded); otherwise it is dropped.
  void ConfirmSuperseded(TargetState& t, const ProbeResult& result, MonotonicTime now,
                         std::vector<TrackerEvent>* events);
  // The prediction for `t` did not come true: its token is still good past the grace's end.
  void Outlived(TargetState& t, SystemTime wall, std::vector<TrackerEvent>* events);
  TrackerEvent Expired(TargetState& victim, const ProbeResult& result, const std::string& evidence,
                       SystemTime wall);
  TrackerEvent Invalidated(TargetState& victim, const TargetState::Failure& failure,
                           const std::optional<Refresh>& cause,
                           std::chrono::nanoseconds looked_back, std::chrono::nanoseconds waited,
                           SystemTime wall);

  std::string app_id_;
  MonotonicTime tracked_since_;
  std::map<std::string, TargetState> targets_;  // by app_env

  // Distinct new fingerprints, oldest first. A vector: an empty std::deque still allocates
  // ~580 bytes, once per AppId (issue 19).
  std::vector<MonotonicTime> quota_events_;
  std::unordered_map<std::string, MonotonicTime> seen_;  // fingerprint -> first seen in app
  std::unordered_map<std::string, MonotonicTime> kept_;  // keeper's fingerprint -> told at
  int pending_ = 0;

  std::string labels_;
  double distinct_ = 0;
  uint64_t refreshes_ = 0;
  double projected_ = 0;
};

}  // namespace wxcanary::tracking
