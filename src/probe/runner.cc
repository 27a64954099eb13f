#include "probe/runner.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <map>
#include <optional>

#include "io/event_loop.h"
#include "probe/probe.h"
#include "source/async_redis.h"
#include "source/redis_connection.h"
#include "wechat/async_client.h"
#include "wechat/client.h"

namespace wxcanary::probe {
namespace {

int64_t Ns(MonotonicTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The longest the loop waits without looking at the schedule: a watchdog of a second or more
// always sees a fresh heartbeat.
constexpr std::chrono::milliseconds kHeartbeat{250};

// How late a run started; one the loop started early with others (see Runner's `coalesce`)
// was on time.
double Lateness(MonotonicTime start, MonotonicTime scheduled) {
  return start > scheduled ? std::chrono::duration<double>(start - scheduled).count() : 0.0;
}

}  // namespace

// One probe on the event loop, from its Redis read to its record.
struct Runner::LoopProbe {
  std::shared_ptr<Slot> slot;
  MonotonicTime t0;
  ProbeResult result;
  // Where the probe runs, so that its callbacks capture only (runner, probe): small enough for
  // std::function to hold without a heap allocation each.
  Engine* engine = nullptr;
  source::AsyncRedis* redis = nullptr;
};

// What only the loop thread touches: its epoll loop, the non-blocking clients, and the probes
// in flight on them.
struct Runner::Engine {
  io::EventLoop loop;
  struct Redis {
    std::shared_ptr<const config::Redis> entry;  // what `conn` was made for
    std::unique_ptr<source::AsyncRedis> conn;
  };
  std::map<std::string, Redis> redis;  // by Redis name
  std::unique_ptr<wechat::AsyncClient> client;
  uint64_t client_generation = 0;
  std::vector<std::unique_ptr<LoopProbe>> spare;  // finished probes, reused
  // Each target's last fingerprint, by its index (dense and kept across reloads; a new target
  // that takes a freed index merely hashes its first token in full).
  std::vector<FingerprintMemo> fingerprints;
};

Runner::Runner(Clock& clock, prometheus::Registry& registry, std::vector<ResultSink*> sinks,
               RedisHealthFn on_redis_health, ProbeFn probe, std::chrono::nanoseconds coalesce)
    : clock_(clock),
      coalesce_(coalesce),
      sinks_(std::move(sinks)),
      on_redis_health_(std::move(on_redis_health)),
      stand_in_(probe != nullptr),
      probe_(probe ? std::move(probe) : ProbeFn(RunProbe)) {
  lateness_ = &prometheus::BuildHistogram()
                   .Name("wxcanary_probe_lateness_seconds")
                   .Help(
                       "How late probes started against their schedule (a run the loop started "
                       "early, together with one due just before it, counts as 0).")
                   .Register(registry)
                   .Add({}, prometheus::Histogram::BucketBoundaries{
                                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5});
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
  // The pool is for what the loop cannot do: Sentinel and Cluster routing, stand-in probes.
  bool pool_needed = stand_in_;
  for (const auto& [name, redis] : config.redis)
    if (!source::AsyncRedis::Supports(redis)) pool_needed = true;
  const int workers = pool_needed ? std::max(1, config.workers) : 0;
  bool rebuild;
  std::vector<std::shared_ptr<Slot>> old;
  {
    std::lock_guard lock(mu_);
    rebuild = workers != workers_;
    old = slots_;
  }
  // The pool is rebuilt only for a new size; its in-flight probes finish first.
  if (rebuild) StopPool();

  // Match the new targets to the running ones by (app_id, app_env): kept when nothing that
  // affects the probe changed (the environment and its Redis entry), else replaced.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Slot>> running;
  for (const auto& slot : old) running[{slot->target.app_id, slot->target.app_env}] = slot;
  // One copy of each Redis entry, shared by its targets (a copy per target was ~380 bytes of
  // every target's memory at 100,000); an unchanged entry keeps the running copy.
  std::map<std::string, std::shared_ptr<const config::Redis>> entries;
  for (const auto& slot : old)
    if (auto it = config.redis.find(slot->target.env.redis);
        it != config.redis.end() && *slot->redis == it->second)
      entries.emplace(it->first, slot->redis);
  for (const auto& [name, entry] : config.redis)
    if (!entries.count(name)) entries.emplace(name, std::make_shared<const config::Redis>(entry));
  std::vector<Target> wanted = TargetsOf(config);
  std::vector<std::shared_ptr<Slot>> next(wanted.size());
  std::vector<bool> taken(std::max(old.size(), wanted.size()) + 1, false);
  for (size_t i = 0; i < wanted.size(); ++i) {
    auto it = running.find({wanted[i].app_id, wanted[i].app_env});
    if (it == running.end() || !(it->second->target.env == wanted[i].env) ||
        it->second->redis != entries.at(wanted[i].env.redis))
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
    slot->redis = entries.at(slot->target.env.redis);
    slot->on_loop = !stand_in_ && source::AsyncRedis::Supports(*slot->redis);
    next[i] = std::move(slot);
  }
  // What left (or changed) is cancelled: once marked, no probe of it is recorded; a Record()
  // in progress finishes first.
  for (auto& [key, slot] : running) {
    std::lock_guard record(slot->record_mu);
    slot->removed = true;
  }
  // The sinks see the slots' own targets (`next` keeps them alive), not a copy of each.
  std::vector<const Target*> refs;
  refs.reserve(next.size());
  for (const auto& slot : next) refs.push_back(&slot->target);
  const TargetList targets(std::move(refs));
  for (auto* sink : sinks_) sink->SetTargets(targets);
  longest_probe_ns_ =
      std::chrono::duration_cast<std::chrono::nanoseconds>(LongestProbe(config)).count();
  {
    std::lock_guard lock(mu_);
    slots_ = std::move(next);
    const int connections = std::max(1, config.workers);
    if (!(wechat_ == config.wechat) || connections != connections_ || wechat_generation_ == 0) {
      wechat_ = config.wechat;
      connections_ = connections;
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
  if (rebuild) StartPool(workers);
  if (!loop_thread_.joinable()) {
    stopping_ = false;
    {
      std::lock_guard lock(mu_);
      stop_ = false;
    }
    engine_ = std::make_unique<Engine>();
    const auto now = Ns(clock_.MonotonicNow());
    heartbeat_ns_ = now;
    last_pickup_ns_ = now;
    loop_thread_ = std::thread([this] { LoopMain(); });
  } else {
    engine_->loop.Wake();
  }
}

void Runner::StartPool(int workers) {
  {
    std::lock_guard lock(mu_);
    pool_stop_ = false;
    workers_ = workers;
  }
  last_pickup_ns_ = Ns(clock_.MonotonicNow());
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) threads.emplace_back([this] { WorkerLoop(); });
  std::lock_guard lock(mu_);
  workers_threads_ = std::move(threads);
}

void Runner::Stop() {
  std::lock_guard start(start_mu_);
  StopLoop();
  StopPool();
}

void Runner::StopPool() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    pool_stop_ = true;
    workers = std::move(workers_threads_);
    workers_threads_.clear();
    workers_ = 0;
  }
  work_cv_.notify_all();
  for (auto& w : workers) w.join();
  std::lock_guard lock(mu_);
  // Runs queued for a pool that is gone never happen.
  if (!queue_.empty()) skipped_->Increment(static_cast<double>(queue_.size()));
  for (const auto& job : queue_) job.slot->in_flight = false;
  queue_.clear();
}

void Runner::StopLoop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (engine_) engine_->loop.Wake();
  if (loop_thread_.joinable()) loop_thread_.join();
  clock_.CancelWake(this);  // before the loop it wakes is gone
  engine_.reset();
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

void Runner::LoopMain() {
  Engine& engine = *engine_;
  std::vector<Job> mine;  // due runs the loop probes itself, started outside mu_
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (wedged_) {
      cv_.wait(lock, [this] { return stop_; });
      break;
    }
    auto now = clock_.MonotonicNow();
    heartbeat_ns_ = Ns(now);
    uint64_t behind = 0;
    // Runs due within `coalesce_` start on this wake-up, a little early, together: their Redis
    // reads go out in one write, their answers tend to arrive in one epoll turn, and the loop
    // sleeps once per batch instead of once per run.
    auto due = schedule_.PopDue(now + coalesce_, &behind);
    uint64_t skipped = behind;
    size_t queued = 0;
    for (const auto& d : due) {
      const auto& slot = slots_[d.target];
      if (slot->in_flight.exchange(true)) {
        ++skipped;  // the previous run of this target has not finished
        continue;
      }
      if (slot->on_loop) {
        mine.push_back({slot, d.scheduled});
      } else {
        queue_.push_back({slot, d.scheduled});
        ++queued;
      }
    }
    if (skipped) skipped_->Increment(static_cast<double>(skipped));
    // One wake-up per queued job, not a broadcast: a notify_all woke every worker for each job.
    for (size_t i = 0; i < std::min(queued, static_cast<size_t>(workers_)); ++i)
      work_cv_.notify_one();
    if (engine.client_generation != wechat_generation_) {
      if (engine.client) engine.client->Reconfigure(wechat_, connections_);
      else
        engine.client = std::make_unique<wechat::AsyncClient>(engine.loop, wechat_, connections_);
      engine.client_generation = wechat_generation_;
    }
    auto wake = now + kHeartbeat;
    if (auto next = schedule_.NextDue()) wake = std::min(wake, *next);
    lock.unlock();

    for (auto& job : mine) StartOnLoop(engine, std::move(job));
    mine.clear();
    // The loop's wait is in real time; a FakeClock reaching `wake` first wakes it.
    io::EventLoop* loop = &engine.loop;
    clock_.WakeAt(this, wake, [loop] { loop->Wake(); });
    engine.loop.RunOnce(
        std::min<std::chrono::nanoseconds>(wake - clock_.MonotonicNow(), kHeartbeat));
    lock.lock();
  }
  lock.unlock();
  // Probes still in flight end here (their clients answer them with errors): not recorded.
  stopping_ = true;
  engine.client.reset();
  engine.redis.clear();
}

void Runner::StartOnLoop(Engine& engine, Job job) {
  Slot& slot = *job.slot;
  if (slot.removed) {  // left the config while due
    Skip(slot);
    return;
  }
  const auto start = clock_.MonotonicNow();
  lateness_->Observe(Lateness(start, job.scheduled));
  auto& redis = engine.redis[slot.target.env.redis];
  // A Redis entry a reload changed gets a new connection (the old one's reads were all of
  // targets the reload replaced); an unchanged one is reused. Entries are shared, so the usual
  // check is one pointer comparison.
  if (redis.entry != slot.redis) {
    if (!redis.conn || !(redis.conn->config() == *slot.redis))
      redis.conn = std::make_unique<source::AsyncRedis>(engine.loop, *slot.redis, clock_);
    redis.entry = slot.redis;
  }
  std::unique_ptr<LoopProbe> owned;
  if (engine.spare.empty()) {
    owned = std::make_unique<LoopProbe>();
  } else {
    owned = std::move(engine.spare.back());
    engine.spare.pop_back();
  }
  LoopProbe* p = owned.release();  // until LoopDone
  p->slot = std::move(job.slot);
  p->t0 = start;  // p->result is new or was reset when its last probe was done
  p->result.started = clock_.SystemNow();
  p->engine = &engine;
  p->redis = redis.conn.get();
  p->redis->Read(p->slot->target.env, [this, p](source::TokenRead read) {
    Engine& own = *p->engine;  // the loop's, as `engine` above
    const Target& target = p->slot->target;
    // Redis' health is the connection's, not the probe's outcome: a reply such as WRONGTYPE
    // means the server is up and one key is wrong. A read ended by a stop, or by a reload that
    // replaced this target and its Redis entry, says nothing about the server.
    if (!stopping_ && !p->slot->removed)
      ReportRedis(
          target.env.redis, p->redis->healthy(),
          read.status == source::TokenRead::Status::kRedisError ? read.error : std::string());
    if (target.index >= own.fingerprints.size()) own.fingerprints.resize(target.index + 1);
    auto budget = AfterRead(target, std::move(read), clock_.MonotonicNow() - p->t0, &p->result,
                            &own.fingerprints[target.index]);
    if (!budget || stopping_) {
      LoopDone(p);
      return;
    }
    own.client->Probe(config::ProbeCallOf(target.env), p->result.token, *budget,
                      [this, p](wechat::HttpResponse response) {
                        AfterCall(p->slot->target, response, &p->result);
                        LoopDone(p);
                      });
  });
}

void Runner::LoopDone(LoopProbe* p) {
  p->result.duration = clock_.MonotonicNow() - p->t0;
  if (stopping_) {
    Skip(*p->slot);  // ended by the stop, not by the probe
  } else {
    Finish(*p->slot, p->result);
  }
  p->slot.reset();
  p->result = ProbeResult{};  // no token stays in a spare
  p->engine->spare.emplace_back(p);
}

void Runner::Finish(Slot& slot, const ProbeResult& result) {
  {
    std::lock_guard record(slot.record_mu);
    if (slot.removed) {
      skipped_->Increment();  // cancelled by a reload while in flight: not recorded
    } else {
      for (auto* sink : sinks_) sink->Record(slot.target, result);
    }
  }
  slot.in_flight = false;
}

void Runner::Skip(Slot& slot) {
  skipped_->Increment();
  slot.in_flight = false;
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
      work_cv_.wait(lock, [this] { return pool_stop_ || !queue_.empty(); });
      if (pool_stop_) return;
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
      Skip(slot);
      continue;
    }
    auto start = clock_.MonotonicNow();
    last_pickup_ns_ = Ns(start);
    lateness_->Observe(Lateness(start, job.scheduled));

    const Target& target = slot.target;
    auto& conn = redis[target.env.redis];
    // A Redis entry a reload changed gets a new connection; an unchanged one is reused.
    if (!conn || !(conn->config() == *slot.redis))
      conn = std::make_unique<source::RedisConnection>(*slot.redis, clock_);
    ProbeResult result = probe_(target, *conn, *client, clock_);
    ReportRedis(target.env.redis, conn->healthy(),
                result.outcome == Outcome::kRedisError ? result.detail : std::string());
    Finish(slot, result);
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
