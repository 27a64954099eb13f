#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wxcanary::io {

/// One thread's epoll loop: file descriptors' readiness, timers on the real steady clock (the
/// network's timeouts are real time, whatever clock schedules the probes), and work posted from
/// other threads. Watch/Modify/Unwatch/At/After/Cancel/Reschedule/RunOnce belong to the loop's
/// thread; Post and Wake may be called from any thread. Callbacks run on the loop's thread, one
/// at a time, and may watch, unwatch, add and cancel freely (a callback of a descriptor
/// unwatched earlier in the same turn does not run).
class EventLoop {
 public:
  using Callback = std::function<void()>;
  /// `events`: EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP as epoll reported them.
  using FdCallback = std::function<void(uint32_t events)>;
  using Steady = std::chrono::steady_clock;
  using TimerId = uint64_t;

  /// Throws std::system_error when the kernel refuses an epoll or eventfd descriptor.
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  /// Watches `fd` for `events` (EPOLLIN, EPOLLOUT or both), replacing an earlier watch of it;
  /// `events` 0 keeps the registration but asks for nothing. False (with errno) when epoll
  /// refuses the descriptor.
  bool Watch(int fd, uint32_t events, FdCallback callback);
  /// Changes what an existing watch waits for, keeping its callback.
  bool Modify(int fd, uint32_t events);
  /// Stops watching `fd` (before it is closed). Unknown descriptors are ignored.
  void Unwatch(int fd);

  /// Runs `callback` once, at `at` or on the first turn after it. Ids are never reused.
  TimerId At(Steady::time_point at, Callback callback);
  TimerId After(std::chrono::nanoseconds delay, Callback callback) {
    return At(Steady::now() + delay, std::move(callback));
  }
  /// Forgets a timer that has not run yet. Unknown or spent ids are ignored.
  void Cancel(TimerId id);
  /// Moves a timer that has not run yet to `at`, keeping its id and callback (no allocation:
  /// for a deadline that moves often, like curl's). False for unknown or spent ids.
  bool Reschedule(TimerId id, Steady::time_point at);
  [[nodiscard]] size_t timer_count() const { return timers_.size(); }

  /// Queues `callback` for the loop's thread and wakes it. Thread-safe.
  void Post(Callback callback);
  /// Makes the current or next RunOnce return from its wait. Thread-safe.
  void Wake();

  /// One turn: waits until a watched descriptor is ready, a timer is due, Wake() or Post(), or
  /// `max_wait` passed, then runs what is ready: descriptors, due timers, posted work.
  void RunOnce(std::chrono::nanoseconds max_wait);

 private:
  struct Watcher {
    uint32_t generation;
    FdCallback callback;
  };
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  uint32_t generation_ = 0;
  bool pwait2_ = true;  // false once the kernel said ENOSYS
  std::unordered_map<int, Watcher> watchers_;
  std::map<std::pair<Steady::time_point, TimerId>, Callback> timers_;
  std::unordered_map<TimerId, Steady::time_point> timer_at_;
  TimerId next_timer_ = 1;
  std::mutex posted_mu_;
  std::vector<Callback> posted_;   // guarded by posted_mu_
  std::vector<Callback> running_;  // the loop thread's copy of posted_, reused
};

}  // namespace wxcanary::io
