// Integration tests: the built wxsim binary over real HTTP on a free loopback port.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <set>

#include "common/fingerprint.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using nlohmann::json;
using std::chrono::steady_clock;

int Errcode(const WxSim::Reply& r) { return r.Json().value("errcode", 0); }

std::string Rid(const WxSim::Reply& r) {
  std::string msg = r.Json().value("errmsg", "");
  return msg.size() >= 26 ? msg.substr(msg.size() - 26) : "";
}

std::string Q(const std::string& path, const std::string& token) {
  return path + "?access_token=" + token;
}

// Runs wxsim with args expecting a startup failure; returns (exit code, output).
std::pair<int, std::string> RunFailing(std::vector<std::string> args) {
  TempDir dir;
  args.insert(args.begin(), BuiltBinary("wxsim").string());
  Subprocess p(args, dir.path() / "out.log");
  int st = p.Wait(std::chrono::seconds{10});
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, p.Output()};
}

TEST(WxSimHttp, prints_its_port_and_serves_a_token_lifecycle) {
  WxSim sim;
  EXPECT_NE(sim.Output().find("wxsim listening on 127.0.0.1:" + std::to_string(sim.port())),
            std::string::npos)
      << sim.Output();
  std::string a = sim.FetchToken();
  std::string b = sim.FetchToken();
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", a))), 0);
  sim.Advance(301);
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", a))), 40001);
  EXPECT_EQ(sim.Get(Q("/cgi-bin/get_api_domain_ip", b)).Json()["ip_list"].size(), 3u);
  sim.Advance(7200);
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", b))), 42001);

  json state = sim.State();
  std::string dump = state.dump();
  EXPECT_EQ(dump.find(a), std::string::npos);
  EXPECT_EQ(dump.find(b), std::string::npos);
  EXPECT_EQ(state["apps"][WxSim::kAppId]["tokens_issued"], 2);
  EXPECT_EQ(state["apps"][WxSim::kAppId]["calls"]["/cgi-bin/getcallbackip"]["40001"], 1);
  EXPECT_EQ(state["apps"][WxSim::kAppId]["calls"]["/cgi-bin/getcallbackip"]["42001"], 1);
  EXPECT_GE(state["offset_seconds"].get<double>(), 7501.0);
}

TEST(WxSimHttp, state_shows_live_token_fingerprints) {
  WxSim sim;
  std::string a = sim.FetchToken();
  std::string s = sim.FetchStableToken();
  auto tokens = sim.State()["apps"][WxSim::kAppId]["tokens"];
  ASSERT_EQ(tokens.size(), 2u);
  std::set<std::string> fps{tokens[0]["fingerprint"], tokens[1]["fingerprint"]};
  EXPECT_EQ(fps, (std::set<std::string>{Fingerprint(a), Fingerprint(s)}));
}

TEST(WxSimHttp, every_endpoint_answers_its_documented_errors) {
  WxSim sim({"--app", "wx1:s1", "--risky-word", "gamble"});
  std::string t = sim.FetchToken("wx1", "s1");
  const std::string oid = "oAbCdEfGhIjKlMnOpQrStUvWxYz0";
  struct Case {
    std::string method, target, body;
    int errcode;
  } cases[] = {
      {"GET", "/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s1", "", 0},
      {"GET", "/cgi-bin/token?appid=wx1&secret=s1", "", 40002},
      {"GET", "/cgi-bin/token?grant_type=client_credential&secret=s1", "", 41002},
      {"GET", "/cgi-bin/token?grant_type=client_credential&appid=wx9&secret=s1", "", 40013},
      {"GET", "/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=nope", "", 40125},
      {"GET", "/cgi-bin/stable_token", "", 43002},
      {"POST", "/cgi-bin/stable_token", "appid=wx1", 41002},
      {"POST", "/cgi-bin/stable_token",
       R"({"grant_type":"client_credential","appid":"wx1","secret":"s1"})", 0},
      {"POST", "/cgi-bin/stable_token",
       R"({"grant_type":"client_credential","appid":"wx1","secret":"x"})", 40125},
      {"POST", "/wxa/msg_sec_check", R"({"content":"hi"})", 41001},
      {"POST", Q("/wxa/msg_sec_check", "garbage"), R"({"content":"hi"})", 40014},
      {"POST", Q("/wxa/msg_sec_check", t), R"({"content":"hi"})", 0},
      {"POST", Q("/wxa/msg_sec_check", t), R"({"content":"gamble"})", 87014},
      {"POST", Q("/wxa/msg_sec_check", t), R"({"content":)", 47001},
      {"GET", Q("/wxa/msg_sec_check", t), "", 43302},
      {"POST", Q("/wxa/msg_sec_check", t),
       json{{"content", "x"}, {"version", 2}, {"scene", 1}, {"openid", "bad"}}.dump(), 40003},
      {"POST", Q("/wxa/msg_sec_check", t),
       json{{"content", "x"}, {"version", 2}, {"scene", 7}, {"openid", oid}}.dump(), 40129},
      {"POST", Q("/wxa/msg_sec_check", t),
       json{{"content", "x"}, {"version", 2}, {"scene", 1}}.dump(), 44002},
      {"POST", Q("/wxa/msg_sec_check", t),
       json{{"content", "x"}, {"version", 2}, {"scene", 1}, {"openid", "oMIS" + oid.substr(4)}}
           .dump(),
       43104},
      {"POST", Q("/wxa/msg_sec_check", t),
       json{{"content", "x"}, {"version", 2}, {"scene", 1}, {"openid", "oEXP" + oid.substr(4)}}
           .dump(),
       61010},
      {"POST", Q("/wxa/msg_sec_check", t),
       json{{"content", "gamble"}, {"version", 2}, {"scene", 1}, {"openid", oid}}.dump(), 0},
      {"GET", Q("/cgi-bin/get_api_domain_ip", t), "", 0},
      {"GET", "/cgi-bin/getcallbackip", "", 41001},
      {"POST", Q("/cgi-bin/openapi/quota/get", t), R"({"cgi_path":"/cgi-bin/token"})", 0},
      {"POST", Q("/cgi-bin/openapi/quota/get", t), R"({"cgi_path":"/cgi-bin/what"})", 76021},
      {"POST", Q("/cgi-bin/openapi/quota/get", t), R"({"cgi_path":"/cgi-bin/getcallbackip"})",
       76022},
      {"POST", Q("/cgi-bin/openapi/rid/get", t), R"({"rid":"zz"})", 76002},
      {"POST", Q("/cgi-bin/openapi/rid/get", t), R"({"rid":"00000000-00000000-00000000"})", 76001},
      {"GET", "/no/such/api", "", 40066},
  };
  for (const auto& c : cases) {
    auto r = c.method == "GET" ? sim.Get(c.target) : sim.Post(c.target, c.body);
    EXPECT_EQ(r.status, 200) << c.target;
    EXPECT_EQ(Errcode(r), c.errcode) << c.method << " " << c.target.substr(0, 60) << " " << r.body;
    if (c.errcode != 0) {
      EXPECT_EQ(Rid(r).size(), 26u) << r.body;
    }
  }
  auto quota = sim.Post(Q("/cgi-bin/openapi/quota/get", t), R"({"cgi_path":"/cgi-bin/token"})");
  EXPECT_EQ(quota.Json()["quota"]["used"], 2);
}

TEST(WxSimHttp, rid_get_returns_the_failed_call) {
  WxSim sim;
  std::string t = sim.FetchToken();
  auto failed = sim.Post(Q("/wxa/msg_sec_check", t), "{broken");
  ASSERT_EQ(Errcode(failed), 47001);
  auto found = sim.Post(Q("/cgi-bin/openapi/rid/get", t), json{{"rid", Rid(failed)}}.dump());
  ASSERT_EQ(Errcode(found), 0) << found.body;
  auto req = found.Json()["request"];
  EXPECT_EQ(req["request_body"], "{broken");
  EXPECT_EQ(req["response_body"], failed.body);
  EXPECT_EQ(req["client_ip"], "127.0.0.1");
  EXPECT_EQ(found.body.find(t), std::string::npos);
}

TEST(WxSimHttp, flags_set_grace_quota_expiry_code_and_minute_limits) {
  WxSim sim({"--grace", "10", "--token-quota", "3", "--expired-errcode", "40014", "--expires-in",
             "100", "--minute-limit", "/cgi-bin/stable_token=2"});
  std::string a = sim.FetchToken();
  auto r =
      sim.Get("/cgi-bin/token?grant_type=client_credential&appid=" + std::string(WxSim::kAppId) +
              "&secret=" + WxSim::kSecret);
  EXPECT_EQ(r.Json()["expires_in"], 100);
  sim.Advance(11);
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", a))), 40001);
  sim.FetchToken();
  EXPECT_EQ(Errcode(sim.Get("/cgi-bin/token?grant_type=client_credential&appid=" +
                            std::string(WxSim::kAppId) + "&secret=" + WxSim::kSecret)),
            45009);
  // Start at the top of a sim minute so the three stable calls share one minute.
  double now = sim.State()["sim_time"];
  sim.Advance(60 - std::fmod(now, 60.0) + 0.5);
  std::string s = sim.FetchStableToken();
  sim.FetchStableToken();
  json body{
      {"grant_type", "client_credential"}, {"appid", WxSim::kAppId}, {"secret", WxSim::kSecret}};
  EXPECT_EQ(Errcode(sim.Post("/cgi-bin/stable_token", body.dump())), 45011);
  sim.Advance(101);
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", s))), 40014);
}

TEST(WxSimHttp, stable_token_force_refresh_over_http) {
  WxSim sim({"--seed", "7"});
  std::string a = sim.FetchStableToken();
  EXPECT_EQ(sim.FetchStableToken(), a);
  std::string b = sim.FetchStableToken(WxSim::kAppId, WxSim::kSecret, true);
  EXPECT_NE(a, b);
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", a))), 40001);
  EXPECT_EQ(sim.FetchStableToken(WxSim::kAppId, WxSim::kSecret, true), b);  // < 30 s apart
}

TEST(WxSimHttp, seed_makes_tokens_reproducible) {
  WxSim one({"--seed", "99"}), two({"--seed", "99"});
  EXPECT_EQ(one.FetchToken(), two.FetchToken());
}

TEST(WxSimHttp, apps_file_and_time_scale) {
  TempDir dir;
  auto file = dir.path() / "apps.txt";
  {
    std::ofstream out(file);
    out << "# comment\nwxf1:sf1\n\nwxf2:sf2\n";
  }
  WxSim sim({"--apps-file", file.string(), "--time-scale", "1000"});
  EXPECT_FALSE(sim.FetchToken("wxf2", "sf2").empty());
  double t0 = sim.State()["sim_time"];
  // 1000x: 50 sim seconds pass in about 50 ms; poll with a deadline, no fixed sleep.
  auto deadline = steady_clock::now() + std::chrono::seconds{5};
  double t1 = t0;
  while (t1 - t0 < 50 && steady_clock::now() < deadline) t1 = sim.State()["sim_time"];
  EXPECT_GE(t1 - t0, 50);
}

TEST(WxSimHttp, faults_latency_status_errcode_garbage_truncated_and_clear) {
  WxSim sim;
  std::string t = sim.FetchToken();
  const std::string ip = Q("/cgi-bin/getcallbackip", t);

  sim.InjectFault({{"path", "/cgi-bin/getcallbackip"}, {"latency_ms", 300}, {"count", 1}});
  auto start = steady_clock::now();
  EXPECT_EQ(Errcode(sim.Get(ip)), 0);
  EXPECT_GE(steady_clock::now() - start, std::chrono::milliseconds{300});

  sim.InjectFault({{"path", "/cgi-bin/getcallbackip"}, {"http_status", 500}, {"count", 1}});
  auto r500 = sim.Get(ip);
  EXPECT_EQ(r500.status, 500);
  EXPECT_TRUE(r500.Json().is_null());
  EXPECT_EQ(sim.Get(ip).status, 200);  // count 1 is spent

  sim.InjectFault({{"path", "/cgi-bin/getcallbackip"}, {"errcode", -1}});
  for (int i = 0; i < 2; ++i) {
    auto r = sim.Get(ip);
    EXPECT_EQ(Errcode(r), -1);
    EXPECT_EQ(r.Json()["errmsg"].get<std::string>().rfind("system error rid: ", 0), 0u);
  }
  sim.ClearFaults();
  EXPECT_EQ(Errcode(sim.Get(ip)), 0);

  sim.InjectFault({{"path", "*"}, {"body", "garbage"}, {"count", 1}});
  auto garbage = sim.Get(ip);
  EXPECT_EQ(garbage.status, 200);
  EXPECT_TRUE(garbage.Json().is_null());

  sim.InjectFault({{"path", "/cgi-bin/token"}, {"body", "truncated"}, {"count", 1}});
  auto cut =
      sim.Get("/cgi-bin/token?grant_type=client_credential&appid=" + std::string(WxSim::kAppId) +
              "&secret=" + WxSim::kSecret);
  EXPECT_EQ(cut.status, 200);
  EXPECT_TRUE(cut.Json().is_null());
  EXPECT_EQ(cut.body.rfind("{\"access_token\":\"", 0), 0u);
  EXPECT_EQ(sim.State()["apps"][WxSim::kAppId]["tokens_issued"], 2);  // it was processed

  auto bad = sim.Post("/admin/fault", R"({"path":"/x","latency_ms":"slow"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Json()["error"],
            "fault: \"latency_ms\" must be an integer in [0, 600000], got \"slow\"");
}

TEST(WxSimHttp, reset_fault_drops_the_connection_without_an_answer) {
  WxSim sim;
  std::string t = sim.FetchToken();
  sim.InjectFault({{"path", "/cgi-bin/getcallbackip"}, {"reset", true}, {"count", 1}});
  httplib::Client fresh(sim.base_url());
  auto res = fresh.Get(Q("/cgi-bin/getcallbackip", t));
  EXPECT_FALSE(res) << "got an HTTP answer: " << res->status;
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", t))), 0);
}

// A burst of connections while the accept thread is not running (the process stopped) must
// still complete the TCP handshake: the kernel queues them up to the listen backlog. With
// cpp-httplib's own backlog of 5, only 6 of 32 did; the rest sat in SYN_SENT until a 1 s
// retransmit, which a probe with a sub-second timeout reports as "Connection timed out".
TEST(WxSimHttp, a_burst_of_connections_is_queued_not_dropped) {
  WxSim sim;
  constexpr int kBurst = 32;
  ASSERT_EQ(::kill(sim.process().pid(), SIGSTOP), 0);
  // Resumed and the sockets closed however the test leaves (an ASSERT below returns early).
  std::vector<int> fds;
  struct Resume {
    pid_t pid;
    std::vector<int>& fds;
    ~Resume() {
      ::kill(pid, SIGCONT);
      for (int fd : fds) ::close(fd);
    }
  } resume{sim.process().pid(), fds};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(sim.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < kBurst; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
  }
  // A queued connection is writable once its handshake is done; give them 500 ms (a dropped
  // SYN is retransmitted only after 1 s).
  int connected = 0;
  const auto deadline = steady_clock::now() + std::chrono::milliseconds{500};
  for (int fd : fds) {
    pollfd p{fd, POLLOUT, 0};
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count()))) == 1) {
      int err = -1;
      socklen_t len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ++connected;
    }
  }
  EXPECT_EQ(connected, kBurst);
  ::kill(sim.process().pid(), SIGCONT);
  // Closed before the next request: idle accepted connections would hold wxsim's threads.
  for (int fd : fds) ::close(fd);
  fds.clear();
  EXPECT_EQ(sim.Get("/cgi-bin/getcallbackip").status, 200);
}

TEST(WxSimHttp, admin_rejects_bad_input_and_reset_forgets_tokens) {
  WxSim sim;
  auto bad = sim.Post("/admin/advance?seconds=-5", "", "text/plain");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Json()["error"], "advance: \"seconds\" must be a number >= 0, got '-5'");
  EXPECT_EQ(sim.Get("/admin/nothing").status, 404);
  std::string t = sim.FetchToken();
  sim.Reset();
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", t))), 40001);
  EXPECT_EQ(sim.State()["apps"][WxSim::kAppId]["tokens_issued"], 0);
  EXPECT_EQ(sim.process().Stop(), 0) << "SIGTERM should stop wxsim cleanly";
}

TEST(WxSimHttp, bad_flags_fail_fast_with_one_line) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--app", "a:b", "--listen", "0.0.0.0:0"},
       "wxsim: --listen must be a loopback 127.x.x.x:PORT, got '0.0.0.0:0'\n"},
      {{"--app", "justid"}, "wxsim: --app expects APPID:SECRET, got 'justid' (no ':')\n"},
      {{"--app", "a:"}, "wxsim: --app expects APPID:SECRET, got an empty SECRET for 'a'\n"},
      {{}, "wxsim: no apps: give --app APPID:SECRET or --apps-file PATH\n"},
      {{"--app", "a:b", "--minute-limit", "x"},
       "wxsim: --minute-limit expects PATH=N (e.g. /cgi-bin/stable_token=5), got 'x'\n"},
  };
  for (const auto& c : cases) {
    auto [code, out] = RunFailing(c.args);
    EXPECT_EQ(code, 2);
    EXPECT_EQ(out, c.message);
  }
  auto [code, out] = RunFailing({"--app", "a:b", "--expired-errcode", "1"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--expired-errcode"), std::string::npos) << out;
}

// Random methods, paths, queries and bodies: every answer must be WeChat-shaped JSON, and the
// server must still serve afterwards.
TEST(WxSimHttp, survives_thousands_of_random_requests) {
  WxSim sim({"--seed", "5"});
  std::string token = sim.FetchToken();
  std::mt19937 rng(12345);
  auto pick = [&](auto const& v) { return v[rng() % v.size()]; };
  auto random_text = [&](size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    return s;
  };
  const std::vector<std::string> paths = {"/cgi-bin/token",
                                          "/cgi-bin/stable_token",
                                          "/wxa/msg_sec_check",
                                          "/cgi-bin/get_api_domain_ip",
                                          "/cgi-bin/getcallbackip",
                                          "/cgi-bin/openapi/quota/get",
                                          "/cgi-bin/openapi/rid/get",
                                          "/",
                                          "/cgi-bin/",
                                          "/wxa/msg_sec_check/extra"};
  const std::vector<std::string> methods = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  const std::vector<std::string> keys = {"access_token", "appid", "secret", "grant_type", "x", ""};
  const std::vector<std::string> bodies = {
      "",
      "{",
      "[]",
      "null",
      "{\"content\":null}",
      "{\"content\":[1,2]}",
      "{\"version\":2}",
      R"({"content":"x","version":2,"scene":1e99,"openid":{}})",
      R"({"cgi_path":5})",
      R"({"rid":"ffffffff-ffffffff-ffffffff"})",
      R"({"grant_type":"client_credential","appid":[]})",
      R"({"grant_type":"client_credential","appid":"wx00000000000000a1","secret":"0123456789abcdef0123456789abcdef","force_refresh":null})",
      std::string(1000, '['),
      "\xff\xfe\x00garbage"};
  httplib::Client client(sim.base_url());
  client.set_read_timeout(std::chrono::seconds{5});
  int answered = 0;
  for (int i = 0; i < 3000; ++i) {
    httplib::Params params;
    for (int k = static_cast<int>(rng() % 4); k > 0; --k) {
      std::string key = pick(keys), value;
      switch (rng() % 4) {
        case 0: value = token; break;
        case 1: value = "client_credential"; break;
        case 2: value = WxSim::kAppId; break;
        default: value = random_text(40);
      }
      params.emplace(key, value);
    }
    std::string path = rng() % 8 == 0 ? "/" + random_text(20) : pick(paths);
    for (auto& c : path)
      if (c == '?' || c == '#' || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) c = '_';
    if (path.empty() || path[0] != '/' || path.rfind("/admin", 0) == 0) path = "/" + path;
    std::string target = httplib::append_query_params(path, params);
    std::string body = rng() % 3 == 0 ? random_text(300) : pick(bodies);
    std::string method = pick(methods);
    httplib::Result res = method == "GET"      ? client.Get(target)
                          : method == "POST"   ? client.Post(target, body, "application/json")
                          : method == "PUT"    ? client.Put(target, body, "application/json")
                          : method == "DELETE" ? client.Delete(target, body, "application/json")
                          : method == "PATCH"  ? client.Patch(target, body, "application/json")
                                               : client.Options(target);
    if (!res) continue;  // httplib may refuse to send some random targets itself
    ++answered;
    json j = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << method << " " << target.substr(0, 80) << " -> " << res->status
                               << " " << res->body.substr(0, 200);
    EXPECT_TRUE(j.contains("errcode") || j.contains("access_token") || j.contains("ip_list"))
        << res->body;
  }
  EXPECT_GT(answered, 2500);

  // Raw bytes that are not HTTP at all.
  for (int i = 0; i < 200; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(sim.port()));
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string junk = i % 2 ? random_text(500) : "GET /" + random_text(50) + " HTTP/1.1\r\n\r\n";
    ssize_t n = ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    (void)n;
    ::shutdown(fd, SHUT_WR);
    pollfd p{fd, POLLIN, 0};
    char buf[4096];
    while (::poll(&p, 1, 2000) > 0 && ::recv(fd, buf, sizeof buf, 0) > 0) {
    }
    ::close(fd);
  }
  EXPECT_TRUE(sim.process().running()) << sim.Output();
  EXPECT_EQ(Errcode(sim.Get(Q("/cgi-bin/getcallbackip", sim.FetchToken()))), 0);
}

}  // namespace
}  // namespace wxcanary::testing
