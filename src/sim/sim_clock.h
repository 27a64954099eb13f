#pragma once

#include <chrono>
#include <mutex>

#include "common/clock.h"

namespace wxcanary::sim {

/// The simulator's clock: base time * time_scale + an offset that only grows (Advance), so a
/// test can cross a 300 s grace or a 7200 s lifetime in milliseconds. Thread-safe.
class SimClock final : public Clock {
 public:
  /// Starts at base.SystemNow(); `base` must outlive this clock. time_scale must be > 0.
  explicit SimClock(Clock& base = RealClock::Instance(), double time_scale = 1.0);

  SystemTime SystemNow() override;
  MonotonicTime MonotonicNow() override;

  /// Moves sim time forward by d (negative durations are ignored: sim time never goes back).
  void Advance(std::chrono::nanoseconds d);
  [[nodiscard]] double time_scale() const { return time_scale_; }
  /// Total of all Advance() calls.
  std::chrono::nanoseconds offset();

 private:
  std::chrono::nanoseconds Elapsed();

  Clock& base_;
  const double time_scale_;
  const SystemTime start_system_;
  const MonotonicTime start_monotonic_;
  std::mutex mu_;
  std::chrono::nanoseconds offset_{0};
};

}  // namespace wxcanary::sim
