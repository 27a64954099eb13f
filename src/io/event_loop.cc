#include "io/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>

namespace wxcanary::io {
namespace {

constexpr int kMaxEvents = 256;

uint64_t Pack(int fd, uint32_t generation) {
  return (static_cast<uint64_t>(generation) << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

EventLoop::EventLoop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int err = errno;
    close(epoll_fd_);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Pack(wake_fd_, 0);
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

EventLoop::~EventLoop() {
  close(wake_fd_);
  close(epoll_fd_);
}

bool EventLoop::Watch(int fd, uint32_t events, FdCallback callback) {
  auto it = watchers_.find(fd);
  epoll_event ev{};
  ev.events = events;
  // A new generation each time a descriptor is added: an event already fetched for an earlier
  // watch of the same number (closed and reused within one turn) finds no match and is dropped.
  uint32_t generation = it == watchers_.end() ? ++generation_ : it->second.generation;
  ev.data.u64 = Pack(fd, generation);
  int op = it == watchers_.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epoll_fd_, op, fd, &ev) != 0) {
    // A number we still hold a watch for was closed behind it (closing leaves the epoll set):
    // this is a new descriptor. Or one we never saw is in the set already. Either way, retry as
    // the other operation.
    if (errno != ENOENT && errno != EEXIST) return false;
    op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (op == EPOLL_CTL_ADD) generation = ++generation_;
    ev.data.u64 = Pack(fd, generation);
    if (epoll_ctl(epoll_fd_, op, fd, &ev) != 0) return false;
  }
  watchers_[fd] = Watcher{generation, std::move(callback)};
  return true;
}

bool EventLoop::Modify(int fd, uint32_t events) {
  auto it = watchers_.find(fd);
  if (it == watchers_.end()) return false;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = Pack(fd, it->second.generation);
  return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::Unwatch(int fd) {
  if (watchers_.erase(fd) == 0) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::At(Steady::time_point at, Callback callback) {
  const TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(at, id), std::move(callback));
  timer_at_.emplace(id, at);
  return id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timer_at_.find(id);
  if (it == timer_at_.end()) return;
  timers_.erase({it->second, id});
  timer_at_.erase(it);
}

bool EventLoop::Reschedule(TimerId id, Steady::time_point at) {
  auto it = timer_at_.find(id);
  if (it == timer_at_.end()) return false;
  auto node = timers_.extract({it->second, id});
  node.key().first = at;
  timers_.insert(std::move(node));
  it->second = at;
  return true;
}

void EventLoop::Post(Callback callback) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(callback));
  }
  Wake();
}

void EventLoop::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop wakes anyway.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

void EventLoop::RunOnce(std::chrono::nanoseconds max_wait) {
  auto wait = max_wait;
  if (!timers_.empty()) wait = std::min(wait, timers_.begin()->first.first - Steady::now());
  {
    std::lock_guard lock(posted_mu_);
    if (!posted_.empty()) wait = std::chrono::nanoseconds{0};
  }
  wait = std::max(wait, std::chrono::nanoseconds{0});
  std::array<epoll_event, kMaxEvents> events{};
  // Nanoseconds (epoll_pwait2, Linux 5.11): epoll_wait's milliseconds would start a probe due
  // in 0.2 ms up to a millisecond late. Without it: epoll_wait, rounded up.
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(wait.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(wait.count() % 1'000'000'000);
  int n = pwait2_ ? epoll_pwait2(epoll_fd_, events.data(), kMaxEvents, &ts, nullptr) : -1;
  // Any refusal but an interrupted wait (ENOSYS on an old kernel, EPERM from a seccomp filter
  // that predates the call, as systemd's @system-service list of some versions and container
  // runtimes' default profiles do) means epoll_wait from now on, not a loop that never reads.
  if (pwait2_ && n < 0 && errno != EINTR) pwait2_ = false;
  if (!pwait2_) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait);
    n = epoll_wait(epoll_fd_, events.data(), kMaxEvents, static_cast<int>(ms.count()));
  }
  if (n < 0) n = 0;  // EINTR: the caller's next turn waits again
  for (int i = 0; i < n; ++i) {
    const int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
    const auto generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
    if (fd == wake_fd_) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof count);
      continue;
    }
    auto it = watchers_.find(fd);
    if (it == watchers_.end() || it->second.generation != generation) continue;
    // A copy: the callback may unwatch (or rewatch) its own descriptor.
    FdCallback callback = it->second.callback;
    callback(events[i].events);
  }
  const auto now = Steady::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_at_.erase(node.key().second);
    node.mapped()();
  }
  {
    std::lock_guard lock(posted_mu_);
    running_.swap(posted_);
  }
  for (auto& callback : running_) callback();
  running_.clear();
}

}  // namespace wxcanary::io
