#pragma once

#include <atomic>
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
#include "probe/result.h"
#include "probe/schedule.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace wxcanary::probe {

/// Owns the schedule, one scheduler thread and a fixed pool of workers. Each worker keeps its
/// own keep-alive WeChat client and one Redis connection per Redis server, so connections are
/// reused and no probe waits for another's I/O. Every result goes to every sink, once, here.
/// Public methods are thread-safe.
class Runner {
 public:
  /// Called when a Redis server's reachability changes (true = up), from a worker thread;
  /// `error` is the failing probe's Redis error when it went down, "" when up.
  using RedisHealthFn =
      std::function<void(const std::string& redis, bool up, const std::string& error)>;

  Runner(Clock& clock, prometheus::Registry& registry, std::vector<ResultSink*> sinks,
         RedisHealthFn on_redis_health);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// Starts probing `config`'s targets, or replaces the running set (reload). In-flight probes
  /// of the old set finish first; sinks get SetTargets() before the first new probe. Throws
  /// config::ConfigError (and changes nothing) when a target names a Redis `config` lacks.
  void Start(const config::Config& config);
  /// What Start() checks before it changes anything: every target's Redis exists. Throws
  /// config::ConfigError naming the target and the Redis. Pure.
  static void Check(const config::Config& config);
  /// Stops and joins every thread. Idempotent.
  void Stop();

  /// True while the scheduler loop is turning and queued probes are being picked up within
  /// max(`stall`, the longest a probe of the config may take): what the systemd watchdog pings
  /// on. Workers busy with probes against a blackholed API are slow, not stuck.
  [[nodiscard]] bool Progressing(std::chrono::milliseconds stall) const;
  [[nodiscard]] size_t target_count() const;

  /// The longest one probe of `config` may legitimately take: its timeout plus its Redis'
  /// connect and read timeouts, plus a second of slack. Pure.
  static std::chrono::milliseconds LongestProbe(const config::Config& config);

  /// Test hook: blocks the scheduler loop until Stop(), as a wedged scheduler would.
  void WedgeForTesting() { wedged_ = true; }

  /// Targets of a config, in config order, with dense indexes.
  static std::vector<Target> TargetsOf(const config::Config& config);

 private:
  struct Job {
    size_t target;
    MonotonicTime scheduled;
  };
  void SchedulerLoop();
  void WorkerLoop();
  void StopThreads();
  void ReportRedis(const std::string& name, bool up, const std::string& error);

  Clock& clock_;
  std::vector<ResultSink*> sinks_;
  RedisHealthFn on_redis_health_;
  prometheus::Histogram* lateness_;
  prometheus::Counter* skipped_;

  // One generation of targets and threads; replaced whole by Start() while no worker runs.
  config::Config config_;
  std::vector<Target> targets_;  // written under mu_ (target_count() reads it there)
  std::atomic<int64_t> longest_probe_ns_{0};
  std::unique_ptr<std::atomic<bool>[]> in_flight_;
  Schedule schedule_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // scheduler wake-ups
  std::condition_variable work_cv_;  // workers
  std::deque<Job> queue_;
  bool stop_ = false;
  std::atomic<bool> wedged_{false};
  std::thread scheduler_;
  std::vector<std::thread> workers_;

  std::atomic<int64_t> heartbeat_ns_{0};    // scheduler loop, monotonic
  std::atomic<int64_t> last_pickup_ns_{0};  // a worker took a job

  std::mutex redis_mu_;
  std::map<std::string, bool> redis_state_;  // last reported reachability
};

}  // namespace wxcanary::probe
