#pragma once

#include <chrono>
#include <mutex>

namespace wxcanary {

using SystemTime = std::chrono::system_clock::time_point;
using MonotonicTime = std::chrono::steady_clock::time_point;

/// Source of time for everything that schedules or timestamps. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time, for log timestamps and exported *_timestamp_seconds.
  virtual SystemTime SystemNow() = 0;
  /// Never goes backwards; for intervals, deadlines and durations.
  virtual MonotonicTime MonotonicNow() = 0;
};

/// The real clocks. Thread-safe.
class RealClock final : public Clock {
 public:
  SystemTime SystemNow() override { return std::chrono::system_clock::now(); }
  MonotonicTime MonotonicNow() override { return std::chrono::steady_clock::now(); }
  static RealClock& Instance() {
    static RealClock clock;
    return clock;
  }
};

/// A clock that moves only when told to; tests drive it instead of sleeping. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(SystemTime start = SystemTime{std::chrono::seconds{1'700'000'000}})
      : system_(start) {}
  SystemTime SystemNow() override {
    std::lock_guard lock(mu_);
    return system_;
  }
  MonotonicTime MonotonicNow() override {
    std::lock_guard lock(mu_);
    return monotonic_;
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    system_ += std::chrono::duration_cast<SystemTime::duration>(d);
    monotonic_ += std::chrono::duration_cast<MonotonicTime::duration>(d);
  }

 private:
  std::mutex mu_;
  SystemTime system_;
  MonotonicTime monotonic_{};
};

}  // namespace wxcanary
