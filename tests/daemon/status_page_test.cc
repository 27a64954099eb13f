// The status page (`/`) and /api/v1/targets as rendered from snapshots: escaping, order, the
// filter, pagination at 10,000 targets, and that no token reaches the output.
#include "daemon/status_page.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>

#include "../heal/fake_heal_store.h"
#include "common/fingerprint.h"
#include "common/rfc3339.h"
#include "heal/healer.h"
#include "keeper/keeper.h"
#include "support/fakes.h"
#include "telemetry/exposition.h"
#include "telemetry/probe_metrics.h"
#include "tracking/token_tracker.h"

namespace wxcanary::daemon {
namespace {

using namespace std::chrono_literals;

const SystemTime kNow = SystemTime{std::chrono::seconds{1'764'633'600}};  // 2025-12-02 00:00 UTC

TargetStatus Ok(std::string app_id, std::string app_env) {
  TargetStatus t;
  t.app_id = std::move(app_id);
  t.app_env = std::move(app_env);
  t.last_outcome = Outcome::kOk;
  t.errcode = 0;
  t.errmsg = "ok";
  t.token_known = t.token_present = true;
  t.fingerprint = "0a1b2c3d";
  t.ttl_seconds = 7000;
  t.last_run = t.last_success = kNow - 5s;
  t.distinct_tokens = 1;
  return t;
}

TargetStatus Failing(std::string app_id, std::string app_env, SystemTime since) {
  TargetStatus t = Ok(std::move(app_id), std::move(app_env));
  t.last_outcome = Outcome::kTokenInvalid;
  t.errcode = 40001;
  t.errmsg = "invalid credential, access_token is invalid or not latest";
  t.rid = "6571a2b3-1c2d3e4f-5a6b7c8d";
  t.last_success = since - 30s;
  t.failing_since = since;
  t.cause_env = "test";
  t.distinct_tokens = 2;
  return t;
}

// The data-app-env of every row, in page order.
std::vector<std::string> RowEnvs(const std::string& html) {
  std::vector<std::string> out;
  static const std::regex kRow(
      "<tr class=\"[a-z_]+\" data-app-id=\"[^\"]*\" data-app-env=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), kRow); it != std::sregex_iterator();
       ++it)
    out.push_back((*it)[1]);
  return out;
}

size_t Rows(const std::string& html) {
  size_t n = 0;
  for (size_t p = html.find("<tr class="); p != std::string::npos;
       p = html.find("<tr class=", p + 1))
    ++n;
  return n;
}

TEST(StatusPage, failing_targets_come_first_longest_failing_first_then_the_rest_by_name) {
  std::vector<TargetStatus> targets = {Ok("wxa", "alpha"), Failing("wxb", "late", kNow - 1min),
                                       Ok("wxa", "beta"), Failing("wxc", "early", kNow - 1h)};
  TargetStatus pending;
  pending.app_id = "wxa";
  pending.app_env = "new";
  targets.push_back(pending);
  const std::string html = RenderStatusPage(targets, {}, kNow);
  EXPECT_EQ(RowEnvs(html), (std::vector<std::string>{"early", "late", "new", "alpha", "beta"}));
  EXPECT_NE(html.find("id=count-targets>5 targets<"), std::string::npos) << html;
  EXPECT_NE(html.find(">2 failing<"), std::string::npos);
  EXPECT_NE(html.find(">2 in conflict<"), std::string::npos);
  // The failing row names its errcode, rid and the environment whose refresh killed it.
  const size_t row = html.find("data-app-env=\"early\"");
  const std::string early = html.substr(row, html.find("</tr>", row) - row);
  EXPECT_NE(early.find("<td class=errcode>40001</td>"), std::string::npos) << early;
  EXPECT_NE(early.find("6571a2b3-1c2d3e4f-5a6b7c8d"), std::string::npos);
  EXPECT_NE(early.find("<b class=cause>test</b>"), std::string::npos);
  EXPECT_NE(
      early.find("failing</span><br>since 2025-12-01 23:00:00Z <span class=dim>(1h ago)</span>"),
      std::string::npos)
      << early;
  EXPECT_NE(early.find("(1h ago)"), std::string::npos) << early;
  EXPECT_NE(html.find("not probed yet"), std::string::npos);
}

TEST(StatusPage, escapes_every_value_it_shows) {
  TargetStatus t = Failing("wx<i>", "e\"v'<script>alert(1)</script>", kNow - 1min);
  t.errmsg = "bad <b>&</b> msg";
  t.detail = "curl: <img src=x onerror=alert(2)>";
  t.rid = "<rid>";
  t.cause_env = "<cause>";
  t.heal_mode = config::HealMode::kEvict;
  t.heal_action = "evict";
  t.heal_result = "<done>";
  StatusQuery q;
  q.app_env = "\"><script>alert(3)</script>";
  // Once unfiltered for the row, once with the hostile filter for the form and the links.
  const std::string html = RenderStatusPage({t}, {}, kNow) + RenderStatusPage({t}, q, kNow);
  EXPECT_EQ(html.find("<script"), std::string::npos) << html;
  EXPECT_EQ(Rows(html), 1u);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
  EXPECT_EQ(html.find("<b>&"), std::string::npos);
  EXPECT_EQ(html.find("<rid>"), std::string::npos);
  EXPECT_EQ(html.find("<cause>"), std::string::npos);
  EXPECT_EQ(html.find("<done>"), std::string::npos);
  EXPECT_NE(html.find("bad &lt;b&gt;&amp;&lt;/b&gt; msg"), std::string::npos);
  EXPECT_NE(html.find("e&quot;v&#39;&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("value=\"&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;\""),
            std::string::npos);
  // Links that keep the filter are URL-encoded, then escaped for the attribute.
  EXPECT_NE(html.find("app_env=%22%3E%3Cscript%3Ealert%283%29%3C%2Fscript%3E"), std::string::npos);
}

TEST(StatusPage, filters_by_app_id_and_app_env_substrings_and_counts_all_targets) {
  std::vector<TargetStatus> targets = {Ok("wx11", "prod"), Ok("wx11", "test"), Ok("wx22", "prod"),
                                       Failing("wx22", "test", kNow - 1min)};
  auto q = StatusQuery::Parse({{"app_env", "test"}});
  std::string html = RenderStatusPage(targets, q, kNow);
  EXPECT_EQ(RowEnvs(html), (std::vector<std::string>{"test", "test"}));
  EXPECT_NE(html.find("of 2 matching targets"), std::string::npos) << html;
  EXPECT_NE(html.find("id=count-targets>4 targets<"), std::string::npos);  // counts: all of them

  q = StatusQuery::Parse({{"app_id", "22"}, {"app_env", "pro"}});
  html = RenderStatusPage(targets, q, kNow);
  ASSERT_EQ(Rows(html), 1u);
  EXPECT_NE(html.find("data-app-id=\"wx22\" data-app-env=\"prod\""), std::string::npos);

  q = StatusQuery::Parse({{"app_id", "nope"}});
  EXPECT_NE(RenderStatusPage(targets, q, kNow).find("No target matches."), std::string::npos);

  auto j = nlohmann::json::parse(
      RenderStatusJson(targets, StatusQuery::Parse({{"app_env", "test"}}), kNow));
  EXPECT_EQ(j["matching"], 2);
  EXPECT_EQ(j["counts"]["targets"], 4);
  ASSERT_EQ(j["targets"].size(), 2u);
  EXPECT_EQ(j["targets"][0]["app_id"], "wx22");  // the failing one first
}

TEST(StatusPage, auto_refresh_is_on_by_default_and_a_link_turns_it_off) {
  std::string html =
      RenderStatusPage({Ok("wx1", "prod")}, StatusQuery::Parse({{"app_id", "wx1"}}), kNow);
  EXPECT_NE(html.find("<meta http-equiv=refresh content=\"10\">"), std::string::npos);
  EXPECT_NE(html.find("<a id=refresh href=\"./?app_id=wx1&amp;refresh=off\">turn off</a>"),
            std::string::npos)
      << html;
  html = RenderStatusPage({Ok("wx1", "prod")}, StatusQuery::Parse({{"refresh", "off"}}), kNow);
  EXPECT_EQ(html.find("http-equiv=refresh"), std::string::npos);
  EXPECT_NE(html.find("<input type=hidden name=refresh value=off>"), std::string::npos);
  EXPECT_NE(html.find(">turn on</a>"), std::string::npos);
}

// Not a timed test: 10,000 targets render as pages of kStatusPageRows, the JSON has them all.
TEST(StatusPage, ten_thousand_targets_are_paginated_and_the_json_has_every_one) {
  std::vector<TargetStatus> targets;
  for (int i = 0; i < 10'000; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "wx%016d", i);
    targets.push_back(i % 1000 == 7 ? Failing(id, "prod", kNow - std::chrono::seconds{i})
                                    : Ok(id, "prod"));
  }
  const std::string first = RenderStatusPage(targets, {}, kNow);
  EXPECT_EQ(Rows(first), kStatusPageRows);
  EXPECT_NE(first.find("Showing 1&ndash;200 of 10000 targets"), std::string::npos);
  EXPECT_NE(first.find("page 1 of 50"), std::string::npos);
  EXPECT_NE(first.find("<a id=next href=\"./?page=2\">next</a>"), std::string::npos);
  EXPECT_NE(first.find(">10 failing<"), std::string::npos);
  // The ten failing ones lead, longest failing (i = 9007) first.
  EXPECT_NE(first.find("data-app-id=\"wx0000000000009007\""), std::string::npos);
  EXPECT_LT(first.find("wx0000000000009007"), first.find("wx0000000000000007"));
  EXPECT_LT(first.size(), 600'000u);

  StatusQuery last;
  last.page = 50;
  const std::string page50 = RenderStatusPage(targets, last, kNow);
  EXPECT_EQ(Rows(page50), kStatusPageRows);
  EXPECT_NE(page50.find("Showing 9801&ndash;10000 of 10000"), std::string::npos);
  EXPECT_EQ(page50.find("id=next"), std::string::npos);
  last.page = 999;  // past the end: the last page
  EXPECT_NE(RenderStatusPage(targets, last, kNow).find("page 50 of 50"), std::string::npos);
  EXPECT_EQ(StatusQuery::Parse({{"page", "-3"}}).page, 1u);
  EXPECT_EQ(StatusQuery::Parse({{"page", "x"}}).page, 1u);

  auto j = nlohmann::json::parse(RenderStatusJson(targets, {}, kNow));
  EXPECT_EQ(j["targets"].size(), 10'000u);
  EXPECT_EQ(j["counts"]["failing"], 10);
  EXPECT_EQ(j["targets"][0]["errcode"], 40001);
}

// The parts CollectStatus joins, fed by real sinks on a fake clock.
class StatusPageFromSinks : public ::testing::Test {
 protected:
  FakeClock clock;
  telemetry::Exposition exposition;
  wxcanary::testing::CapturingLogger log;
  telemetry::ProbeMetrics metrics{exposition, clock};
  tracking::TokenTracker tracker{exposition, log, clock, config::Conflict{}};
  heal::testing::FakeHealStore store{clock};
  heal::Healer healer{config::Heal{}, store, nullptr, exposition, log, clock, "me"};
};

// From real sinks: a probe whose errmsg and error detail carry the token (an echoing API, a
// curl error with the URL) shows up masked, and the token shows only by fingerprint.
TEST_F(StatusPageFromSinks, collects_from_the_sinks_and_never_shows_the_token) {
  using wxcanary::testing::MakeResult;
  using wxcanary::testing::MakeTarget;
  std::vector<Target> targets = {MakeTarget("wx1", "prod", 0), MakeTarget("wx1", "dev", 1)};
  targets[0].env.heal = config::HealMode::kDryRun;
  for (ResultSink* s : std::initializer_list<ResultSink*>{&metrics, &tracker, &healer})
    s->SetTargets(targets);
  auto record = [&](const Target& t, const ProbeResult& r) {
    for (ResultSink* s : std::initializer_list<ResultSink*>{&metrics, &tracker, &healer})
      s->Record(t, r);
  };

  const std::string prod_token = "TOKEN-prod-0123456789abcdefghijklmnop";
  const std::string dev_token = "TOKEN-dev-0123456789abcdefghijklmnopq";
  record(targets[0], MakeResult(prod_token));
  record(targets[1], MakeResult(dev_token));
  clock.Advance(10s);
  ProbeResult dead = MakeResult(prod_token, Outcome::kTokenInvalid, 6000);
  dead.errmsg = "invalid credential, access_token is invalid (" + prod_token + ")";
  dead.rid = "0000aaaa-1111bbbb-2222cccc";
  dead.detail = "GET /wxa/x?access_token=" + prod_token + "&y=1 said no";
  record(targets[0], dead);
  clock.Advance(1s);
  record(targets[0], dead);  // the second confirmation: a dry-run heal

  auto status = CollectStatus(metrics, tracker, healer);
  ASSERT_EQ(status.size(), 2u);
  const std::string html = RenderStatusPage(status, {}, clock.SystemNow());
  const std::string json = RenderStatusJson(status, {}, clock.SystemNow());
  for (const std::string* out : {&html, &json}) {
    EXPECT_EQ(out->find(prod_token), std::string::npos) << *out;
    EXPECT_EQ(out->find(dev_token), std::string::npos);
    EXPECT_EQ(out->find("TOKEN-"), std::string::npos);
    EXPECT_NE(out->find(Fingerprint(prod_token)), std::string::npos);
  }
  // The token the API echoed shows as its fingerprint (HTML-escaped on the page).
  EXPECT_NE(json.find("is invalid (<" + Fingerprint(prod_token) + ">)"), std::string::npos) << json;
  EXPECT_NE(html.find("is invalid (&lt;" + Fingerprint(prod_token) + "&gt;)"), std::string::npos);
  EXPECT_EQ(RowEnvs(html), (std::vector<std::string>{"prod", "dev"}));

  auto j = nlohmann::json::parse(json);
  const auto& prod = j["targets"][0];
  EXPECT_EQ(prod["app_env"], "prod");
  EXPECT_EQ(prod["state"], "failing");
  EXPECT_EQ(prod["last_outcome"], "token_invalid");
  EXPECT_EQ(prod["errcode"], 40001);
  EXPECT_EQ(prod["rid"], "0000aaaa-1111bbbb-2222cccc");
  EXPECT_EQ(prod["failing_since"], "2023-11-14T22:13:30.000Z");
  EXPECT_EQ(prod["last_success"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(prod["token"]["fingerprint"], Fingerprint(prod_token));
  EXPECT_EQ(prod["token"]["ttl_seconds"], 6000);
  EXPECT_EQ(prod["token"]["age_seconds"], 11);
  EXPECT_EQ(prod["conflict"]["distinct_tokens"], 2);
  EXPECT_EQ(prod["heal"]["mode"], "dry_run");
  EXPECT_EQ(prod["heal"]["last_action"], "dry_run");
  EXPECT_EQ(prod["heal"]["last_result"], "done");
  const auto& dev = j["targets"][1];
  EXPECT_EQ(dev["state"], "ok");
  EXPECT_EQ(dev["failing_since"], nullptr);
  EXPECT_EQ(dev["heal"]["mode"], "off");
  EXPECT_EQ(j["counts"]["failing"], 1);
  EXPECT_EQ(j["counts"]["in_conflict"], 2);  // two tokens live for the AppId

  // Recovery clears "failing since".
  record(targets[0], MakeResult(prod_token));
  auto after = nlohmann::json::parse(
      RenderStatusJson(CollectStatus(metrics, tracker, healer), {}, clock.SystemNow()));
  EXPECT_EQ(after["counts"]["failing"], 0);
}

// A kept environment shows what the keeper does for it: writer or standby, the last write
// decision on its key, and the stable token it keeps by fingerprint with the time it has left.
TEST_F(StatusPageFromSinks, a_kept_environment_shows_the_keeper_role_last_write_and_stable_token) {
  using namespace std::chrono_literals;
  using wxcanary::testing::MakeResult;
  using wxcanary::testing::MakeTarget;
  // An empty key that takes every write, and a lease nobody else holds.
  struct EmptyStore final : keeper::KeeperStore {
    source::TokenRead Read(const config::Environment&) override {
      source::TokenRead r;
      r.status = source::TokenRead::Status::kMissing;
      return r;
    }
    std::optional<int> CompareAndSet(const config::Environment&, const Secret&, const Secret&,
                                     std::chrono::seconds, std::string*) override {
      return 1;
    }
    std::optional<bool> HoldLease(const std::string&, const std::string&, const std::string&,
                                  std::chrono::milliseconds, std::string*) override {
      return true;
    }
    void ReleaseLease(const std::string&, const std::string&, const std::string&) override {}
    std::optional<bool> RememberToken(const std::string&, const std::string&, const std::string&,
                                      std::chrono::seconds, std::string*) override {
      return true;
    }
    std::optional<bool> RemembersToken(const std::string&, const std::string&, const std::string&,
                                       std::string*) override {
      return false;
    }
  } keeper_store;
  const std::string stable = "STABLE-0123456789abcdefghijklmnop";
  heal::testing::FakeFetcher fetcher(stable, 7200s);
  keeper::Keeper keeper(keeper_store, fetcher, exposition, log, clock, "me", nullptr);

  const std::vector<Target> targets = {MakeTarget("wx1", "prod", 0), MakeTarget("wx1", "dev", 1)};
  config::Config cfg;
  cfg.apps.emplace_back();
  cfg.apps[0].app_id = "wx1";
  for (const auto& t : targets) cfg.apps[0].environments.push_back(t.env);
  cfg.apps[0].environments[0].keep = config::KeepMode::kStable;
  cfg.apps[0].environments[0].owner = true;
  keeper.Apply(cfg);
  keeper.RunOnce();
  clock.Advance(60s);
  metrics.SetTargets(targets);
  for (const auto& t : targets) metrics.Record(t, MakeResult(stable));

  const auto status = CollectStatus(metrics, tracker, healer, &keeper);
  const std::string html = RenderStatusPage(status, {}, clock.SystemNow());
  const std::string json = RenderStatusJson(status, {}, clock.SystemNow());
  for (const std::string* out : {&html, &json}) EXPECT_EQ(out->find("STABLE-"), std::string::npos);
  EXPECT_NE(html.find("keeper: writer, owner <b>written</b>"), std::string::npos) << html;
  EXPECT_NE(html.find("<code>" + Fingerprint(stable) + "</code>"), std::string::npos) << html;
  EXPECT_NE(html.find("(1h59m left)"), std::string::npos) << html;

  auto j = nlohmann::json::parse(json);
  std::map<std::string, nlohmann::json> by_env;
  for (const auto& t : j["targets"]) by_env[t["app_env"]] = t["keeper"];
  EXPECT_EQ(by_env["prod"]["mode"], "stable");
  EXPECT_EQ(by_env["prod"]["writer"], true);
  EXPECT_EQ(by_env["prod"]["owner"], true);
  EXPECT_EQ(by_env["prod"]["fingerprint"], Fingerprint(stable));
  EXPECT_EQ(by_env["prod"]["last_result"], "written");
  EXPECT_EQ(by_env["prod"]["last_at"], FormatRfc3339(clock.SystemNow() - 60s));
  EXPECT_EQ(by_env["dev"]["mode"], "off");
  EXPECT_EQ(by_env["dev"]["fingerprint"], nullptr);
}

// A token that expired in the cache shows as that, not as a conflict with another environment.
TEST_F(StatusPageFromSinks, an_expired_token_shows_as_the_cache_outliving_it_not_as_a_conflict) {
  using wxcanary::testing::MakeResult;
  using wxcanary::testing::MakeTarget;
  const std::vector<Target> targets = {MakeTarget("wx1", "prod", 0)};
  for (ResultSink* s : std::initializer_list<ResultSink*>{&metrics, &tracker, &healer})
    s->SetTargets(targets);
  const std::string token = "TOKEN-prod-0123456789abcdefghijklmnop";
  for (const auto& r : {MakeResult(token), MakeResult(token, Outcome::kTokenExpired, 1800)}) {
    for (ResultSink* s : std::initializer_list<ResultSink*>{&metrics, &tracker, &healer})
      s->Record(targets[0], r);
    clock.Advance(10s);
  }
  const auto status = CollectStatus(metrics, tracker, healer);
  ASSERT_EQ(status.size(), 1u);
  EXPECT_FALSE(status[0].in_conflict());
  const std::string html = RenderStatusPage(status, {}, clock.SystemNow());
  EXPECT_NE(html.find("expired in the cache</b>: the app's cache outlives the token"),
            std::string::npos)
      << html;
  EXPECT_EQ(html.find("last invalidated by"), std::string::npos);
  const auto j = nlohmann::json::parse(RenderStatusJson(status, {}, clock.SystemNow()));
  EXPECT_EQ(j["targets"][0]["expiry"]["expirations"], 1);
  EXPECT_EQ(j["targets"][0]["expiry"]["last_expiry"], "2023-11-14T22:13:30.000Z");
  EXPECT_EQ(j["targets"][0]["conflict"]["cause_env"], nullptr);
  EXPECT_EQ(j["counts"]["in_conflict"], 0);
}

TEST_F(StatusPageFromSinks, a_superseded_token_shows_who_superseded_it_and_when_it_stops_working) {
  using wxcanary::testing::MakeResult;
  using wxcanary::testing::MakeTarget;
  const std::vector<Target> targets = {MakeTarget("wx1", "prod", 0), MakeTarget("wx1", "test", 1)};
  for (ResultSink* s : std::initializer_list<ResultSink*>{&metrics, &tracker, &healer})
    s->SetTargets(targets);
  auto record = [&](const Target& t, const ProbeResult& r) {
    for (ResultSink* s : std::initializer_list<ResultSink*>{&metrics, &tracker, &healer})
      s->Record(t, r);
  };
  record(targets[0], MakeResult("TOKEN-prod-0123456789abcdefghijklmnop"));
  record(targets[1], MakeResult("TOKEN-test-old-0123456789abcdefghijkl"));
  clock.Advance(10s);
  const SystemTime refreshed = clock.SystemNow();
  record(targets[1], MakeResult("TOKEN-test-new-0123456789abcdefghijkl"));
  clock.Advance(10s);
  record(targets[0], MakeResult("TOKEN-prod-0123456789abcdefghijklmnop"));  // still the older one
  clock.Advance(90s);

  const auto status = CollectStatus(metrics, tracker, healer);
  ASSERT_EQ(status.size(), 2u);
  const std::string html = RenderStatusPage(status, {}, clock.SystemNow());
  EXPECT_NE(html.find("superseded by test</b>: stops working at "), std::string::npos) << html;
  EXPECT_NE(html.find("(in 3m20s)"), std::string::npos) << html;
  EXPECT_EQ(html.find("TOKEN-"), std::string::npos);
  const auto j = nlohmann::json::parse(RenderStatusJson(status, {}, clock.SystemNow()));
  for (const auto& t : j["targets"]) {
    if (t["app_env"] == "prod") {
      EXPECT_EQ(t["conflict"]["superseded_by"], "test");
      EXPECT_EQ(t["conflict"]["dies_at"], FormatRfc3339(refreshed + 300s));
    } else {
      EXPECT_EQ(t["conflict"]["superseded_by"], nullptr);
      EXPECT_EQ(t["conflict"]["dies_at"], nullptr);
    }
  }
}

}  // namespace
}  // namespace wxcanary::daemon
