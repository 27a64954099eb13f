#include "heal/healer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <thread>

#include "heal/fake_heal_store.h"
#include "support/fakes.h"

namespace wxcanary::heal {
namespace {

using namespace std::chrono_literals;
using testing::FakeFetcher;
using testing::FakeHealStore;
using testing::MetricValue;
using wxcanary::testing::CapturingLogger;
using wxcanary::testing::MakeTarget;

constexpr char kStale[] = "STALE-token-0123456789abcdef";
constexpr char kFresh[] = "FRESH-token-fedcba9876543210";

ProbeResult Result(Outcome outcome, const std::string& token = kStale,
                   std::optional<int> errcode = std::nullopt) {
  return wxcanary::testing::MakeResult(token, outcome, 5400, errcode);
}

ProbeResult Dead(const std::string& token = kStale) {
  return Result(Outcome::kTokenInvalid, token);
}
ProbeResult Ok(const std::string& token = kFresh) { return Result(Outcome::kOk, token); }
ProbeResult Missing() { return Result(Outcome::kTokenMissing, ""); }

class HealerTest : public ::testing::Test {
 protected:
  HealerTest() { Make(); }

  // Rebuilds the healer (e.g. after changing settings_).
  void Make(TokenFetcher* fetcher = nullptr) {
    healer_.reset();
    exposition_ = std::make_unique<telemetry::Exposition>();
    healer_ = std::make_unique<Healer>(settings_, store_, fetcher, *exposition_, logger_, clock_,
                                       "instance-a");
  }

  Target Evicting(const std::string& app = "wx0001", const std::string& env = "prod",
                  config::HealMode mode = config::HealMode::kEvict) {
    Target t = MakeTarget(app, env);
    t.env.redis = "main";
    t.env.heal = mode;
    store_.Put(t.env, kStale);
    return t;
  }

  // Records one probe result, a probe interval after the previous one.
  void Probe(const Target& t, const ProbeResult& r) {
    clock_.Advance(30s);
    healer_->Record(t, r);
  }

  double Heals(const Target& t, const std::string& action, const std::string& result) {
    return MetricValue(*exposition_, "wxcanary_heals_total",
                       {{"app_id", t.app_id},
                        {"app_env", t.app_env},
                        {"action", action},
                        {"result", result}})
        .value_or(-1);
  }

  config::Heal settings_;
  FakeClock clock_;
  FakeHealStore store_{clock_};
  CapturingLogger logger_;
  std::unique_ptr<telemetry::Exposition> exposition_;
  std::unique_ptr<Healer> healer_;
};

TEST_F(HealerTest, one_token_error_then_ok_deletes_nothing) {
  Target t = Evicting();
  healer_->SetTargets({t});
  Probe(t, Dead());
  Probe(t, Ok(kStale));  // the same token works again: it was an odd answer
  Probe(t, Dead());
  Probe(t, Ok(kStale));

  EXPECT_EQ(store_.Get(t.env), kStale);
  EXPECT_EQ(store_.cad_calls(), 0);
  EXPECT_EQ(store_.lock_calls(), 0);
  EXPECT_EQ(Heals(t, "evict", "done"), 0);
  EXPECT_TRUE(logger_.events().empty());
}

TEST_F(HealerTest, two_consecutive_token_errors_evict_the_stale_token) {
  Target t = Evicting();
  healer_->SetTargets({t});
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), kStale);
  Probe(t, Dead());

  EXPECT_EQ(store_.Get(t.env), std::nullopt);
  EXPECT_EQ(Heals(t, "evict", "done"), 1);
  EXPECT_EQ(Heals(t, "evict", "skipped_changed"), 0);
  EXPECT_EQ(store_.LockOwner(t.env), "instance-a");  // held until its TTL

  auto events = logger_.WithAction("token_evicted");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].level, telemetry::Level::kWarn);
  const auto& f = events[0].fields;
  EXPECT_EQ(f["event.outcome"], "success");
  EXPECT_EQ(f["labels.app_id"], "wx0001");
  EXPECT_EQ(f["labels.app_env"], "prod");
  EXPECT_EQ(f["wxcanary.redis.name"], "main");
  EXPECT_EQ(f["wxcanary.redis.key"], "ACCESS_TOKEN_CACHE:wx0001");
  EXPECT_EQ(f["wxcanary.token.fingerprint"], Fingerprint(kStale));
  EXPECT_EQ(f["wxcanary.heal.action"], "evict");
  EXPECT_EQ(f["wxcanary.heal.result"], "done");
  EXPECT_EQ(f["wxcanary.heal.reason"], "2 consecutive 40001 with redis ttl 5400s");
  EXPECT_EQ(logger_.events().size(), 1u);
}

// The healer finds a probe's state by its target's index (issue 19). A target of another target
// set that carries an index in use must get its own state, not the one at that index.
TEST_F(HealerTest, a_target_with_another_targets_index_never_feeds_that_targets_policy) {
  Target a = Evicting("wx000a");
  a.index = 0;
  Target b = Evicting("wx000b");
  b.index = 1;
  healer_->SetTargets({a, b});
  Target stranger = Evicting("wx000c");
  stranger.index = 0;  // never announced; a's index

  Probe(a, Dead());
  Probe(stranger, Dead());  // on a's state this would be a's second: a's token evicted
  EXPECT_EQ(store_.Get(a.env), kStale);
  Probe(stranger, Dead());
  EXPECT_EQ(store_.Get(stranger.env), std::nullopt);  // its own two
  Probe(b, Dead());
  Probe(b, Dead());
  EXPECT_EQ(store_.Get(b.env), std::nullopt);
  EXPECT_EQ(store_.Get(a.env), kStale);
  EXPECT_EQ(Heals(a, "evict", "done"), 0);
  EXPECT_EQ(Heals(b, "evict", "done"), 1);
  EXPECT_EQ(Heals(stranger, "evict", "done"), 1);
}

TEST_F(HealerTest, each_token_error_code_counts_toward_confirmation) {
  struct Case {
    Outcome outcome;
    int errcode;
  };
  for (auto c : {Case{Outcome::kTokenInvalid, 40001}, Case{Outcome::kTokenMalformed, 40014},
                 Case{Outcome::kTokenExpired, 42001}}) {
    SCOPED_TRACE(c.errcode);
    Target t = Evicting("wx" + std::to_string(c.errcode));
    Probe(t, Result(c.outcome, kStale, c.errcode));
    Probe(t, Result(c.outcome, kStale, c.errcode));
    EXPECT_EQ(store_.Get(t.env), std::nullopt);
    EXPECT_EQ(Heals(t, "evict", "done"), 1);
  }
}

TEST_F(HealerTest, confirmations_setting_sets_how_many_errors_are_needed) {
  settings_.confirmations = 3;
  Make();
  Target t = Evicting();
  Probe(t, Dead());
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), kStale);
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
}

TEST_F(HealerTest, heal_off_never_touches_redis) {
  Target t = Evicting("wx0001", "prod", config::HealMode::kOff);
  healer_->SetTargets({t});
  for (int i = 0; i < 5; ++i) Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), kStale);
  EXPECT_EQ(store_.lock_calls(), 0);
  EXPECT_EQ(testing::SeriesCount(*exposition_, "wxcanary_heals_total"), 0u);
  EXPECT_TRUE(logger_.events().empty());
}

TEST_F(HealerTest, dry_run_deletes_nothing_but_logs_and_counts) {
  Target t = Evicting("wx0001", "prod", config::HealMode::kDryRun);
  healer_->SetTargets({t});
  Probe(t, Dead());
  Probe(t, Dead());

  EXPECT_EQ(store_.Get(t.env), kStale);
  EXPECT_EQ(store_.cad_calls(), 0);
  EXPECT_EQ(Heals(t, "dry_run", "done"), 1);
  EXPECT_EQ(Heals(t, "evict", "done"), -1);  // no evict series in dry_run
  auto events = logger_.WithAction("heal_dry_run");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields["wxcanary.heal.action"], "dry_run");
  EXPECT_EQ(events[0].fields["wxcanary.heal.result"], "done");
  EXPECT_EQ(events[0].fields["wxcanary.token.fingerprint"], Fingerprint(kStale));
  EXPECT_TRUE(logger_.WithAction("token_evicted").empty());
}

TEST_F(HealerTest, cooldown_stops_a_second_heal_of_the_same_target) {
  Target t = Evicting();
  Probe(t, Dead());
  Probe(t, Dead());           // evicted
  store_.Put(t.env, kFresh);  // the app fetched a new token, which dies too
  Probe(t, Dead(kFresh));
  Probe(t, Dead(kFresh));  // 60 s after the heal: cooldown (5 min)

  EXPECT_EQ(store_.Get(t.env), kFresh);
  EXPECT_EQ(Heals(t, "evict", "done"), 1);
  EXPECT_EQ(Heals(t, "evict", "skipped_cooldown"), 1);
  auto skipped = logger_.WithAction("heal_skipped");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].fields["wxcanary.heal.result"], "skipped_cooldown");
  EXPECT_EQ(skipped[0].fields["wxcanary.token.fingerprint"], Fingerprint(kFresh));

  clock_.Advance(5min);  // cooldown over
  Probe(t, Dead(kFresh));
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
  EXPECT_EQ(Heals(t, "evict", "done"), 2);
}

TEST_F(HealerTest, budget_stops_a_heal_of_another_target_within_the_hour) {
  settings_.budget_per_hour = 1;
  Make();
  Target a = Evicting("wx000a");
  Target b = Evicting("wx000b");
  healer_->SetTargets({a, b});
  Probe(a, Dead());
  Probe(a, Dead());
  Probe(b, Dead());
  Probe(b, Dead());

  EXPECT_EQ(store_.Get(a.env), std::nullopt);
  EXPECT_EQ(store_.Get(b.env), kStale);
  EXPECT_EQ(Heals(b, "evict", "skipped_budget"), 1);
  EXPECT_EQ(Heals(b, "evict", "done"), 0);
  EXPECT_EQ(logger_.WithAction("heal_skipped").at(0).fields["wxcanary.heal.result"],
            "skipped_budget");

  clock_.Advance(1h);  // the window slides: the first heal no longer counts
  Probe(b, Dead());
  EXPECT_EQ(store_.Get(b.env), std::nullopt);
  EXPECT_EQ(Heals(b, "evict", "done"), 1);
}

TEST_F(HealerTest, lock_held_by_another_instance_stops_the_heal) {
  Target t = Evicting();
  store_.HoldLock(t.env, "instance-b", 75s);  // covers probes at 30 s and 60 s
  Probe(t, Dead());
  Probe(t, Dead());

  EXPECT_EQ(store_.Get(t.env), kStale);
  EXPECT_EQ(store_.cad_calls(), 0);
  EXPECT_EQ(Heals(t, "evict", "skipped_locked"), 1);
  EXPECT_EQ(store_.LockOwner(t.env), "instance-b");

  // A lock skip spends neither cooldown nor budget: the next probe may act.
  Probe(t, Dead());  // at 90 s the peer's lock has expired
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
  EXPECT_EQ(Heals(t, "evict", "done"), 1);
}

TEST_F(HealerTest, skipped_locked_does_not_spend_the_budget) {
  settings_.budget_per_hour = 1;
  Make();
  Target a = Evicting("wx000a");
  Target b = Evicting("wx000b");
  store_.HoldLock(a.env, "instance-b", 1h);
  Probe(a, Dead());
  Probe(a, Dead());
  Probe(b, Dead());
  Probe(b, Dead());
  EXPECT_EQ(Heals(a, "evict", "skipped_locked"), 1);
  EXPECT_EQ(Heals(b, "evict", "done"), 1);
}

TEST_F(HealerTest, skipped_changed_when_the_app_already_wrote_a_new_token) {
  Target t = Evicting();
  Probe(t, Dead());
  store_.Put(t.env, kFresh);  // the app rewrote the key between the probe and the heal
  Probe(t, Dead());

  EXPECT_EQ(store_.Get(t.env), kFresh);
  EXPECT_EQ(store_.cad_calls(), 1);
  EXPECT_EQ(Heals(t, "evict", "skipped_changed"), 1);
  EXPECT_EQ(Heals(t, "evict", "done"), 0);
  EXPECT_EQ(store_.LockOwner(t.env), std::nullopt);  // released: nothing was done
  auto skipped = logger_.WithAction("heal_skipped");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].fields["wxcanary.heal.result"], "skipped_changed");
}

TEST_F(HealerTest, redis_errors_count_as_heal_errors) {
  Target t = Evicting();
  store_.FailCompareAndDelete(true);
  Probe(t, Dead());
  Probe(t, Dead());
  EXPECT_EQ(Heals(t, "evict", "error"), 1);
  auto events = logger_.WithAction("heal_skipped");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].level, telemetry::Level::kError);
  EXPECT_EQ(events[0].fields["event.outcome"], "failure");
  EXPECT_EQ(events[0].fields["error.message"], "injected redis error");
}

TEST_F(HealerTest, a_lock_error_is_an_error_and_spends_no_budget) {
  settings_.budget_per_hour = 1;
  Make();
  Target t = Evicting();
  store_.FailLock(true);
  Probe(t, Dead());
  Probe(t, Dead());
  EXPECT_EQ(Heals(t, "evict", "error"), 1);
  EXPECT_EQ(store_.cad_calls(), 0);
  store_.FailLock(false);
  Probe(t, Dead());
  EXPECT_EQ(Heals(t, "evict", "done"), 1);
}

TEST_F(HealerTest, transport_and_redis_errors_neither_confirm_nor_reset) {
  Target t = Evicting();
  Probe(t, Dead());
  Probe(t, Result(Outcome::kTransportError));
  Probe(t, Result(Outcome::kRedisError, ""));
  EXPECT_EQ(store_.Get(t.env), kStale);
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
}

TEST_F(HealerTest, outcomes_that_show_the_token_is_not_confirmed_dead_reset_the_count) {
  for (Outcome o : {Outcome::kOk, Outcome::kTokenMissing, Outcome::kQuota, Outcome::kApiError,
                    Outcome::kBadResponse}) {
    SCOPED_TRACE(std::string(OutcomeName(o)));
    Target t = Evicting(std::string("wx_") + std::string(OutcomeName(o)));
    Probe(t, Dead());
    Probe(t, Result(o));
    Probe(t, Dead());
    EXPECT_EQ(store_.Get(t.env), kStale);
    EXPECT_EQ(store_.cad_calls(), 0);
  }
}

TEST_F(HealerTest, a_different_token_restarts_the_count) {
  Target t = Evicting();
  Probe(t, Dead(kFresh));
  Probe(t, Dead(kStale));
  EXPECT_EQ(store_.Get(t.env), kStale);
  Probe(t, Dead(kStale));
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
}

TEST_F(HealerTest, recovery_histogram_spans_first_failure_to_first_ok_after_a_heal) {
  Target t = Evicting();
  healer_->SetTargets({t});
  Probe(t, Dead());     // t=30: episode starts
  Probe(t, Dead());     // t=60: evicted
  Probe(t, Missing());  // t=90: the app has not refetched yet
  Probe(t, Ok());       // t=120: recovered, 90 s after the first failure

  double sum = 0;
  auto count = MetricValue(*exposition_, "wxcanary_heal_recovery_seconds",
                           {{"app_id", "wx0001"}, {"app_env", "prod"}}, &sum);
  EXPECT_EQ(count, 1);
  EXPECT_DOUBLE_EQ(sum, 90.0);

  Probe(t, Ok());  // only the first ok after a heal is observed
  count = MetricValue(*exposition_, "wxcanary_heal_recovery_seconds",
                      {{"app_id", "wx0001"}, {"app_env", "prod"}}, &sum);
  EXPECT_EQ(count, 1);
}

TEST_F(HealerTest, recovery_is_not_observed_when_no_heal_happened) {
  Target t = Evicting();
  healer_->SetTargets({t});
  Probe(t, Dead());
  Probe(t, Ok());
  EXPECT_EQ(MetricValue(*exposition_, "wxcanary_heal_recovery_seconds",
                        {{"app_id", "wx0001"}, {"app_env", "prod"}}),
            0);
}

TEST_F(HealerTest, series_exist_at_zero_for_the_env_action_and_go_with_the_target) {
  Target evict = Evicting("wx000a", "prod");
  Target dry = Evicting("wx000b", "test", config::HealMode::kDryRun);
  healer_->SetTargets({evict, dry});
  for (std::string r : {"done", "skipped_changed", "skipped_cooldown", "skipped_budget",
                        "skipped_locked", "error"}) {
    EXPECT_EQ(Heals(evict, "evict", r), 0) << r;
    EXPECT_EQ(Heals(dry, "dry_run", r), 0) << r;
  }
  EXPECT_EQ(testing::SeriesCount(*exposition_, "wxcanary_heals_total"), 12u);
  EXPECT_EQ(testing::SeriesCount(*exposition_, "wxcanary_heal_recovery_seconds"), 1u);

  healer_->SetTargets({dry});
  EXPECT_EQ(testing::SeriesCount(*exposition_, "wxcanary_heals_total"), 6u);
  EXPECT_EQ(testing::SeriesCount(*exposition_, "wxcanary_heal_recovery_seconds"), 0u);
  EXPECT_EQ(Heals(evict, "evict", "done"), -1);
}

TEST_F(HealerTest, set_targets_drops_the_state_of_removed_targets) {
  Target t = Evicting();
  healer_->SetTargets({t});
  Probe(t, Dead());
  healer_->SetTargets({});
  healer_->SetTargets({t});
  Probe(t, Dead());  // the count started over: one error only
  EXPECT_EQ(store_.Get(t.env), kStale);
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
}

TEST_F(HealerTest, refresh_writes_a_stable_token_with_ttl_minus_margin) {
  FakeFetcher fetcher(kFresh, 7000s);
  Make(&fetcher);
  Target t = Evicting();
  t.env.heal_refresh = true;
  healer_->SetTargets({t});
  Probe(t, Dead());
  Probe(t, Dead());

  EXPECT_EQ(store_.Get(t.env), kFresh);
  ASSERT_EQ(store_.writes().size(), 1u);
  EXPECT_EQ(store_.writes()[0].ttl, 6700s);  // 7000 - 300 margin
  EXPECT_EQ(fetcher.apps(), std::vector<std::string>{"wx0001"});
  EXPECT_EQ(Heals(t, "evict", "done"), 1);
  EXPECT_EQ(Heals(t, "refresh", "done"), 1);
  auto events = logger_.WithAction("heal_refreshed");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields["wxcanary.token.fingerprint"], Fingerprint(kStale));
  EXPECT_EQ(events[0].fields["wxcanary.heal.new_fingerprint"], Fingerprint(kFresh));
}

TEST_F(HealerTest, refresh_leaves_a_token_the_app_wrote_first) {
  struct RacingFetcher final : TokenFetcher {
    FakeHealStore* store;
    config::Environment env;
    std::optional<FetchedToken> FetchToken(const std::string&, bool, std::string*,
                                           wechat::FetchFailure*) override {
      store->Put(env, "APP-WROTE-THIS");
      return FetchedToken{Secret(kFresh), 7200s};
    }
  } fetcher;
  fetcher.store = &store_;
  Make(&fetcher);
  Target t = Evicting();
  t.env.heal_refresh = true;
  fetcher.env = t.env;
  Probe(t, Dead());
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), "APP-WROTE-THIS");
  EXPECT_EQ(Heals(t, "refresh", "skipped_changed"), 1);
}

TEST_F(HealerTest, refresh_failures_are_counted_and_leave_the_key_evicted) {
  FakeFetcher fetcher(kFresh, 7200s);
  fetcher.Fail(true);
  Make(&fetcher);
  Target t = Evicting();
  t.env.heal_refresh = true;
  Probe(t, Dead());
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
  EXPECT_EQ(Heals(t, "evict", "done"), 1);
  EXPECT_EQ(Heals(t, "refresh", "error"), 1);
  EXPECT_EQ(logger_.WithAction("heal_skipped").at(0).fields["error.message"],
            "stable_token: errcode 40125 invalid appsecret");
}

TEST_F(HealerTest, refresh_is_skipped_for_hash_and_json_storage) {
  FakeFetcher fetcher(kFresh, 7200s);
  Make(&fetcher);
  Target t = Evicting();
  t.env.storage = config::Storage::kHash;
  t.env.hash_field = "token";
  t.env.heal_refresh = true;
  store_.Put(t.env, kStale);
  healer_->SetTargets({t});
  Probe(t, Dead());
  Probe(t, Dead());
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
  EXPECT_TRUE(fetcher.apps().empty());
  EXPECT_EQ(Heals(t, "refresh", "done"), -1);
  auto skipped = logger_.WithAction("heal_skipped");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].fields["wxcanary.heal.action"], "refresh");
}

TEST_F(HealerTest, no_event_carries_a_token_or_raw_value) {
  FakeFetcher fetcher(kFresh, 7200s);
  Make(&fetcher);
  Target t = Evicting();
  t.env.heal_refresh = true;
  Probe(t, Dead());
  Probe(t, Dead());  // evict + refresh
  store_.Put(t.env, kStale);
  Probe(t, Dead());
  Probe(t, Dead());  // cooldown
  ASSERT_GE(logger_.events().size(), 3u);
  for (const auto& e : logger_.events()) {
    std::string line = e.message + e.fields.dump();
    EXPECT_EQ(line.find("STALE-token"), std::string::npos) << line;
    EXPECT_EQ(line.find("FRESH-token"), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace wxcanary::heal

namespace wxcanary::heal {
namespace {

// A heal store whose TryLock hangs until released, as against a blackholed Redis.
class StuckHealStore final : public HealStore {
 public:
  std::optional<int> CompareAndDelete(const config::Environment&, const Secret&,
                                      std::string*) override {
    return 0;
  }
  std::optional<int> CompareAndSet(const config::Environment&, const Secret&, const Secret&,
                                   std::chrono::seconds, std::string*) override {
    return 0;
  }
  std::optional<bool> TryLock(const config::Environment&, const std::string&,
                              std::chrono::milliseconds, std::string*) override {
    std::unique_lock lock(mu_);
    entered_ = true;
    cv_.notify_all();
    // Bounded, so a scrape blocked behind this fails the test instead of hanging it.
    cv_.wait_for(lock, std::chrono::seconds{2}, [this] { return released_; });
    return false;
  }
  void Unlock(const config::Environment&, const std::string&) override {}
  void WaitEntered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

TEST(HealerLocks, a_scrape_and_the_status_snapshot_answer_while_a_heal_is_stuck_in_redis) {
  FakeClock clock;
  StuckHealStore store;
  CapturingLogger logger;
  telemetry::Exposition exposition;
  config::Heal settings;
  settings.confirmations = 1;
  Healer healer(settings, store, nullptr, exposition, logger, clock, "me");
  Target t = MakeTarget("wx0001", "prod");
  t.env.redis = "main";
  t.env.heal = config::HealMode::kEvict;
  healer.SetTargets({t});
  std::thread probe([&] { healer.Record(t, Dead()); });
  store.WaitEntered();
  const auto start = std::chrono::steady_clock::now();
  const std::string text = exposition.Serialize();
  const auto snapshot = healer.Snapshot();
  const auto took = std::chrono::steady_clock::now() - start;
  store.Release();
  probe.join();
  EXPECT_LT(took, 100ms) << "the scrape waited for the heal's Redis I/O";
  EXPECT_NE(text.find("wxcanary_heals_total"), std::string::npos);
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].streak, 1);
}

// The daemon's healer heals on its own thread: Record() runs on the probe engine's event loop,
// and a refresh waiting on the API must stall neither it nor other targets' results.
TEST_F(HealerTest, on_its_own_thread_a_heal_stuck_in_io_holds_up_no_record) {
  struct BlockingFetcher final : TokenFetcher {
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false, released = false;
    std::optional<FetchedToken> FetchToken(const std::string&, bool, std::string*,
                                           wechat::FetchFailure*) override {
      std::unique_lock lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait_for(lock, 20s, [&] { return released; });
      return FetchedToken{Secret(kFresh), 7000s};
    }
  } fetcher;
  Make(&fetcher);
  healer_->StartHealThread();
  Target t = Evicting();
  t.env.heal_refresh = true;
  Target other = Evicting("wx0002");
  healer_->SetTargets({t, other});
  Probe(t, Dead());
  Probe(t, Dead());  // confirmed: the heal is queued, Record returns
  {
    std::unique_lock lock(fetcher.mu);
    ASSERT_TRUE(fetcher.cv.wait_for(lock, 10s, [&] { return fetcher.entered; }));
  }
  // The heal sits in its refresh: evicted, not yet written.
  EXPECT_EQ(store_.Get(t.env), std::nullopt);
  const auto start = std::chrono::steady_clock::now();
  Probe(t, Dead());  // the same target: not fed to the policy, not waited for
  Probe(other, Dead());
  Probe(other, Dead());  // another target heals meanwhile (queued behind the first)
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  {
    std::lock_guard lock(fetcher.mu);
    fetcher.released = true;
  }
  fetcher.cv.notify_all();
  const auto until = std::chrono::steady_clock::now() + 10s;
  while ((store_.Get(t.env) != kFresh || store_.Get(other.env) != std::nullopt) &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(store_.Get(t.env), kFresh);
  EXPECT_EQ(store_.Get(other.env), std::nullopt);
  healer_.reset();  // joins the heal thread: its counts are final
}

}  // namespace
}  // namespace wxcanary::heal
