// The daemon under a stand-in for systemd: a NOTIFY_SOCKET made by the test. What systemd
// relies on for Type=notify, ExecReload and WatchdogSec, observed from outside the process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/silent_listener.h"
#include "support/wxsim.h"
#include "systemd/notify_socket.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kApp = "wx00000000000000a1";
constexpr const char* kSecret = "s3cr3t-for-tests";

// The --web.listen-address port of a running process, from its command line (the Daemon fixture
// picks it, and the notify hook runs before the fixture's constructor returns).
int ListenPort(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string arg, flag = "--web.listen-address=";
  int port = -1;
  while (std::getline(in, arg, '\0'))
    if (arg.rfind(flag, 0) == 0) port = std::stoi(arg.substr(arg.rfind(':') + 1));
  return port;
}

// A bare TCP connect: succeeds while the process is stopped as long as it listen()ed, because
// the kernel completes the handshake into the backlog.
bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The cast is what the sockets API asks for.
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

uint64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

std::string Dump(const std::vector<NotifySocket::Message>& ms) {
  std::string out;
  for (const auto& m : ms) {
    std::string t = m.text;
    for (char& c : t)
      if (c == '\n') c = ' ';
    out += "  [" + t + "]\n";
  }
  return out;
}

class NotifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new RedisServer();
    sim_ = new WxSim({"--app", std::string(kApp) + ":" + kSecret});
    std::string token = sim_->FetchToken(kApp, kSecret);
    redis_->Cli({"SET", std::string("ACCESS_TOKEN_CACHE:") + kApp, token, "EX", "7200"});
  }
  static void TearDownTestSuite() {
    delete sim_;
    delete redis_;
    sim_ = nullptr;
    redis_ = nullptr;
  }
  void SetUp() override {
    // Whatever runs the tests must not leak its own service-manager context into the daemon.
    for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS"})
      ::unsetenv(v);
  }

  static std::string Config(const std::string& interval = "500ms") {
    return ConfigYaml(sim_->base_url())
        .Default("interval", interval)
        .Default("probe", "api_domain_ip")
        .Redis("main", redis_->address(), {{"connect_timeout", "1s"}, {"read_timeout", "1s"}})
        .App(kApp)
        .Env("prod", "main");
  }

  static RedisServer* redis_;
  static WxSim* sim_;
};

RedisServer* NotifyTest::redis_ = nullptr;
WxSim* NotifyTest::sim_ = nullptr;

TEST_F(NotifyTest, ready_arrives_once_from_the_daemon_and_metrics_already_listen_when_it_does) {
  std::atomic<bool> seen{false}, listening{false};
  std::atomic<pid_t> sender{-1};
  // Freeze the daemon the moment READY=1 lands: if it had not listen()ed yet, nothing accepts.
  NotifySocket notify([&](const NotifySocket::Message& m) {
    if (!m.Has("READY=1") || seen.exchange(true)) return;
    sender = m.pid;
    ::kill(m.pid, SIGSTOP);
    int port = ListenPort(m.pid);
    listening = port > 0 && Accepts(port);
    ::kill(m.pid, SIGCONT);
  });
  Daemon d(Config(), {}, {notify.Env()});
  ASSERT_TRUE(notify.WaitFor("READY=1", 0, 10s)) << Dump(notify.Messages());
  EXPECT_EQ(sender.load(), d.process().pid());
  EXPECT_TRUE(listening.load()) << "READY=1 was sent before the metrics port listened";
  auto [status, body] = d.Get("/metrics");
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(Scrape(body).Value("wxcanary_build_info").has_value());
  // Nothing else is announced until something happens: one READY=1, no reload or stop.
  std::this_thread::sleep_for(300ms);
  auto ms = notify.Messages();
  size_t ready = 0;
  for (const auto& m : ms) {
    ready += m.Has("READY=1");
    EXPECT_FALSE(m.Has("RELOADING=1") || m.Has("STOPPING=1")) << m.text;
    EXPECT_FALSE(m.Has("WATCHDOG=1")) << "pinged without WATCHDOG_USEC";
  }
  EXPECT_EQ(ready, 1u) << Dump(ms);
  EXPECT_EQ(notify.Messages().front().Get("STATUS"), "probing");
}

struct ReloadCase {
  const char* name;
  bool valid;
};
// Names the case in test output instead of a byte dump.
void PrintTo(const ReloadCase& c, std::ostream* os) { *os << c.name; }

class ReloadTest : public NotifyTest, public ::testing::WithParamInterface<ReloadCase> {};

TEST_P(ReloadTest, sighup_sends_reloading_with_monotonic_usec_then_ready_after_the_reload) {
  NotifySocket notify;
  Daemon d(Config(), {}, {notify.Env()});
  auto first = notify.WaitFor("READY=1", 0, 10s);
  ASSERT_TRUE(first);
  size_t from = notify.Messages().size();
  uint64_t before = MonotonicUsec();
  // A valid reload changes the interval; an invalid one must leave the daemon running.
  d.Reload(GetParam().valid ? Config("1s") : Config() + "bogus_key: 1\n");
  auto ready = notify.WaitFor("READY=1", from, 10s);
  ASSERT_TRUE(ready) << Dump(notify.Messages());
  // At READY=1 the reload is over: its verdict is already on /metrics.
  auto scrape = d.ScrapeMetrics();
  EXPECT_EQ(scrape.Value("wxcanary_config_last_reload_successful"), GetParam().valid ? 1 : 0);
  uint64_t after = MonotonicUsec();

  auto ms = notify.Messages();
  std::vector<std::string> seq;
  for (size_t i = from; i <= *ready; ++i) seq.push_back(ms[i].text);
  ASSERT_EQ(seq.size(), 2u) << Dump(ms);
  ASSERT_TRUE(ms[from].Has("RELOADING=1")) << Dump(ms);
  auto usec = ms[from].Get("MONOTONIC_USEC");
  ASSERT_TRUE(usec) << ms[from].text;
  uint64_t sent = std::stoull(*usec);
  EXPECT_GE(sent, before);  // same clock as systemd's: CLOCK_MONOTONIC, in microseconds
  EXPECT_LE(sent, after);
  EXPECT_TRUE(d.process().running());
  EXPECT_EQ(d.Get("/-/healthy").first, 200);
}

INSTANTIATE_TEST_SUITE_P(Reload, ReloadTest,
                         ::testing::Values(ReloadCase{"valid_config", true},
                                           ReloadCase{"invalid_config", false}),
                         [](const auto& p) { return std::string(p.param.name); });

TEST_F(NotifyTest, sigterm_sends_stopping_then_the_daemon_exits_cleanly) {
  NotifySocket notify;
  Daemon d(Config(), {}, {notify.Env()});
  ASSERT_TRUE(notify.WaitFor("READY=1", 0, 10s));
  size_t from = notify.Messages().size();
  d.process().Signal(SIGTERM);
  EXPECT_TRUE(notify.WaitFor("STOPPING=1", from, 5s)) << Dump(notify.Messages());
  int status = d.process().Wait(5s);
  ASSERT_NE(status, -1) << "still running after STOPPING=1";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto ms = notify.Messages();
  EXPECT_EQ(ms.size(), from + 1) << "nothing after STOPPING=1:\n" << Dump(ms);
}

TEST_F(NotifyTest, watchdog_pings_at_twice_the_requested_rate_and_stop_once_the_scheduler_wedges) {
  NotifySocket notify;
  Daemon d(Config(), {}, {notify.Env(), "WATCHDOG_USEC=1000000", "WXCANARY_TEST_HOOKS=1"});
  ASSERT_TRUE(notify.WaitFor("READY=1", 0, 10s));
  auto start = Clock::now();
  std::this_thread::sleep_for(3s);
  auto pings = notify.Between("WATCHDOG=1", start, start + 3s);
  // Every WATCHDOG_USEC/2 = 500 ms: 6 in 3 s, give or take one at either edge.
  EXPECT_GE(pings.size(), 5u) << Dump(notify.Messages());
  EXPECT_LE(pings.size(), 7u) << Dump(notify.Messages());
  for (size_t i = 1; i < pings.size(); ++i) {
    auto gap = pings[i].at - pings[i - 1].at;
    EXPECT_GE(gap, 350ms);
    EXPECT_LE(gap, 900ms);  // systemd's limit is WATCHDOG_USEC; 500 ms plus scheduling noise
  }
  for (const auto& p : pings) EXPECT_EQ(p.pid, d.process().pid());

  d.process().Signal(SIGUSR2);  // test hook: the scheduler stops making progress
  auto wedged = Clock::now();
  // The scheduler wedges within its 250 ms heartbeat and the daemon stops pinging once the last
  // heartbeat is WATCHDOG_USEC (1 s) old: nothing may arrive after 1.25 s; allow 2 s under load.
  std::this_thread::sleep_for(2s + 3s);
  auto late = notify.Between("WATCHDOG=1", wedged + 2s, Clock::now());
  EXPECT_EQ(late.size(), 0u) << "still pinging with a wedged scheduler:\n" << Dump(late);
  EXPECT_TRUE(d.process().running());  // killing it is systemd's job, not the daemon's
}

// With WatchdogSec=30s the daemon pings every 15 s; a reload (SIGHUP) arriving just before a
// ping must not push the next one out by a whole interval, or systemd kills a healthy daemon.
// Reloads every 300 ms against a 500 ms ping period make that visible in a few seconds.
TEST_F(NotifyTest, watchdog_keeps_its_rate_while_reloads_arrive_faster_than_pings) {
  NotifySocket notify;
  Daemon d(Config(), {}, {notify.Env(), "WATCHDOG_USEC=1000000"});
  ASSERT_TRUE(notify.WaitFor("READY=1", 0, 10s));
  auto start = Clock::now();
  while (Clock::now() - start < 3s) {
    d.process().Signal(SIGHUP);
    std::this_thread::sleep_for(300ms);
  }
  auto pings = notify.Between("WATCHDOG=1", start, Clock::now());
  ASSERT_GE(pings.size(), 4u) << "reloads starved the watchdog:\n" << Dump(notify.Messages());
  auto last = start;
  for (const auto& p : pings) {
    EXPECT_LT(p.at - last, 900ms)
        << "a gap this long gets a healthy daemon killed (WatchdogSec=1s)";
    last = p.at;
  }
  EXPECT_EQ(d.ScrapeMetrics().Value("wxcanary_config_last_reload_successful"), 1);
}

// Issue 18: with a probe timeout of at least the watchdog interval, workers inside probes
// against a blackholed API are slow, not stuck: the pings go on and systemd leaves a healthy
// daemon alone. One worker for three targets, each probe hanging its whole 1.5 s timeout, so
// work waits in the queue longer than WATCHDOG_USEC (1 s) between pickups.
TEST_F(NotifyTest, an_api_blackhole_with_probe_timeouts_past_the_watchdog_does_not_stop_the_pings) {
  SilentListener blackhole;
  const std::string yaml = ConfigYaml("http://127.0.0.1:" + std::to_string(blackhole.port()))
                               .Workers(1)
                               .Default("interval", "1500ms")
                               .Default("timeout", "1500ms")
                               .Default("probe", "api_domain_ip")
                               .Redis("main", redis_->address())
                               .App(kApp)
                               .Env("prod", "main")
                               .Env("test", "main")
                               .Env("dev", "main");
  NotifySocket notify;
  Daemon d(yaml, {}, {notify.Env(), "WATCHDOG_USEC=1000000"});
  ASSERT_TRUE(notify.WaitFor("READY=1", 0, 10s));
  std::this_thread::sleep_for(1s);  // the first probes are in the blackhole by now
  auto start = Clock::now();
  std::this_thread::sleep_for(4s);
  auto pings = notify.Between("WATCHDOG=1", start, Clock::now());
  EXPECT_GE(pings.size(), 6u) << Dump(notify.Messages());
  auto last = start;
  for (const auto& p : pings) {
    EXPECT_LT(p.at - last, 900ms)
        << "a gap this long gets a healthy daemon killed (WatchdogSec=1s)";
    last = p.at;
  }
  EXPECT_LT(Clock::now() - last, 900ms) << "the pings stopped";
  // The probes really were stuck in the blackhole meanwhile.
  auto s = d.ScrapeMetrics();
  EXPECT_GE(
      s.Value("wxcanary_probes_total", {{"app_env", "prod"}, {"outcome", "transport_error"}})
              .value_or(0) +
          s.Value("wxcanary_probes_total", {{"app_env", "test"}, {"outcome", "transport_error"}})
              .value_or(0),
      1)
      << s.text();
  EXPECT_GT(s.Value("wxcanary_probes_skipped_total").value_or(0), 0);
  EXPECT_TRUE(d.process().running());
}

TEST_F(NotifyTest, sigusr2_without_test_hooks_does_not_wedge_anything) {
  NotifySocket notify;
  Daemon d(Config(), {}, {notify.Env(), "WATCHDOG_USEC=1000000"});
  ASSERT_TRUE(notify.WaitFor("READY=1", 0, 10s));
  d.process().Signal(SIGUSR2);
  auto sent = Clock::now();
  std::this_thread::sleep_for(1500ms + 2s);
  auto pings = notify.Between("WATCHDOG=1", sent + 1500ms, Clock::now());
  EXPECT_GE(pings.size(), 3u) << Dump(notify.Messages());
  EXPECT_TRUE(d.process().running());
}

struct NoSystemdCase {
  const char* name;
  std::vector<std::string> env;
};
// Names the case in test output instead of a byte dump.
void PrintTo(const NoSystemdCase& c, std::ostream* os) { *os << c.name; }

class NoSystemdTest : public NotifyTest, public ::testing::WithParamInterface<NoSystemdCase> {};

TEST_P(NoSystemdTest, the_daemon_probes_reloads_and_stops_as_usual) {
  Daemon d(Config(), {}, GetParam().env);
  auto ok = [](const Scrape& s) {
    return s.Value("wxcanary_probes_total", {{"app_env", "prod"}, {"outcome", "ok"}}).value_or(0) >=
           1;
  };
  ASSERT_TRUE(d.WaitFor(ok, 10s)) << d.Output();
  d.Reload(Config("1s"));
  auto reloaded = [&] {
    for (const auto& e : d.LogEvents())
      if (e.value("event.action", "") == "config_reloaded") return true;
    return false;
  };
  auto deadline = Clock::now() + 10s;
  while (!reloaded() && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(reloaded()) << d.Output();
  EXPECT_EQ(d.ScrapeMetrics().Value("wxcanary_config_last_reload_successful"), 1);
  int status = d.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << d.Output();
}

INSTANTIATE_TEST_SUITE_P(NoSystemd, NoSystemdTest,
                         ::testing::Values(NoSystemdCase{"no_notify_socket", {}},
                                           NoSystemdCase{
                                               "notify_socket_nobody_listens_on",
                                               {"NOTIFY_SOCKET=/nonexistent/wxcanary-notify",
                                                "WATCHDOG_USEC=1000000"}}),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace wxcanary::testing
