#include "probe/runner.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>

#include "probe/probe.h"
#include "source/token_source.h"
#include "wechat/client.h"

namespace wxcanary::probe {
namespace {

int64_t Ns(MonotonicTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

Runner::Runner(Clock& clock, prometheus::Registry& registry, std::vector<ResultSink*> sinks,
               RedisHealthFn on_redis_health)
    : clock_(clock), sinks_(std::move(sinks)), on_redis_health_(std::move(on_redis_health)) {
  lateness_ = &prometheus::BuildHistogram()
                   .Name("wxcanary_probe_lateness_seconds")
                   .Help("How late probes started against their schedule.")
                   .Register(registry)
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025,
                                                                    0.05, 0.1, 0.25, 0.5, 1, 5});
  skipped_ = &prometheus::BuildCounter()
                  .Name("wxcanary_probes_skipped_total")
                  .Help("Scheduled probes not run because the previous run of the same target "
                        "was still in flight or the scheduler fell a whole interval behind.")
                  .Register(registry)
                  .Add({});
}

Runner::~Runner() { Stop(); }

std::vector<Target> Runner::TargetsOf(const config::Config& config) {
  std::vector<Target> out;
  out.reserve(config.TargetCount());
  for (const auto& app : config.apps) {
    for (const auto& env : app.environments) {
      Target t;
      t.app_id = app.app_id;
      t.app_env = env.name;
      t.env = env;
      t.index = out.size();
      out.push_back(std::move(t));
    }
  }
  return out;
}

size_t Runner::target_count() const {
  std::lock_guard lock(mu_);
  return targets_.size();
}

std::chrono::milliseconds Runner::LongestProbe(const config::Config& config) {
  std::chrono::milliseconds longest{0};
  for (const auto& app : config.apps) {
    for (const auto& env : app.environments) {
      auto probe = env.timeout;
      if (auto it = config.redis.find(env.redis); it != config.redis.end())
        probe += it->second.connect_timeout + it->second.read_timeout;
      longest = std::max(longest, probe);
    }
  }
  return longest + std::chrono::seconds{1};
}

void Runner::Check(const config::Config& config) {
  // A config that passed config::Load* always passes; one built in code may not, and a
  // silent 127.0.0.1:6379 would probe somebody else's Redis.
  for (const auto& app : config.apps)
    for (const auto& env : app.environments)
      if (!config.redis.count(env.redis))
        throw config::ConfigError("target " + app.app_id + "/" + env.name + ": unknown redis \"" +
                                  env.redis + "\"");
}

void Runner::Start(const config::Config& config) {
  Check(config);  // before anything stops
  StopThreads();
  config_ = config;
  std::vector<Target> targets = TargetsOf(config_);
  in_flight_ = std::make_unique<std::atomic<bool>[]>(targets.size());
  for (auto* sink : sinks_) sink->SetTargets(targets);
  longest_probe_ns_ =
      std::chrono::duration_cast<std::chrono::nanoseconds>(LongestProbe(config_)).count();
  {
    std::lock_guard lock(mu_);
    targets_ = std::move(targets);
    stop_ = false;
    // Runs queued for the old target set never happen: count them, so every scheduled run is
    // either a probe or a skip.
    if (!queue_.empty()) skipped_->Increment(static_cast<double>(queue_.size()));
    queue_.clear();
    schedule_.Reset(targets_, clock_.MonotonicNow());
  }
  auto now = Ns(clock_.MonotonicNow());
  heartbeat_ns_ = now;
  last_pickup_ns_ = now;
  int n = std::max(1, config_.workers);
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  scheduler_ = std::thread([this] { SchedulerLoop(); });
}

void Runner::Stop() { StopThreads(); }

void Runner::StopThreads() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  work_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  for (auto& w : workers_) w.join();
  workers_.clear();
  wedged_ = false;
}

bool Runner::Progressing(std::chrono::milliseconds stall) const {
  auto now = Ns(clock_.MonotonicNow());
  auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(stall).count();
  if (now - heartbeat_ns_.load() > limit) return false;
  std::lock_guard lock(mu_);
  // Work waiting while no worker has picked anything up for longer than any probe may take
  // (and a whole stall): workers are stuck. Every worker inside a probe that is allowed 30 s
  // against a blackholed API is not, and must not get the daemon restarted.
  const int64_t busy = std::max(limit, longest_probe_ns_.load());
  return queue_.empty() || now - last_pickup_ns_.load() <= busy;
}

void Runner::SchedulerLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (wedged_) {
      cv_.wait(lock, [this] { return stop_; });
      break;
    }
    auto now = clock_.MonotonicNow();
    heartbeat_ns_ = Ns(now);
    uint64_t behind = 0;
    auto due = schedule_.PopDue(now, &behind);
    uint64_t skipped = behind;
    for (const auto& d : due) {
      if (in_flight_[d.target].exchange(true)) {
        ++skipped;  // the previous run of this target has not finished
        continue;
      }
      queue_.push_back({d.target, d.scheduled});
    }
    if (skipped) skipped_->Increment(static_cast<double>(skipped));
    if (!due.empty()) work_cv_.notify_all();
    // Wake for the next run, and at least every 250 ms so a watchdog of a second or more
    // always sees a fresh heartbeat.
    auto wait = std::chrono::nanoseconds{std::chrono::milliseconds{250}};
    if (auto next = schedule_.NextDue()) wait = std::min(wait, *next - clock_.MonotonicNow());
    if (wait.count() > 0) cv_.wait_for(lock, wait);
  }
}

void Runner::WorkerLoop() {
  wechat::Client client(config_.wechat);
  std::map<std::string, std::unique_ptr<source::RedisConnection>> redis;
  while (true) {
    Job job;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = queue_.front();
      queue_.pop_front();
    }
    auto start = clock_.MonotonicNow();
    last_pickup_ns_ = Ns(start);
    lateness_->Observe(std::chrono::duration<double>(start - job.scheduled).count());

    const Target& target = targets_[job.target];
    auto& conn = redis[target.env.redis];
    if (!conn) conn = std::make_unique<source::RedisConnection>(config_.redis.at(target.env.redis));
    ProbeResult result = RunProbe(target, *conn, client, clock_);
    // Redis' health is the connection's, not the probe's outcome: a reply such as WRONGTYPE
    // means the server is up and one key is wrong.
    ReportRedis(target.env.redis, conn->healthy(),
                result.outcome == Outcome::kRedisError ? result.detail : std::string());
    for (auto* sink : sinks_) sink->Record(target, result);
    in_flight_[job.target] = false;
  }
}

void Runner::ReportRedis(const std::string& name, bool up, const std::string& error) {
  // Under the lock, so two workers cannot report one server's transitions out of order.
  std::lock_guard lock(redis_mu_);
  auto [it, inserted] = redis_state_.try_emplace(name, up);
  if (!inserted && it->second == up) return;
  it->second = up;
  if (on_redis_health_) on_redis_health_(name, up, error);
}

}  // namespace wxcanary::probe
