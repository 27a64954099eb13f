// The runner's scheduler and worker pool driven by a FakeClock: which probes start when, what is
// skipped, how late, and what a reload keeps. The probe itself is a stand-in (no Redis, no API).
#include "probe/runner.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <future>
#include <map>
#include <set>

#include "support/fakes.h"

namespace wxcanary::probe {
namespace {

using namespace std::chrono_literals;
using testing::RecordingSink;

constexpr auto kInterval = 10s;
constexpr auto kPatience = 10s;  // real time a condition may take before the test fails

config::Config ConfigOf(const std::vector<std::string>& envs, int workers) {
  config::Config cfg;
  cfg.workers = workers;
  config::Redis r;
  r.name = "r";
  cfg.redis["r"] = r;
  config::App app;
  app.app_id = "wx00000000000000a1";
  for (const auto& name : envs) {
    config::Environment e;
    e.name = name;
    e.redis = "r";
    e.key = "ACCESS_TOKEN_CACHE:" + app.app_id;
    e.interval = kInterval;
    e.timeout = 1s;
    app.environments.push_back(e);
  }
  cfg.apps.push_back(app);
  return cfg;
}

// Stands in for RunProbe: notes each call and, for the environments held, blocks until released.
class FakeProbes {
 public:
  struct Call {
    std::string env;
    MonotonicTime at;
    const source::RedisConnection* redis;
    const wechat::Client* client;
    std::chrono::milliseconds timeout;
  };

  Runner::ProbeFn Fn() {
    return [this](const Target& t, source::RedisConnection& redis, wechat::Client& client,
                  Clock& clock) {
      std::unique_lock lock(mu_);
      calls_.push_back({t.app_env, clock.MonotonicNow(), &redis, &client, t.env.timeout});
      changed_.notify_all();
      changed_.wait(lock, [&] { return !held_.count(t.app_env); });
      return ProbeResult{};
    };
  }
  void Hold(const std::string& env) {
    std::lock_guard lock(mu_);
    held_.insert(env);
  }
  void Release(const std::string& env) {
    std::lock_guard lock(mu_);
    held_.erase(env);
    changed_.notify_all();
  }
  void ReleaseAll() {
    std::lock_guard lock(mu_);
    held_.clear();
    changed_.notify_all();
  }
  /// Waits (in real time, bounded) until `n` probes have started.
  bool WaitForCalls(size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kPatience, [&] { return calls_.size() >= n; });
  }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::set<std::string> held_;
  std::vector<Call> calls_;
};

// Waits until `pred` holds for the sink's records (bounded in real time).
template <typename Pred>
bool WaitForRecords(const RecordingSink& sink, Pred pred) {
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (!pred(sink.records())) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

double Counter(prometheus::Registry& registry, const std::string& name) {
  for (const auto& f : registry.Collect())
    if (f.name == name) return f.metric.at(0).counter.value;
  return -1;
}

std::pair<uint64_t, double> Histogram(prometheus::Registry& registry, const std::string& name) {
  for (const auto& f : registry.Collect())
    if (f.name == name)
      return {f.metric.at(0).histogram.sample_count, f.metric.at(0).histogram.sample_sum};
  return {0, -1};
}

class RunnerTest : public ::testing::Test {
 protected:
  ~RunnerTest() override {
    probes_.ReleaseAll();
    runner_.Stop();
  }

  // Moves the clock to `t` and waits until the scheduler has acted on it and waits again.
  void AdvanceTo(MonotonicTime t) {
    clock_.Advance(t - clock_.MonotonicNow());
    const auto until = std::chrono::steady_clock::now() + kPatience;
    while (clock_.waiters() != 1) {
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "the scheduler never waited again";
      std::this_thread::yield();
    }
  }
  // Waits until no run is queued or in a worker. A stand-in probe takes no time on the clock,
  // but its worker may still be reporting and recording it in real time; a run of the same
  // target that comes due before then is rightly skipped as still in flight.
  bool WaitForRunsToFinish() {
    const auto until = std::chrono::steady_clock::now() + kPatience;
    while (runner_.in_flight_count() != 0) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::yield();
    }
    return true;
  }
  // Where the schedule puts each environment's runs: the oracle the runner must follow.
  std::map<std::string, MonotonicTime> FirstRuns(const config::Config& cfg) {
    Schedule s;
    auto targets = Runner::TargetsOf(cfg);
    s.Reset(targets, clock_.MonotonicNow());
    std::map<std::string, MonotonicTime> out;
    for (const auto& d : s.PopDue(clock_.MonotonicNow() + kInterval))
      out[targets[d.target].app_env] = d.scheduled;
    return out;
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  RecordingSink sink_;
  FakeProbes probes_;
  Runner runner_{clock_, registry_, {&sink_}, nullptr, probes_.Fn()};
};

TEST_F(RunnerTest, every_scheduled_probe_starts_once_per_interval_on_time) {
  const auto cfg = ConfigOf({"a", "b", "c"}, 2);
  const auto first = FirstRuns(cfg);
  const auto start = clock_.MonotonicNow();
  runner_.Start(cfg);
  // Step the clock from one due run to the next over three intervals.
  std::vector<MonotonicTime> due;
  for (int k = 0; k < 3; ++k)
    for (const auto& [env, at] : first) due.push_back(at + k * kInterval);
  std::sort(due.begin(), due.end());
  for (size_t i = 0; i < due.size(); ++i) {
    AdvanceTo(due[i]);
    ASSERT_TRUE(probes_.WaitForCalls(i + 1)) << "run " << i << " never started";
    // Probes here take no time: the clock moves on only once this one has finished.
    ASSERT_TRUE(WaitForRunsToFinish()) << "run " << i << " never finished";
  }
  ASSERT_TRUE(WaitForRecords(sink_, [](const auto& r) { return r.size() == 9; }));
  std::map<std::string, std::vector<MonotonicTime>> by_env;
  for (const auto& c : probes_.calls()) by_env[c.env].push_back(c.at);
  ASSERT_EQ(by_env.size(), 3u);
  for (const auto& [env, at] : by_env) {
    ASSERT_EQ(at.size(), 3u) << env;
    EXPECT_EQ(at[0], first.at(env)) << env;
    EXPECT_GT(at[0], start) << env;
    EXPECT_LE(at[0], start + kInterval) << env;
    EXPECT_EQ(at[1] - at[0], kInterval) << env;
    EXPECT_EQ(at[2] - at[1], kInterval) << env;
  }
  EXPECT_EQ(Counter(registry_, "wxcanary_probes_skipped_total"), 0);
  EXPECT_EQ(Histogram(registry_, "wxcanary_probe_lateness_seconds"),
            (std::pair<uint64_t, double>{9, 0.0}));
}

TEST_F(RunnerTest, lateness_is_how_long_after_its_slot_a_probe_started) {
  const auto cfg = ConfigOf({"a"}, 1);
  const auto first = FirstRuns(cfg).at("a");
  runner_.Start(cfg);
  AdvanceTo(first - 1ms);
  EXPECT_EQ(probes_.calls().size(), 0u);
  AdvanceTo(first + 2s);  // the scheduler slept through the slot (a stopped process, say)
  ASSERT_TRUE(probes_.WaitForCalls(1));
  EXPECT_EQ(probes_.calls()[0].at, first + 2s);
  ASSERT_TRUE(WaitForRecords(sink_, [](const auto& r) { return r.size() == 1; }));
  EXPECT_EQ(Histogram(registry_, "wxcanary_probe_lateness_seconds"),
            (std::pair<uint64_t, double>{1, 2.0}));
}

// The daemon's loop starts runs due within its coalescing window together (issue 19): each at
// most the window early, never late, and the lateness histogram counts them as on time.
TEST_F(RunnerTest, runs_due_within_the_coalescing_window_start_together_a_little_early) {
  constexpr auto kWindow = 3s;
  prometheus::Registry registry;
  RecordingSink sink;
  Runner runner{clock_, registry, {&sink}, nullptr, probes_.Fn(), kWindow};
  // Eight runs in a 10 s interval: at least two are within 10 s / 7 < 3 s of each other.
  const auto cfg = ConfigOf({"a", "b", "c", "d", "e", "f", "g", "h"}, 2);
  const auto first = FirstRuns(cfg);
  std::vector<std::pair<MonotonicTime, std::string>> order;
  for (const auto& [env, at] : first) order.emplace_back(at, env);
  std::sort(order.begin(), order.end());
  runner.Start(cfg);
  std::map<std::string, MonotonicTime> started;
  for (const auto& [at, env] : order) {
    if (started.count(env)) continue;  // went with an earlier wake-up
    AdvanceTo(at);
    ASSERT_TRUE(probes_.WaitForCalls(started.size() + 1)) << env << " never started";
    const auto until = std::chrono::steady_clock::now() + kPatience;
    while (runner.in_flight_count() != 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), until) << env << " never finished";
      std::this_thread::yield();
    }
    for (const auto& c : probes_.calls()) started.emplace(c.env, c.at);
    ASSERT_EQ(started.at(env), at) << env << ": the run the loop woke for starts at its slot";
  }
  ASSERT_EQ(started.size(), order.size());
  std::set<MonotonicTime> wakes;
  for (const auto& [at, env] : order) {
    EXPECT_LE(started.at(env), at) << env << " started late";
    EXPECT_LE(at - started.at(env), kWindow) << env << " started more than the window early";
    wakes.insert(started.at(env));
  }
  EXPECT_LT(wakes.size(), order.size()) << "no two runs shared a wake-up";
  // The last wake-up may also take the next interval's first run, when it is that close.
  const size_t runs = probes_.calls().size();
  EXPECT_LE(runs, order.size() + 1);
  ASSERT_TRUE(WaitForRecords(sink, [&](const auto& r) { return r.size() == runs; }));
  EXPECT_EQ(Histogram(registry, "wxcanary_probe_lateness_seconds"),
            (std::pair<uint64_t, double>{runs, 0.0}));
  runner.Stop();
}

TEST_F(RunnerTest, runs_that_find_their_target_still_in_flight_or_queued_are_skipped_and_counted) {
  const auto cfg = ConfigOf({"a", "b"}, 1);  // one worker for two targets
  const auto first = FirstRuns(cfg);
  probes_.Hold("a");
  probes_.Hold("b");
  runner_.Start(cfg);
  std::vector<MonotonicTime> due;
  for (int k = 0; k < 3; ++k)
    for (const auto& [env, at] : first) due.push_back(at + k * kInterval);
  std::sort(due.begin(), due.end());
  for (const auto& at : due) AdvanceTo(at);
  // The first run to come is in the worker, the other waits for it; every later run of both
  // finds its target still busy.
  ASSERT_TRUE(probes_.WaitForCalls(1));
  EXPECT_EQ(probes_.calls().size(), 1u);
  EXPECT_EQ(Counter(registry_, "wxcanary_probes_skipped_total"), 4);
  probes_.ReleaseAll();
  ASSERT_TRUE(WaitForRecords(sink_, [](const auto& r) { return r.size() == 2; }));
  EXPECT_EQ(probes_.calls().size(), 2u);
  // Every scheduled run is a probe or a skip.
  EXPECT_EQ(sink_.records().size() + Counter(registry_, "wxcanary_probes_skipped_total"),
            due.size());
}

TEST_F(RunnerTest, stop_joins_every_thread_and_nothing_runs_after_it) {
  const auto cfg = ConfigOf({"a", "b"}, 3);
  runner_.Start(cfg);
  EXPECT_EQ(runner_.worker_count(), 3u);
  runner_.Stop();
  EXPECT_EQ(runner_.worker_count(), 0u);
  EXPECT_EQ(clock_.waiters(), 0u);  // the scheduler is gone too
  clock_.Advance(3 * kInterval);
  EXPECT_EQ(probes_.calls().size(), 0u);
  runner_.Stop();  // idempotent
}

TEST_F(RunnerTest,
       a_reload_that_changes_one_target_leaves_the_others_in_flight_probe_and_schedule) {
  auto cfg = ConfigOf({"a", "b", "c"}, 3);
  const auto first = FirstRuns(cfg);
  for (const char* env : {"a", "b", "c"}) probes_.Hold(env);
  runner_.Start(cfg);
  auto last = std::max({first.at("a"), first.at("b"), first.at("c")});
  AdvanceTo(last);
  ASSERT_TRUE(probes_.WaitForCalls(3));  // all three in flight, held

  auto next = cfg;
  next.apps[0].environments[1].timeout = 2s;  // b changes; a and c do not
  auto reload = std::async(std::launch::async, [&] { runner_.Start(next); });
  if (reload.wait_for(kPatience) != std::future_status::ready) {
    probes_.ReleaseAll();
    FAIL() << "the reload waited for the in-flight probes of targets it did not change";
  }
  reload.get();
  EXPECT_EQ(runner_.worker_count(), 3u);  // same pool

  // The kept targets' probes, started before the reload, are recorded as usual...
  probes_.Release("a");
  probes_.Release("c");
  ASSERT_TRUE(WaitForRecords(sink_, [](const auto& r) { return r.size() == 2; }));
  // ...the changed target's old probe is not: it was cancelled, and counted as a skip.
  probes_.Release("b");
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (Counter(registry_, "wxcanary_probes_skipped_total") < 1 &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  EXPECT_EQ(Counter(registry_, "wxcanary_probes_skipped_total"), 1);
  std::set<std::string> recorded;
  for (const auto& [t, r] : sink_.records()) recorded.insert(t.app_env);
  EXPECT_EQ(recorded, (std::set<std::string>{"a", "c"}));
  // Recorded is not yet finished: a and c may still be in flight for a moment.
  ASSERT_TRUE(WaitForRunsToFinish());

  // One interval on: a and c run on their old slots with their old connections; b with its
  // new timeout.
  const auto before = probes_.calls();
  std::vector<std::pair<MonotonicTime, std::string>> due;
  for (const auto& [env, at] : first) due.emplace_back(at + kInterval, env);
  std::sort(due.begin(), due.end());
  for (size_t i = 0; i < due.size(); ++i) {
    AdvanceTo(due[i].first);
    ASSERT_TRUE(probes_.WaitForCalls(before.size() + i + 1)) << due[i].second;
  }
  const auto after = probes_.calls();
  ASSERT_EQ(after.size(), 6u);
  std::map<std::string, FakeProbes::Call> old_call, new_call;
  for (size_t i = 0; i < 3; ++i) old_call[after[i].env] = after[i];
  for (size_t i = 3; i < 6; ++i) new_call[after[i].env] = after[i];
  for (const char* env : {"a", "c"}) {
    EXPECT_EQ(new_call.at(env).at, first.at(env) + kInterval) << env;
    EXPECT_EQ(new_call.at(env).timeout, 1s) << env;
  }
  EXPECT_EQ(new_call.at("b").timeout, 2s);
  EXPECT_EQ(new_call.at("b").at, first.at("b") + kInterval);  // the phase is the target's
  // The workers and their connections survived the reload.
  std::set<const void*> connections;
  for (const auto& [env, c] : old_call) connections.insert(c.redis);
  for (const auto& [env, c] : new_call)
    EXPECT_TRUE(connections.count(c.redis)) << env << " probed over a new Redis connection";
  EXPECT_EQ(Counter(registry_, "wxcanary_probes_skipped_total"), 1);
}

TEST_F(RunnerTest, a_reload_that_changes_workers_rebuilds_the_pool_and_keeps_the_targets) {
  auto cfg = ConfigOf({"a", "b"}, 2);
  const auto first = FirstRuns(cfg);
  runner_.Start(cfg);
  auto next = cfg;
  next.workers = 4;
  runner_.Start(next);
  EXPECT_EQ(runner_.worker_count(), 4u);
  EXPECT_EQ(runner_.target_count(), 2u);
  auto last = std::max(first.at("a"), first.at("b"));
  AdvanceTo(std::min(first.at("a"), first.at("b")));
  ASSERT_TRUE(probes_.WaitForCalls(1));
  AdvanceTo(last);
  ASSERT_TRUE(probes_.WaitForCalls(2));
  for (const auto& c : probes_.calls()) EXPECT_EQ(c.at, first.at(c.env)) << c.env;
}

// Notes the targets each SetTargets() hands over (the runner's own, not copies) and checks that
// Record() gets the very target SetTargets() gave for its index.
class TargetsSink final : public ResultSink {
 public:
  struct Seen {
    std::string app_env;
    size_t index;
    const Target* target;
    std::chrono::milliseconds timeout;
  };
  void SetTargets(const TargetList& targets) override {
    std::lock_guard lock(mu_);
    current_.clear();
    std::vector<Seen> set;
    for (const auto& t : targets) {
      set.push_back({t.app_env, t.index, &t, t.env.timeout});
      current_[t.index] = &t;
    }
    sets_.push_back(std::move(set));
  }
  void Record(const Target& target, const ProbeResult&) override {
    std::lock_guard lock(mu_);
    auto it = current_.find(target.index);
    if (it == current_.end() || it->second != &target || target.app_env.empty()) ++strangers_;
    ++records_;
  }
  std::vector<std::vector<Seen>> sets() const {
    std::lock_guard lock(mu_);
    return sets_;
  }
  int strangers() const {
    std::lock_guard lock(mu_);
    return strangers_;
  }
  int records() const {
    std::lock_guard lock(mu_);
    return records_;
  }

 private:
  mutable std::mutex mu_;
  std::map<size_t, const Target*> current_;
  std::vector<std::vector<Seen>> sets_;
  int strangers_ = 0;
  int records_ = 0;
};

TEST_F(RunnerTest,
       sinks_get_the_runners_own_targets_and_a_kept_one_stays_the_same_across_a_reload) {
  TargetsSink sink;
  Runner runner{clock_, registry_, {&sink}, nullptr, probes_.Fn()};
  auto cfg = ConfigOf({"a", "b"}, 1);
  const auto first = FirstRuns(cfg);
  runner.Start(cfg);
  auto next = cfg;
  next.apps[0].environments[1].timeout = 2s;  // b changes; a does not
  config::Environment c = next.apps[0].environments[0];
  c.name = "c";
  next.apps[0].environments.push_back(c);  // c is new
  runner.Start(next);

  const auto sets = sink.sets();
  ASSERT_EQ(sets.size(), 2u);
  ASSERT_EQ(sets[0].size(), 2u);
  ASSERT_EQ(sets[1].size(), 3u);
  std::map<std::string, TargetsSink::Seen> before, after;
  for (const auto& s : sets[0]) before.emplace(s.app_env, s);
  for (const auto& s : sets[1]) after.emplace(s.app_env, s);
  // The kept target is the same object with the same index; the changed one is new, with its new
  // environment; indexes stay unique.
  EXPECT_EQ(after.at("a").target, before.at("a").target);
  EXPECT_EQ(after.at("a").index, before.at("a").index);
  EXPECT_EQ(after.at("b").timeout, 2s);
  EXPECT_EQ(before.at("b").timeout, 1s);
  std::set<size_t> indexes;
  for (const auto& s : sets[1]) indexes.insert(s.index);
  EXPECT_EQ(indexes.size(), 3u);

  // Probes after the reload are recorded with the targets SetTargets() gave.
  const auto c_first = FirstRuns(next).at("c");
  AdvanceTo(std::max({first.at("a"), first.at("b"), c_first}));  // runner_ is not started
  ASSERT_TRUE(probes_.WaitForCalls(3));
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (sink.records() < 3 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  EXPECT_EQ(sink.records(), 3);
  EXPECT_EQ(sink.strangers(), 0);
  runner.Stop();
}

TEST_F(RunnerTest, a_target_naming_an_unknown_redis_is_refused_and_nothing_changes) {
  auto cfg = ConfigOf({"a"}, 1);
  runner_.Start(cfg);
  auto bad = cfg;
  bad.apps[0].environments[0].redis = "nope";
  try {
    runner_.Start(bad);
    FAIL() << "no error";
  } catch (const config::ConfigError& e) {
    EXPECT_STREQ(e.what(), "target wx00000000000000a1/a: unknown redis \"nope\"");
  }
  EXPECT_EQ(runner_.target_count(), 1u);
  EXPECT_EQ(runner_.worker_count(), 1u);
}

}  // namespace
}  // namespace wxcanary::probe
