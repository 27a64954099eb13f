#include "daemon/app.h"

#include <malloc.h>

#include "daemon/version.h"
#include "heal/heal_store.h"
#include "heal/healer.h"
#include "heal/stable_token.h"
#include "keeper/keeper.h"
#include "probe/runner.h"
#include "telemetry/exposition.h"
#include "telemetry/log.h"
#include "telemetry/probe_log.h"
#include "telemetry/probe_metrics.h"
#include "tracking/quota_poller.h"
#include "tracking/token_tracker.h"

namespace wxcanary::daemon {
namespace {

using telemetry::Fields;
using telemetry::Level;

std::vector<std::string> RedisNames(const config::Config& cfg) {
  std::vector<std::string> out;
  for (const auto& [name, _] : cfg.redis) out.push_back(name);
  return out;
}

std::string Targets(size_t n) { return std::to_string(n) + (n == 1 ? " target" : " targets"); }

}  // namespace

App::App(Clock& clock, telemetry::Exposition& exposition, telemetry::Logger& log,
         std::string instance_id)
    : clock_(clock),
      log_(log),
      daemon_metrics_(std::make_unique<telemetry::DaemonMetrics>(exposition.registry(), clock,
                                                                 kVersion, kRevision)),
      probe_metrics_(std::make_unique<telemetry::ProbeMetrics>(exposition, clock)),
      probe_log_(std::make_unique<telemetry::ProbeLog>(log)),
      tracker_(std::make_unique<tracking::TokenTracker>(exposition, log, clock, config_.conflict)),
      heal_store_(std::make_unique<heal::RedisHealStore>(config_.redis, clock)),
      fetcher_(std::make_unique<heal::StableTokenFetcher>(config_)),
      healer_(std::make_unique<heal::Healer>(config_.heal, *heal_store_, fetcher_.get(), exposition,
                                             log, clock, instance_id)),
      keeper_store_(std::make_unique<keeper::RedisKeeperStore>(config_.redis, clock)),
      // The tracker learns each stable token the keeper fetches before it is written anywhere,
      // so a kept environment changing to it is not counted as that environment's refresh.
      keeper_(std::make_unique<keeper::Keeper>(
          *keeper_store_, *fetcher_, exposition, log, clock, std::move(instance_id),
          [this](const std::string& app_id, const std::string& fingerprint) {
            tracker_->KeeperToken(app_id, fingerprint);
          })),
      // Order matters only for reading the log: the probe event comes before what it caused.
      runner_(std::make_unique<probe::Runner>(
          clock, exposition.registry(),
          std::vector<ResultSink*>{probe_metrics_.get(), probe_log_.get(), tracker_.get(),
                                   healer_.get(), keeper_.get()},
          [this](const std::string& redis, bool up, const std::string& error) {
            daemon_metrics_->SetRedisUp(redis, up);
            telemetry::LogRedisHealth(log_, redis, up, error);
          },
          nullptr, probe::kCoalesce)),
      // Reads the real /cgi-bin/token usage of apps with a secret, at most every 10 minutes.
      quota_(tracking::MakeQuotaPoller(exposition.registry(), log, clock, config_)) {}

App::~App() { Stop(); }

void App::Start(config::Config config) {
  probe::Runner::Check(config);
  healer_->StartHealThread();  // Record() runs on the probe engine's event loop
  Apply(config);
  Keep(std::move(config));
  daemon_metrics_->ConfigLoaded(true);
  quota_->Start();
  keeper_->Start();
}

void App::Keep(config::Config config) {
  target_count_ = config.TargetCount();
  // Freed (`= {}` would keep the capacity): every part took its own copy of what it needs.
  config.apps = std::vector<config::App>();
  config_ = std::move(config);
  // Loading and applying a config allocates and frees several copies of every target (the YAML
  // tree, the parsed config, the target lists handed around); glibc keeps those pages. Give
  // them back: at 100,000 targets that is most of the difference between the live heap and RSS.
  malloc_trim(0);
}

void App::CheckRestartOnly(const config::Config& running, const config::Config& next) {
  if (!(running.logging == next.logging))
    throw config::ConfigError("logging: the log sinks changed; they need a restart");
}

void App::Apply(const config::Config& next) {
  // The one place a config reaches the long-lived parts, each through its Apply (the runner's
  // is Start: it diffs the targets and hands them to the sinks). Called only after `next`
  // passed every check, and none of these throws: a reload reaches all or none.
  heal_store_->SetRedis(next.redis);
  fetcher_->Apply(next);
  tracker_->Apply(next);
  healer_->Apply(next);
  keeper_store_->SetRedis(next.redis);
  keeper_->Apply(next);
  quota_->Apply(next);
  runner_->Start(next);
  daemon_metrics_->RetainRedis(RedisNames(next));
}

App::ReloadResult App::Reload(const config::Config& next) {
  return Reload([&next] { return next; });
}

App::ReloadResult App::Reload(const std::function<config::Config()>& load) {
  const std::string file = config_.source.string();
  try {
    // Validate first (the file, the restart-only settings, what the parts would refuse), then
    // apply.
    config::Config next = load();
    CheckRestartOnly(config_, next);
    probe::Runner::Check(next);
    Apply(next);
    Keep(std::move(next));
  } catch (const config::ConfigError& e) {
    daemon_metrics_->ConfigLoaded(false);
    log_.Log(Level::kError, "config_reload_failed",
             std::string("config reload failed, keeping the running config: ") + e.what(),
             Fields{{"wxcanary.config.file", file}, {"error.message", e.what()}});
    return {false, e.what()};
  }
  daemon_metrics_->ConfigLoaded(true);
  // WARN: an operator's change, visible at --log.level=warn.
  log_.Log(Level::kWarn, "config_reloaded", "config reloaded: " + Targets(target_count_),
           Fields{{"wxcanary.config.file", config_.source.string()},
                  {"wxcanary.config.targets", target_count_}});
  return {true, ""};
}

void App::Stop() {
  quota_->Stop();
  keeper_->Stop();
  runner_->Stop();
}

bool App::Progressing(std::chrono::milliseconds stall) const { return runner_->Progressing(stall); }

std::vector<TargetStatus> App::Status() const {
  return CollectStatus(*probe_metrics_, *tracker_, *healer_, keeper_.get());
}

void App::WedgeForTesting() { runner_->WedgeForTesting(); }

}  // namespace wxcanary::daemon
