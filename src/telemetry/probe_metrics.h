#pragma once

#include <prometheus/labels.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/outcome.h"
#include "probe/result_sink.h"
#include "telemetry/exposition.h"

namespace prometheus {
class Gauge;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace wxcanary::telemetry {

/// The WeChat codes that get their own errcode label value; every other code is "other".
inline constexpr std::array<int, 15> kKnownErrcodes = {0,     -1,    40001, 40014, 42001,
                                                       41001, 45009, 45011, 87014, 40003,
                                                       61010, 47001, 43104, 44002, 40129};

/// The errcode label value for `code`: its decimal form when known, else "other". Pure.
std::string ErrcodeLabel(int code);

/// The per-target probe metrics (wxcanary_probes_total{outcome}, _probe_errcode_total{errcode},
/// _probe_duration_seconds, _probe_last_{success,run}_timestamp_seconds, _probe_interval_seconds,
/// _token_present, _token_ttl_seconds), labelled app_id, app_env and the environment's extra
/// labels. Each target's values live in one block of atomics with its label set rendered once,
/// written straight into the exposition at scrape time (no per-series label maps, no copies).
/// Series are created by SetTargets (every outcome at 0) and found by target index, so Record()
/// does no label lookups. Thread-safe: Record() and scrapes may run concurrently (Record() is
/// never concurrent for one target); SetTargets() waits for in-flight Record() calls.
class ProbeMetrics final : public ResultSink, private TextCollectable {
 public:
  ProbeMetrics(Exposition& exposition, Clock& clock);
  ~ProbeMetrics() override;
  ProbeMetrics(const ProbeMetrics&) = delete;
  ProbeMetrics& operator=(const ProbeMetrics&) = delete;

  void SetTargets(const TargetList& targets) override;
  void Record(const Target& target, const ProbeResult& result) override;

  /// The label set of a target's series (app_id, app_env, then extra labels). Pure.
  static prometheus::Labels LabelsFor(const Target& target);

  /// What the last probes of one target found, for the status page. No token: only its
  /// fingerprint, and errmsg/detail scrubbed as in the log.
  struct TargetSnapshot {
    std::string app_id;
    std::string app_env;
    uint64_t probes = 0;                  // of any outcome
    std::optional<Outcome> last_outcome;  // nullopt: not probed yet
    std::optional<int> last_errcode;
    std::string last_errmsg;  // WeChat's errmsg, rid removed
    std::string last_rid;
    std::string last_detail;   // curl / Redis / parse error of a failure
    bool token_known = false;  // Redis has answered once; the token fields below are from it
    bool token_present = false;
    std::string fingerprint;  // "" when no token is cached
    int64_t ttl_seconds = -2;
    std::optional<SystemTime> last_run;
    std::optional<SystemTime> last_success;
    std::optional<SystemTime> failing_since;  // first failure since the last ok (or ever)
  };
  /// Every current target's snapshot, in label order. Thread-safe; O(targets).
  std::vector<TargetSnapshot> Snapshot() const;

 private:
  struct Series;
  using SeriesMap = std::map<std::string, std::shared_ptr<Series>, std::less<>>;  // by labels

  void AppendText(TextWriter& out) const override;
  // Puts t's series (found in `by_labels`, else kept from `previous`, else new) at t.index.
  static void Place(const Target& t, const SeriesMap& previous,
                    std::vector<std::shared_ptr<Series>>& by_index, SeriesMap& by_labels);
  Series* Find(const Target& target) const;

  Exposition& exposition_;
  Clock& clock_;

  mutable std::shared_mutex mu_;  // shared: Record and scrapes; exclusive: target changes
  std::vector<std::shared_ptr<Series>> by_index_;
  SeriesMap by_labels_;
};

/// Daemon-wide gauges: wxcanary_build_info{version,revision} = 1,
/// wxcanary_config_last_reload_successful and _success_timestamp_seconds, wxcanary_redis_up{redis}.
/// Thread-safe.
class DaemonMetrics {
 public:
  DaemonMetrics(prometheus::Registry& registry, Clock& clock, std::string_view version,
                std::string_view revision);
  DaemonMetrics(const DaemonMetrics&) = delete;
  DaemonMetrics& operator=(const DaemonMetrics&) = delete;

  /// After a (re)load attempt: success sets the gauge to 1 and the timestamp to now; failure
  /// sets the gauge to 0 and keeps the timestamp of the last good load.
  void ConfigLoaded(bool success);
  /// Sets wxcanary_redis_up{redis=name} to 1 or 0, creating the series on first use.
  void SetRedisUp(std::string_view name, bool up);
  /// Drops the wxcanary_redis_up series of connections not in `names` (after a reload).
  void RetainRedis(const std::vector<std::string>& names);

 private:
  Clock& clock_;
  prometheus::Gauge& reload_ok_;
  prometheus::Gauge& reload_ts_;
  prometheus::Family<prometheus::Gauge>& redis_up_;
  std::mutex mu_;
  std::map<std::string, prometheus::Gauge*, std::less<>> redis_;
};

}  // namespace wxcanary::telemetry
