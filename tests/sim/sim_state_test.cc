#include "sim/sim_state.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <set>

#include "common/clock.h"
#include "common/fingerprint.h"

namespace wxcanary::sim {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr const char* kIpPath = "/cgi-bin/getcallbackip";

class SimStateTest : public ::testing::Test {
 protected:
  void Make(SimOptions options = {}) {
    options.seed = 42;
    sim_ = std::make_unique<SimState>(options, clock_);
    sim_->AddApp("wx1", "s1");
    sim_->AddApp("wx2", "s2");
  }
  void SetUp() override { Make(); }

  ApiResponse Call(const std::string& method, const std::string& path,
                   std::multimap<std::string, std::string> query = {}, std::string body = {}) {
    ApiRequest req;
    req.method = method;
    req.path = path;
    req.query = std::move(query);
    req.body = std::move(body);
    return sim_->Handle(req);
  }
  ApiResponse FetchRaw(const std::string& appid = "wx1", const std::string& secret = "s1") {
    return Call("GET", "/cgi-bin/token",
                {{"grant_type", "client_credential"}, {"appid", appid}, {"secret", secret}});
  }
  std::string Fetch(const std::string& appid = "wx1", const std::string& secret = "s1") {
    auto r = FetchRaw(appid, secret);
    EXPECT_EQ(r.errcode, 0) << r.body;
    return json::parse(r.body).value("access_token", "");
  }
  ApiResponse StableRaw(bool force = false, const std::string& appid = "wx1") {
    json body{{"grant_type", "client_credential"},
              {"appid", appid},
              {"secret", appid == "wx1" ? "s1" : "s2"},
              {"force_refresh", force}};
    return Call("POST", "/cgi-bin/stable_token", {}, body.dump());
  }
  std::pair<std::string, int64_t> Stable(bool force = false) {
    auto r = StableRaw(force);
    EXPECT_EQ(r.errcode, 0) << r.body;
    auto j = json::parse(r.body);
    return {j.value("access_token", ""), j.value("expires_in", int64_t{-1})};
  }
  // errcode of the cheapest token-using call.
  int Probe(const std::string& token) {
    return Call("GET", kIpPath, {{"access_token", token}}).errcode;
  }
  ApiResponse Msg(const std::string& token, const std::string& body) {
    return Call("POST", "/wxa/msg_sec_check", {{"access_token", token}}, body);
  }
  void Advance(int64_t s) { clock_.Advance(seconds{s}); }
  int64_t Now() {
    return std::chrono::duration_cast<seconds>(clock_.SystemNow().time_since_epoch()).count();
  }

  FakeClock clock_;
  std::unique_ptr<SimState> sim_;
};

TEST_F(SimStateTest, every_token_call_issues_a_new_opaque_token) {
  auto r = FetchRaw();
  auto j = json::parse(r.body);
  EXPECT_EQ(j["expires_in"], 7200);
  std::string a = j["access_token"], b = Fetch();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 136u);
  EXPECT_EQ(Probe(a), 0);
  EXPECT_EQ(Probe(b), 0);
}

TEST_F(SimStateTest, previous_token_answers_40001_exactly_when_grace_ends) {
  std::string a = Fetch();
  Advance(10);
  std::string b = Fetch();
  Advance(299);
  EXPECT_EQ(Probe(a), 0);
  Advance(1);
  EXPECT_EQ(Probe(a), 40001);
  EXPECT_EQ(Probe(b), 0);
}

TEST_F(SimStateTest, only_the_immediately_previous_token_gets_a_grace) {
  std::string a = Fetch(), b = Fetch(), c = Fetch();
  EXPECT_EQ(Probe(a), 40001);
  EXPECT_EQ(Probe(b), 0);
  EXPECT_EQ(Probe(c), 0);
}

TEST_F(SimStateTest, grace_is_configurable) {
  SimOptions o;
  o.grace = seconds{0};
  Make(o);
  std::string a = Fetch();
  Fetch();
  EXPECT_EQ(Probe(a), 40001);
}

TEST_F(SimStateTest, tokens_of_one_app_do_not_touch_another) {
  std::string a = Fetch("wx1", "s1");
  Fetch("wx2", "s2");
  Fetch("wx2", "s2");
  Advance(400);
  EXPECT_EQ(Probe(a), 0);
}

TEST_F(SimStateTest, token_expires_with_42001_or_the_configured_40014) {
  for (int code : {42001, 40014}) {
    SimOptions o;
    o.expired_errcode = code;
    Make(o);
    std::string a = Fetch();
    Advance(7199);
    EXPECT_EQ(Probe(a), 0);
    Advance(1);
    EXPECT_EQ(Probe(a), code);
  }
}

TEST_F(SimStateTest, token_error_table) {
  std::string valid = Fetch();
  std::string unknown_but_well_formed = valid;
  unknown_but_well_formed.back() = unknown_but_well_formed.back() == 'A' ? 'B' : 'A';
  struct Case {
    std::multimap<std::string, std::string> query;
    int errcode;
  } cases[] = {
      {{}, 41001},
      {{{"access_token", ""}}, 41001},
      {{{"access_token", "not-a-token"}}, 40014},
      {{{"access_token", unknown_but_well_formed}}, 40001},
      {{{"access_token", valid}}, 0},
  };
  for (const auto& c : cases) {
    for (const char* path : {"/cgi-bin/getcallbackip", "/cgi-bin/get_api_domain_ip"})
      EXPECT_EQ(Call("GET", path, c.query).errcode, c.errcode) << path;
    EXPECT_EQ(Call("POST", "/wxa/msg_sec_check", c.query, R"({"content":"hi"})").errcode,
              c.errcode);
    EXPECT_EQ(
        Call("POST", "/cgi-bin/openapi/quota/get", c.query, R"({"cgi_path":"/cgi-bin/token"})")
            .errcode,
        c.errcode);
  }
}

TEST_F(SimStateTest, token_endpoint_error_table) {
  struct Case {
    std::string method;
    std::multimap<std::string, std::string> query;
    int errcode;
  } cases[] = {
      {"GET", {{"appid", "wx1"}, {"secret", "s1"}}, 40002},
      {"GET", {{"grant_type", "password"}, {"appid", "wx1"}, {"secret", "s1"}}, 40002},
      {"GET", {{"grant_type", "client_credential"}, {"secret", "s1"}}, 41002},
      {"GET", {{"grant_type", "client_credential"}, {"appid", "nope"}, {"secret", "s1"}}, 40013},
      {"GET", {{"grant_type", "client_credential"}, {"appid", "wx1"}}, 41004},
      {"GET", {{"grant_type", "client_credential"}, {"appid", "wx1"}, {"secret", "s2"}}, 40125},
      {"POST", {{"grant_type", "client_credential"}, {"appid", "wx1"}, {"secret", "s1"}}, 43001},
      {"GET", {{"grant_type", "client_credential"}, {"appid", "wx1"}, {"secret", "s1"}}, 0},
  };
  for (const auto& c : cases) {
    auto r = Call(c.method, "/cgi-bin/token", c.query);
    EXPECT_EQ(r.errcode, c.errcode) << r.body;
    EXPECT_EQ(json::parse(r.body).value("errcode", 0), c.errcode);
  }
}

TEST_F(SimStateTest, daily_token_quota_answers_45009_until_beijing_midnight) {
  SimOptions o;
  o.limits["/cgi-bin/token"].per_day = 3;
  Make(o);
  for (int i = 0; i < 3; ++i) Fetch();
  auto r = FetchRaw();
  EXPECT_EQ(r.errcode, 45009);
  EXPECT_NE(json::parse(r.body)["errmsg"].get<std::string>().find("getStableAccessToken"),
            std::string::npos);
  // Secret errors do not spend quota, and the other app has its own.
  EXPECT_EQ(FetchRaw("wx1", "bad").errcode, 40125);
  EXPECT_EQ(FetchRaw("wx2", "s2").errcode, 0);
  // FakeClock starts at 2023-11-15 06:13:20 Beijing time; the next midnight is 17h46m40s away.
  Advance(17 * 3600 + 46 * 60 + 39);
  EXPECT_EQ(FetchRaw().errcode, 45009);
  Advance(1);
  EXPECT_EQ(FetchRaw().errcode, 0);
}

TEST_F(SimStateTest, quota_get_reports_used_and_remain_per_cgi) {
  std::string t = Fetch();
  Fetch("wx1", "s1");
  auto quota = [&](const std::string& path) {
    return Call("POST", "/cgi-bin/openapi/quota/get", {{"access_token", t}},
                json{{"cgi_path", path}}.dump());
  };
  auto j = json::parse(quota("/cgi-bin/token").body);
  EXPECT_EQ(j["errcode"], 0);
  EXPECT_EQ(j["quota"], (json{{"daily_limit", 2000}, {"used", 2}, {"remain", 1998}}));
  EXPECT_EQ(quota("/cgi-bin/nope").errcode, 76021);
  EXPECT_EQ(quota(kIpPath).errcode, 76022);
  EXPECT_EQ(Call("POST", "/cgi-bin/openapi/quota/get", {{"access_token", t}}, "{").errcode, 47001);
  EXPECT_EQ(Call("POST", "/cgi-bin/openapi/quota/get", {{"access_token", t}}, "{}").errcode, 44002);
  EXPECT_EQ(Call("GET", "/cgi-bin/openapi/quota/get", {{"access_token", t}}).errcode, 43002);
}

TEST_F(SimStateTest, stable_token_is_shared_and_reports_remaining_lifetime) {
  auto [a, ttl_a] = Stable();
  EXPECT_EQ(ttl_a, 7200);
  Advance(1000);
  auto [b, ttl_b] = Stable();
  EXPECT_EQ(a, b);
  EXPECT_EQ(ttl_b, 6200);
  EXPECT_EQ(Probe(a), 0);
}

TEST_F(SimStateTest, stable_and_plain_tokens_are_isolated) {
  auto [s, ttl] = Stable();
  std::string t = Fetch();
  Fetch();
  Fetch();
  Advance(301);
  EXPECT_EQ(Probe(s), 0);
  EXPECT_EQ(Probe(t), 40001);
  auto [s2, ttl2] = Stable(true);
  EXPECT_NE(s2, s);
  std::string t3 = Fetch();
  EXPECT_EQ(Probe(t3), 0);
}

TEST_F(SimStateTest, stable_token_rotates_in_its_last_300s_with_overlap) {
  auto [a, ttl] = Stable();
  Advance(7200 - 301);
  EXPECT_EQ(Stable().first, a);  // 301 s left: not yet
  Advance(2);
  auto [b, ttl_b] = Stable();  // 299 s left: rotated
  EXPECT_NE(a, b);
  EXPECT_EQ(ttl_b, 7200);
  EXPECT_EQ(Probe(a), 0);  // the old one lives out its lifetime
  Advance(298);
  EXPECT_EQ(Probe(a), 0);
  Advance(1);
  EXPECT_EQ(Probe(a), 42001);
  EXPECT_EQ(Probe(b), 0);
}

TEST_F(SimStateTest, stable_expires_in_never_drops_below_300_and_the_answer_always_works) {
  std::string last;
  int rotations = 0;
  for (int i = 0; i < 400; ++i) {  // 400 * 97 s: five lifetimes
    auto [t, ttl] = Stable();
    EXPECT_GE(ttl, 300);
    EXPECT_LE(ttl, 7200);
    EXPECT_EQ(Probe(t), 0);
    if (t != last) ++rotations;
    last = t;
    Advance(97);
  }
  EXPECT_GE(rotations, 5);
}

TEST_F(SimStateTest, force_refresh_kills_the_previous_at_once_by_default) {
  auto [a, ttl] = Stable();
  auto [b, ttl_b] = Stable(true);
  EXPECT_NE(a, b);
  EXPECT_EQ(ttl_b, 7200);
  EXPECT_EQ(Probe(a), 40001);
  EXPECT_EQ(Probe(b), 0);
}

TEST_F(SimStateTest, force_refresh_overlap_is_an_option) {
  SimOptions o;
  o.force_refresh_overlap = seconds{60};
  Make(o);
  auto [a, ttl] = Stable();
  Stable(true);
  Advance(59);
  EXPECT_EQ(Probe(a), 0);
  Advance(1);
  EXPECT_EQ(Probe(a), 40001);
}

TEST_F(SimStateTest, force_refresh_within_30s_returns_the_current_token) {
  auto [a, t1] = Stable(true);
  Advance(29);
  auto [b, t2] = Stable(true);
  EXPECT_EQ(a, b);
  EXPECT_EQ(t2, 7200 - 29);
  Advance(1);
  auto [c, t3] = Stable(true);
  EXPECT_NE(c, a);
  EXPECT_EQ(Probe(a), 40001);
}

TEST_F(SimStateTest, force_refresh_is_capped_at_20_per_day) {
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(StableRaw(true).errcode, 0) << i;
    Advance(30);
  }
  EXPECT_EQ(StableRaw(true).errcode, 45009);
  EXPECT_EQ(StableRaw(false).errcode, 0);  // plain calls still work
  Advance(24 * 3600);
  EXPECT_EQ(StableRaw(true).errcode, 0);
}

TEST_F(SimStateTest, stable_token_error_table) {
  struct Case {
    std::string method, body;
    int errcode;
  } cases[] = {
      {"GET", "", 43002},
      {"POST", "grant_type=client_credential&appid=wx1&secret=s1", 41002},
      {"POST", R"({"grant_type":"x","appid":"wx1","secret":"s1"})", 40002},
      {"POST", R"({"grant_type":"client_credential","secret":"s1"})", 41002},
      {"POST", R"({"grant_type":"client_credential","appid":"zz","secret":"s1"})", 40013},
      {"POST", R"({"grant_type":"client_credential","appid":"wx1"})", 41004},
      {"POST", R"({"grant_type":"client_credential","appid":"wx1","secret":"no"})", 40125},
      {"POST",
       R"({"grant_type":"client_credential","appid":"wx1","secret":"s1","force_refresh":"y"})",
       40097},
      {"POST", R"({"grant_type":"client_credential","appid":"wx1","secret":"s1"})", 0},
  };
  for (const auto& c : cases)
    EXPECT_EQ(Call(c.method, "/cgi-bin/stable_token", {}, c.body).errcode, c.errcode) << c.body;
}

TEST_F(SimStateTest, per_minute_limits_answer_45011_until_the_next_minute) {
  SimOptions o;
  o.limits["/cgi-bin/stable_token"].per_minute = 3;
  o.limits["/wxa/msg_sec_check"].per_minute = 2;
  Make(o);
  Advance(60 - Now() % 60);  // start of a minute
  for (int i = 0; i < 3; ++i) EXPECT_EQ(StableRaw().errcode, 0);
  auto r = StableRaw();
  EXPECT_EQ(r.errcode, 45011);
  EXPECT_NE(r.body.find("api minute-quota reach limit must slower retry next minute"),
            std::string::npos);
  std::string t = Fetch();
  EXPECT_EQ(Msg(t, R"({"content":"a"})").errcode, 0);
  EXPECT_EQ(Msg(t, R"({"content":"a"})").errcode, 0);
  EXPECT_EQ(Msg(t, R"({"content":"a"})").errcode, 45011);
  EXPECT_EQ(StableRaw(false, "wx2").errcode, 0);  // per AppId
  Advance(59);
  EXPECT_EQ(StableRaw().errcode, 45011);
  Advance(1);
  EXPECT_EQ(StableRaw().errcode, 0);
  EXPECT_EQ(Msg(t, R"({"content":"a"})").errcode, 0);
}

TEST_F(SimStateTest, msg_sec_check_v1) {
  SimOptions o;
  o.risky_words = {"gamble"};
  Make(o);
  std::string t = Fetch();
  struct Case {
    std::string method, body;
    int errcode;
  } cases[] = {
      {"POST", R"({"content":"hello world"})", 0},
      {"POST", R"({"content":"let us gamble now"})", 87014},
      {"POST", json{{"content", "特3456书yuuo莞6543李zxcz蒜7782法fgnv级"}}.dump(), 87014},
      {"POST", json{{"content", "完2347全dfji试3726测asad感3847知qwez到"}}.dump(), 87014},
      {"POST", R"({"content":"x")", 47001},
      {"POST", "", 47001},
      {"POST", R"({"content":5})", 47001},
      {"POST", R"({"text":"x"})", 44002},
      {"POST", R"({"content":"x","version":3})", 47001},
      {"POST", json{{"content", std::string(500 * 1024 + 1, 'a')}}.dump(), 47001},
      {"GET", "", 43302},
  };
  for (const auto& c : cases) {
    auto r = c.method == "GET" ? Call("GET", "/wxa/msg_sec_check", {{"access_token", t}})
                               : Msg(t, c.body);
    EXPECT_EQ(r.errcode, c.errcode) << c.body.substr(0, 80);
  }
  auto j = json::parse(Msg(t, R"({"content":"gamble"})").body);
  EXPECT_EQ(j["errmsg"].get<std::string>().rfind("risky content rid: ", 0), 0u);
}

TEST_F(SimStateTest, msg_sec_check_v2_reports_risk_in_result_not_errcode) {
  SimOptions o;
  o.risky_words = {"gamble"};
  Make(o);
  std::string t = Fetch();
  const std::string openid = "oAbCdEfGhIjKlMnOpQrStUvWxYz0";
  auto v2 = [&](const std::string& content) {
    return Msg(t,
               json{{"content", content}, {"version", 2}, {"scene", 2}, {"openid", openid}}.dump());
  };
  auto pass = json::parse(v2("hello").body);
  EXPECT_EQ(pass["errcode"], 0);
  EXPECT_EQ(pass["result"], (json{{"suggest", "pass"}, {"label", 100}}));
  EXPECT_TRUE(IsRid(pass["trace_id"].get<std::string>()));
  auto risky = json::parse(v2("we gamble").body);
  EXPECT_EQ(risky["errcode"], 0);
  EXPECT_EQ(risky["result"]["suggest"], "risky");
  EXPECT_EQ(risky["result"]["label"], 21000);
  EXPECT_EQ(risky["detail"][0]["keyword"], "gamble");
  auto official = json::parse(v2("特3456书yuuo莞6543李zxcz蒜7782法fgnv级").body);
  EXPECT_EQ(official["result"]["suggest"], "risky");
}

TEST_F(SimStateTest, msg_sec_check_v2_error_table) {
  std::string t = Fetch();
  const std::string ok_id = "oAbCdEfGhIjKlMnOpQrStUvWxYz0";
  struct Case {
    json body;
    int errcode;
  } cases[] = {
      {{{"content", "x"}, {"version", 2}, {"scene", 1}}, 44002},
      {{{"content", ""}, {"version", 2}, {"scene", 1}, {"openid", ok_id}}, 44002},
      {{{"content", "x"}, {"version", 2}, {"openid", ok_id}}, 44002},
      {{{"content", "x"}, {"version", 2}, {"scene", 5}, {"openid", ok_id}}, 40129},
      {{{"content", "x"}, {"version", 2}, {"scene", "1"}, {"openid", ok_id}}, 40129},
      {{{"content", "x"}, {"version", 2}, {"scene", 1}, {"openid", "short"}}, 40003},
      {{{"content", "x"}, {"version", 2}, {"scene", 1}, {"openid", 7}}, 40003},
      {{{"content", "x"}, {"version", 2}, {"scene", 1}, {"openid", "oMIS" + ok_id.substr(4)}},
       43104},
      {{{"content", "x"}, {"version", 2}, {"scene", 1}, {"openid", "oEXP" + ok_id.substr(4)}},
       61010},
      {{{"content", std::string(2501, 'a')}, {"version", 2}, {"scene", 1}, {"openid", ok_id}},
       47001},
      {{{"content", "x"}, {"version", 2}, {"scene", 4}, {"openid", ok_id}}, 0},
  };
  for (const auto& c : cases) EXPECT_EQ(Msg(t, c.body.dump()).errcode, c.errcode) << c.body.dump();
  EXPECT_EQ(Msg(t, R"({"version":2,)").errcode, 47001);
}

TEST_F(SimStateTest, every_error_ends_with_a_rid_whose_first_group_is_unix_time_hex) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(Now()));
  for (auto r : {FetchRaw("wx1", "bad"), Call("GET", kIpPath), Call("GET", "/nope"),
                 StableRaw(false, "zz")}) {
    std::string msg = json::parse(r.body)["errmsg"];
    ASSERT_GT(msg.size(), 32u) << msg;
    std::string rid = msg.substr(msg.size() - 26);
    EXPECT_EQ(msg.substr(msg.size() - 32, 6), " rid: ") << msg;
    EXPECT_TRUE(IsRid(rid)) << rid;
    EXPECT_EQ(rid.substr(0, 8), hex);
  }
}

TEST_F(SimStateTest, rid_get_returns_the_failed_call_for_seven_days) {
  std::string t = Fetch();
  std::string body =
      R"({"content":"x","version":2,"scene":9,"openid":"oAbCdEfGhIjKlMnOpQrStUvWxYz0"})";
  auto failed = Msg(t, body);
  ASSERT_EQ(failed.errcode, 40129);
  std::string msg = json::parse(failed.body)["errmsg"];
  std::string rid = msg.substr(msg.size() - 26);
  auto lookup = [&](const std::string& token, const std::string& r) {
    return Call("POST", "/cgi-bin/openapi/rid/get", {{"access_token", token}},
                json{{"rid", r}}.dump());
  };
  Advance(5);
  auto found = lookup(t, rid);
  ASSERT_EQ(found.errcode, 0) << found.body;
  auto req = json::parse(found.body)["request"];
  EXPECT_EQ(req["invoke_time"], Now() - 5);
  EXPECT_EQ(req["request_body"], body);
  EXPECT_EQ(req["response_body"], failed.body);
  EXPECT_EQ(req["client_ip"], "127.0.0.1");
  std::string url = req["request_url"];
  EXPECT_EQ(url.find(t), std::string::npos) << "token leaked into the rid record";
  EXPECT_NE(url.find("fp_" + Fingerprint(t)), std::string::npos) << url;
  EXPECT_EQ(lookup(t, "deadbeef-00000000-00000000").errcode, 76001);
  EXPECT_EQ(lookup(t, "not-a-rid").errcode, 76002);
  EXPECT_EQ(lookup(t, "DEADBEEF-00000000-00000000").errcode, 76002);
  EXPECT_EQ(lookup(Fetch("wx2", "s2"), rid).errcode, 76001);  // another app's call
  Advance(7 * 24 * 3600 - 10);
  std::string t2 = Fetch();
  EXPECT_EQ(lookup(t2, rid).errcode, 0);
  Advance(10);
  EXPECT_EQ(lookup(t2, rid).errcode, 76001);
}

TEST_F(SimStateTest, rid_records_hide_the_secret) {
  StableRaw(false, "wx1");
  auto failed = Call("POST", "/cgi-bin/stable_token", {},
                     R"({"grant_type":"client_credential","appid":"wx1","secret":"wrongsecret"})");
  std::string msg = json::parse(failed.body)["errmsg"];
  std::string t = Fetch();
  auto found = Call("POST", "/cgi-bin/openapi/rid/get", {{"access_token", t}},
                    json{{"rid", msg.substr(msg.size() - 26)}}.dump());
  ASSERT_EQ(found.errcode, 0);
  EXPECT_EQ(found.body.find("wrongsecret"), std::string::npos);
}

TEST_F(SimStateTest, ip_endpoints_list_addresses) {
  std::string t = Fetch();
  for (const char* path : {"/cgi-bin/get_api_domain_ip", "/cgi-bin/getcallbackip"}) {
    auto j = json::parse(Call("GET", path, {{"access_token", t}}).body);
    EXPECT_FALSE(j.contains("errcode"));
    EXPECT_GE(j["ip_list"].size(), 2u);
    EXPECT_EQ(Call("POST", path, {{"access_token", t}}).errcode, 43001);
  }
}

TEST_F(SimStateTest, unknown_paths_answer_40066) {
  EXPECT_EQ(Call("GET", "/cgi-bin/nothing").errcode, 40066);
  EXPECT_EQ(Call("GET", "/").errcode, 40066);
}

TEST_F(SimStateTest, state_lists_live_tokens_by_fingerprint_only) {
  std::string a = Fetch(), b = Fetch();
  auto [s, ttl] = Stable();
  Probe(a);
  Probe("garbage");
  auto st = sim_->StateJson();
  std::string dump = st.dump();
  for (const auto& t : {a, b, s}) EXPECT_EQ(dump.find(t), std::string::npos);
  auto tokens = st["apps"]["wx1"]["tokens"];
  ASSERT_EQ(tokens.size(), 3u);
  std::set<std::string> fps;
  for (const auto& t : tokens) fps.insert(t["fingerprint"].get<std::string>());
  EXPECT_EQ(fps, (std::set<std::string>{Fingerprint(a), Fingerprint(b), Fingerprint(s)}));
  EXPECT_EQ(st["apps"]["wx1"]["tokens_issued"], 2);
  EXPECT_EQ(st["apps"]["wx1"]["calls"]["/cgi-bin/token"]["0"], 2);
  EXPECT_EQ(st["apps"]["wx1"]["calls"][kIpPath]["0"], 1);
  EXPECT_EQ(st["calls"][kIpPath]["40014"], 1);
  Advance(300);
  EXPECT_EQ(sim_->StateJson()["apps"]["wx1"]["tokens"].size(), 2u);
}

TEST_F(SimStateTest, reset_forgets_tokens_and_counters_but_keeps_apps) {
  std::string a = Fetch();
  sim_->Reset();
  EXPECT_EQ(Probe(a), 40001);
  auto st = sim_->StateJson();
  EXPECT_TRUE(st["apps"]["wx1"]["tokens"].empty());
  EXPECT_EQ(st["apps"]["wx1"]["tokens_issued"], 0);
  EXPECT_EQ(Probe(Fetch()), 0);
}

TEST_F(SimStateTest, same_seed_gives_same_tokens) {
  FakeClock c2;
  SimOptions o;
  o.seed = 42;
  SimState other(o, c2);
  other.AddApp("wx1", "s1");
  ApiRequest req;
  req.path = "/cgi-bin/token";
  req.query = {{"grant_type", "client_credential"}, {"appid", "wx1"}, {"secret", "s1"}};
  EXPECT_EQ(json::parse(other.Handle(req).body)["access_token"], Fetch());
}

TEST_F(SimStateTest, injected_error_is_recorded_with_a_rid) {
  std::string t = Fetch();
  ApiRequest req;
  req.path = kIpPath;
  req.query = {{"access_token", t}};
  auto r = sim_->InjectedError(req, -1);
  EXPECT_EQ(r.errcode, -1);
  std::string msg = json::parse(r.body)["errmsg"];
  EXPECT_EQ(msg.rfind("system error rid: ", 0), 0u) << msg;
  EXPECT_EQ(sim_->StateJson()["apps"]["wx1"]["calls"][kIpPath]["-1"], 1);
}

TEST(ErrMsg, matches_the_documented_token_errors) {
  EXPECT_EQ(ErrMsg(40001), "invalid credential, access_token is invalid or not latest");
  EXPECT_EQ(ErrMsg(40014), "invalid access_token");
  EXPECT_EQ(ErrMsg(42001), "access_token expired");
  EXPECT_EQ(ErrMsg(41001), "access_token missing");
  EXPECT_EQ(ErrMsg(-1), "system error");
}

}  // namespace
}  // namespace wxcanary::sim
