#include "tracking/token_tracker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <optional>
#include <sstream>
#include <thread>

#include "common/fingerprint.h"
#include "support/fakes.h"
#include "common/rfc3339.h"

namespace wxcanary::tracking {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::CapturingLogger;
using ::testing::HasSubstr;
using testing::MakeTarget;
using ::testing::Not;

std::string Scrape(const telemetry::Exposition& exposition) { return exposition.Serialize(); }

// The value of one series in the text exposition; labels in the exposition's (sorted) order.
std::optional<double> Value(const telemetry::Exposition& exposition, const std::string& series) {
  std::istringstream in(Scrape(exposition));
  std::string line;
  const std::string prefix = series + " ";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size()));
  return std::nullopt;
}

ProbeResult Result(const std::string& token, Outcome outcome = Outcome::kOk,
                   int64_t ttl_seconds = 7000, std::optional<int> errcode = std::nullopt) {
  return testing::MakeResult(token, outcome, ttl_seconds, errcode);
}

ProbeResult Invalid(const std::string& token, int64_t ttl_seconds = 5400) {
  return Result(token, Outcome::kTokenInvalid, ttl_seconds, 40001);
}

std::string Refreshes(const std::string& app, const std::string& env) {
  return R"(wxcanary_token_refreshes_total{app_env=")" + env + R"(",app_id=")" + app + R"("})";
}
std::string Invalidations(const std::string& app, const std::string& env,
                          const std::string& cause) {
  return R"(wxcanary_token_invalidations_total{app_env=")" + env + R"(",app_id=")" + app +
         R"(",cause_env=")" + cause + R"("})";
}
std::string AppSeries(const std::string& name, const std::string& app) {
  return name + R"({app_id=")" + app + R"("})";
}

class TokenTrackerTest : public ::testing::Test {
 protected:
  explicit TokenTrackerTest(config::Conflict conflict = {})
      : tracker_(exposition_, logger_, clock_, conflict) {}

  Target prod_ = MakeTarget("wxA", "prod", 0);
  Target test_ = MakeTarget("wxA", "test", 1);
  telemetry::Exposition exposition_;
  CapturingLogger logger_;
  FakeClock clock_;
  TokenTracker tracker_;
};

TEST_F(TokenTrackerTest, counts_a_refresh_when_fingerprint_changes) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("token-1"));
  clock_.Advance(seconds{30});
  tracker_.Record(prod_, Result("token-2", Outcome::kOk, 7190));

  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "prod")), 1);
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "test")), 0);
  EXPECT_EQ(Value(exposition_, AppSeries("wxcanary_app_token_refreshes_total", "wxA")), 1);
  const auto events = logger_.WithAction("token_refreshed");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].level, telemetry::Level::kWarn);  // visible at --log.level=warn
  EXPECT_EQ(events[0].fields.dump(),
            telemetry::Fields({{"labels.app_id", "wxA"},
                               {"labels.app_env", "prod"},
                               {"wxcanary.token.fingerprint", Fingerprint("token-2")},
                               {"wxcanary.token.previous_fingerprint", Fingerprint("token-1")},
                               {"wxcanary.token.ttl_seconds", 7190}})
                .dump());
}

// A kept environment's new token may be one another replica's keeper wrote: it waits one
// keeper.interval for this replica's keeper to name it. In a dry run no keeper writes, so a new
// token is the app's refresh at once.
TEST_F(TokenTrackerTest, a_kept_environment_waits_for_the_keeper_a_dry_run_does_not) {
  Target kept = prod_;
  kept.env.keep = config::KeepMode::kStable;
  Target dry = test_;
  dry.env.keep = config::KeepMode::kStable;
  dry.env.keep_dry_run = true;
  tracker_.SetTargets({kept, dry});
  for (const Target* t : {&kept, &dry}) tracker_.Record(*t, Result("old-" + t->app_env));
  clock_.Advance(seconds{30});
  for (const Target* t : {&kept, &dry}) tracker_.Record(*t, Result("new-" + t->app_env));
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "prod")), 0);
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "test")), 1);
  // Nobody named prod's new token within keeper.interval (1m) + 5 s: the app's refresh after all.
  clock_.Advance(seconds{66});
  tracker_.Record(kept, Result("new-prod"));
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "prod")), 1);
}

// Record finds a target's app by the index SetTargets saw; a target of another app that comes
// with the same index (a target set the tracker was not told about) must not land on it.
TEST_F(TokenTrackerTest, a_target_of_another_app_with_a_known_index_is_counted_for_its_own_app) {
  tracker_.SetTargets({prod_, test_});
  const Target other = MakeTarget("wxB", "prod", prod_.index);
  tracker_.Record(other, Result("b-1"));
  clock_.Advance(seconds{30});
  tracker_.Record(other, Result("b-2"));
  EXPECT_EQ(Value(exposition_, Refreshes("wxB", "prod")), 1);
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "prod")), 0);
  // And the known target still reaches its own app through its index.
  tracker_.Record(prod_, Result("a-1"));
  clock_.Advance(seconds{30});
  tracker_.Record(prod_, Result("a-2"));
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "prod")), 1);
  EXPECT_EQ(Value(exposition_, Refreshes("wxB", "prod")), 1);
}

TEST_F(TokenTrackerTest, first_sighting_is_not_a_refresh) {
  tracker_.SetTargets({prod_});
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "prod")), 0);
  tracker_.Record(prod_, Result("token-1"));
  tracker_.Record(prod_, Result("token-1"));
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "prod")), 0);
  EXPECT_TRUE(logger_.WithAction("token_refreshed").empty());
}

// Each row is a sequence of probe results (token value, "" = key missing, "!redis" = Redis
// error) and the refreshes it must produce.
struct SequenceCase {
  std::string name;
  std::vector<std::string> tokens;
  int refreshes;
};

void PrintTo(const SequenceCase& c, std::ostream* os) { *os << c.name; }

class RefreshSequence : public ::testing::TestWithParam<SequenceCase> {};

TEST_P(RefreshSequence, counts_refreshes) {
  telemetry::Exposition exposition;
  CapturingLogger logger;
  FakeClock clock;
  TokenTracker tracker(exposition, logger, clock, {});
  const Target t = MakeTarget("wxA", "prod");
  for (const auto& token : GetParam().tokens) {
    ProbeResult r;
    if (token == "!redis") {
      r.outcome = Outcome::kRedisError;
    } else {
      r = token.empty() ? Result("", Outcome::kTokenMissing) : Result(token);
    }
    tracker.Record(t, r);
    clock.Advance(seconds{30});
  }
  EXPECT_EQ(Value(exposition, Refreshes("wxA", "prod")), GetParam().refreshes);
  EXPECT_EQ(logger.WithAction("token_refreshed").size(), static_cast<size_t>(GetParam().refreshes));
}

INSTANTIATE_TEST_SUITE_P(
    TokenTracker, RefreshSequence,
    ::testing::Values(SequenceCase{"steady", {"a", "a", "a"}, 0},
                      SequenceCase{"two_changes", {"a", "b", "c"}, 2},
                      SequenceCase{"back_and_forth", {"a", "b", "a"}, 2},
                      SequenceCase{"missing_then_same_token", {"a", "", "a"}, 0},
                      SequenceCase{"missing_then_new_token", {"a", "", "", "b"}, 1},
                      // A token cached before the daemon started is no refresh; one fetched by an
                      // environment the daemon saw without a token is (a new deployment).
                      SequenceCase{"missing_first_then_token", {"", "a"}, 1},
                      SequenceCase{"redis_error_first_then_token", {"!redis", "a"}, 0},
                      SequenceCase{
                          "redis_error_is_ignored", {"a", "!redis", "a", "!redis", "b"}, 1}),
    [](const auto& row) { return row.param.name; });

TEST_F(TokenTrackerTest, blames_a_newly_deployed_environment_for_its_first_fetch) {
  // The incident as it began: test had no token yet, was deployed, fetched its first one.
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-token"));
  tracker_.Record(test_, Result("", Outcome::kTokenMissing));
  clock_.Advance(seconds{30});
  tracker_.Record(test_, Result("test-token"));
  clock_.Advance(seconds{301});
  tracker_.Record(prod_, Invalid("prod-token"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 1);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 0);
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "test")), 1);
}

TEST_F(TokenTrackerTest, token_age_counts_from_first_sighting_of_the_fingerprint) {
  tracker_.SetTargets({prod_});
  const std::string age = R"(wxcanary_token_age_seconds{app_env="prod",app_id="wxA"})";
  tracker_.Record(prod_, Result("token-1"));
  EXPECT_EQ(Value(exposition_, age), 0);
  clock_.Advance(seconds{90});
  tracker_.Record(prod_, Result("token-1"));
  EXPECT_EQ(Value(exposition_, age), 90);
  clock_.Advance(seconds{30});
  tracker_.Record(prod_, Result("token-2"));
  EXPECT_EQ(Value(exposition_, age), 0);
  clock_.Advance(seconds{45});
  tracker_.Record(prod_, Result("token-2"));
  EXPECT_EQ(Value(exposition_, age), 45);
  tracker_.Record(prod_, Result("", Outcome::kTokenMissing));
  EXPECT_EQ(Value(exposition_, age), 0);
}

TEST_F(TokenTrackerTest, distinct_tokens_is_two_while_environments_hold_different_tokens) {
  tracker_.SetTargets({prod_, test_});
  const auto distinct = AppSeries("wxcanary_app_distinct_tokens", "wxA");
  EXPECT_EQ(Value(exposition_, distinct), 0);
  tracker_.Record(prod_, Result("prod-token"));
  EXPECT_EQ(Value(exposition_, distinct), 1);
  tracker_.Record(test_, Result("test-token"));
  EXPECT_EQ(Value(exposition_, distinct), 2);
  tracker_.Record(test_, Result("", Outcome::kTokenMissing));
  EXPECT_EQ(Value(exposition_, distinct), 1);
}

TEST_F(TokenTrackerTest, distinct_tokens_is_one_when_environments_share_a_stable_token) {
  tracker_.SetTargets({prod_, test_});
  const auto distinct = AppSeries("wxcanary_app_distinct_tokens", "wxA");
  tracker_.Record(prod_, Result("stable-1"));
  tracker_.Record(test_, Result("stable-1"));
  EXPECT_EQ(Value(exposition_, distinct), 1);
  // The platform rotates the stable token; both environments pick up the new one.
  clock_.Advance(minutes{110});
  tracker_.Record(prod_, Result("stable-2"));
  tracker_.Record(test_, Result("stable-2"));
  EXPECT_EQ(Value(exposition_, distinct), 1);
  EXPECT_EQ(Value(exposition_, AppSeries("wxcanary_app_token_refreshes_total", "wxA")), 2);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 0);
}

// The early warning as a scrape sees it: the death time while predicted, gone after; and the
// WARN line before the ERROR one.
TEST_F(TokenTrackerTest, exports_when_a_superseded_token_dies_and_logs_it_before_the_40001) {
  tracker_.SetTargets({prod_, test_});
  const std::string gauge =
      R"(wxcanary_token_superseded_dies_at_timestamp_seconds{app_env="prod",app_id="wxA",cause_env="test"})";
  const std::string count = R"(wxcanary_token_supersessions_total{app_env="prod",app_id="wxA"})";
  tracker_.Record(prod_, Result("prod-token"));
  tracker_.Record(test_, Result("test-old"));
  EXPECT_EQ(Value(exposition_, gauge), std::nullopt);
  EXPECT_EQ(Value(exposition_, count), 0);
  clock_.Advance(seconds{30});
  const double refreshed =
      std::chrono::duration<double>(clock_.SystemNow().time_since_epoch()).count();
  tracker_.Record(test_, Result("test-new"));
  EXPECT_EQ(Value(exposition_, gauge), std::nullopt);  // until prod's key is seen again
  clock_.Advance(seconds{10});
  tracker_.Record(prod_, Result("prod-token"));
  EXPECT_EQ(Value(exposition_, gauge), refreshed + 300);
  EXPECT_EQ(Value(exposition_, count), 1);
  EXPECT_THAT(
      Scrape(exposition_),
      Not(HasSubstr(R"(wxcanary_token_superseded_dies_at_timestamp_seconds{app_env="test")")));
  ASSERT_EQ(logger_.WithAction("token_superseded").size(), 1u);
  EXPECT_TRUE(logger_.WithAction("token_invalidated").empty());

  clock_.Advance(seconds{291});
  tracker_.Record(prod_, Invalid("prod-token"));
  EXPECT_EQ(Value(exposition_, gauge), std::nullopt);
  EXPECT_EQ(Value(exposition_, count), 1);
  EXPECT_EQ(logger_.WithAction("token_invalidated").size(), 1u);
}

// The incident: prod caches a token, test fetches its own for the same AppId, the grace passes
// and prod's cached token answers 40001 while Redis still holds it.
TEST_F(TokenTrackerTest, attributes_an_invalidation_to_the_environment_that_refreshed) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-token"));
  tracker_.Record(test_, Result("test-old"));
  clock_.Advance(seconds{30});
  tracker_.Record(test_, Result("test-new"));
  const SystemTime refreshed_at = clock_.SystemNow();
  clock_.Advance(seconds{310});
  tracker_.Record(prod_, Invalid("prod-token", 5400));

  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 1);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 0);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "test", "prod")), 0);
  const auto events = logger_.WithAction("token_invalidated");
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e.level, telemetry::Level::kError);
  EXPECT_EQ(
      e.fields.dump(),
      telemetry::Fields({{"labels.app_id", "wxA"},
                         {"labels.app_env", "prod"},
                         {"wxcanary.conflict.cause_env", "test"},
                         {"wxcanary.conflict.cause_refreshed_at", FormatRfc3339(refreshed_at)},
                         {"wxcanary.token.fingerprint", Fingerprint("prod-token")},
                         {"wxcanary.token.ttl_seconds", 5400},
                         {"wxcanary.wechat.errcode", 40001}})
          .dump());
  EXPECT_EQ(FormatRfc3339(refreshed_at), "2023-11-14T22:13:50.000Z");
  EXPECT_THAT(e.message, HasSubstr("env prod"));
  EXPECT_THAT(e.message, HasSubstr("env test fetched a new token"));
  EXPECT_THAT(e.message, HasSubstr("5400 s"));
  EXPECT_THAT(e.message, HasSubstr("one token source for the AppId, or getStableAccessToken "
                                   "(POST /cgi-bin/stable_token) in every environment"));
}

TEST_F(TokenTrackerTest, attributes_to_unknown_when_no_configured_environment_refreshed) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-token"));
  tracker_.Record(test_, Result("test-token"));
  clock_.Advance(seconds{330});
  tracker_.Record(test_, Result("test-token"));
  tracker_.Record(prod_, Invalid("prod-token"));
  clock_.Advance(prod_.env.interval + kAttributionSlack);
  tracker_.Record(test_, Result("test-token"));

  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 1);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 0);
  const auto events = logger_.WithAction("token_invalidated");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields["wxcanary.conflict.cause_env"], "unknown");
  EXPECT_FALSE(events[0].fields.contains("wxcanary.conflict.cause_refreshed_at"));
  EXPECT_THAT(events[0].message, HasSubstr("outside this config"));
}

struct WindowCase {
  std::string name;
  std::optional<milliseconds> window;  // config.window
  milliseconds interval;               // the victim's probe interval
  seconds since_refresh;               // from test's refresh to prod's failure
  std::string cause;
};

void PrintTo(const WindowCase& c, std::ostream* os) { *os << c.name; }

class AttributionWindow : public ::testing::TestWithParam<WindowCase> {};

TEST_P(AttributionWindow, refreshes_older_than_the_window_are_not_the_cause) {
  const auto& c = GetParam();
  telemetry::Exposition exposition;
  CapturingLogger logger;
  FakeClock clock;
  config::Conflict conflict;
  conflict.window = c.window;
  TokenTracker tracker(exposition, logger, clock, conflict);
  Target prod = MakeTarget("wxA", "prod", 0);
  prod.env.interval = c.interval;
  const Target test = MakeTarget("wxA", "test", 1);
  tracker.SetTargets({prod, test});
  tracker.Record(prod, Result("prod-token"));
  tracker.Record(test, Result("test-old"));
  tracker.Record(test, Result("test-new"));
  clock.Advance(c.since_refresh);
  tracker.Record(prod, Invalid("prod-token"));
  // Past the deferral, with nothing new from test: "unknown" is settled now.
  clock.Advance(c.interval + kAttributionSlack);
  tracker.Record(test, Result("test-new"));
  EXPECT_EQ(Value(exposition, Invalidations("wxA", "prod", c.cause)), 1);
}

INSTANTIATE_TEST_SUITE_P(
    TokenTracker, AttributionWindow,
    ::testing::Values(
        // Default window: 300 s grace + the victim's interval.
        WindowCase{"default_inside", std::nullopt, seconds{60}, seconds{359}, "test"},
        WindowCase{"default_edge", std::nullopt, seconds{60}, seconds{360}, "test"},
        WindowCase{"default_outside", std::nullopt, seconds{60}, seconds{361}, "unknown"},
        WindowCase{"default_long_interval", std::nullopt, seconds{600}, seconds{899}, "test"},
        WindowCase{"configured_inside", seconds{120}, seconds{60}, seconds{119}, "test"},
        WindowCase{"configured_outside", seconds{120}, seconds{60}, seconds{121}, "unknown"}),
    [](const auto& row) { return row.param.name; });

// wxsim (like WeChat) kills a superseded token at once when a third one is fetched, so prod's
// failing probe can land before the probe that shows test's refresh. Each row: how long after
// prod's failure the daemon first sees test's new token, and the cause that must be counted.
struct DeferralCase {
  std::string name;
  seconds culprit_seen_after;
  std::string cause;
};

void PrintTo(const DeferralCase& c, std::ostream* os) { *os << c.name; }

class AttributionDeferral : public ::testing::TestWithParam<DeferralCase> {};

TEST_P(AttributionDeferral, waits_one_interval_plus_slack_for_a_culprit_after_the_failure) {
  const auto& c = GetParam();
  telemetry::Exposition exposition;
  CapturingLogger logger;
  FakeClock clock;
  TokenTracker tracker(exposition, logger, clock, {});
  const Target prod = MakeTarget("wxA", "prod", 0);  // interval 30 s: deadline 35 s
  const Target test = MakeTarget("wxA", "test", 1);
  tracker.SetTargets({prod, test});
  tracker.Record(prod, Result("prod-token"));
  tracker.Record(test, Result("test-old"));
  clock.Advance(seconds{600});  // test's first sighting is long out of any window
  tracker.Record(prod, Invalid("prod-token"));
  EXPECT_EQ(Value(exposition, Invalidations("wxA", "prod", "unknown")), 0);
  EXPECT_TRUE(logger.WithAction("token_invalidated").empty());

  clock.Advance(c.culprit_seen_after);
  tracker.Record(test, Result("test-new"));
  const SystemTime seen_at = clock.SystemNow();
  // Later failing probes of the same token and any further Records change nothing.
  clock.Advance(seconds{60});
  tracker.Record(prod, Invalid("prod-token", 5300));
  tracker.Record(test, Result("test-new"));

  for (const auto* cause : {"prod", "test", "unknown"})
    EXPECT_EQ(Value(exposition, Invalidations("wxA", "prod", cause)), cause == c.cause ? 1 : 0)
        << cause;
  const auto events = logger.WithAction("token_invalidated");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields["wxcanary.conflict.cause_env"], c.cause);
  EXPECT_EQ(events[0].fields["wxcanary.token.ttl_seconds"], 5400);  // of the first failure
  if (c.cause == "test") {
    EXPECT_EQ(events[0].fields["wxcanary.conflict.cause_refreshed_at"], FormatRfc3339(seen_at));
    EXPECT_THAT(events[0].message, HasSubstr("env test fetched a new token"));
  } else {
    EXPECT_FALSE(events[0].fields.contains("wxcanary.conflict.cause_refreshed_at"));
    EXPECT_THAT(events[0].message, HasSubstr("outside this config"));
  }
}

INSTANTIATE_TEST_SUITE_P(TokenTracker, AttributionDeferral,
                         ::testing::Values(DeferralCase{"same_instant", seconds{0}, "test"},
                                           DeferralCase{"one_second_later", seconds{1}, "test"},
                                           DeferralCase{"at_the_deadline", seconds{35}, "test"},
                                           DeferralCase{"past_the_deadline", seconds{36},
                                                        "unknown"}),
                         [](const auto& row) { return row.param.name; });

TEST_F(TokenTrackerTest, counts_unknown_once_and_only_after_the_deferral_deadline) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-token"));
  tracker_.Record(test_, Result("test-token"));
  clock_.Advance(seconds{600});
  tracker_.Record(prod_, Invalid("prod-token"));
  const auto deadline = prod_.env.interval + kAttributionSlack;  // 35 s

  // Every probe until the deadline (prod keeps failing, test keeps its token): still waiting.
  for (seconds waited{5}; waited < deadline; waited += seconds{5}) {
    clock_.Advance(seconds{5});
    tracker_.Record(test_, Result("test-token"));
    tracker_.Record(prod_, Invalid("prod-token"));
    ASSERT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 0) << waited.count();
    ASSERT_TRUE(logger_.WithAction("token_invalidated").empty()) << waited.count();
  }
  clock_.Advance(seconds{5});  // exactly at the deadline
  tracker_.Record(test_, Result("test-token"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 1);
  ASSERT_EQ(logger_.WithAction("token_invalidated").size(), 1u);

  // A refresh of test now comes too late to be blamed, and nothing is counted twice.
  clock_.Advance(seconds{5});
  tracker_.Record(test_, Result("test-token-2"));
  tracker_.Record(prod_, Invalid("prod-token"));
  clock_.Advance(minutes{5});
  tracker_.Record(prod_, Invalid("prod-token"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 1);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 0);
  const auto events = logger_.WithAction("token_invalidated");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields["wxcanary.conflict.cause_env"], "unknown");
  EXPECT_THAT(events[0].message, HasSubstr("in the 330 s before the failure nor the 35 s after"));
}

TEST_F(TokenTrackerTest, the_victims_own_refresh_after_the_failure_is_not_the_cause) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(test_, Result("test-1"));
  clock_.Advance(seconds{600});
  tracker_.Record(prod_, Invalid("prod-1"));
  clock_.Advance(seconds{10});
  tracker_.Record(prod_, Result("prod-2"));  // prod's app reacts by fetching a new token
  clock_.Advance(seconds{30});
  tracker_.Record(prod_, Result("prod-2"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 1);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "prod")), 0);
}

TEST_F(TokenTrackerTest, a_pending_invalidation_goes_with_its_target) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(test_, Result("test-1"));
  clock_.Advance(seconds{600});
  tracker_.Record(prod_, Invalid("prod-1"));
  tracker_.SetTargets({test_});  // a reload removes prod while it waits for a culprit

  clock_.Advance(seconds{5});
  tracker_.Record(test_, Result("test-2"));  // would have been the culprit
  clock_.Advance(minutes{5});
  tracker_.Record(test_, Result("test-2"));
  EXPECT_TRUE(logger_.WithAction("token_invalidated").empty());
  EXPECT_THAT(Scrape(exposition_), Not(HasSubstr(R"(app_env="prod")")));

  // prod comes back: it starts clean, nothing of the old wait is left to settle.
  tracker_.SetTargets({prod_, test_});
  clock_.Advance(minutes{5});
  tracker_.Record(test_, Result("test-2"));
  tracker_.Record(prod_, Result("prod-1"));
  EXPECT_TRUE(logger_.WithAction("token_invalidated").empty());
  for (const auto* cause : {"prod", "test", "unknown"})
    EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", cause)), 0) << cause;
}

TEST_F(TokenTrackerTest, counts_an_invalidation_once_per_failing_fingerprint) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(test_, Result("test-1"));
  tracker_.Record(test_, Result("test-2"));
  clock_.Advance(seconds{300});
  for (int i = 0; i < 5; ++i) {
    tracker_.Record(prod_, Invalid("prod-1", 5400 - 30 * i));
    clock_.Advance(seconds{30});
  }
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 1);
  EXPECT_EQ(logger_.WithAction("token_invalidated").size(), 1u);

  // prod fetches a new token, test fetches again, prod's new token dies too: a second one.
  tracker_.Record(prod_, Result("prod-2"));
  tracker_.Record(test_, Result("test-3"));
  clock_.Advance(seconds{300});
  tracker_.Record(prod_, Invalid("prod-2"));
  tracker_.Record(prod_, Invalid("prod-2"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 2);
  EXPECT_EQ(logger_.WithAction("token_invalidated").size(), 2u);
}

TEST_F(TokenTrackerTest, no_attribution_when_redis_no_longer_holds_the_token) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(test_, Result("test-1"));
  tracker_.Record(test_, Result("test-2"));
  clock_.Advance(seconds{300});
  tracker_.Record(prod_, Invalid("prod-1", 0));
  ProbeResult expired = Result("prod-1", Outcome::kTokenExpired, 0, 42001);
  tracker_.Record(prod_, expired);
  tracker_.Record(prod_, Result("prod-1", Outcome::kApiError, 5000, 45009));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 0);
  EXPECT_TRUE(logger_.WithAction("token_invalidated").empty());

  // A key without expiry (-1) is still held: that one counts.
  tracker_.Record(prod_, Invalid("prod-1", -1));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 1);
  EXPECT_THAT(logger_.WithAction("token_invalidated")[0].message, HasSubstr("without expiry"));
}

std::string Expirations(const std::string& app, const std::string& env) {
  return R"(wxcanary_token_expirations_total{app_env=")" + env + R"(",app_id=")" + app + R"("})";
}

// The cache outlived the token: 42001 is old age even with another environment's refresh right
// before it, which would otherwise be taken for the culprit.
TEST_F(TokenTrackerTest, reports_42001_as_the_cache_outliving_the_token_not_as_a_conflict) {
  tracker_.SetTargets({prod_, test_});
  EXPECT_EQ(Value(exposition_, Expirations("wxA", "prod")), 0);  // exported from the start
  tracker_.Record(prod_, Result("prod-token"));
  tracker_.Record(test_, Result("test-old"));
  clock_.Advance(seconds{600});
  tracker_.Record(test_, Result("test-new"));  // a refresh inside the attribution window
  clock_.Advance(seconds{30});
  ProbeResult expired = Result("prod-token", Outcome::kTokenExpired, 1800, 42001);
  expired.rid = "6566f1a2-1b2c3d4e-5f6a7b8c";
  tracker_.Record(prod_, expired);
  clock_.Advance(minutes{5});  // past any attribution deferral
  tracker_.Record(test_, Result("test-new"));

  EXPECT_EQ(Value(exposition_, Expirations("wxA", "prod")), 1);
  EXPECT_EQ(Value(exposition_, Expirations("wxA", "test")), 0);
  for (const auto* cause : {"prod", "test", "unknown"})
    EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", cause)), 0) << cause;
  EXPECT_TRUE(logger_.WithAction("token_invalidated").empty());
  const auto events = logger_.WithAction("token_expired");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].level, telemetry::Level::kError);
  EXPECT_EQ(events[0].message,
            "token " + Fingerprint("prod-token") +
                " of app wxA env prod expired (errcode 42001: WeChat says it lived past its "
                "expires_in) while Redis still holds it for 1800 s more: the app's cache "
                "outlives the token (the key's TTL is longer than the token's remaining life). "
                "Fix: cache tokens for less than expires_in (7200 s; the SDKs keep a 200-500 s "
                "margin, e.g. SET KEY TOKEN EX 7000) and drop the cached token on "
                "40001/40014/42001; wxcanary evict replaces this one now");
  EXPECT_EQ(events[0].fields.dump(),
            telemetry::Fields({{"labels.app_id", "wxA"},
                               {"labels.app_env", "prod"},
                               {"wxcanary.token.fingerprint", Fingerprint("prod-token")},
                               {"wxcanary.token.ttl_seconds", 1800},
                               {"wxcanary.token.age_seconds", 630},
                               {"wxcanary.wechat.errcode", 42001},
                               {"wxcanary.wechat.rid", "6566f1a2-1b2c3d4e-5f6a7b8c"}})
                .dump());
  EXPECT_THAT(events[0].message, Not(HasSubstr("outside this config")));
  const auto snap = tracker_.Snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].app_env, "prod");
  EXPECT_EQ(snap[0].expirations, 1u);
  EXPECT_EQ(snap[0].invalidations, 0u);
  EXPECT_EQ(snap[0].last_cause_env, "");
  EXPECT_TRUE(snap[0].last_expiry.has_value());
}

// Each row: how long the failing token has been seen, the expiry stored with it (relative to the
// failure), the answer, the TTL Redis still gives it, and what the diagnosis must say.
struct DiagnosisCase {
  std::string name;
  seconds seen_for;
  std::optional<seconds> expires_in_from_failure;  // negative: already past at the failure
  Outcome outcome;
  int errcode;
  int64_t ttl;
  bool expiry;           // token_expired + wxcanary_token_expirations_total, else a conflict
  std::string evidence;  // in the message: "expired (<evidence>)" or the conflict text
};

void PrintTo(const DiagnosisCase& c, std::ostream* os) { *os << c.name; }

class ExpiryDiagnosis : public ::testing::TestWithParam<DiagnosisCase> {};

TEST_P(ExpiryDiagnosis, tells_old_age_from_a_conflict) {
  const auto& c = GetParam();
  telemetry::Exposition exposition;
  CapturingLogger logger;
  FakeClock clock;
  TokenTracker tracker(exposition, logger, clock, {});
  const Target prod = MakeTarget("wxA", "prod", 0);
  const Target test = MakeTarget("wxA", "test", 1);
  tracker.SetTargets({prod, test});
  tracker.Record(prod, Result("prod-token"));
  tracker.Record(test, Result("test-old"));
  clock.Advance(c.seen_for - seconds{60});
  tracker.Record(test, Result("test-new"));  // the conflict's culprit, if it is one
  clock.Advance(seconds{60});
  ProbeResult failed = Result("prod-token", c.outcome, c.ttl, c.errcode);
  if (c.expires_in_from_failure) failed.expires_at = clock.SystemNow() + *c.expires_in_from_failure;
  tracker.Record(prod, failed);

  const auto expired = logger.WithAction("token_expired");
  const auto invalidated = logger.WithAction("token_invalidated");
  EXPECT_EQ(Value(exposition, Expirations("wxA", "prod")), c.expiry ? 1 : 0);
  EXPECT_EQ(Value(exposition, Invalidations("wxA", "prod", "test")), c.expiry ? 0 : 1);
  ASSERT_EQ(expired.size(), c.expiry ? 1u : 0u);
  ASSERT_EQ(invalidated.size(), c.expiry ? 0u : 1u);
  const auto& e = c.expiry ? expired[0] : invalidated[0];
  EXPECT_THAT(e.message, HasSubstr(c.evidence));
  if (c.expiry) {
    EXPECT_THAT(e.message, HasSubstr("the app's cache outlives the token"));
    EXPECT_THAT(e.message, Not(HasSubstr("fetched a new token")));
    EXPECT_EQ(e.fields.contains("wxcanary.token.expires_at"),
              c.expires_in_from_failure.has_value());
  } else {
    EXPECT_THAT(e.message, Not(HasSubstr("expired")));
  }
}

INSTANTIATE_TEST_SUITE_P(
    TokenTracker, ExpiryDiagnosis,
    ::testing::Values(
        DiagnosisCase{"42001_on_a_young_token", seconds{600}, std::nullopt, Outcome::kTokenExpired,
                      42001, 1800, true,
                      "expired (errcode 42001: WeChat says it lived past its expires_in) while "
                      "Redis still holds it for 1800 s more"},
        DiagnosisCase{"42001_in_a_key_without_ttl", seconds{600}, std::nullopt,
                      Outcome::kTokenExpired, 42001, -1, true,
                      "while Redis still holds it without expiry: the app's cache outlives the "
                      "token (the key has no TTL, so it outlives every token)"},
        DiagnosisCase{"40014_seen_past_expires_in", seconds{7201}, std::nullopt,
                      Outcome::kTokenMalformed, 40014, 600, true,
                      "expired (errcode 40014 on a token seen for 7201 s, past its 7200 s "
                      "expires_in) while Redis still holds it for 600 s more"},
        DiagnosisCase{"40014_after_the_stored_expiry", seconds{600}, seconds{-1},
                      Outcome::kTokenMalformed, 40014, 900, true,
                      "expired (errcode 40014 after the expiry stored with it, "
                      "2023-11-14T22:23:19.000Z)"},
        DiagnosisCase{"40014_before_the_stored_expiry_is_a_conflict", seconds{600}, seconds{60},
                      Outcome::kTokenMalformed, 40014, 900, false,
                      "invalidated (errcode 40014) while Redis still holds it for 900 s more; env "
                      "test fetched a new token"},
        DiagnosisCase{"40014_on_a_young_token_is_a_conflict", seconds{7199}, std::nullopt,
                      Outcome::kTokenMalformed, 40014, 900, false, "env test fetched a new token"},
        DiagnosisCase{"40001_on_an_old_token_is_a_conflict", seconds{7300}, std::nullopt,
                      Outcome::kTokenInvalid, 40001, 900, false, "invalidated (errcode 40001)"}),
    [](const auto& row) { return row.param.name; });

// Without a culprit, a young 40014 still says that it may be old age wxcanary did not see.
TEST_F(TokenTrackerTest, an_unexplained_40014_names_old_age_as_the_other_possibility) {
  tracker_.SetTargets({prod_});
  tracker_.Record(prod_, Result("prod-token"));
  clock_.Advance(seconds{120});
  tracker_.Record(prod_, Result("prod-token", Outcome::kTokenMalformed, 3000, 40014));
  clock_.Advance(prod_.env.interval + kAttributionSlack);
  tracker_.Record(prod_, Result("prod-token", Outcome::kTokenMalformed, 3000, 40014));
  const auto events = logger_.WithAction("token_invalidated");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].message,
              HasSubstr(": someone outside this config fetches tokens with the AppSecret (or the "
                        "token is older than the 120 s wxcanary has seen it and past its "
                        "expires_in: 40014 answers both)"));
}

TEST_F(TokenTrackerTest, prefers_another_environment_over_the_victims_own_refresh) {
  const Target dev = MakeTarget("wxA", "dev", 2);
  tracker_.SetTargets({prod_, test_, dev});
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(test_, Result("test-1"));
  tracker_.Record(dev, Result("dev-1"));
  tracker_.Record(dev, Result("dev-2"));  // oldest refresh
  clock_.Advance(seconds{20});
  tracker_.Record(test_, Result("test-2"));  // the most recent other env
  clock_.Advance(seconds{20});
  tracker_.Record(prod_, Result("prod-2"));  // the victim itself, most recent of all
  clock_.Advance(seconds{60});
  tracker_.Record(prod_, Invalid("prod-2"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 1);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "dev")), 0);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "prod")), 0);
}

TEST_F(TokenTrackerTest, blames_the_victim_itself_when_only_it_refreshed) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(test_, Result("test-1"));
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(prod_, Result("prod-2"));
  clock_.Advance(seconds{60});
  tracker_.Record(prod_, Invalid("prod-2"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "prod")), 1);
}

TEST_F(TokenTrackerTest, an_environment_that_refreshed_to_the_failing_token_is_not_the_cause) {
  // Both read one stable token; test picked it up (a refresh for test), then an outside caller
  // force-refreshed it away. test did not kill the token it just adopted.
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("shared-1"));
  tracker_.Record(test_, Result("old"));
  tracker_.Record(test_, Result("shared-1"));
  clock_.Advance(seconds{60});
  tracker_.Record(prod_, Invalid("shared-1"));
  clock_.Advance(prod_.env.interval + kAttributionSlack);
  tracker_.Record(test_, Result("shared-1"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 1);
}

TEST_F(TokenTrackerTest, environments_of_other_apps_are_never_the_cause) {
  const Target other = MakeTarget("wxB", "test", 2);
  tracker_.SetTargets({prod_, other});
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(other, Result("b-1"));
  tracker_.Record(other, Result("b-2"));
  clock_.Advance(seconds{60});
  tracker_.Record(prod_, Invalid("prod-1"));
  // wxB refreshes again during the deferral; it still cannot be wxA's culprit. Its Record is
  // also what settles wxA's pending item once the deadline has passed.
  tracker_.Record(other, Result("b-3"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 0);
  clock_.Advance(prod_.env.interval + kAttributionSlack);
  tracker_.Record(other, Result("b-3"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "unknown")), 1);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), std::nullopt);
}

TEST_F(TokenTrackerTest, exports_every_invalidation_series_at_zero) {
  tracker_.SetTargets({prod_, test_});
  for (const auto* victim : {"prod", "test"})
    for (const auto* cause : {"prod", "test", "unknown"})
      EXPECT_EQ(Value(exposition_, Invalidations("wxA", victim, cause)), 0) << victim << cause;
  EXPECT_EQ(Value(exposition_, AppSeries("wxcanary_app_token_quota_projected_ratio", "wxA")), 0);
}

TEST(ProjectDailyCalls, estimates_calls_per_day) {
  struct Case {
    int short_count, long_count;
    std::chrono::nanoseconds tracked_for;
    double expected;
  };
  const Case cases[] = {
      {0, 0, minutes{1}, 0},
      {1, 1, minutes{1}, 96},      // one refresh just after start: the 15 min floor
      {1, 1, minutes{120}, 24},    // one per hour
      {2, 2, minutes{120}, 576},   // two within 5 min: the short window speaks
      {10, 10, minutes{3}, 2880},  // a storm right after start
      {0, 12, minutes{60}, 288},   // long window only
      {0, 12, minutes{30}, 576},   // tracked half an hour: rate over 30 min
  };
  for (const auto& c : cases)
    EXPECT_DOUBLE_EQ(ProjectDailyCalls(c.short_count, c.long_count, c.tracked_for), c.expected)
        << c.short_count << " " << c.long_count;
}

TEST_F(TokenTrackerTest, quota_projection_stays_low_in_normal_operation) {
  tracker_.SetTargets({prod_, test_});
  const auto ratio = AppSeries("wxcanary_app_token_quota_projected_ratio", "wxA");
  // Two environments, each refreshing every ~2 h, probed every 30 s for 6 h.
  for (int tick = 0; tick < 6 * 120; ++tick) {
    tracker_.Record(prod_, Result("prod-" + std::to_string(tick / 230)));
    tracker_.Record(test_, Result("test-" + std::to_string((tick + 100) / 230)));
    clock_.Advance(seconds{30});
    ASSERT_LT(*Value(exposition_, ratio), 0.1) << "tick " << tick;
  }
  EXPECT_GT(*Value(exposition_, AppSeries("wxcanary_app_token_refreshes_total", "wxA")), 4);
}

TEST_F(TokenTrackerTest, quota_projection_exceeds_one_within_minutes_of_a_storm) {
  tracker_.SetTargets({prod_, test_});
  const auto ratio = AppSeries("wxcanary_app_token_quota_projected_ratio", "wxA");
  tracker_.Record(prod_, Result("t-0"));
  // An hour of calm, then every probe (every 10 s) sees a new token.
  for (int i = 0; i < 120; ++i) {
    clock_.Advance(seconds{30});
    tracker_.Record(prod_, Result("t-0"));
  }
  EXPECT_LT(*Value(exposition_, ratio), 0.01);
  int seconds_to_page = -1;
  for (int i = 1; i <= 60; ++i) {
    clock_.Advance(seconds{10});
    tracker_.Record(prod_, Result("storm-" + std::to_string(i)));
    if (*Value(exposition_, ratio) > 1.0) {
      seconds_to_page = i * 10;
      break;
    }
  }
  ASSERT_GT(seconds_to_page, 0);
  EXPECT_LE(seconds_to_page, 120);
}

TEST_F(TokenTrackerTest, quota_counts_a_token_two_environments_share_once) {
  tracker_.SetTargets({prod_, test_});
  const auto ratio = AppSeries("wxcanary_app_token_quota_projected_ratio", "wxA");
  tracker_.Record(prod_, Result("s-0"));
  tracker_.Record(test_, Result("s-0"));
  clock_.Advance(minutes{60});
  for (int i = 1; i <= 3; ++i) {
    tracker_.Record(prod_, Result("s-" + std::to_string(i)));
    tracker_.Record(test_, Result("s-" + std::to_string(i)));
    clock_.Advance(seconds{30});
  }
  // 3 distinct new tokens in 5 min = 3 * 288 per day, not 6 * 288.
  EXPECT_DOUBLE_EQ(*Value(exposition_, ratio), 3 * 288.0 / 2000);
  EXPECT_EQ(Value(exposition_, AppSeries("wxcanary_app_token_refreshes_total", "wxA")), 6);
}

TEST_F(TokenTrackerTest, set_targets_drops_vanished_targets_and_keeps_the_others_history) {
  const Target other = MakeTarget("wxB", "prod", 2);
  tracker_.SetTargets({prod_, test_, other});
  tracker_.Record(prod_, Result("prod-1"));
  tracker_.Record(test_, Result("test-1"));
  tracker_.Record(test_, Result("test-2"));
  tracker_.Record(other, Result("b-1"));

  // A reload removes app wxB and adds an env to wxA; test's refresh must not be forgotten.
  const Target dev = MakeTarget("wxA", "dev", 2);
  tracker_.SetTargets({prod_, test_, dev});
  const auto text = Scrape(exposition_);
  EXPECT_THAT(text, Not(HasSubstr(R"(app_id="wxB")")));
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "test")), 1);
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "dev")), 0);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "dev", "test")), 0);

  clock_.Advance(seconds{60});
  tracker_.Record(prod_, Invalid("prod-1"));
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "prod", "test")), 1);

  // test goes away: its own series go, the app's distinct count follows.
  tracker_.SetTargets({prod_, dev});
  EXPECT_EQ(Value(exposition_, Refreshes("wxA", "test")), std::nullopt);
  EXPECT_EQ(Value(exposition_, Invalidations("wxA", "test", "unknown")), std::nullopt);
  EXPECT_EQ(Value(exposition_, AppSeries("wxcanary_app_distinct_tokens", "wxA")), 1);
}

TEST_F(TokenTrackerTest, never_exposes_a_token) {
  tracker_.SetTargets({prod_, test_});
  tracker_.Record(prod_, Result("SECRET-prod-token-value"));
  tracker_.Record(test_, Result("SECRET-test-token-1"));
  tracker_.Record(test_, Result("SECRET-test-token-2"));
  tracker_.Record(prod_, Result("SECRET-prod-token-value"));  // superseded: the early warning
  clock_.Advance(seconds{60});
  tracker_.Record(prod_, Invalid("SECRET-prod-token-value"));
  ASSERT_EQ(logger_.events().size(), 3u);  // refreshed, superseded, invalidated
  EXPECT_THAT(Scrape(exposition_), Not(HasSubstr("SECRET")));
  for (const auto& e : logger_.events()) {
    EXPECT_THAT(e.message, Not(HasSubstr("SECRET")));
    EXPECT_THAT(e.fields.dump(), Not(HasSubstr("SECRET")));
  }
}

TEST(TokenTrackerConcurrency, records_from_many_threads_lose_nothing_while_scraped) {
  telemetry::Exposition exposition;
  CapturingLogger logger;
  FakeClock clock;
  TokenTracker tracker(exposition, logger, clock, {});
  constexpr int kApps = 3, kEnvs = 4, kRounds = 200;
  std::vector<Target> targets;
  for (int a = 0; a < kApps; ++a)
    for (int e = 0; e < kEnvs; ++e)
      targets.push_back(
          MakeTarget("wx" + std::to_string(a), "env" + std::to_string(e), targets.size()));
  tracker.SetTargets(targets);

  std::vector<std::thread> threads;
  for (const auto& t : targets) {
    threads.emplace_back([&tracker, &clock, t] {
      for (int i = 0; i < kRounds; ++i) {
        // Each target's token changes every other probe and fails once in a while.
        const std::string token = t.app_id + t.app_env + std::to_string(i / 2);
        tracker.Record(t, i % 10 == 9 ? Invalid(token) : Result(token));
        if (t.index == 0) clock.Advance(seconds{1});
      }
    });
  }
  // Scrapes read the state the records write: counters seen by one scrape never go back.
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    double last = 0;
    while (!done.load()) {
      const double now = Value(exposition, Refreshes("wx0", "env0")).value_or(-1);
      EXPECT_GE(now, last);
      last = now;
    }
  });
  // A reload of the same set in the middle must not lose anything either.
  tracker.SetTargets(targets);
  for (auto& th : threads) th.join();
  done = true;
  scraper.join();
  // Settle the failures still waiting for a culprit; a Redis error still moves time on.
  clock.Advance(std::chrono::hours{1});
  ProbeResult redis_error;
  redis_error.outcome = Outcome::kRedisError;
  tracker.Record(targets[0], redis_error);

  for (int a = 0; a < kApps; ++a) {
    const std::string app = "wx" + std::to_string(a);
    EXPECT_EQ(Value(exposition, AppSeries("wxcanary_app_token_refreshes_total", app)),
              kEnvs * (kRounds / 2 - 1));
    EXPECT_EQ(Value(exposition, AppSeries("wxcanary_app_distinct_tokens", app)), kEnvs);
    for (int e = 0; e < kEnvs; ++e)
      EXPECT_EQ(Value(exposition, Refreshes(app, "env" + std::to_string(e))), kRounds / 2 - 1);
  }
  EXPECT_EQ(logger.WithAction("token_invalidated").size(),
            static_cast<size_t>(kApps * kEnvs * kRounds / 10));
}

// A logger that blocks in Log() until released (the daemon's never does: it queues; this
// checks the tracker does not count on that while holding what a scrape needs). Thread-safe.
class StuckLogger final : public telemetry::Logger {
 public:
  void Log(telemetry::Level, std::string_view, std::string_view,
           const telemetry::Fields&) override {
    entered_.set_value();
    release_.get_future().wait();
  }
  [[nodiscard]] bool Enabled(telemetry::Level) const override { return true; }
  void WaitEntered() { entered_.get_future().wait(); }
  void Release() { release_.set_value(); }

 private:
  std::promise<void> entered_, release_;
};

TEST(TokenTrackerLocks, scrapes_answer_while_a_decisions_log_line_is_stuck) {
  telemetry::Exposition exposition;
  StuckLogger logger;
  FakeClock clock;
  TokenTracker tracker(exposition, logger, clock, {});
  const Target prod = MakeTarget("wxA", "prod", 0);
  tracker.SetTargets({prod});
  ProbeResult missing;
  missing.outcome = Outcome::kTokenMissing;
  tracker.Record(prod, missing);  // seen without a token: the next one is a refresh
  std::thread prober([&] { tracker.Record(prod, Result("fresh-token")); });  // logs it
  logger.WaitEntered();

  auto scrape = std::async(std::launch::async, [&] { return Scrape(exposition); });
  const bool answered = scrape.wait_for(std::chrono::seconds{2}) == std::future_status::ready;
  logger.Release();  // either way, so a failure ends instead of hanging
  prober.join();
  EXPECT_TRUE(answered) << "the scrape waited for the log line";
  EXPECT_THAT(scrape.get(), HasSubstr(Refreshes("wxA", "prod") + " 1"));
  EXPECT_EQ(tracker.Snapshot().at(0).refreshes, 1u);
}

}  // namespace
}  // namespace wxcanary::tracking
