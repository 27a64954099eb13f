#include "probe/schedule.h"

#include <functional>
#include <string_view>

#include "common/hash.h"

namespace wxcanary::probe {
namespace {

// FNV-1a of both names (a separator byte between, so ("ab","c") != ("a","bc")).
uint64_t StableHash(std::string_view a, std::string_view b) {
  uint64_t h = Fnv1a(b, Fnv1a("\xff", Fnv1a(a)));
  // Finalizer (splitmix64) so nearby names land far apart.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

// Offset of the first run within the interval, in [0, interval).
std::chrono::nanoseconds Phase(const Target& target, std::chrono::nanoseconds interval) {
  if (interval.count() <= 0) return std::chrono::nanoseconds{0};
  auto h = StableHash(target.app_id, target.app_env);
  return std::chrono::nanoseconds{
      static_cast<int64_t>(h % static_cast<uint64_t>(interval.count()))};
}

}  // namespace

void Schedule::Reset(const TargetList& targets, MonotonicTime now) {
  intervals_.clear();
  queue_ = {};
  intervals_.reserve(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(targets[i].env.interval);
    if (interval.count() <= 0) interval = std::chrono::seconds{1};
    intervals_.push_back(interval);
    // Align the phase to absolute monotonic time so that a reload keeps each target's slot.
    auto since_epoch = now.time_since_epoch();
    auto base = since_epoch - (since_epoch % interval);
    auto at = MonotonicTime{base + Phase(targets[i], interval)};
    if (at <= now) at += interval;
    queue_.push({at, i});
  }
}

std::vector<Schedule::Due> Schedule::PopDue(MonotonicTime now, uint64_t* skipped) {
  std::vector<Due> due;
  while (!queue_.empty() && queue_.top().at <= now) {
    Entry e = queue_.top();
    queue_.pop();
    due.push_back({e.target, e.at});
    auto interval = intervals_[e.target];
    auto next = e.at + interval;
    if (next <= now) {
      auto behind = (now - e.at) / interval;  // whole intervals missed
      if (skipped) *skipped += static_cast<uint64_t>(behind);
      next = e.at + interval * (behind + 1);
    }
    queue_.push({next, e.target});
  }
  return due;
}

std::optional<MonotonicTime> Schedule::NextDue() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.top().at;
}

}  // namespace wxcanary::probe
