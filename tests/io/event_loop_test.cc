#include "io/event_loop.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <thread>
#include <vector>

namespace wxcanary::io {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

TEST(EventLoop, timers_run_in_time_order_once_and_a_cancelled_one_never) {
  EventLoop loop;
  std::vector<int> ran;
  loop.After(30ms, [&] { ran.push_back(3); });
  loop.After(10ms, [&] { ran.push_back(1); });
  const auto cancelled = loop.After(20ms, [&] { ran.push_back(2); });
  loop.Cancel(cancelled);
  loop.Cancel(cancelled);  // spent ids are ignored
  const auto until = Steady::now() + 2s;
  while (ran.size() < 2 && Steady::now() < until) loop.RunOnce(100ms);
  loop.RunOnce(50ms);
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
  EXPECT_EQ(loop.timer_count(), 0u);
}

TEST(EventLoop, a_rescheduled_timer_runs_once_at_its_new_time_and_a_spent_one_is_refused) {
  EventLoop loop;
  std::vector<int> ran;
  const auto start = Steady::now();
  Steady::time_point moved_ran{};
  const auto moved = loop.After(10ms, [&] {
    ran.push_back(1);
    moved_ran = Steady::now();
  });
  loop.After(40ms, [&] { ran.push_back(2); });
  ASSERT_TRUE(loop.Reschedule(moved, start + 80ms));  // later: now after the second
  const auto until = Steady::now() + 2s;
  while (ran.size() < 2 && Steady::now() < until) loop.RunOnce(100ms);
  EXPECT_EQ(ran, (std::vector<int>{2, 1}));
  EXPECT_GE(moved_ran - start, 80ms);
  EXPECT_EQ(loop.timer_count(), 0u);
  EXPECT_FALSE(loop.Reschedule(moved, Steady::now()));  // spent
  const auto cancelled = loop.After(1h, [&] { ran.push_back(3); });
  loop.Cancel(cancelled);
  EXPECT_FALSE(loop.Reschedule(cancelled, Steady::now()));
  // Earlier: a timer an hour away, moved to now, runs on the next turn.
  loop.Reschedule(loop.After(1h, [&] { ran.push_back(4); }), Steady::now());
  loop.RunOnce(1s);
  EXPECT_EQ(ran, (std::vector<int>{2, 1, 4}));
  EXPECT_EQ(loop.timer_count(), 0u);
}

TEST(EventLoop, a_timer_does_not_run_early) {
  EventLoop loop;
  const auto start = Steady::now();
  Steady::time_point ran{};
  loop.After(50ms, [&] { ran = Steady::now(); });
  while (ran == Steady::time_point{}) loop.RunOnce(1s);
  EXPECT_GE(ran - start, 50ms);
  EXPECT_LT(ran - start, 1s);
}

TEST(EventLoop, post_from_another_thread_wakes_a_long_wait) {
  EventLoop loop;
  bool ran = false;
  std::thread other([&] {
    std::this_thread::sleep_for(50ms);
    loop.Post([&] { ran = true; });
  });
  const auto start = Steady::now();
  while (!ran && Steady::now() - start < 5s) loop.RunOnce(10s);
  other.join();
  EXPECT_TRUE(ran);
  EXPECT_LT(Steady::now() - start, 2s);  // not the 10 s wait
}

TEST(EventLoop, a_watched_descriptor_calls_back_when_ready_and_not_after_unwatch) {
  EventLoop loop;
  std::array<int, 2> fds{};
  ASSERT_EQ(pipe(fds.data()), 0);
  int calls = 0;
  ASSERT_TRUE(loop.Watch(fds[0], EPOLLIN, [&](uint32_t events) {
    EXPECT_NE(events & EPOLLIN, 0u);
    char c = 0;
    EXPECT_EQ(read(fds[0], &c, 1), 1);
    ++calls;
  }));
  loop.RunOnce(10ms);
  EXPECT_EQ(calls, 0);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  loop.RunOnce(1s);
  EXPECT_EQ(calls, 1);
  // Asking for nothing keeps the registration quiet.
  ASSERT_TRUE(loop.Modify(fds[0], 0));
  ASSERT_EQ(write(fds[1], "y", 1), 1);
  loop.RunOnce(20ms);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(loop.Modify(fds[0], EPOLLIN));
  loop.RunOnce(1s);
  EXPECT_EQ(calls, 2);
  loop.Unwatch(fds[0]);
  ASSERT_EQ(write(fds[1], "z", 1), 1);
  loop.RunOnce(20ms);
  EXPECT_EQ(calls, 2);
  close(fds[0]);
  close(fds[1]);
}

TEST(EventLoop, a_callback_that_unwatches_another_ready_descriptor_stops_its_callback) {
  EventLoop loop;
  std::array<int, 2> a{}, b{};
  ASSERT_EQ(pipe(a.data()), 0);
  ASSERT_EQ(pipe(b.data()), 0);
  int calls = 0;
  // Whichever runs first unwatches the other: only one of them may run in this turn.
  loop.Watch(a[0], EPOLLIN, [&](uint32_t) {
    ++calls;
    loop.Unwatch(b[0]);
  });
  loop.Watch(b[0], EPOLLIN, [&](uint32_t) {
    ++calls;
    loop.Unwatch(a[0]);
  });
  ASSERT_EQ(write(a[1], "x", 1), 1);
  ASSERT_EQ(write(b[1], "x", 1), 1);
  std::this_thread::sleep_for(10ms);
  loop.RunOnce(1s);
  EXPECT_EQ(calls, 1);
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

}  // namespace
}  // namespace wxcanary::io
