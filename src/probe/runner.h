#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "probe/result_sink.h"
#include "probe/schedule.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace wxcanary::source {
class RedisConnection;
}
namespace wxcanary::wechat {
class Client;
}

namespace wxcanary::probe {

/// What the daemon's runner gathers into one wake-up (see Runner's `coalesce`): at 1,000 probes
/// per second about twenty runs a turn, each started at most 20 ms before its slot (the schedule
/// stays on its slots: only that start moves). On the bench's 10,000 targets 5 ms cut the CPU
/// per probe by a third against starting each run on its own, and 20 ms about a seventh more: the
/// loop sleeps, and wakes Redis, once per batch rather than once every few runs.
inline constexpr std::chrono::milliseconds kCoalesce{20};

/// Owns the schedule and the probe engine: one event-loop thread that keeps the schedule and
/// drives every probe of a target on one Redis server with non-blocking I/O (source::AsyncRedis
/// for the read, wechat::AsyncClient for the call, both on the loop's epoll) and records the
/// results to the sinks inline. Targets on Sentinel or Cluster Redis (whose routing is
/// RedisConnection's) and every target of a runner given a stand-in ProbeFn go to a pool of
/// `workers` threads instead, each with its own blocking client and connections, as before.
/// Every result goes to every sink, once, here. Every wait on the schedule goes through the
/// clock, so a FakeClock drives the whole runner. Public methods are thread-safe.
class Runner {
 public:
  /// Called when a Redis server's reachability changes (true = up), from a worker thread;
  /// `error` is the failing probe's Redis error when it went down, "" when up.
  using RedisHealthFn =
      std::function<void(const std::string& redis, bool up, const std::string& error)>;
  /// One probe of a target over the worker's connections: RunProbe, or a test's stand-in.
  using ProbeFn =
      std::function<ProbeResult(const Target&, source::RedisConnection&, wechat::Client&, Clock&)>;

  /// `clock`, `registry` and the sinks must outlive the runner. `coalesce`: when the loop wakes
  /// for a run, every run due within `coalesce` after it starts too, that much early at most
  /// (and counted as on time by the lateness histogram); 0 starts each at its slot.
  Runner(Clock& clock, prometheus::Registry& registry, std::vector<ResultSink*> sinks,
         RedisHealthFn on_redis_health, ProbeFn probe = nullptr,
         std::chrono::nanoseconds coalesce = std::chrono::nanoseconds{0});
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// Starts probing `config`'s targets, or applies a reloaded config to the running set the way
  /// cloudprober's refreshTargets does: a target whose environment and Redis entry are
  /// unchanged keeps its schedule phase, its in-flight probe and its connections; one that left
  /// is cancelled (a probe of it still in flight is not recorded); a new or changed one starts
  /// on its own phase. The event loop keeps running; a change of `workers` (or of whether any
  /// target needs the pool) rebuilds the pool (its in-flight probes finish first); a change of
  /// `wechat` or `workers` reaches the loop's API client and each worker before its next probe.
  /// Sinks get SetTargets() before the first probe of a new target, possibly while probes of
  /// kept targets are recorded. Throws config::ConfigError (and changes nothing) when a target
  /// names a Redis `config` lacks.
  void Start(const config::Config& config);
  /// What Start() checks before it changes anything: every target's Redis exists. Throws
  /// config::ConfigError naming the target and the Redis. Pure.
  static void Check(const config::Config& config);
  /// Stops and joins every thread. Idempotent.
  void Stop();

  /// True while the event loop is turning and probes queued for the pool are being picked up
  /// within max(`stall`, the longest a probe of the config may take): what the systemd watchdog
  /// pings on. Workers busy with probes against a blackholed API are slow, not stuck.
  [[nodiscard]] bool Progressing(std::chrono::milliseconds stall) const;
  [[nodiscard]] size_t target_count() const;
  /// Worker threads running now (0 when every target is probed on the event loop).
  [[nodiscard]] size_t worker_count() const;
  /// Current targets with a run in flight: from when the loop finds the run due until it (or a
  /// worker) has recorded or dropped it. A target's next run is skipped while it is in flight,
  /// so a test on a FakeClock waits for 0 before moving the clock to that run.
  [[nodiscard]] size_t in_flight_count() const;

  /// The longest one probe of `config` may legitimately take: its timeout plus its Redis'
  /// connect and read timeouts, plus a second of slack. Pure.
  static std::chrono::milliseconds LongestProbe(const config::Config& config);

  /// Test hook: blocks the event loop until Stop(), as a wedged loop would.
  void WedgeForTesting() { wedged_ = true; }

  /// Targets of a config, in config order, with dense indexes.
  static std::vector<Target> TargetsOf(const config::Config& config);

 private:
  // One target for as long as a reload keeps it unchanged. Jobs and probes in flight hold it, so
  // a reload can drop it from the set while a probe of it is still running.
  struct Slot {
    Target target;  // never changes; target.index is kept across reloads
    std::shared_ptr<const config::Redis> redis;  // its Redis entry, shared by its targets
    bool on_loop = false;  // probed by the event loop; else by the worker pool
    std::atomic<bool> in_flight{false};
    std::mutex record_mu;              // a Record() of this target vs. its removal
    std::atomic<bool> removed{false};  // written under record_mu
  };
  struct Job {
    std::shared_ptr<Slot> slot;
    MonotonicTime scheduled;
  };
  struct LoopProbe;
  struct Engine;  // the loop thread's own state

  void LoopMain();
  void WorkerLoop();
  void StartPool(int workers);
  void StopPool();
  void StopLoop();
  /// Loop thread: the first step of a probe on the loop.
  void StartOnLoop(Engine& engine, Job job);
  /// Loop thread: the last step, recording (or skipping) the probe and keeping `p` as a spare.
  void LoopDone(LoopProbe* p);
  /// Records `result` to every sink unless the target left, and frees the target for its next
  /// run. Any thread.
  void Finish(Slot& slot, const ProbeResult& result);
  /// Counts a run that ends without being probed and frees the target. Any thread.
  void Skip(Slot& slot);
  void ReportRedis(const std::string& name, bool up, const std::string& error);

  Clock& clock_;
  std::chrono::nanoseconds coalesce_;
  std::vector<ResultSink*> sinks_;
  RedisHealthFn on_redis_health_;
  bool stand_in_ = false;  // a ProbeFn was given: every target goes to the pool
  ProbeFn probe_;
  prometheus::Histogram* lateness_;
  prometheus::Counter* skipped_;

  std::mutex start_mu_;  // one Start() at a time
  std::atomic<int64_t> longest_probe_ns_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;       // a wedged loop waits for Stop() on it
  std::condition_variable work_cv_;  // workers
  // Guarded by mu_:
  std::vector<std::shared_ptr<Slot>> slots_;  // the current set, in config order
  Schedule schedule_;                         // indexes into slots_
  config::WeChat wechat_;                     // what clients must be made for
  uint64_t wechat_generation_ = 0;            // bumped when wechat_ or connections_ change
  int connections_ = 0;                       // the loop's connections to the API (workers)
  int workers_ = 0;                           // the pool's size (0: none)
  std::deque<Job> queue_;
  bool stop_ = false;                  // the loop
  bool pool_stop_ = false;             // the pool
  std::atomic<bool> stopping_{false};  // the loop's probes still in flight are not recorded
  std::atomic<bool> wedged_{false};
  std::unique_ptr<Engine> engine_;  // created and destroyed with the loop thread
  std::thread loop_thread_;
  std::vector<std::thread> workers_threads_;

  std::atomic<int64_t> heartbeat_ns_{0};    // the loop, monotonic
  std::atomic<int64_t> last_pickup_ns_{0};  // a worker took a job

  std::mutex redis_mu_;
  std::map<std::string, bool> redis_state_;  // last reported reachability
};

}  // namespace wxcanary::probe
