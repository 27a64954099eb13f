#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace wxcanary {

using SystemTime = std::chrono::system_clock::time_point;
using MonotonicTime = std::chrono::steady_clock::time_point;

/// Source of time for everything that schedules, waits or timestamps (Envoy's TimeSource and
/// TimeSystem in one): a part that waits for a deadline waits through its clock, so a test's
/// FakeClock drives every wait. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time, for log timestamps and exported *_timestamp_seconds.
  virtual SystemTime SystemNow() = 0;
  /// Never goes backwards; for intervals, deadlines and durations.
  virtual MonotonicTime MonotonicNow() = 0;
  /// Waits on `cv` (`lock` held, as for cv.wait) until notified or MonotonicNow() reaches
  /// `deadline`; may return early, like any condition-variable wait, so callers re-check their
  /// predicate. Returns with `lock` held.
  virtual void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         MonotonicTime deadline) = 0;
  /// For a waiter that is not a condition variable (an event loop waiting in epoll_wait, which
  /// waits in real time): `wake` is called once, from any thread, when the clock reaches
  /// `deadline` sooner than the real time the caller waits would (a FakeClock's Advance).
  /// Replaces the earlier registration of the same `key`. The real clocks need none.
  virtual void WakeAt(const void* key, MonotonicTime deadline, std::function<void()> wake) {
    (void)key;
    (void)deadline;
    (void)wake;
  }
  /// Drops `key`'s registration, if any.
  virtual void CancelWake(const void* key) { (void)key; }
};

/// The real clocks. Thread-safe.
class RealClock final : public Clock {
 public:
  SystemTime SystemNow() override { return std::chrono::system_clock::now(); }
  MonotonicTime MonotonicNow() override { return std::chrono::steady_clock::now(); }
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 MonotonicTime deadline) override {
    cv.wait_until(lock, deadline);
  }
  /// The process' one real clock; main() hands it to whatever needs a clock.
  static RealClock& Instance() {
    static RealClock clock;
    return clock;
  }
};

/// A clock that moves only when told to; tests drive it instead of sleeping. Advance() wakes
/// every waiter whose deadline it reaches. Thread-safe.
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
    std::list<Waiter*> due;
    std::vector<std::function<void()>> alarms;
    // Held from taking the due alarms until they have run: CancelWake waits for it, so no alarm
    // runs after its owner cancelled it.
    std::lock_guard alarm_lock(alarm_mu_);
    {
      std::lock_guard lock(mu_);
      system_ += std::chrono::duration_cast<SystemTime::duration>(d);
      monotonic_ += std::chrono::duration_cast<MonotonicTime::duration>(d);
      for (auto& w : waiters_)
        if (w.deadline <= monotonic_ && !w.woken) {
          w.woken = true;
          ++w.notifying;
          due.push_back(&w);
        }
      for (auto it = alarms_.begin(); it != alarms_.end();) {
        if (it->second.first > monotonic_) {
          ++it;
          continue;
        }
        alarms.push_back(std::move(it->second.second));
        it = alarms_.erase(it);
      }
    }
    for (auto& wake : alarms) wake();
    // The waiter's own mutex, taken without mu_: the notify cannot fall between its check of
    // the deadline and its wait, and the lock order stays (owner's mutex, then mu_).
    for (Waiter* w : due) {
      { std::lock_guard owner(*w->mu); }
      w->cv->notify_all();
      std::lock_guard lock(mu_);
      --w->notifying;
      done_.notify_all();
    }
  }
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 MonotonicTime deadline) override {
    std::list<Waiter>::iterator self;
    {
      std::lock_guard clock_lock(mu_);
      if (deadline <= monotonic_) return;
      self = waiters_.insert(waiters_.end(), Waiter{&cv, lock.mutex(), deadline});
    }
    cv.wait(lock);  // by the owner's notify, or Advance's
    // Unregistered with the owner's mutex released, so an Advance that is about to lock it to
    // notify is never waited for while holding it.
    lock.unlock();
    {
      std::unique_lock clock_lock(mu_);
      done_.wait(clock_lock, [&] { return self->notifying == 0; });
      waiters_.erase(self);
    }
    lock.lock();
  }
  void WakeAt(const void* key, MonotonicTime deadline, std::function<void()> wake) override {
    std::lock_guard lock(mu_);
    alarms_[key] = {deadline, std::move(wake)};
  }
  void CancelWake(const void* key) override {
    std::lock_guard alarm_lock(alarm_mu_);
    std::lock_guard lock(mu_);
    alarms_.erase(key);
  }
  /// How many threads are waiting on this clock now, on a condition variable or through
  /// WakeAt (tests wait for a part to be idle).
  size_t waiters() {
    std::lock_guard lock(mu_);
    return alarms_.size() +
           static_cast<size_t>(std::count_if(waiters_.begin(), waiters_.end(),
                                             [](const Waiter& w) { return !w.woken; }));
  }

 private:
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
    MonotonicTime deadline;
    bool woken = false;
    int notifying = 0;
  };
  std::mutex mu_;
  std::condition_variable done_;
  SystemTime system_;
  MonotonicTime monotonic_{};
  std::list<Waiter> waiters_;
  std::map<const void*, std::pair<MonotonicTime, std::function<void()>>> alarms_;
  std::mutex alarm_mu_;  // see Advance
};

}  // namespace wxcanary
