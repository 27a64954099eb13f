#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "probe/result.h"
#include "telemetry/exposition.h"
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

/// Follows the token fingerprint of every (app_id, app_env), counts refreshes, projects the
/// /cgi-bin/token quota burn per AppId and diagnoses each token that dies while Redis still
/// holds it: expired (42001, or 40014 once the token is past expires_in by its age or the expiry
/// stored with it) is the app's cache outliving the token, counted in
/// wxcanary_token_expirations_total and logged as token_expired; any other death is an
/// invalidation attributed to the environment that most recently refreshed the shared AppId
/// (or, when none did yet, that refreshes within one probe interval of the victim plus
/// kAttributionSlack after the failure). Exports wxcanary_token_refreshes_total,
/// wxcanary_token_age_seconds, wxcanary_app_distinct_tokens, wxcanary_app_token_refreshes_total,
/// wxcanary_app_token_quota_projected_ratio, wxcanary_token_invalidations_total and
/// wxcanary_token_expirations_total.
/// Its series are written from its own state at scrape time (no per-series label maps).
/// Thread-safe: Record() may run concurrently for any targets; SetTargets(), Apply() and scrapes
/// may run any time.
class TokenTracker final : public ResultSink, private telemetry::TextCollectable {
 public:
  /// `exposition`, `logger` and `clock` must outlive the tracker.
  TokenTracker(telemetry::Exposition& exposition, telemetry::Logger& logger, Clock& clock,
               const config::Conflict& conflict);
  ~TokenTracker() override;
  TokenTracker(const TokenTracker&) = delete;
  TokenTracker& operator=(const TokenTracker&) = delete;

  void SetTargets(const std::vector<Target>& targets) override;
  void Record(const Target& target, const ProbeResult& result) override;

  /// Takes a reloaded config's conflict.window and conflict.daily_quota for what is recorded
  /// from now on (the targets come through SetTargets).
  void Apply(const config::Config& config);

  /// The environment of `app_id` that refreshed most recently within `window` of now, other
  /// than `except_env` when any other did; nullopt when none. For the healer and tests.
  struct Refresh {
    std::string app_env;
    SystemTime at;
    std::string fingerprint;
  };
  std::optional<Refresh> LastRefresh(const std::string& app_id, const std::string& except_env,
                                     std::chrono::milliseconds window) const;

  /// App ids currently tracked (from SetTargets or seen in Record), sorted.
  std::vector<std::string> AppIds() const;

  /// What the tracker knows of one target, for the status page (fingerprints only).
  struct TargetSnapshot {
    std::string app_id;
    std::string app_env;
    std::string fingerprint;       // current, "" while no token is cached
    double token_age_seconds = 0;  // as wxcanary_token_age_seconds
    int distinct_tokens = 0;       // of the whole AppId, as wxcanary_app_distinct_tokens
    uint64_t refreshes = 0;
    uint64_t invalidations = 0;    // over all causes
    std::string last_cause_env;    // of the last invalidation ("unknown": none configured)
    std::optional<SystemTime> last_invalidation;
    bool attribution_pending = false;  // a failure waits for a culprit's refresh to show
    uint64_t expirations = 0;          // tokens that expired in the cache
    std::optional<SystemTime> last_expiry;
  };
  /// Every tracked target, by (app_id, app_env). Thread-safe; O(targets).
  std::vector<TargetSnapshot> Snapshot() const;

 private:
  struct TargetState;
  struct AppState;
  struct Failure;

  void AppendText(telemetry::TextWriter& out) const override;
  void SetConflict(const config::Conflict& conflict);
  AppState& AppFor(const std::string& app_id);  // caller holds mu_ exclusively
  void AddTarget(AppState& app, const Target& target);
  void DropTarget(AppState& app, const std::string& app_env);
  void EnsureCauseSeries(AppState& app);
  void RecordLocked(const Target& target, const ProbeResult& result);
  void UpdateAppGauges(AppState& app, MonotonicTime now);
  void Attribute(AppState& app, TargetState& victim, const ProbeResult& result,
                 MonotonicTime now);
  // Settles the victim's pending invalidation if a culprit showed up, the deadline passed or
  // `force`; caller holds app.mu.
  void ResolvePending(AppState& app, TargetState& victim, MonotonicTime now, bool force);
  void ResolvePendingOfApp(AppState& app, MonotonicTime now);
  // Resolves due items of every app but `skip_app`; takes mu_ shared and one app lock at a time.
  void SweepPending(const std::string& skip_app);
  void ReportExpiry(AppState& app, TargetState& victim, const ProbeResult& result,
                    const std::string& evidence);
  void Report(AppState& app, TargetState& victim, const Failure& failure,
              const std::optional<Refresh>& cause, std::chrono::nanoseconds looked_back,
              std::chrono::nanoseconds waited);
  std::optional<Refresh> LastRefreshLocked(const AppState& app, const std::string& except_env,
                                           const std::string& exclude_fingerprint,
                                           MonotonicTime now,
                                           std::chrono::nanoseconds window) const;

  telemetry::Exposition& exposition_;
  telemetry::Logger& logger_;
  Clock& clock_;
  // conflict.window in ms (-1: unset) and conflict.daily_quota; a reload changes them.
  std::atomic<int64_t> window_ms_{-1};
  std::atomic<int> daily_quota_{0};

  // mu_ guards the shape of apps_ (shared for Record, exclusive for SetTargets); each
  // AppState has its own mutex for its contents, so targets of different apps never contend.
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<AppState>> apps_;
  // Invalidations waiting for a culprit, over all apps; lets Record() skip the sweep when 0.
  std::atomic<int> pending_{0};
};

}  // namespace wxcanary::tracking
