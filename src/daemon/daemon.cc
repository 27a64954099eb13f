#include "daemon/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <prometheus/registry.h>

#include "common/clock.h"
#include "common/memory.h"
#include "config/config.h"
#include "daemon/app.h"
#include "daemon/commands.h"
#include "daemon/notify.h"
#include "daemon/options.h"
#include "daemon/status_page.h"
#include "daemon/version.h"
#include "daemon/web_server.h"
#include "probe/shard.h"
#include "telemetry/exposition.h"
#include "telemetry/log.h"

namespace wxcanary::daemon {
namespace {

using telemetry::Fields;
using telemetry::Level;

sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR2);
  return set;
}

// Owner of heal locks in a shared Redis: unique per running instance.
std::string InstanceId() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

// Parses `file` on a thread of its own and returns `shard`'s slice of it, copied on this thread
// (`all_targets`: how many the whole file has). glibc gives each thread its own malloc arena:
// the YAML tree and the parsed config stay in the loader's, and the copy lands in one piece in
// this thread's. So what the long-lived parts allocate while they take their share of it (a few
// hundred bytes per target in each) does not fill the holes the parse leaves between the parts
// of the config, and the copy, freed once they have theirs, goes back to the kernel whole
// instead of staying in holes between their blocks: at 100,000 targets ~65 MiB of RSS.
config::Config LoadApart(const std::string& file, const probe::Shard& shard,
                         size_t* all_targets = nullptr) {
  std::optional<config::Config> loaded;
  std::exception_ptr error;
  try {
    std::thread([&] {
      try {
        loaded = config::LoadFile(file);
        ReturnFreedMemory();  // the YAML tree's pages, before the copy below adds its own
      } catch (...) {
        error = std::current_exception();
      }
    }).join();
  } catch (const std::system_error&) {  // no thread to be had: parse here, as before
    loaded = config::LoadFile(file);
  }
  if (error) std::rethrow_exception(error);
  if (all_targets != nullptr) *all_targets = loaded->TargetCount();
  config::Config slice = probe::SelectShard(*loaded, shard);  // a copy, made here
  // Freed into the loader's arena, and its pages given back before the parts allocate theirs:
  // the start's peak stays about one copy of the config (without these trims the loader's freed
  // pages stayed resident through the start: VmHWM 850 MiB at 100,000 targets, not 510).
  loaded.reset();
  ReturnFreedMemory();
  return slice;
}

}  // namespace

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // One-shot operator commands (wxcanary probe / evict): no daemon, no signals, no log sinks.
  if (IsCommand(args)) return RunCommand(args, std::cin, std::cout, std::cerr);
  ParsedOptions parsed = ParseOptions(args);
  if (!parsed.options) {
    (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.output;
    return parsed.exit_code;
  }
  const Options& opts = *parsed.options;

  // --shard: every part of the daemon (probes, conflicts, quota, heal) sees only this slice.
  config::Config cfg;
  size_t all_targets = 0;
  try {
    cfg = LoadApart(opts.config_file, opts.shard, &all_targets);
  } catch (const config::ConfigError& e) {
    std::cerr << "wxcanary: config file \"" << opts.config_file << "\": " << e.what() << "\n";
    return 1;
  }
  if (opts.config_check) {
    if (!opts.shard.all())
      std::cout << "wxcanary: shard " << opts.shard.ToString() << ": " << cfg.TargetCount()
                << " of " << all_targets << " targets\n";
    std::cout << config::Describe(cfg);
    return 0;
  }

  // Signals are taken synchronously by this thread only; every thread started below
  // inherits the mask.
  sigset_t signals = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Clock& clock = RealClock::Instance();
  // Shared with the web server's handler, which may still be answering while main unwinds.
  auto exposition = std::make_shared<telemetry::Exposition>();
  prometheus::Registry* registry = &exposition->registry();
  std::unique_ptr<telemetry::Logger> log;
  try {
    log = telemetry::MakeLogger(cfg.logging, opts.log_format, opts.log_level, clock, registry);
  } catch (const config::ConfigError& e) {  // e.g. a log file that cannot be opened
    std::cerr << "wxcanary: config file \"" << opts.config_file << "\": " << e.what() << "\n";
    return 1;
  }

  // Every long-lived part, and the config they run on.
  App app(clock, *exposition, *log, InstanceId());

  // TLS and basic auth (--web.config.file): a bad file stops startup, like a bad config.
  std::unique_ptr<WebServer> web;
  try {
    WebConfig web_config;
    if (!opts.web_config_file.empty()) web_config = LoadWebConfig(opts.web_config_file);
    web = std::make_unique<WebServer>([exposition] { return exposition->SerializeChunks(); },
                                      [&app] { return app.Progressing(std::chrono::seconds{30}); },
                                      web_config);
  } catch (const std::exception& e) {
    std::cerr << "wxcanary: --web.config.file \"" << opts.web_config_file << "\": " << e.what()
              << "\n";
    return 1;
  }
  // The status page and its JSON twin, read from the sinks' snapshots at each request.
  auto status = [&](bool json) {
    return [&, json](const std::multimap<std::string, std::string>& params) {
      auto targets = app.Status();
      const auto query = StatusQuery::Parse(params);
      if (json)
        return WebServer::Page{200, "application/json",
                               RenderStatusJson(std::move(targets), query, clock.SystemNow())};
      return WebServer::Page{200, "text/html; charset=utf-8",
                             RenderStatusPage(std::move(targets), query, clock.SystemNow())};
    };
  };
  web->Route("/", status(false));
  web->Route("/api/v1/targets", status(true));
  auto [host, port] = *ParseListenAddress(opts.listen_address);
  int bound = 0;
  try {
    bound = web->Start(host, port);
  } catch (const std::exception& e) {
    std::cerr << "wxcanary: --web.listen-address: " << e.what() << "\n";
    return 1;
  }

  // The App keeps the config it runs on; this copy would be a second one of every target's
  // environment (~590 bytes per target), so it is moved in.
  const size_t targets = cfg.TargetCount();
  try {
    app.Start(std::move(cfg));
  } catch (const config::ConfigError& e) {  // a config built to pass LoadFile always passes
    std::cerr << "wxcanary: config file \"" << opts.config_file << "\": " << e.what() << "\n";
    return 1;
  }
  log->Log(Level::kInfo, "daemon_started",
           "wxcanary " + std::string(kVersion) + " probing " + std::to_string(targets) +
               (targets == 1 ? " target" : " targets") + ", metrics on " +
               (host.empty() ? "*" : host) + ":" + std::to_string(bound),
           Fields{{"service.version", kVersion},
                  {"server.address", host.empty() ? "0.0.0.0" : host},
                  {"server.port", bound},
                  {"wxcanary.config.file", opts.config_file},
                  {"wxcanary.config.targets", targets},
                  {"wxcanary.shard", opts.shard.ToString()}});

  Notifier notifier;
  notifier.Ready();
  ReturnFreedMemory();  // what parsing the config left behind
  const bool test_hooks = std::getenv("WXCANARY_TEST_HOOKS") != nullptr;
  auto watchdog = notifier.WatchdogInterval();
  // Ping at half the interval systemd asked for; wake at least once a second otherwise.
  auto tick = watchdog ? std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog / 2)
                       : std::chrono::milliseconds{1000};
  auto stall = watchdog ? std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog)
                        : std::chrono::milliseconds{30'000};

  // Pings keep to a deadline rather than to a wait restarted after every signal: otherwise
  // reloads (or any signal) arriving faster than `tick` starve the watchdog, and one arriving
  // just before a ping pushes the next to ~WATCHDOG_USEC, so systemd kills a healthy daemon.
  auto next_ping = std::chrono::steady_clock::now() + tick;
  for (;;) {
    // In nanoseconds, not milliseconds: the last fraction of a millisecond truncated to a zero
    // wait made this loop spin until the deadline (up to ~1 ms of CPU a second).
    auto left =
        std::max(std::chrono::nanoseconds{0}, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  next_ping - std::chrono::steady_clock::now()));
    timespec ts{static_cast<time_t>(left.count() / 1'000'000'000),
                static_cast<long>(left.count() % 1'000'000'000)};
    int sig = sigtimedwait(&signals, nullptr, &ts);
    if (std::chrono::steady_clock::now() >= next_ping) {
      if (watchdog && app.Progressing(stall)) notifier.Watchdog();
      next_ping = std::chrono::steady_clock::now() + tick;
    }
    if (sig < 0) continue;
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGUSR2) {
      if (test_hooks) app.WedgeForTesting();
      continue;
    }
    // SIGHUP: reload. The file is read and checked first; an invalid one, or one that changes a
    // restart-only setting, leaves the running config untouched.
    notifier.Reloading();
    app.Reload([&] { return LoadApart(opts.config_file, opts.shard); });
    notifier.Ready();
    ReturnFreedMemory();
  }

  notifier.Stopping();
  log->Log(Level::kInfo, "daemon_stopping", "wxcanary stopping");
  web->Stop();
  app.Stop();
  return 0;
}

}  // namespace wxcanary::daemon
