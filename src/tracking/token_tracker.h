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
#include "probe/result_sink.h"
#include "telemetry/exposition.h"
#include "telemetry/log.h"
#include "tracking/app_tracker.h"

namespace wxcanary::tracking {

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
/// The decisions are AppTracker's (one per AppId, pure); this class is their executor: it
/// serializes them per AppId and logs what they decided after releasing every lock, so a
/// slow log sink never holds up a scrape.
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

  void SetTargets(const TargetList& targets) override;
  void Record(const Target& target, const ProbeResult& result) override;

  /// The keeper fetched the stable token `fingerprint` for `app_id` (see AppTracker::KeeperToken).
  void KeeperToken(const std::string& app_id, const std::string& fingerprint);

  /// Takes a reloaded config's conflict.window and conflict.daily_quota for what is recorded
  /// from now on (the targets come through SetTargets).
  void Apply(const config::Config& config);

  /// What the tracker knows of one target, for the status page (fingerprints only).
  struct TargetSnapshot {
    std::string app_id;
    std::string app_env;
    std::string fingerprint;       // current, "" while no token is cached
    double token_age_seconds = 0;  // as wxcanary_token_age_seconds
    int distinct_tokens = 0;       // of the whole AppId, as wxcanary_app_distinct_tokens
    uint64_t refreshes = 0;
    uint64_t invalidations = 0;  // over all causes
    std::string last_cause_env;  // of the last invalidation ("unknown": none configured)
    std::optional<SystemTime> last_invalidation;
    bool attribution_pending = false;  // a failure waits for a culprit's refresh to show
    uint64_t expirations = 0;          // tokens that expired in the cache
    std::optional<SystemTime> last_expiry;
    std::string superseded_by;          // the env whose fetch dooms the token ("" when none)
    std::optional<SystemTime> dies_at;  // when it stops working (the grace's end)
  };
  /// Every tracked target, by (app_id, app_env). Thread-safe; O(targets).
  std::vector<TargetSnapshot> Snapshot() const;

 private:
  struct AppState;

  void AppendText(telemetry::TextWriter& out) const override;
  void SetConflict(const config::Conflict& conflict);
  TrackerSettings Settings() const;
  AppState& AppFor(const std::string& app_id);  // caller holds mu_ exclusively
  AppState* At(const Target& target) const;     // target's app or nullptr; caller holds mu_
  void RecordLocked(const Target& target, const ProbeResult& result,
                    std::vector<TrackerEvent>* events);
  // Settles due invalidations of every app but `skip_app`; takes mu_ shared and one app lock
  // at a time.
  void SweepPending(const std::string& skip_app, std::vector<TrackerEvent>* events);

  telemetry::Exposition& exposition_;
  telemetry::Logger& logger_;
  Clock& clock_;
  // conflict.window in ms (-1: unset) and conflict.daily_quota; a reload changes them.
  std::atomic<int64_t> window_ms_{-1};
  std::atomic<int> daily_quota_{0};
  std::atomic<int64_t> keeper_interval_ms_{60'000};  // keeper.interval

  // mu_ guards the shape of apps_ (shared for Record, exclusive for SetTargets); each
  // AppState has its own mutex for its AppTracker, so targets of different apps never contend.
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<AppState>> apps_;
  std::vector<AppState*> by_index_;  // apps_'s entries by Target::index, from SetTargets; mu_
  // Invalidations waiting for a culprit, over all apps; lets Record() skip the sweep when 0.
  std::atomic<int> pending_{0};
};

}  // namespace wxcanary::tracking
