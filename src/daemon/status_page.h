#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/outcome.h"
#include "config/config.h"

namespace wxcanary {
namespace telemetry {
class ProbeMetrics;
}
namespace tracking {
class TokenTracker;
}
namespace heal {
class Healer;
}
namespace keeper {
class Keeper;
}
}  // namespace wxcanary

namespace wxcanary::daemon {

/// One row of the status page (`/`) and one element of `/api/v1/targets`: what the probe
/// metrics, the token tracker and the healer know of one target. No token or secret: only the
/// token's fingerprint, and errmsg/detail scrubbed as in the log.
struct TargetStatus {
  enum class State { kOk, kFailing, kNeverSucceeded };

  std::string app_id;
  std::string app_env;

  // Probes (telemetry::ProbeMetrics).
  uint64_t probes = 0;
  std::optional<Outcome> last_outcome;  // nullopt: not probed yet
  std::optional<int> errcode;
  std::string errmsg;  // rid removed
  std::string rid;
  std::string detail;        // curl / Redis / parse error of a failure
  bool token_known = false;  // Redis answered once: token_present and ttl_seconds mean something
  bool token_present = false;
  std::string fingerprint;
  int64_t ttl_seconds = -2;  // -1 no expiry, -2 no key
  std::optional<SystemTime> last_run;
  std::optional<SystemTime> last_success;
  std::optional<SystemTime> failing_since;

  // Conflicts (tracking::TokenTracker).
  double token_age_seconds = 0;
  int distinct_tokens = 0;  // of the AppId
  uint64_t invalidations = 0;
  std::string cause_env;  // of the last invalidation; "" when none
  std::optional<SystemTime> last_invalidation;
  bool attribution_pending = false;
  uint64_t expirations = 0;  // tokens that expired in the cache (not a conflict)
  std::optional<SystemTime> last_expiry;
  std::string superseded_by;          // the env whose fetch dooms the cached token ("": none)
  std::optional<SystemTime> dies_at;  // when the superseded token stops working

  // Self-heal (heal::Healer).
  config::HealMode heal_mode = config::HealMode::kOff;
  std::string heal_action;  // of the last heal that acted (done / error); "" when none yet
  std::string heal_result;
  std::optional<SystemTime> heal_at;
  std::string heal_skip;  // the last skipped heal's result (skipped_cooldown, ...); "" if none
  std::optional<SystemTime> heal_skip_at;
  // Keeper mode (keeper::Keeper).
  config::KeepMode keep = config::KeepMode::kOff;
  bool keep_owner = false;
  bool keep_dry_run = false;
  bool keeper_writer = false;      // this instance holds the AppId's lease
  std::string keeper_fingerprint;  // the stable token it keeps ("" none yet)
  std::optional<SystemTime> keeper_expires_at;
  std::string keeper_result;  // the last write decision on this key ("" none yet)
  std::optional<SystemTime> keeper_at;

  [[nodiscard]] State state() const;
  /// More than one live token for the AppId, or the current failure was attributed to an
  /// environment's refresh (cause_env known while failing).
  [[nodiscard]] bool in_conflict() const;
};

/// "ok", "failing", "never_succeeded".
std::string_view StateName(TargetStatus::State s);

/// Joins the snapshots by (app_id, app_env); the probe metrics decide which targets exist.
/// `keeper` may be null. Thread-safe (each source is).
std::vector<TargetStatus> CollectStatus(const telemetry::ProbeMetrics& metrics,
                                        const tracking::TokenTracker& tracker,
                                        const heal::Healer& healer,
                                        const keeper::Keeper* keeper = nullptr);

/// What the page was asked for: GET query parameters app_id, app_env (substring filters,
/// case-sensitive), page (1-based), refresh=off.
struct StatusQuery {
  std::string app_id;
  std::string app_env;
  size_t page = 1;
  bool refresh = true;

  /// Unknown parameters are ignored; a page that is not a positive number is page 1.
  static StatusQuery Parse(const std::multimap<std::string, std::string>& params);
};

/// Rows per page of the HTML page: at 10,000 targets the page stays a few hundred KB and
/// renders in milliseconds. The JSON API is not paginated.
inline constexpr size_t kStatusPageRows = 200;
/// Seconds between auto-refreshes of the page (unless refresh=off).
inline constexpr int kStatusRefreshSeconds = 10;

/// Failing first (longest failing first), then never succeeded, then ok; ties by app_id, app_env.
void SortForStatus(std::vector<TargetStatus>& targets);

/// The HTML status page: counts over all targets, the filter form, the rows that match the
/// filter on the requested page, every value HTML-escaped. Sorts `targets` itself. Pure.
std::string RenderStatusPage(std::vector<TargetStatus> targets, const StatusQuery& query,
                             SystemTime now);

/// The same data as JSON: {"generated_at", "counts": {targets, failing, in_conflict},
/// "matching", "targets": [...]} with every matching target, sorted as on the page. Pure.
std::string RenderStatusJson(std::vector<TargetStatus> targets, const StatusQuery& query,
                             SystemTime now);

}  // namespace wxcanary::daemon
