#include "sim/sim_clock.h"

#include <algorithm>

namespace wxcanary::sim {

SimClock::SimClock(Clock& base, double time_scale)
    : base_(base),
      time_scale_(time_scale > 0 ? time_scale : 1.0),
      start_system_(base.SystemNow()),
      start_monotonic_(base.MonotonicNow()) {}

std::chrono::nanoseconds SimClock::Elapsed() {
  // Scaled from the base's monotonic clock so a wall-clock step cannot move sim time backwards.
  auto real = base_.MonotonicNow() - start_monotonic_;
  auto scaled = std::chrono::nanoseconds{static_cast<int64_t>(
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(real).count()) *
      time_scale_)};
  std::lock_guard lock(mu_);
  return scaled + offset_;
}

SystemTime SimClock::SystemNow() {
  return start_system_ + std::chrono::duration_cast<SystemTime::duration>(Elapsed());
}

MonotonicTime SimClock::MonotonicNow() {
  return start_monotonic_ + std::chrono::duration_cast<MonotonicTime::duration>(Elapsed());
}

void SimClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         MonotonicTime deadline) {
  const auto left = deadline - MonotonicNow();
  if (left.count() <= 0) return;
  const auto base_left = std::chrono::nanoseconds{static_cast<int64_t>(
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(left).count()) /
      time_scale_)};
  base_.WaitUntil(cv, lock,
                  base_.MonotonicNow() +
                      std::min<std::chrono::nanoseconds>(base_left, std::chrono::milliseconds{50}));
}

void SimClock::Advance(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return;
  std::lock_guard lock(mu_);
  offset_ += d;
}

std::chrono::nanoseconds SimClock::offset() {
  std::lock_guard lock(mu_);
  return offset_;
}

}  // namespace wxcanary::sim
