// daemon::Notifier in-process against a test-made NOTIFY_SOCKET: the exact datagrams systemd
// gets, and the watchdog interval it is asked for.
#include "daemon/notify.h"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

#include "systemd/notify_socket.h"

namespace wxcanary::daemon {
namespace {

using namespace std::chrono_literals;
using testing::NotifySocket;

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(v);
  }
  void TearDown() override { SetUp(); }
};

struct SendCase {
  const char* name;
  void (*send)(const Notifier&);
  const char* expected;  // the whole datagram
};
// Names the case in test output instead of a byte dump.
void PrintTo(const SendCase& c, std::ostream* os) { *os << c.name; }

class NotifierSendTest : public NotifierTest, public ::testing::WithParamInterface<SendCase> {};

TEST_P(NotifierSendTest, sends_exactly_the_expected_datagram) {
  NotifySocket sock;
  ::setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
  GetParam().send(Notifier{});
  std::string expected = GetParam().expected;
  ASSERT_TRUE(sock.WaitFor(expected.substr(0, expected.find('\n')), 0, 5s));
  auto ms = sock.Messages();
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].text, GetParam().expected);
  EXPECT_EQ(ms[0].pid, ::getpid());
}

INSTANTIATE_TEST_SUITE_P(
    Notifier, NotifierSendTest,
    ::testing::Values(SendCase{"ready", [](const Notifier& n) { n.Ready(); },
                               "READY=1\nSTATUS=probing"},
                      SendCase{"stopping", [](const Notifier& n) { n.Stopping(); }, "STOPPING=1"},
                      SendCase{"watchdog", [](const Notifier& n) { n.Watchdog(); }, "WATCHDOG=1"},
                      SendCase{"status", [](const Notifier& n) { n.Status("reloading config"); },
                               "STATUS=reloading config"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(NotifierTest, reloading_carries_the_current_monotonic_time_in_microseconds) {
  NotifySocket sock;
  ::setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
  auto usec = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
  };
  uint64_t before = usec();
  Notifier{}.Reloading();
  uint64_t after = usec();
  ASSERT_TRUE(sock.WaitFor("RELOADING=1", 0, 5s));
  auto m = sock.Messages().at(0);
  auto sent = m.Get("MONOTONIC_USEC");
  ASSERT_TRUE(sent) << m.text;
  EXPECT_GE(std::stoull(*sent), before);
  EXPECT_LE(std::stoull(*sent), after);
}

TEST_F(NotifierTest, every_call_is_a_no_op_without_notify_socket) {
  Notifier n;
  n.Ready();
  n.Reloading();
  n.Watchdog();
  n.Status("x");
  n.Stopping();
  EXPECT_FALSE(n.WatchdogInterval().has_value());
}

struct WatchdogCase {
  const char* name;
  const char* usec;  // WATCHDOG_USEC, nullptr = unset
  int pid;           // WATCHDOG_PID: 0 unset, 1 ours, 2 someone else's
  std::optional<std::chrono::microseconds> expected;
};
// Names the case in test output instead of a byte dump.
void PrintTo(const WatchdogCase& c, std::ostream* os) { *os << c.name; }

class WatchdogIntervalTest : public NotifierTest,
                             public ::testing::WithParamInterface<WatchdogCase> {};

TEST_P(WatchdogIntervalTest, is_what_systemd_asked_this_process_for) {
  const auto& c = GetParam();
  if (c.usec) ::setenv("WATCHDOG_USEC", c.usec, 1);
  if (c.pid)
    ::setenv("WATCHDOG_PID", std::to_string(c.pid == 1 ? ::getpid() : ::getppid()).c_str(), 1);
  EXPECT_EQ(Notifier{}.WatchdogInterval(), c.expected);
}

INSTANTIATE_TEST_SUITE_P(Notifier, WatchdogIntervalTest,
                         ::testing::Values(WatchdogCase{"unset", nullptr, 0, std::nullopt},
                                           WatchdogCase{"one_second", "1000000", 0,
                                                        std::chrono::microseconds{1'000'000}},
                                           WatchdogCase{"thirty_seconds_for_this_pid", "30000000",
                                                        1, std::chrono::microseconds{30'000'000}},
                                           WatchdogCase{"meant_for_another_pid", "30000000", 2,
                                                        std::nullopt},
                                           WatchdogCase{"zero", "0", 0, std::nullopt},
                                           WatchdogCase{"garbage", "soon", 0, std::nullopt}),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace wxcanary::daemon
