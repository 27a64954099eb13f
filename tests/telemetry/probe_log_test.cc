#include "telemetry/probe_log.h"

#include <gtest/gtest.h>

#include "common/fingerprint.h"
#include "support/fakes.h"

namespace wxcanary::telemetry {
namespace {

using testing::CapturingLogger;
using testing::MakeTarget;

const std::string kToken =
    "86_xYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_SECRET";

ProbeResult WithToken(Outcome outcome) {
  ProbeResult r;
  r.outcome = outcome;
  r.duration = std::chrono::milliseconds{42};
  r.token_present = true;
  r.token = Secret(kToken);
  r.raw_value = Secret("{\"access_token\":\"" + kToken + "\"}");
  r.fingerprint = Fingerprint(kToken);
  r.ttl_seconds = 5400;
  return r;
}

Target ProdTarget() {
  auto t = MakeTarget("wx123", "prod");
  t.env.redis = "main";
  t.env.probe = config::ProbeKind::kMsgSecCheck;
  return t;
}

TEST(ProbeLog, picks_the_level_from_the_outcome) {
  struct Case {
    Outcome outcome;
    bool flagged;
    Level level;
  };
  for (const auto& c : std::vector<Case>{{Outcome::kOk, false, Level::kInfo},
                                         {Outcome::kOk, true, Level::kWarn},
                                         {Outcome::kTokenInvalid, false, Level::kError},
                                         {Outcome::kTokenMalformed, false, Level::kError},
                                         {Outcome::kTokenExpired, false, Level::kError},
                                         {Outcome::kTokenMissing, false, Level::kError},
                                         {Outcome::kQuota, false, Level::kWarn},
                                         {Outcome::kApiError, false, Level::kWarn},
                                         {Outcome::kTransportError, false, Level::kWarn},
                                         {Outcome::kBadResponse, false, Level::kWarn},
                                         {Outcome::kRedisError, false, Level::kWarn}}) {
    ProbeResult r;
    r.outcome = c.outcome;
    r.content_flagged = c.flagged;
    EXPECT_EQ(ProbeLog::LevelFor(r), c.level) << OutcomeName(c.outcome) << " flagged=" << c.flagged;
  }
}

TEST(ProbeLog, writes_the_incident_as_an_error_with_fields_in_the_documented_order) {
  CapturingLogger logger;
  ProbeLog log(logger);
  auto r = WithToken(Outcome::kTokenInvalid);
  r.errcode = 40001;
  r.errmsg = "invalid credential, access_token is invalid or not latest";
  r.rid = "6566f1a2-1b2c3d4e-5f6a7b8c";
  log.Record(ProdTarget(), r);

  auto events = logger.WithAction("probe");
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e.level, Level::kError);
  EXPECT_EQ(e.message, "probe wx123/prod: token_invalid (errcode 40001) with token " +
                           Fingerprint(kToken) + ", redis ttl 5400s");
  Fields expected = Fields::object();
  expected["event.outcome"] = "failure";
  expected["event.duration"] = 42'000'000;
  expected["labels.app_id"] = "wx123";
  expected["labels.app_env"] = "prod";
  expected["wxcanary.probe.kind"] = "msg_sec_check";
  expected["wxcanary.probe.outcome"] = "token_invalid";
  expected["wxcanary.redis.name"] = "main";
  expected["wxcanary.redis.key"] = "ACCESS_TOKEN_CACHE:wx123";
  expected["wxcanary.token.fingerprint"] = Fingerprint(kToken);
  expected["wxcanary.token.ttl_seconds"] = 5400;
  expected["wxcanary.wechat.errcode"] = 40001;
  expected["wxcanary.wechat.errmsg"] = "invalid credential, access_token is invalid or not latest";
  expected["wxcanary.wechat.rid"] = "6566f1a2-1b2c3d4e-5f6a7b8c";
  EXPECT_EQ(e.fields.dump(), expected.dump());  // dump compares order too
}

TEST(ProbeLog, writes_ok_at_info_and_flagged_content_at_warn) {
  CapturingLogger logger;
  ProbeLog log(logger);
  auto ok = WithToken(Outcome::kOk);
  ok.errcode = 0;
  ok.errmsg = "ok";
  log.Record(ProdTarget(), ok);
  auto flagged = WithToken(Outcome::kOk);
  flagged.errcode = 87014;
  flagged.errmsg = "risky content";
  flagged.content_flagged = true;
  log.Record(ProdTarget(), flagged);

  auto events = logger.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].level, Level::kInfo);
  EXPECT_EQ(events[0].fields["event.outcome"], "success");
  EXPECT_EQ(events[0].message, "probe wx123/prod: ok (errcode 0) with token " +
                                   Fingerprint(kToken) + ", redis ttl 5400s");
  EXPECT_EQ(events[1].level, Level::kWarn);
  EXPECT_EQ(events[1].fields["event.outcome"], "success");
  EXPECT_EQ(events[1].fields["wxcanary.probe.content_flagged"], true);
  EXPECT_EQ(events[1].message,
            "probe wx123/prod: ok, canary content flagged (errcode 87014) with token " +
                Fingerprint(kToken) + ", redis ttl 5400s");
}

TEST(ProbeLog, describes_missing_keys_keys_without_expiry_and_redis_errors) {
  auto t = ProdTarget();
  ProbeResult missing;
  missing.outcome = Outcome::kTokenMissing;
  missing.ttl_seconds = -2;
  EXPECT_EQ(ProbeLog::MessageFor(t, missing),
            "probe wx123/prod: token_missing, redis key ACCESS_TOKEN_CACHE:wx123 absent");
  EXPECT_EQ(ProbeLog::FieldsFor(t, missing)["wxcanary.token.ttl_seconds"], -2);
  EXPECT_FALSE(ProbeLog::FieldsFor(t, missing).contains("wxcanary.token.fingerprint"));

  auto forever = WithToken(Outcome::kOk);
  forever.ttl_seconds = -1;
  EXPECT_EQ(ProbeLog::MessageFor(t, forever), "probe wx123/prod: ok with token " +
                                                  Fingerprint(kToken) +
                                                  ", redis ttl none (key never expires)");

  ProbeResult down;
  down.outcome = Outcome::kRedisError;
  down.detail = "Connection refused";
  EXPECT_EQ(ProbeLog::MessageFor(t, down),
            "probe wx123/prod: redis_error, redis main unavailable: Connection refused");
  auto f = ProbeLog::FieldsFor(t, down);
  EXPECT_FALSE(f.contains("wxcanary.token.ttl_seconds"));  // Redis told us nothing
  EXPECT_EQ(f["error.message"], "Connection refused");
  EXPECT_EQ(f["event.outcome"], "failure");
}

TEST(ProbeLog, never_writes_the_token_even_when_the_api_or_curl_echo_it) {
  CapturingLogger logger;
  ProbeLog log(logger);
  auto r = WithToken(Outcome::kTransportError);
  r.detail = "Failed to connect to api.weixin.qq.com/cgi-bin/x?access_token=" + kToken +
             "&a=b; token " + kToken;
  log.Record(ProdTarget(), r);
  auto r2 = WithToken(Outcome::kApiError);
  r2.errcode = 40164;
  r2.errmsg = "invalid ip 1.2.3.4, not in whitelist, echo " + kToken;
  r2.detail = "value was " + r2.raw_value.Reveal();
  log.Record(ProdTarget(), r2);
  auto r3 = WithToken(Outcome::kBadResponse);
  r3.detail = "unexpected body {\"x\":1} for access_token=abc";
  log.Record(ProdTarget(), r3);

  auto events = logger.events();
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) {
    std::string line = FormatJsonLine(SystemTime{}, e.level, e.action, e.message, e.fields);
    EXPECT_EQ(line.find(kToken), std::string::npos) << line;
    EXPECT_EQ(line.find("SECRET"), std::string::npos) << line;
    EXPECT_NE(line.find(Fingerprint(kToken)), std::string::npos) << line;
  }
  const std::string fp = "<" + Fingerprint(kToken) + ">";
  EXPECT_EQ(
      events[0].fields["error.message"],
      "Failed to connect to api.weixin.qq.com/cgi-bin/x?access_token=" + fp + "&a=b; token " + fp);
  EXPECT_EQ(events[1].fields["wxcanary.wechat.errmsg"],
            "invalid ip 1.2.3.4, not in whitelist, echo " + fp);
  // The stored value is masked whole (it may hold more than the token), by its own fingerprint.
  EXPECT_EQ(events[1].fields["error.message"],
            "value was <" + Fingerprint("{\"access_token\":\"" + kToken + "\"}") + ">");
  // A token we never read has no fingerprint to show.
  EXPECT_EQ(events[2].fields["error.message"],
            "unexpected body {\"x\":1} for access_token=<redacted>");
}

TEST(ProbeLog, adds_extra_labels_and_skips_disabled_levels) {
  class InfoOff final : public Logger {
   public:
    void Log(Level, std::string_view, std::string_view, const Fields&) override { ++calls; }
    [[nodiscard]] bool Enabled(Level level) const override { return level >= Level::kWarn; }
    int calls = 0;
  };
  InfoOff quiet;
  ProbeLog log(quiet);
  log.Record(ProdTarget(), WithToken(Outcome::kOk));
  EXPECT_EQ(quiet.calls, 0);
  log.Record(ProdTarget(), WithToken(Outcome::kTokenExpired));
  EXPECT_EQ(quiet.calls, 1);

  auto t = ProdTarget();
  t.env.labels = {{"team", "pay"}};
  auto f = ProbeLog::FieldsFor(t, WithToken(Outcome::kOk));
  EXPECT_EQ(f["labels.team"], "pay");
}

// Record reuses one set of fields per thread: each event must carry exactly the fields a
// fresh build gives (same keys, order and values), whichever event came before it.
TEST(ProbeLog, consecutive_events_with_different_fields_each_get_their_own) {
  auto labelled = ProdTarget();
  labelled.env.labels = {{"team", "pay"}, {"zone", "sh"}};
  auto invalid = WithToken(Outcome::kTokenInvalid);
  invalid.errcode = 40001;
  invalid.errmsg = "invalid credential, access_token is invalid or not latest";
  invalid.rid = "6656f0b7-4d1c2b9a-3e2f1a0b";
  auto flagged = WithToken(Outcome::kOk);
  flagged.content_flagged = true;
  flagged.errcode = 0;
  flagged.errmsg = "ok";
  ProbeResult down;
  down.outcome = Outcome::kRedisError;
  down.detail = "Connection refused";
  ProbeResult missing;
  missing.outcome = Outcome::kTokenMissing;
  missing.detail = "no token at key";
  const std::vector<std::pair<Target, ProbeResult>> sequence = {
      {ProdTarget(), WithToken(Outcome::kOk)},
      {ProdTarget(), invalid},
      {labelled, invalid},
      {ProdTarget(), flagged},
      {labelled, down},
      {ProdTarget(), missing},
      {labelled, WithToken(Outcome::kOk)},
      {ProdTarget(), WithToken(Outcome::kOk)}};
  CapturingLogger logger;
  ProbeLog log(logger);
  for (const auto& [t, r] : sequence) log.Record(t, r);
  const auto events = logger.events();
  ASSERT_EQ(events.size(), sequence.size());
  for (size_t i = 0; i < sequence.size(); ++i) {
    const Fields want = ProbeLog::FieldsFor(sequence[i].first, sequence[i].second);
    EXPECT_EQ(events[i].fields.dump(), want.dump()) << "event " << i;
  }
  EXPECT_EQ(events[2].fields["labels.zone"], "sh");
  EXPECT_FALSE(events[3].fields.contains("labels.team"));
  EXPECT_EQ(events[4].fields.size(), 11u);  // no fingerprint, ttl or errcode for a Redis error
}

// Log state changes, not every probe (issue 16): what a day of probes leaves in the log.
TEST(ProbeLog, logs_state_changes_and_keeps_repeats_at_debug) {
  CapturingLogger logger;
  ProbeLog log(logger);
  const Target prod = ProdTarget();
  log.SetTargets({prod});
  const SystemTime t0 = SystemTime{} + std::chrono::hours{1000};
  auto at = [&](ProbeResult r, std::chrono::seconds s, std::optional<int> errcode = std::nullopt) {
    r.started = t0 + s;
    r.errcode = errcode;
    return r;
  };
  using std::chrono::seconds;
  log.Record(prod, at(WithToken(Outcome::kOk), seconds{0}, 0));                  // first seen: INFO
  log.Record(prod, at(WithToken(Outcome::kOk), seconds{30}, 0));                 // same: DEBUG
  log.Record(prod, at(WithToken(Outcome::kOk), seconds{60}, 0));                 // same: DEBUG
  log.Record(prod, at(WithToken(Outcome::kTokenInvalid), seconds{90}, 40001));   // ERROR
  log.Record(prod, at(WithToken(Outcome::kTokenInvalid), seconds{120}, 40001));  // DEBUG
  log.Record(prod, at(WithToken(Outcome::kTokenExpired), seconds{150}, 42001));  // new: ERROR
  log.Record(prod, at(WithToken(Outcome::kTokenExpired), seconds{750}, 42001));  // 10 min: ERROR
  log.Record(prod, at(WithToken(Outcome::kTokenExpired), seconds{780}, 42001));  // DEBUG
  log.Record(prod, at(WithToken(Outcome::kOk), seconds{810}, 0));                // recovered: WARN
  log.Record(prod, at(WithToken(Outcome::kOk), seconds{840}, 0));                // DEBUG

  const auto e = logger.events();
  ASSERT_EQ(e.size(), 10u);
  const std::vector<Level> levels = {Level::kInfo,  Level::kDebug, Level::kDebug, Level::kError,
                                     Level::kDebug, Level::kError, Level::kError, Level::kDebug,
                                     Level::kWarn,  Level::kDebug};
  for (size_t i = 0; i < e.size(); ++i) EXPECT_EQ(e[i].level, levels[i]) << "event " << i;
  EXPECT_EQ(e[6].action, "probe");
  EXPECT_NE(e[6].message.find("(failing for 660 s)"), std::string::npos) << e[6].message;
  EXPECT_EQ(e[8].action, "probe_recovered");
  EXPECT_EQ(e[8].fields["wxcanary.probe.outcome"], "ok");
  EXPECT_EQ(e[8].fields["wxcanary.probe.previous_outcome"], "token_expired");
  EXPECT_EQ(e[8].fields["wxcanary.probe.previous_errcode"], 42001);
  EXPECT_EQ(e[8].fields["wxcanary.probe.failed_seconds"], 720);  // since the first failure
  EXPECT_NE(e[8].message.find("recovered after 720 s of token_expired (errcode 42001)"),
            std::string::npos)
      << e[8].message;
  EXPECT_EQ(e[8].message.find(kToken), std::string::npos);
  // The next event of the thread gets its own fields again, without the recovery's.
  EXPECT_FALSE(e[9].fields.contains("wxcanary.probe.failed_seconds"));
}

TEST(ProbeLog, keeps_a_targets_state_across_a_reload_and_forgets_removed_ones) {
  CapturingLogger logger;
  ProbeLog log(logger);
  Target prod = ProdTarget();
  Target test = MakeTarget("wx123", "test");
  log.SetTargets({prod});
  log.Record(prod, WithToken(Outcome::kTokenInvalid));  // ERROR
  test.index = 0;
  prod.index = 1;
  log.SetTargets({test, prod});                         // reload: prod moved
  log.Record(prod, WithToken(Outcome::kTokenInvalid));  // still the same failure: DEBUG
  log.Record(test, WithToken(Outcome::kOk));            // new target: INFO
  const auto e = logger.events();
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].level, Level::kError);
  EXPECT_EQ(e[1].level, Level::kDebug);
  EXPECT_EQ(e[2].level, Level::kInfo);
}

// The error lines are the ones RedisConnection writes (hiredis errstr and Redis replies).
TEST(RedisErrorKind, names_what_went_wrong) {
  struct Case {
    std::string error;
    std::string_view kind;
  };
  for (const auto& c : std::vector<Case>{
           {"127.0.0.1:6379: AUTH failed: WRONGPASS invalid username-password pair or user is "
            "disabled.",
            "auth"},
           {"GET ACCESS_TOKEN_CACHE:wx1: NOAUTH Authentication required.", "auth"},
           {"127.0.0.1:6379: SELECT failed: ERR DB index is out of range", "select"},
           {"connect 127.0.0.1:6390: Connection refused", "refused"},
           {"GET ACCESS_TOKEN_CACHE:wx1: Resource temporarily unavailable", "timeout"},
           {"connect 10.0.0.1:6379: Connection timed out", "timeout"},
           {"connect redis.invalid:6379: Name or service not known", "dns"},
           {"GET k: Server closed the connection", "closed"},
           {"GET k: Connection reset by peer", "closed"},
           {"GET k: LOADING Redis is loading the dataset in memory", "unavailable"},
           {"GET k: MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to "
            "'no'.",
            "unavailable"},
           {"sentinel \"mymaster\": no sentinel named the master (127.0.0.1:26379: Connection "
            "refused)",
            "sentinel"},
           {"reconnect backoff", "backoff"},
           // A key's name is not the server's answer.
           {"GET BUSY:LOADING:key: ERR something else", "error"},
       }) {
    EXPECT_EQ(RedisErrorKind(c.error), c.kind) << c.error;
  }
}

TEST(LogRedisHealth, redis_down_carries_the_reason_and_redis_up_ends_it) {
  CapturingLogger logger;
  LogRedisHealth(logger, "main", false, "connect 127.0.0.1:6390: Connection refused");
  LogRedisHealth(logger, "main", true, "");
  const auto events = logger.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].action, "redis_down");
  EXPECT_EQ(events[0].level, Level::kError);
  EXPECT_EQ(events[0].message,
            "redis main is unreachable (refused): connect 127.0.0.1:6390: Connection refused");
  EXPECT_EQ(events[0].fields.dump(),
            Fields({{"wxcanary.redis.name", "main"},
                    {"error.type", "refused"},
                    {"error.message", "connect 127.0.0.1:6390: Connection refused"}})
                .dump());
  EXPECT_EQ(events[1].action, "redis_up");
  EXPECT_EQ(events[1].level, Level::kWarn);
  EXPECT_EQ(events[1].message, "redis main is reachable");
  EXPECT_EQ(events[1].fields.dump(), Fields({{"wxcanary.redis.name", "main"}}).dump());
}

}  // namespace
}  // namespace wxcanary::telemetry
