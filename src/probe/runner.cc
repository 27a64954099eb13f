#include "probe/runner.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <map>
#include <optional>

#include "probe/probe.h"
#include "source/redis_connection.h"
#include "wechat/client.h"

namespace wxcanary::probe {
namespace {

int64_t Ns(MonotonicTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

Runner::Runner(Clock& clock, prometheus::Registry& registry, std::vector<ResultSink*> sinks,
               RedisHealthFn on_redis_health, ProbeFn probe)
    : clock_(clock),
      sinks_(std::move(sinks)),
      on_redis_health_(std::move(on_redis_health)),
      probe_(probe ? std::move(probe) : ProbeFn(RunProbe)) {
  lateness_ = &prometheus::BuildHistogram()
                   .Name("wxcanary_probe_lateness_seconds")
                   .Help("How late probes started against their schedule.")
                   .Register(registry)
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05,
                                                                    0.1, 0.25, 0.5, 1, 5});
  skipped_ = &prometheus::BuildCounter()
                  .Name("wxcanary_probes_skipped_total")
                  .Help(
                      "Scheduled probes not run because the previous run of the same target "
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
  return slots_.size();
}

size_t Runner::worker_count() const {
  std::lock_guard lock(mu_);
  return workers_threads_.size();
}

size_t Runner::in_flight_count() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(std::count_if(
      slots_.begin(), slots_.end(), [](const auto& slot) { return slot->in_flight.load(); }));
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
  Check(config);  // before anything changes
  std::lock_guard start(start_mu_);
  const int workers = std::max(1, config.workers);
  bool rebuild;
  std::vector<std::shared_ptr<Slot>> old;
  {
    std::lock_guard lock(mu_);
    rebuild = workers != workers_;
    old = slots_;
  }
  // The pool is rebuilt only for a new size; in-flight probes finish first.
  if (rebuild) StopThreads();

  // Match the new targets to the running ones by (app_id, app_env): kept when nothing that
  // affects the probe changed (the environment and its Redis entry), else replaced.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Slot>> running;
  for (const auto& slot : old) running[{slot->target.app_id, slot->target.app_env}] = slot;
  std::vector<Target> wanted = TargetsOf(config);
  std::vector<std::shared_ptr<Slot>> next(wanted.size());
  std::vector<bool> taken(std::max(old.size(), wanted.size()) + 1, false);
  for (size_t i = 0; i < wanted.size(); ++i) {
    auto it = running.find({wanted[i].app_id, wanted[i].app_env});
    if (it == running.end() || !(it->second->target.env == wanted[i].env) ||
        !(it->second->redis == config.redis.at(wanted[i].env.redis)))
      continue;
    next[i] = it->second;
    running.erase(it);
    if (next[i]->target.index >= taken.size()) taken.resize(next[i]->target.index + 1, false);
    taken[next[i]->target.index] = true;
  }
  // New and changed targets take the smallest indexes no kept target holds: sinks keep
  // per-target state by index, so a kept target's index never moves.
  size_t free_index = 0;
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (next[i]) continue;
    while (free_index < taken.size() && taken[free_index]) ++free_index;
    if (free_index >= taken.size()) taken.resize(free_index + 1, false);
    taken[free_index] = true;
    auto slot = std::make_shared<Slot>();
    slot->target = std::move(wanted[i]);
    slot->target.index = free_index;
    slot->redis = config.redis.at(slot->target.env.redis);
    next[i] = std::move(slot);
  }
  // What left (or changed) is cancelled: once marked, no worker records it; a Record() in
  // progress finishes first.
  for (auto& [key, slot] : running) {
    std::lock_guard record(slot->record_mu);
    slot->removed = true;
  }
  std::vector<Target> targets;
  targets.reserve(next.size());
  for (const auto& slot : next) targets.push_back(slot->target);
  for (auto* sink : sinks_) sink->SetTargets(targets);
  longest_probe_ns_ =
      std::chrono::duration_cast<std::chrono::nanoseconds>(LongestProbe(config)).count();
  {
    std::lock_guard lock(mu_);
    slots_ = std::move(next);
    if (!(wechat_ == config.wechat) || wechat_generation_ == 0) {
      wechat_ = config.wechat;
      ++wechat_generation_;
    }
    // Queued runs of targets that left never happen: count them, so every scheduled run is
    // either a probe or a skip.
    const auto before = queue_.size();
    std::erase_if(queue_, [](const Job& j) { return j.slot->removed.load(); });
    if (before != queue_.size()) skipped_->Increment(static_cast<double>(before - queue_.size()));
    // Phases are absolute (see Schedule), so a kept target's next run is where it was.
    schedule_.Reset(targets, clock_.MonotonicNow());
  }
  cv_.notify_all();
  if (rebuild) StartThreads(workers);
}

void Runner::StartThreads(int workers) {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    workers_ = workers;
  }
  auto now = Ns(clock_.MonotonicNow());
  heartbeat_ns_ = now;
  last_pickup_ns_ = now;
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) threads.emplace_back([this] { WorkerLoop(); });
  {
    std::lock_guard lock(mu_);
    workers_threads_ = std::move(threads);
  }
  scheduler_ = std::thread([this] { SchedulerLoop(); });
}

void Runner::Stop() {
  std::lock_guard start(start_mu_);
  StopThreads();
}

void Runner::StopThreads() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    workers = std::move(workers_threads_);
    workers_threads_.clear();
    workers_ = 0;
  }
  cv_.notify_all();
  work_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  for (auto& w : workers) w.join();
  std::lock_guard lock(mu_);
  // Runs queued for a pool that is gone never happen.
  if (!queue_.empty()) skipped_->Increment(static_cast<double>(queue_.size()));
  for (const auto& job : queue_) job.slot->in_flight = false;
  queue_.clear();
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
    size_t queued = 0;
    for (const auto& d : due) {
      const auto& slot = slots_[d.target];
      if (slot->in_flight.exchange(true)) {
        ++skipped;  // the previous run of this target has not finished
        continue;
      }
      queue_.push_back({slot, d.scheduled});
      ++queued;
    }
    if (skipped) skipped_->Increment(static_cast<double>(skipped));
    // One wake-up per queued job, not a broadcast: at 1,000 probes/s a notify_all woke all 16
    // workers for each job, and 15 of them went back to sleep after fighting for mu_ (the
    // context switches and futex waits that dominated the daemon's CPU profile, issue 19).
    // A worker that finishes a probe takes the next job without waiting.
    for (size_t i = 0; i < std::min(queued, static_cast<size_t>(workers_)); ++i)
      work_cv_.notify_one();
    // Wake for the next run, and at least every 250 ms so a watchdog of a second or more
    // always sees a fresh heartbeat.
    auto wake = now + std::chrono::milliseconds{250};
    if (auto next = schedule_.NextDue()) wake = std::min(wake, *next);
    clock_.WaitUntil(cv_, lock, wake);
  }
}

void Runner::WorkerLoop() {
  std::unique_ptr<wechat::Client> client;
  uint64_t client_generation = 0;
  std::map<std::string, std::unique_ptr<source::RedisConnection>> redis;
  while (true) {
    Job job;
    std::optional<config::WeChat> wechat;  // set when this worker's client is out of date
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      if (client_generation != wechat_generation_) {
        wechat = wechat_;
        client_generation = wechat_generation_;
      }
    }
    if (wechat) client = std::make_unique<wechat::Client>(*wechat);
    Slot& slot = *job.slot;
    if (slot.removed) {  // left the config while queued
      skipped_->Increment();
      slot.in_flight = false;
      continue;
    }
    auto start = clock_.MonotonicNow();
    last_pickup_ns_ = Ns(start);
    lateness_->Observe(std::chrono::duration<double>(start - job.scheduled).count());

    const Target& target = slot.target;
    auto& conn = redis[target.env.redis];
    // A Redis entry a reload changed gets a new connection; an unchanged one is reused.
    if (!conn || !(conn->config() == slot.redis))
      conn = std::make_unique<source::RedisConnection>(slot.redis, clock_);
    ProbeResult result = probe_(target, *conn, *client, clock_);
    // Redis' health is the connection's, not the probe's outcome: a reply such as WRONGTYPE
    // means the server is up and one key is wrong.
    ReportRedis(target.env.redis, conn->healthy(),
                result.outcome == Outcome::kRedisError ? result.detail : std::string());
    {
      std::lock_guard record(slot.record_mu);
      if (slot.removed) {
        skipped_->Increment();  // cancelled by a reload while in flight: not recorded
      } else {
        for (auto* sink : sinks_) sink->Record(target, result);
      }
    }
    slot.in_flight = false;
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
