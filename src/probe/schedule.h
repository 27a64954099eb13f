#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

#include "common/clock.h"
#include "probe/result_sink.h"

namespace wxcanary::probe {

/// When each target is next due. A target's first run lands at a fixed phase inside its interval
/// derived from a hash of (app_id, app_env), so targets spread evenly, a reload does not bunch
/// them up, and the same target keeps its phase across restarts (Prometheus spreads scrapes
/// the same way). Runs are anchored to the schedule, not to when the last one finished, so
/// they do not drift. Pure and single-threaded: the Runner drives it with its clock.
class Schedule {
 public:
  struct Due {
    size_t target;            // index into the targets given to Reset
    MonotonicTime scheduled;  // when it should have started
  };

  /// Replaces the target set; first runs fall in (now, now + interval].
  void Reset(const TargetList& targets, MonotonicTime now);

  /// Every run due at or before `now`, earliest first; each is rescheduled one interval later.
  /// A target more than one interval behind (e.g. the process was stopped) skips the missed
  /// runs: only one run is returned and `skipped` counts the rest.
  std::vector<Due> PopDue(MonotonicTime now, uint64_t* skipped = nullptr);

  /// The earliest pending run, if any.
  [[nodiscard]] std::optional<MonotonicTime> NextDue() const;

  [[nodiscard]] size_t size() const { return intervals_.size(); }

 private:
  struct Entry {
    MonotonicTime at;
    size_t target;
    bool operator>(const Entry& o) const { return at > o.at || (at == o.at && target > o.target); }
  };
  std::vector<std::chrono::nanoseconds> intervals_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue_;
};

}  // namespace wxcanary::probe
