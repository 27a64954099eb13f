#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "daemon/status_page.h"

namespace wxcanary::telemetry {
class DaemonMetrics;
class Exposition;
class Logger;
class ProbeLog;
class ProbeMetrics;
}  // namespace wxcanary::telemetry
namespace wxcanary::tracking {
class QuotaPoller;
class TokenTracker;
}  // namespace wxcanary::tracking
namespace wxcanary::heal {
class Healer;
class RedisHealStore;
class StableTokenFetcher;
}  // namespace wxcanary::heal
namespace wxcanary::keeper {
class Keeper;
class RedisKeeperStore;
}  // namespace wxcanary::keeper
namespace wxcanary::probe {
class Runner;
}

namespace wxcanary::daemon {

/// The running daemon: the one owner of every long-lived part (probe metrics and log, tracker,
/// heal store, stable_token fetcher, healer, keeper, runner, quota poller) and of the config they
/// run on, like blackbox_exporter's SafeConfig. Start() once, Reload() any number of times, Stop()
/// once; a reload is validated first (what the parts would refuse, the restart-only settings)
/// and then reaches every part through its Apply, or none. The process shell (flags, signals,
/// notify, the web server) lives in daemon.cc. Start/Reload/Stop are called from one thread;
/// Status(), Progressing() and the parts themselves are thread-safe.
class App {
 public:
  struct ReloadResult {
    bool ok = false;
    std::string reason;  // one line, why the reload was refused ("" when ok); never a secret
  };

  /// `clock`, `exposition` and `log` must outlive the App. `instance_id` owns heal locks in a
  /// shared Redis (unique per running process).
  App(Clock& clock, telemetry::Exposition& exposition, telemetry::Logger& log,
      std::string instance_id);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  /// Starts probing `config` (and the quota poller and the keeper). Throws config::ConfigError when
  /// a part refuses it (a target naming an unknown Redis). Taken by value: a caller done with its
  /// config moves it in, so the process holds no second copy of every target's environment.
  void Start(config::Config config);
  /// Takes a reloaded config: checks, then applies to every part or to none; logs
  /// config_reloaded (WARN) or config_reload_failed (ERROR, naming the reason) and sets
  /// wxcanary_config_last_reload_successful. A refused reload leaves the running config as is.
  ReloadResult Reload(const config::Config& next);
  /// As above with the config read by `load` (the file): a config::ConfigError it throws is a
  /// refused reload like any other.
  ReloadResult Reload(const std::function<config::Config()>& load);
  /// Stops the quota poller, the keeper (giving its leases up) and the runner. Idempotent.
  void Stop();

  /// The settings a running daemon cannot take: throws config::ConfigError naming the first
  /// one `next` changes. Pure.
  static void CheckRestartOnly(const config::Config& running, const config::Config& next);

  /// The running config without its apps: the parts hold what they need of each target (the
  /// runner every target's environment), and a copy here was ~590 bytes per target.
  [[nodiscard]] const config::Config& config() const { return config_; }
  /// What the systemd watchdog and /-/healthy ask: see probe::Runner::Progressing.
  [[nodiscard]] bool Progressing(std::chrono::milliseconds stall) const;
  /// Every target's status for the status page (see CollectStatus).
  [[nodiscard]] std::vector<TargetStatus> Status() const;
  /// Test hook (SIGUSR2 with WXCANARY_TEST_HOOKS): wedges the scheduler.
  void WedgeForTesting();

 private:
  void Apply(const config::Config& next);
  void Keep(config::Config config);  // config_ and target_count_, once every part has it

  Clock& clock_;
  telemetry::Logger& log_;
  config::Config config_;  // apps cleared (see config())
  size_t target_count_ = 0;
  std::unique_ptr<telemetry::DaemonMetrics> daemon_metrics_;
  std::unique_ptr<telemetry::ProbeMetrics> probe_metrics_;
  std::unique_ptr<telemetry::ProbeLog> probe_log_;
  std::unique_ptr<tracking::TokenTracker> tracker_;
  std::unique_ptr<heal::RedisHealStore> heal_store_;
  std::unique_ptr<heal::StableTokenFetcher> fetcher_;
  std::unique_ptr<heal::Healer> healer_;
  std::unique_ptr<keeper::RedisKeeperStore> keeper_store_;
  std::unique_ptr<keeper::Keeper> keeper_;
  std::unique_ptr<probe::Runner> runner_;
  std::unique_ptr<tracking::QuotaPoller> quota_;
};

}  // namespace wxcanary::daemon
