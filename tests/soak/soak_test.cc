// The chaos soak: the wxcanary binary with a few hundred targets against a real redis-server and
// wxsim on a fast clock, while a chaos loop kills and restarts Redis, injects API faults,
// reloads valid and invalid configs and rotates tokens. The suite runs it for ~60 s; scripts/soak
// runs the same binary longer through WXCANARY_SOAK_SECONDS.
//
// Knobs (environment): WXCANARY_SOAK_SECONDS (default 60), WXCANARY_SOAK_APPS (default 100; three
// environments each), WXCANARY_SOAK_TIME_SCALE (wxsim sim seconds per real second, default 60).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kEnvs[] = {"prod", "test", "dev"};
constexpr const char* kProbePath = "/cgi-bin/get_api_domain_ip";
constexpr double kIntervalSeconds = 2.0;
constexpr int kWorkers = 16;

// Outcomes nothing in the soak injects: any count is a misclassification.
constexpr const char* kNeverInjected[] = {"token_invalid", "token_expired", "token_malformed",
                                          "quota"};

long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtol(v, nullptr, 10) : fallback;
}

std::string AppId(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wxsoak%012d", i);
  return buf;
}

std::string Secret(int i) { return "soak-secret-" + std::to_string(i) + "-0123456789abcdef"; }

std::string Config(const WxSim& sim, const RedisServer& redis, int apps, int revision) {
  ConfigYaml y(sim.base_url());
  y.WeChat("timeout", "500ms").Workers(kWorkers);
  y.Default("interval", "2s").Default("timeout", "500ms").Default("probe", "api_domain_ip");
  y.Redis("main", redis.address());
  for (int i = 0; i < apps; ++i) {
    y.App(AppId(i));
    for (const char* env : kEnvs) y.Env(env, "main", {{"key", "soak:{app_id}:{app_env}"}});
  }
  return "# soak config revision " + std::to_string(revision) + "\n" + y.str();
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

double Median(std::vector<long> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[v.size() / 2]);
}

// Per-target values of one metric family from the exposition text: (app_id/app_env) -> value.
std::map<std::string, double> PerTarget(const std::string& text, const std::string& name) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  const std::string head = name + "{";
  while (std::getline(in, line)) {
    if (line.rfind(head, 0) != 0) continue;
    const auto app = line.find("app_id=\"");
    const auto env = line.find("app_env=\"");
    const auto close = line.rfind('}');
    if (app == std::string::npos || env == std::string::npos || close == std::string::npos)
      continue;
    const std::string key = line.substr(app + 8, line.find('"', app + 8) - app - 8) + "/" +
                            line.substr(env + 9, line.find('"', env + 9) - env - 9);
    out[key] += std::strtod(line.c_str() + close + 1, nullptr);
  }
  return out;
}

std::map<std::string, double> OutcomeTotals(const Scrape& s) {
  std::map<std::string, double> out;
  for (const char* o : {"ok", "token_invalid", "token_malformed", "token_expired", "token_missing",
                        "quota", "api_error", "transport_error", "bad_response", "redis_error"})
    out[o] = s.Sum("wxcanary_probes_total", {{"outcome", o}});
  return out;
}

std::string Show(const std::map<std::string, double>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += k + "=" + std::to_string(static_cast<long long>(v)) + " ";
  return s;
}

class Soak : public ::testing::Test {
 protected:
  const long seconds_ = EnvLong("WXCANARY_SOAK_SECONDS", 60);
  const int apps_ = static_cast<int>(EnvLong("WXCANARY_SOAK_APPS", 100));
  const long time_scale_ = EnvLong("WXCANARY_SOAK_TIME_SCALE", 60);
  const int targets_ = apps_ * static_cast<int>(std::size(kEnvs));

  TempDir dir_;
  RedisServer redis_;
  std::unique_ptr<WxSim> sim_;
  std::unordered_set<std::string> tokens_;  // every token handed out: none may reach the output

  void SetUp() override {
    const auto apps_file = dir_.path() / "apps.txt";
    std::ofstream out(apps_file);
    for (int i = 0; i < apps_; ++i) out << AppId(i) << ":" << Secret(i) << "\n";
    out.close();
    sim_ = std::make_unique<WxSim>(
        std::vector<std::string>{"--apps-file", apps_file.string(), "--time-scale",
                                 std::to_string(time_scale_), "--threads", "48"});
  }

  // What every app does on refresh: fetch a token, cache it where each environment reads it.
  // One MSET keeps the whole rotation inside wxsim's grace window.
  void RotateTokens() {
    std::vector<std::string> mset = {"MSET"};
    for (int i = 0; i < apps_; ++i) {
      const std::string token = sim_->FetchToken(AppId(i), Secret(i));
      tokens_.insert(token);
      for (const char* env : kEnvs) {
        mset.push_back("soak:" + AppId(i) + ":" + env);
        mset.push_back(token);
      }
    }
    const std::string reply = redis_.Cli(mset);
    ASSERT_EQ(reply, "OK") << "MSET failed";
  }
};

struct Phase {
  std::string name;
  std::set<std::string> allowed;  // outcomes (besides ok) this phase may produce
  std::string expected;           // outcome that must grow, "" when none
};

TEST_F(Soak, survives_chaos_with_every_probe_accounted_and_flat_memory) {
  RotateTokens();
  // Keep ASan's quarantine small so RSS reflects live memory rather than recently freed blocks.
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::vector<std::string> env = {std::string("ASAN_OPTIONS=") + (asan ? asan : "") +
                                  ":quarantine_size_mb=16:malloc_context_size=10"};
  int revision = 0;
  const auto started = Clock::now();
  Daemon d(Config(*sim_, redis_, apps_, revision), {}, env);
  const pid_t pid = d.process().pid();
  const auto deadline = started + std::chrono::seconds(seconds_);

  std::vector<std::pair<double, long>> rss;  // (seconds since start, KiB)
  auto sample = [&] {
    rss.emplace_back(std::chrono::duration<double>(Clock::now() - started).count(), RssKiB(pid));
  };
  // Waits up to `timeout`, sampling RSS each second; stops early when `done` (if given) holds.
  auto wait = [&](std::chrono::milliseconds timeout, const std::function<bool()>& done = {}) {
    const auto until = Clock::now() + timeout;
    auto next_sample = Clock::now();
    while (Clock::now() < until) {
      ASSERT_TRUE(d.process().running()) << "wxcanary died:\n" << d.Output().substr(0, 20000);
      if (Clock::now() >= next_sample) {
        sample();
        next_sample += 1s;
      }
      if (done && done()) return;
      std::this_thread::sleep_for(100ms);
    }
  };
  // True when every target has had an ok probe since `since` (wall clock).
  auto all_ok_since = [&](double since) {
    const auto last =
        PerTarget(d.ScrapeMetrics().text(), "wxcanary_probe_last_success_timestamp_seconds");
    if (static_cast<int>(last.size()) != targets_) return false;
    return std::all_of(last.begin(), last.end(),
                       [&](const auto& kv) { return kv.second >= since; });
  };
  auto wall_now = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };

  // Warm-up: every target probes ok once before any chaos.
  const double t0 = wall_now();
  wait(20s, [&] { return all_ok_since(t0 - 1); });
  ASSERT_TRUE(all_ok_since(t0 - 1)) << "not every target probed ok within 20 s";

  // Interleaved so even the suite's 60 s run reaches reloads and a rotation.
  const std::vector<std::pair<Phase, std::function<void()>>> chaos = {
      {{"latency", {"transport_error"}, "transport_error"},
       [&] {
         sim_->InjectFault({{"path", kProbePath}, {"latency_ms", 800}});
       }},
      {{"reload_invalid", {}, ""}, [&] { d.Reload("apps: [this is not a valid config"); }},
      {{"http_500", {"transport_error"}, "transport_error"},
       [&] {
         sim_->InjectFault({{"path", kProbePath}, {"http_status", 500}});
       }},
      {{"reload_valid", {}, ""}, [&] { d.Reload(Config(*sim_, redis_, apps_, ++revision)); }},
      {{"garbage", {"bad_response"}, "bad_response"},
       [&] {
         sim_->InjectFault({{"path", kProbePath}, {"body", "garbage"}});
       }},
      // A restarted Redis is empty until the apps write their tokens again: token_missing.
      {{"redis_restart", {"redis_error", "token_missing"}, "redis_error"}, [&] { redis_.Kill(); }},
      {{"errcode_-1", {"api_error"}, "api_error"},
       [&] {
         sim_->InjectFault({{"path", kProbePath}, {"errcode", -1}});
       }},
      {{"rotate", {}, ""}, [&] { RotateTokens(); }},
      {{"reset", {"transport_error"}, "transport_error"},
       [&] {
         sim_->InjectFault({{"path", kProbePath}, {"reset", true}});
       }},
  };

  std::map<std::string, int> ran;
  std::vector<std::string> failures;
  int reloads = 0, rotations = 1;
  auto last_rotation = Clock::now();
  size_t step = 0;
  while (Clock::now() + 6s < deadline) {
    const auto& [phase, inject] = chaos[step++ % chaos.size()];
    const auto before = OutcomeTotals(d.ScrapeMetrics());
    inject();
    wait(2s);
    if (phase.name == "redis_restart") {
      EXPECT_TRUE(d.WaitFor([](const Scrape& s) { return s.Value("wxcanary_redis_up") == 0; }, 5s))
          << "wxcanary_redis_up never dropped while Redis was down";
      redis_.Start();
      RotateTokens();
      ++rotations;
      last_rotation = Clock::now();
    }
    if (phase.name == "reload_invalid") {
      EXPECT_TRUE(d.WaitFor(
          [](const Scrape& s) { return s.Value("wxcanary_config_last_reload_successful") == 0; },
          5s))
          << "an invalid config did not drop wxcanary_config_last_reload_successful";
    }
    if (phase.name == "reload_valid") {
      ++reloads;
      EXPECT_TRUE(d.WaitFor(
          [](const Scrape& s) { return s.Value("wxcanary_config_last_reload_successful") == 1; },
          5s))
          << "a valid config did not restore wxcanary_config_last_reload_successful";
    }
    if (phase.name == "rotate") {
      ++rotations;
      last_rotation = Clock::now();
    }
    sim_->ClearFaults();
    const double cleared = wall_now();
    // Recovery: every target probes ok again after the fault is gone.
    wait(15s, [&] { return all_ok_since(cleared); });
    if (!all_ok_since(cleared))
      failures.push_back(phase.name + ": not every target recovered within 15 s");
    const auto after = OutcomeTotals(d.ScrapeMetrics());
    std::map<std::string, double> grew;
    for (const auto& [o, v] : after)
      if (v > before.at(o) && o != "ok") grew[o] = v - before.at(o);
    for (const auto& [o, n] : grew)
      if (!phase.allowed.count(o))
        failures.push_back(phase.name + ": unexpected outcome " + o + " x" + std::to_string(n));
    if (!phase.expected.empty() && !grew.count(phase.expected))
      failures.push_back(phase.name + ": injected fault never showed as " + phase.expected);
    ++ran[phase.name];
    // Tokens live 7200 sim seconds: refresh them like the apps would, well before that.
    if (Clock::now() - last_rotation > std::chrono::seconds(3600 / time_scale_)) {
      RotateTokens();
      ++rotations;
      last_rotation = Clock::now();
    }
  }
  wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));

  // Accounting: every scheduled run is either a counted probe or a counted skip.
  const auto s = d.ScrapeMetrics();
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  const double probes = s.Sum("wxcanary_probes_total");
  const double skipped = s.Sum("wxcanary_probes_skipped_total");
  const double expected = targets_ * elapsed / kIntervalSeconds;
  // Slack: each target's first run lands anywhere in its first interval, a reload re-phases
  // at most one run per target, and up to `workers` probes are in flight at the scrape.
  const double slack = targets_ * (1.0 + reloads) + kWorkers;
  EXPECT_NEAR(probes + skipped, expected, slack)
      << "probes " << probes << " + skipped " << skipped << " over " << elapsed << " s";
  const auto per_target = PerTarget(s.text(), "wxcanary_probes_total");
  EXPECT_EQ(static_cast<int>(per_target.size()), targets_);
  for (const auto& [target, n] : per_target)
    EXPECT_GE(n, 0.5 * elapsed / kIntervalSeconds) << target << " was starved";
  const auto totals = OutcomeTotals(s);
  for (const char* o : kNeverInjected) EXPECT_EQ(totals.at(o), 0) << o << " was never injected";

  // Memory: compare the median RSS just after warm-up with the median at the end.
  const double warm_until = std::max(20.0, elapsed * 0.3);
  std::vector<long> early, late;
  for (const auto& [t, kib] : rss) {
    if (t >= warm_until && t < warm_until + 10) early.push_back(kib);
    if (t >= elapsed - 10) late.push_back(kib);
  }
  const double growth_kib = Median(late) - Median(early);
  const double span_s = std::max(1.0, elapsed - 5 - (warm_until + 5));
  const double per_real_hour = growth_kib * 3600 / span_s;
  const double per_sim_hour = growth_kib * 3600 / (span_s * static_cast<double>(time_scale_));

  const int status = d.Stop();
  const std::string output = d.Output();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "exit status " << status;
  for (const char* marker :
       {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
        "runtime error:", "WARNING: ThreadSanitizer", "terminate called", "Segmentation fault"}) {
    const auto at = output.find(marker);
    EXPECT_EQ(at, std::string::npos) << "sanitizer/crash report in wxcanary's output:\n"
                                     << output.substr(at == std::string::npos ? 0 : at, 8000);
  }
  size_t leaked = 0;
  for (size_t at = output.find("86_"); at != std::string::npos; at = output.find("86_", at + 1))
    leaked += tokens_.count(output.substr(at, 136));
  EXPECT_EQ(leaked, 0u) << "tokens appeared in wxcanary's output";
  for (const auto& f : failures) ADD_FAILURE() << f;

  std::string phases;
  for (const auto& [name, n] : ran) phases += name + "x" + std::to_string(n) + " ";
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "soak: %d targets, %.0f s real = %.2f sim h; probes %.0f + skipped %.0f vs expected "
      "%.0f; rotations %d, reloads %d; RSS %.0f -> %.0f KiB after warm-up: %+.0f KiB per "
      "real hour, %+.0f KiB per sim hour",
      targets_, elapsed, elapsed * static_cast<double>(time_scale_) / 3600, probes, skipped,
      expected, rotations, reloads, Median(early), Median(late), per_real_hour, per_sim_hour);
  const std::string summary =
      std::string(buf) + "; outcomes " + Show(totals) + "; phases " + phases;
  std::printf("%s\n", summary.c_str());
  RecordProperty("summary", summary);
  if (const char* report = std::getenv("WXCANARY_SOAK_REPORT"))
    std::ofstream(report) << summary << "\n";

  // Flat: what grows after warm-up stays under 10% of the warm RSS (at least 8 MiB of slack:
  // allocator and ASan bookkeeping move by a few MiB on their own).
  EXPECT_LT(growth_kib, std::max(8192.0, 0.10 * Median(early)))
      << "RSS grew " << growth_kib << " KiB after warm-up";
}

}  // namespace
}  // namespace wxcanary::testing
