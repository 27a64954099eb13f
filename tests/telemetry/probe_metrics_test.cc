#include "telemetry/probe_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <thread>

#include "support/fakes.h"
#include "telemetry/metrics_scrape.h"

namespace wxcanary::telemetry {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::MakeTarget;
using testing::SampleLines;
using ::testing::UnorderedElementsAre;

ProbeResult Result(Outcome outcome, std::optional<int> errcode = std::nullopt,
                   std::chrono::milliseconds duration = std::chrono::milliseconds{20}) {
  ProbeResult r;
  r.outcome = outcome;
  r.errcode = errcode;
  r.duration = duration;
  r.token_present = outcome != Outcome::kTokenMissing;
  r.ttl_seconds = outcome == Outcome::kTokenMissing ? -2 : 5400;
  return r;
}

class ProbeMetricsTest : public ::testing::Test {
 protected:
  std::string Scrape() const { return exposition_.Serialize(); }
  std::vector<std::string> Lines(const std::string& name) const {
    return SampleLines(Scrape(), name);
  }

  Exposition exposition_;
  FakeClock clock_;
  ProbeMetrics metrics_{exposition_, clock_};
};

TEST_F(ProbeMetricsTest, exports_every_outcome_at_zero_before_the_first_probe) {
  auto t = MakeTarget("wx1", "prod");
  t.env.interval = std::chrono::seconds{30};
  metrics_.SetTargets({t});
  EXPECT_THAT(
      Lines("wxcanary_probes_total"),
      UnorderedElementsAre(
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="ok"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="token_invalid"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="token_malformed"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="token_expired"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="token_missing"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="quota"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="api_error"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="transport_error"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="bad_response"} 0)",
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="redis_error"} 0)"));
  EXPECT_THAT(Lines("wxcanary_probe_interval_seconds"),
              ElementsAre(R"(wxcanary_probe_interval_seconds{app_env="prod",app_id="wx1"} 30)"));
  EXPECT_THAT(
      Lines("wxcanary_probe_last_success_timestamp_seconds"),
      ElementsAre(
          R"(wxcanary_probe_last_success_timestamp_seconds{app_env="prod",app_id="wx1"} 0)"));
  // Nothing is known about the key until Redis answers once.
  EXPECT_THAT(Lines("wxcanary_token_present"), IsEmpty());
  EXPECT_THAT(Lines("wxcanary_token_ttl_seconds"), IsEmpty());
  EXPECT_THAT(Lines("wxcanary_probe_errcode_total"), IsEmpty());
}

TEST_F(ProbeMetricsTest, counts_outcomes_errcodes_and_timestamps_after_a_sequence) {
  auto t = MakeTarget("wx1", "prod");
  metrics_.SetTargets({t});
  // 1700000000 is the FakeClock's start.
  metrics_.Record(t, Result(Outcome::kOk, 0));
  clock_.Advance(std::chrono::seconds{30});
  metrics_.Record(t, Result(Outcome::kOk, 0));
  clock_.Advance(std::chrono::seconds{30});
  metrics_.Record(t, Result(Outcome::kTokenInvalid, 40001));
  clock_.Advance(std::chrono::seconds{30});
  metrics_.Record(t, Result(Outcome::kTokenInvalid, 40001));

  auto probes = Lines("wxcanary_probes_total");
  EXPECT_THAT(probes, ::testing::Contains(
                          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="ok"} 2)"));
  EXPECT_THAT(
      probes,
      ::testing::Contains(
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="token_invalid"} 2)"));
  EXPECT_THAT(probes,
              ::testing::Contains(
                  R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="quota"} 0)"));
  EXPECT_THAT(
      Lines("wxcanary_probe_errcode_total"),
      UnorderedElementsAre(
          R"(wxcanary_probe_errcode_total{app_env="prod",app_id="wx1",errcode="0"} 2)",
          R"(wxcanary_probe_errcode_total{app_env="prod",app_id="wx1",errcode="40001"} 2)"));
  EXPECT_THAT(
      Lines("wxcanary_probe_last_success_timestamp_seconds"),
      ElementsAre(
          R"(wxcanary_probe_last_success_timestamp_seconds{app_env="prod",app_id="wx1"} 1700000030)"));
  EXPECT_THAT(
      Lines("wxcanary_probe_last_run_timestamp_seconds"),
      ElementsAre(
          R"(wxcanary_probe_last_run_timestamp_seconds{app_env="prod",app_id="wx1"} 1700000090)"));
  EXPECT_THAT(Lines("wxcanary_token_present"),
              ElementsAre(R"(wxcanary_token_present{app_env="prod",app_id="wx1"} 1)"));
  EXPECT_THAT(Lines("wxcanary_token_ttl_seconds"),
              ElementsAre(R"(wxcanary_token_ttl_seconds{app_env="prod",app_id="wx1"} 5400)"));
}

TEST_F(ProbeMetricsTest, observes_durations_into_millisecond_to_ten_second_buckets) {
  auto t = MakeTarget("wx1", "prod");
  metrics_.SetTargets({t});
  metrics_.Record(t, Result(Outcome::kOk, 0, std::chrono::milliseconds{3}));
  metrics_.Record(t,
                  Result(Outcome::kTransportError, std::nullopt, std::chrono::milliseconds{7000}));
  auto lines = Lines("wxcanary_probe_duration_seconds_bucket");
  EXPECT_THAT(
      lines,
      ::testing::Contains(
          R"(wxcanary_probe_duration_seconds_bucket{app_env="prod",app_id="wx1",le="0.001"} 0)"));
  EXPECT_THAT(
      lines,
      ::testing::Contains(
          R"(wxcanary_probe_duration_seconds_bucket{app_env="prod",app_id="wx1",le="0.005"} 1)"));
  EXPECT_THAT(
      lines,
      ::testing::Contains(
          R"(wxcanary_probe_duration_seconds_bucket{app_env="prod",app_id="wx1",le="5"} 1)"));
  EXPECT_THAT(
      lines,
      ::testing::Contains(
          R"(wxcanary_probe_duration_seconds_bucket{app_env="prod",app_id="wx1",le="10"} 2)"));
  EXPECT_EQ(lines.size(), 14u);  // 13 bounds + Inf
  EXPECT_THAT(
      Lines("wxcanary_probe_duration_seconds_count"),
      ElementsAre(R"(wxcanary_probe_duration_seconds_count{app_env="prod",app_id="wx1"} 2)"));
  EXPECT_THAT(
      Lines("wxcanary_probe_duration_seconds_sum"),
      ElementsAre(R"(wxcanary_probe_duration_seconds_sum{app_env="prod",app_id="wx1"} 7.003)"));
}

TEST(ErrcodeLabel, keeps_known_codes_and_folds_the_rest_into_other) {
  struct Case {
    int code;
    std::string label;
  };
  for (const auto& c : std::vector<Case>{{0, "0"},
                                         {-1, "-1"},
                                         {40001, "40001"},
                                         {40014, "40014"},
                                         {42001, "42001"},
                                         {41001, "41001"},
                                         {45009, "45009"},
                                         {45011, "45011"},
                                         {87014, "87014"},
                                         {40003, "40003"},
                                         {61010, "61010"},
                                         {47001, "47001"},
                                         {43104, "43104"},
                                         {44002, "44002"},
                                         {40129, "40129"},
                                         {40164, "other"},
                                         {1, "other"},
                                         {-2, "other"},
                                         {99999999, "other"}})
    EXPECT_EQ(ErrcodeLabel(c.code), c.label) << c.code;
}

TEST_F(ProbeMetricsTest, folds_unknown_errcodes_into_one_other_series) {
  auto t = MakeTarget("wx1", "prod");
  metrics_.SetTargets({t});
  metrics_.Record(t, Result(Outcome::kApiError, 40164));
  metrics_.Record(t, Result(Outcome::kApiError, 76021));
  metrics_.Record(t, Result(Outcome::kQuota, 45009));
  metrics_.Record(t, Result(Outcome::kTransportError));  // no errcode: no errcode series
  EXPECT_THAT(
      Lines("wxcanary_probe_errcode_total"),
      UnorderedElementsAre(
          R"(wxcanary_probe_errcode_total{app_env="prod",app_id="wx1",errcode="other"} 2)",
          R"(wxcanary_probe_errcode_total{app_env="prod",app_id="wx1",errcode="45009"} 1)"));
}

TEST_F(ProbeMetricsTest, keeps_ttl_and_presence_when_redis_did_not_answer) {
  auto t = MakeTarget("wx1", "prod");
  metrics_.SetTargets({t});
  auto ok = Result(Outcome::kOk, 0);
  ok.ttl_seconds = -1;  // a key without expiry
  metrics_.Record(t, ok);
  ProbeResult down;
  down.outcome = Outcome::kRedisError;
  metrics_.Record(t, down);
  EXPECT_THAT(Lines("wxcanary_token_ttl_seconds"),
              ElementsAre(R"(wxcanary_token_ttl_seconds{app_env="prod",app_id="wx1"} -1)"));
  EXPECT_THAT(Lines("wxcanary_token_present"),
              ElementsAre(R"(wxcanary_token_present{app_env="prod",app_id="wx1"} 1)"));

  metrics_.Record(t, Result(Outcome::kTokenMissing));
  EXPECT_THAT(Lines("wxcanary_token_ttl_seconds"),
              ElementsAre(R"(wxcanary_token_ttl_seconds{app_env="prod",app_id="wx1"} -2)"));
  EXPECT_THAT(Lines("wxcanary_token_present"),
              ElementsAre(R"(wxcanary_token_present{app_env="prod",app_id="wx1"} 0)"));
}

TEST_F(ProbeMetricsTest, adds_the_environment_extra_labels) {
  auto t = MakeTarget("wx1", "prod");
  t.env.labels = {{"team", "pay"}, {"region", "sh"}, {"app_id", "forged"}};
  metrics_.SetTargets({t});
  metrics_.Record(t, Result(Outcome::kOk, 0));
  EXPECT_THAT(
      Lines("wxcanary_probes_total"),
      ::testing::Contains(
          R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="ok",region="sh",team="pay"} 1)"));
}

TEST_F(ProbeMetricsTest, removes_series_of_targets_that_disappeared_and_keeps_the_rest) {
  auto a = MakeTarget("wx1", "prod", 0);
  auto b = MakeTarget("wx1", "test", 1);
  metrics_.SetTargets({a, b});
  metrics_.Record(a, Result(Outcome::kOk, 0));
  metrics_.Record(b, Result(Outcome::kTokenInvalid, 40001));

  // Reload: b is gone, a moves to index 1 behind a new target c.
  auto c = MakeTarget("wx2", "prod", 0);
  a.index = 1;
  metrics_.SetTargets({c, a});
  std::string scrape = Scrape();
  EXPECT_EQ(scrape.find(R"(app_env="test")"), std::string::npos) << scrape;
  EXPECT_THAT(
      SampleLines(scrape, "wxcanary_probes_total"),
      ::testing::Contains(R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="ok"} 1)"));
  EXPECT_THAT(
      SampleLines(scrape, "wxcanary_probes_total"),
      ::testing::Contains(R"(wxcanary_probes_total{app_env="prod",app_id="wx2",outcome="ok"} 0)"));
  EXPECT_EQ(SampleLines(scrape, "wxcanary_probes_total").size(), 20u);

  metrics_.Record(a, Result(Outcome::kOk, 0));
  EXPECT_THAT(
      Lines("wxcanary_probes_total"),
      ::testing::Contains(R"(wxcanary_probes_total{app_env="prod",app_id="wx1",outcome="ok"} 2)"));
  EXPECT_THAT(
      Lines("wxcanary_probe_errcode_total"),
      ElementsAre(R"(wxcanary_probe_errcode_total{app_env="prod",app_id="wx1",errcode="0"} 2)"));
}

TEST_F(ProbeMetricsTest, records_a_target_that_was_never_announced) {
  auto t = MakeTarget("wx9", "dev", 3);
  metrics_.Record(t, Result(Outcome::kOk, 0));
  EXPECT_THAT(
      Lines("wxcanary_probes_total"),
      ::testing::Contains(R"(wxcanary_probes_total{app_env="dev",app_id="wx9",outcome="ok"} 1)"));
}

TEST(ProbeMetricsConcurrency, counts_every_record_while_scraped_and_reloaded) {
  Exposition exposition;
  FakeClock clock;
  ProbeMetrics metrics(exposition, clock);
  std::vector<Target> targets;
  for (size_t i = 0; i < 8; ++i) targets.push_back(MakeTarget("wx" + std::to_string(i), "prod", i));
  metrics.SetTargets(targets);
  constexpr int kRounds = 2000;

  std::atomic<bool> done{false};
  std::thread scraper([&] {
    double last = 0;
    while (!done.load()) {
      // Scrape while records and reloads go on; a counter never goes back.
      for (const auto& line : SampleLines(exposition.Serialize(), "wxcanary_probes_total")) {
        if (line.rfind(R"(wxcanary_probes_total{app_env="prod",app_id="wx0",outcome="ok"} )", 0) !=
            0)
          continue;
        const double now = std::stod(line.substr(line.rfind(' ') + 1));
        EXPECT_GE(now, last);
        last = now;
      }
    }
  });
  std::vector<std::thread> threads;
  for (const auto& t : targets) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kRounds; ++i) metrics.Record(t, Result(Outcome::kOk, 0));
    });
  }
  for (int i = 0; i < 20; ++i) metrics.SetTargets(targets);  // reloads of the same set
  for (auto& th : threads) th.join();
  done = true;
  scraper.join();

  const std::string scrape = exposition.Serialize();
  for (const auto& t : targets) {
    const std::string labels = R"({app_env="prod",app_id=")" + t.app_id + R"("})";
    EXPECT_THAT(SampleLines(scrape, "wxcanary_probe_duration_seconds_count"),
                ::testing::Contains("wxcanary_probe_duration_seconds_count" + labels + " " +
                                    std::to_string(kRounds)));
    EXPECT_THAT(SampleLines(scrape, "wxcanary_probe_errcode_total"),
                ::testing::Contains(R"(wxcanary_probe_errcode_total{app_env="prod",app_id=")" +
                                    t.app_id + R"(",errcode="0"} )" + std::to_string(kRounds)));
  }
}

TEST(DaemonMetrics, exports_build_info_reload_state_and_redis_up) {
  prometheus::Registry registry;
  FakeClock clock;
  DaemonMetrics daemon(registry, clock, "0.1.0", "abc123");
  daemon.ConfigLoaded(true);
  clock.Advance(std::chrono::seconds{60});
  daemon.ConfigLoaded(false);
  daemon.SetRedisUp("main", true);
  daemon.SetRedisUp("test", false);
  std::string scrape = Serialize(registry);
  EXPECT_THAT(SampleLines(scrape, "wxcanary_build_info"),
              ElementsAre(R"(wxcanary_build_info{revision="abc123",version="0.1.0"} 1)"));
  EXPECT_THAT(SampleLines(scrape, "wxcanary_config_last_reload_successful"),
              ElementsAre("wxcanary_config_last_reload_successful 0"));
  EXPECT_THAT(SampleLines(scrape, "wxcanary_config_last_reload_success_timestamp_seconds"),
              ElementsAre("wxcanary_config_last_reload_success_timestamp_seconds 1700000000"));
  EXPECT_THAT(SampleLines(scrape, "wxcanary_redis_up"),
              UnorderedElementsAre(R"(wxcanary_redis_up{redis="main"} 1)",
                                   R"(wxcanary_redis_up{redis="test"} 0)"));

  daemon.RetainRedis({"main"});
  EXPECT_THAT(SampleLines(Serialize(registry), "wxcanary_redis_up"),
              ElementsAre(R"(wxcanary_redis_up{redis="main"} 1)"));
}

}  // namespace
}  // namespace wxcanary::telemetry
