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
  SimClock(Clock& base, double time_scale);

  SystemTime SystemNow() override;
  MonotonicTime MonotonicNow() override;
  /// Waits on the base clock for the sim time left, scaled, in slices of at most 50 ms of base
  /// time so that an Advance() is seen soon.
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 MonotonicTime deadline) override;

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
