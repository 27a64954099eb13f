#include "daemon/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <prometheus/registry.h>

#include "common/clock.h"
#include "common/memory.h"
#include "config/config.h"
#include "daemon/commands.h"
#include "daemon/notify.h"
#include "daemon/options.h"
#include "daemon/status_page.h"
#include "daemon/version.h"
#include "daemon/web_server.h"
#include "heal/heal_store.h"
#include "heal/healer.h"
#include "heal/stable_token.h"
#include "probe/runner.h"
#include "probe/shard.h"
#include "telemetry/log.h"
#include "telemetry/probe_log.h"
#include "telemetry/probe_metrics.h"
#include "tracking/quota_poller.h"
#include "tracking/token_tracker.h"

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

std::vector<std::string> RedisNames(const config::Config& cfg) {
  std::vector<std::string> out;
  for (const auto& [name, _] : cfg.redis) out.push_back(name);
  return out;
}

// Owner of heal locks in a shared Redis: unique per running instance.
std::string InstanceId() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

std::string Targets(size_t n) { return std::to_string(n) + (n == 1 ? " target" : " targets"); }

// The settings a running daemon cannot take: a reload that changes one is rejected whole.
void CheckRestartOnly(const config::Config& running, const config::Config& next) {
  if (!(running.logging == next.logging))
    throw config::ConfigError("logging: the log sinks changed; they need a restart");
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

  config::Config cfg;
  try {
    cfg = config::LoadFile(opts.config_file);
  } catch (const config::ConfigError& e) {
    std::cerr << "wxcanary: config file \"" << opts.config_file << "\": " << e.what() << "\n";
    return 1;
  }
  // --shard: every part of the daemon (probes, conflicts, quota, heal) sees only this slice.
  const size_t all_targets = cfg.TargetCount();
  cfg = probe::SelectShard(cfg, opts.shard);
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

  telemetry::DaemonMetrics daemon_metrics(*registry, clock, kVersion, kRevision);
  telemetry::ProbeMetrics probe_metrics(*exposition, clock);
  telemetry::ProbeLog probe_log(*log);
  tracking::TokenTracker tracker(*exposition, *log, clock, cfg.conflict);
  heal::RedisHealStore heal_store(cfg.redis);
  heal::StableTokenFetcher fetcher(cfg);
  heal::Healer healer(cfg.heal, heal_store, &fetcher, *exposition, *log, clock, InstanceId());

  // Order matters only for reading the log: the probe event comes before what it caused.
  probe::Runner runner(clock, *registry, {&probe_metrics, &probe_log, &tracker, &healer},
                       [&](const std::string& redis, bool up, const std::string& error) {
                         daemon_metrics.SetRedisUp(redis, up);
                         telemetry::LogRedisHealth(*log, redis, up, error);
                       });

  // TLS and basic auth (--web.config.file): a bad file stops startup, like a bad config.
  std::unique_ptr<WebServer> web;
  try {
    WebConfig web_config;
    if (!opts.web_config_file.empty()) web_config = LoadWebConfig(opts.web_config_file);
    web = std::make_unique<WebServer>(
        [exposition] { return exposition->SerializeChunks(); },
        [&runner] { return runner.Progressing(std::chrono::seconds{30}); }, web_config);
  } catch (const std::exception& e) {
    std::cerr << "wxcanary: --web.config.file \"" << opts.web_config_file << "\": " << e.what()
              << "\n";
    return 1;
  }
  // The status page and its JSON twin, read from the sinks' snapshots at each request.
  auto status = [&](bool json) {
    return [&, json](const std::multimap<std::string, std::string>& params) {
      auto targets = CollectStatus(probe_metrics, tracker, healer);
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

  runner.Start(cfg);
  // Reads the real /cgi-bin/token usage of apps with a secret, at most every 10 minutes.
  auto quota = tracking::MakeQuotaPoller(*registry, *log, clock, cfg);
  quota->Start();

  // The one place a reloaded config reaches the long-lived parts, each through its Apply (the
  // runner's is Start: it replaces the targets and hands them to the sinks). Called only after
  // `next` passed every check, and none of these throws: a reload reaches all or none.
  auto apply = [&](const config::Config& next) {
    heal_store.SetRedis(next.redis);
    fetcher.Apply(next);
    tracker.Apply(next);
    healer.Apply(next);
    quota->Apply(next);
    runner.Start(next);
    daemon_metrics.RetainRedis(RedisNames(next));
  };
  daemon_metrics.ConfigLoaded(true);
  log->Log(Level::kInfo, "daemon_started",
           "wxcanary " + std::string(kVersion) + " probing " + Targets(cfg.TargetCount()) +
               ", metrics on " + (host.empty() ? "*" : host) + ":" + std::to_string(bound),
           Fields{{"service.version", kVersion},
                  {"server.address", host.empty() ? "0.0.0.0" : host},
                  {"server.port", bound},
                  {"wxcanary.config.file", opts.config_file},
                  {"wxcanary.config.targets", cfg.TargetCount()},
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
    auto left = std::max(std::chrono::milliseconds{0},
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             next_ping - std::chrono::steady_clock::now()));
    timespec ts{static_cast<time_t>(left.count() / 1000),
                static_cast<long>((left.count() % 1000) * 1'000'000)};
    int sig = sigtimedwait(&signals, nullptr, &ts);
    if (std::chrono::steady_clock::now() >= next_ping) {
      if (watchdog && runner.Progressing(stall)) notifier.Watchdog();
      next_ping = std::chrono::steady_clock::now() + tick;
    }
    if (sig < 0) continue;
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGUSR2) {
      if (test_hooks) runner.WedgeForTesting();
      continue;
    }
    // SIGHUP: reload. An invalid file leaves the running config untouched.
    notifier.Reloading();
    try {
      // Validate first (the file, then what the running parts would refuse), then apply.
      config::Config next = probe::SelectShard(config::LoadFile(opts.config_file), opts.shard);
      CheckRestartOnly(cfg, next);
      probe::Runner::Check(next);
      apply(next);
      cfg = std::move(next);
      daemon_metrics.ConfigLoaded(true);
      // WARN: an operator's change, visible at --log.level=warn.
      log->Log(Level::kWarn, "config_reloaded", "config reloaded: " + Targets(cfg.TargetCount()),
               Fields{{"wxcanary.config.file", opts.config_file},
                      {"wxcanary.config.targets", cfg.TargetCount()}});
    } catch (const config::ConfigError& e) {
      daemon_metrics.ConfigLoaded(false);
      log->Log(Level::kError, "config_reload_failed",
               std::string("config reload failed, keeping the running config: ") + e.what(),
               Fields{{"wxcanary.config.file", opts.config_file}, {"error.message", e.what()}});
    }
    notifier.Ready();
    ReturnFreedMemory();
  }

  notifier.Stopping();
  log->Log(Level::kInfo, "daemon_stopping", "wxcanary stopping");
  web->Stop();
  quota->Stop();
  runner.Stop();
  return 0;
}

}  // namespace wxcanary::daemon
