// Correctness at load through the real binary: 500 targets at a 1 s interval (500 probes/s,
// each a Redis read plus an HTTP POST to wxsim) for a few seconds. Every scheduled probe must
// show up in wxcanary_probes_total, few skipped, all ok but for timeouts from a stalled box
// (bounded). scripts/bench measures the 10k case.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kApps = 167;  // x 3 environments = 501 targets, one slot trimmed below
constexpr int kTargets = 500;
const char* const kEnvs[] = {"prod", "test", "dev"};

std::string AppId(int a) {
  char id[32];
  std::snprintf(id, sizeof id, "wxscale%011d", a);
  return id;
}

// Per-target totals over every outcome, and the sum of the non-ok ones, from one scrape.
struct Totals {
  std::map<std::string, double> per_target;  // "app/env" -> sum over outcomes
  double not_ok = 0;
  double skipped = -1;
};

std::string LabelValue(const std::string& line, const std::string& name) {
  auto at = line.find(name + "=\"");
  if (at == std::string::npos) return "";
  at += name.size() + 2;
  return line.substr(at, line.find('"', at) - at);
}

Totals Parse(const std::string& text) {
  Totals t;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("wxcanary_probes_skipped_total", 0) == 0) {
      t.skipped = std::stod(line.substr(line.rfind(' ') + 1));
    } else if (line.rfind("wxcanary_probes_total{", 0) == 0) {
      double v = std::stod(line.substr(line.rfind(' ') + 1));
      t.per_target[LabelValue(line, "app_id") + "/" + LabelValue(line, "app_env")] += v;
      if (LabelValue(line, "outcome") != "ok") t.not_ok += v;
    }
  }
  return t;
}

// The non-zero samples of outcomes other than ok, for a failure message.
std::string NotOkLines(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("wxcanary_probes_total{", 0) == 0 && LabelValue(line, "outcome") != "ok" &&
        line.substr(line.rfind(' ') + 1) != "0")
      out += line + "\n";
  return out;
}

// The daemon's events for probes that were not ok, split into probes that ran out of their
// timeout (in the call, or already in the Redis read) and every other failure.
struct FailedProbes {
  std::string timeouts, others;
  int timeout_count = 0;
};

FailedProbes FailedProbeEvents(const std::string& log) {
  FailedProbes f;
  std::istringstream events(log);
  std::string line;
  while (std::getline(events, line)) {
    if (line.find("\"event.action\":\"probe\"") == std::string::npos ||
        line.find("\"event.outcome\":\"success\"") != std::string::npos)
      continue;
    if (line.find("(curl error 28)") != std::string::npos ||
        line.find("used up before the call") != std::string::npos) {
      f.timeouts += line + "\n";
      ++f.timeout_count;
    } else {
      f.others += line + "\n";
    }
  }
  return f;
}

TEST(ScaleLoad, every_scheduled_probe_of_500_targets_at_1s_is_accounted_for) {
  TempDir dir;
  {
    std::ofstream apps(dir.path() / "apps.txt");
    for (int a = 0; a < kApps; ++a) apps << AppId(a) << ":secret" << a << "\n";
  }
  WxSim sim({"--apps-file", (dir.path() / "apps.txt").string(), "--threads", "64"});
  RedisServer redis;
  // One token per app, cached under every environment's key (as three services sharing one
  // token would), written with a single MSET.
  std::vector<std::string> mset{"MSET"};
  for (int a = 0; a < kApps; ++a) {
    std::string token = sim.FetchToken(AppId(a), "secret" + std::to_string(a));
    for (const char* env : kEnvs) {
      mset.push_back("tok:" + AppId(a) + ":" + env);
      mset.push_back(token);
    }
  }
  ASSERT_EQ(redis.Cli(mset), "OK");

  ConfigYaml y(sim.base_url());
  y.Workers(16)
      .Default("interval", "1s")
      .Default("timeout", "900ms")
      .Default("probe", "msg_sec_check");
  y.Redis("r", redis.address(), {{"connect_timeout", "1s"}, {"read_timeout", "1s"}});
  int targets = 0;
  for (int a = 0; a < kApps; ++a) {
    y.App(AppId(a));
    for (const char* env : kEnvs) {
      if (targets++ == kTargets) break;
      y.Env(env, "r", {{"key", "tok:{app_id}:{app_env}"}});
    }
  }
  ASSERT_EQ(targets, kTargets + 1);  // the loop counted the trimmed slot too
  Daemon d(y);

  // Every target's first run falls within one interval of start; wait until all have run.
  ASSERT_TRUE(d.WaitFor(
      [](const Scrape& s) {
        return s.Value("wxcanary_probe_lateness_seconds_count").value_or(0) >= kTargets;
      },
      std::chrono::seconds{20}))
      << d.Output().substr(0, 2000);

  auto a0 = Clock::now();
  Totals first = Parse(d.Get("/metrics").second);
  auto a1 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds{4});
  auto b0 = Clock::now();
  std::string last_text = d.Get("/metrics").second;
  auto b1 = Clock::now();
  Totals last = Parse(last_text);

  auto secs = [](Clock::duration x) { return std::chrono::duration<double>(x).count(); };
  // The window lies between the inner and outer edges of the two scrapes.
  const double w_min = secs(b0 - a1), w_max = secs(b1 - a0);
  ASSERT_EQ(first.per_target.size(), static_cast<size_t>(kTargets));
  ASSERT_EQ(last.per_target.size(), static_cast<size_t>(kTargets));
  double total = 0;
  for (const auto& [target, count] : last.per_target) {
    double delta = count - first.per_target[target];
    total += delta;
    // At a 1 s interval a target runs floor(w) or ceil(w) times in a window of w seconds;
    // one more either way for a probe in flight across a scrape.
    EXPECT_GE(delta, std::floor(w_min) - 1) << target;
    EXPECT_LE(delta, std::ceil(w_max) + 1) << target;
  }
  // Summed over targets the phases average out: 500 probes per second of window, less at
  // most the probes in flight or still queued at the second scrape.
  EXPECT_GE(total, kTargets * w_min - 50) << "window " << w_min << ".." << w_max << " s";
  EXPECT_LE(total, kTargets * w_max + 50) << "window " << w_min << ".." << w_max << " s";
  // Correct at load means every probe ok, but for one thing a busy box does to a sanitized
  // process: stall it. The ASan build on 2 shared cores was seen frozen for 1-3 s (perf sched:
  // all 16 workers blocked on the kernel's mmap lock or behind it in ASan's allocator), and
  // the probes in flight ran out of their timeout. Those are allowed, at most 2% of all
  // probes; any other failure (refused, reset, a bad answer, a Redis error) fails the test.
  double all_probes = 0;
  for (const auto& [target, count] : last.per_target) all_probes += count;
  FailedProbes failed = FailedProbeEvents(d.Output());
  EXPECT_EQ(failed.others, "");
  // Every failure the metrics counted must be one of the logged timeouts (the log runs on past
  // the scrape, so it may hold more): a dropped log event cannot hide another failure.
  EXPECT_LE(last.not_ok, failed.timeout_count) << NotOkLines(last_text);
  EXPECT_LE(last.not_ok, 0.02 * all_probes) << NotOkLines(last_text) << failed.timeouts;
  if (last.not_ok > 0)
    std::cout << "[ scale ] " << last.not_ok << " of " << all_probes << " probes timed out ("
              << failed.timeout_count << " timeout events logged)\n";
  // A run is skipped only while the previous run of the same target is still in flight, i.e.
  // when the box cannot keep up. ctest runs this test alone (RUN_SERIAL): squeezed between
  // other tests, the ASan build skipped up to a third. The bound leaves room for a slow CI
  // box; zero skips at 10k targets is a speed target, measured by scripts/bench.
  EXPECT_LT(last.skipped, 0.2 * total) << "skipped " << last.skipped << " of " << total;
  // Lateness is reported, not asserted: it is a speed target, measured by scripts/bench; here
  // (sanitized build, shared 2 cores) it only says whether the accounting ran under pressure.
  Scrape s(last_text);
  double started = s.Value("wxcanary_probe_lateness_seconds_count").value_or(0);
  double on_time = s.Value("wxcanary_probe_lateness_seconds_bucket", {{"le", "0.25"}}).value_or(0);
  std::cout << "[ scale ] window " << w_min << ".." << w_max << " s, " << total
            << " probes counted, expected " << kTargets * (w_min + w_max) / 2 << "; " << on_time
            << "/" << started << " started within 250 ms\n";
}

}  // namespace
}  // namespace wxcanary::testing
