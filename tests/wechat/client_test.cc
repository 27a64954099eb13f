// The client against a real HTTP(S) server in the same process (cpp-httplib on loopback).

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string_view>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <charconv>
#include <thread>
#include <vector>

#include "support/process.h"
#include "io/event_loop.h"
#include "wechat/async_client.h"
#include "wechat/client.h"

namespace wxcanary::wechat {
namespace {

using namespace std::chrono_literals;
using config::ProbeKind;
using Clock = std::chrono::steady_clock;

// Characters that must be URL-escaped, so the test sees whether the client escapes them.
const Secret kToken("84_Tok+en/with=odd&chars%-XYZ0123456789abcdef");

struct Seen {
  std::string method, path, token, body, content_type, user_agent;
  int remote_port = -1;
};

/// An in-process API double on a free loopback port; records every request. Thread-safe.
class ApiServer {
 public:
  explicit ApiServer(std::unique_ptr<httplib::Server> server = std::make_unique<httplib::Server>())
      : server_(std::move(server)) {
    server_->set_keep_alive_max_count(1'000'000);  // default 5 would hide a keep-alive bug
    server_->set_keep_alive_timeout(2);
    // Without it Nagle + delayed ACK add ~40 ms to every keep-alive answer and the
    // measurement below would time the kernel, not the client.
    server_->set_tcp_nodelay(true);
    // Every request's target exactly as it arrived (before routing, so a 404 is recorded too).
    server_->set_pre_routing_handler([this](const auto& req, auto&) {
      std::lock_guard lock(mu_);
      targets_.push_back(req.target);
      return httplib::Server::HandlerResponse::Unhandled;
    });
    auto record = [this](const httplib::Request& req) {
      // Every User-Agent the request carried, so a second one would show.
      std::string agents;
      for (size_t i = 0; i < req.get_header_value_count("User-Agent"); ++i)
        agents += (i == 0 ? "" : "|") + req.get_header_value("User-Agent", i);
      std::lock_guard lock(mu_);
      seen_.push_back({req.method, req.path, req.get_param_value("access_token"), req.body,
                       req.get_header_value("Content-Type"), agents, req.remote_port});
    };
    server_->Get("/cgi-bin/get_api_domain_ip", [this, record](const auto& req, auto& res) {
      record(req);
      if (slow_) WaitForRelease();
      res.set_content(R"({"ip_list":["101.89.47.18","101.91.34.103"]})", "application/json");
    });
    server_->Post("/wxa/msg_sec_check", [record](const auto& req, auto& res) {
      record(req);
      res.set_content(R"({"errcode":0,"errmsg":"ok"})", "application/json");
    });
    server_->Post("/cgi-bin/openapi/quota/get", [record](const auto& req, auto& res) {
      record(req);
      res.set_content(R"({"errcode":0,"quota":{"daily_limit":2000,"used":3,"remain":1997}})",
                      "application/json");
    });
    server_->Get("/status500", [record](const auto& req, auto& res) {
      record(req);
      res.status = 500;
      res.set_content(R"({"errcode":0})", "application/json");
    });
    server_->Get("/slow", [this](const auto&, auto& res) {
      WaitForRelease();
      res.set_content(R"({"ip_list":[]})", "application/json");
    });
    server_->Get("/huge", [](const auto&, auto& res) {
      res.set_content(std::string(2 * kMaxResponseBytes, 'x'), "application/json");
    });
    server_->Get("/huge_chunked", [](const auto&, auto& res) {
      res.set_chunked_content_provider("application/json",
                                       [](size_t offset, httplib::DataSink& sink) {
                                         if (offset >= 2 * kMaxResponseBytes) {
                                           sink.done();
                                           return true;
                                         }
                                         const std::string chunk(64 * 1024, 'y');
                                         return sink.write(chunk.data(), chunk.size());
                                       });
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    const auto deadline = Clock::now() + 10s;
    while (!server_->is_running() && Clock::now() < deadline) std::this_thread::yield();
  }

  ~ApiServer() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    server_->stop();
    thread_.join();
  }

  [[nodiscard]] int port() const { return port_; }
  /// From now on the probe endpoint answers only when the server shuts down.
  void set_slow() { slow_ = true; }
  [[nodiscard]] std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  /// The request targets received, raw (percent-encoding and all), in order.
  [[nodiscard]] std::vector<std::string> targets() const {
    std::lock_guard lock(mu_);
    return targets_;
  }
  [[nodiscard]] std::set<int> ports() const {
    std::set<int> out;
    for (const auto& s : seen()) out.insert(s.remote_port);
    return out;
  }

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::atomic<bool> slow_{false};

  void WaitForRelease() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [this] { return released_; });
  }
  std::vector<Seen> seen_;
  std::vector<std::string> targets_;
};

config::WeChat Cfg(const std::string& base_url, std::string ca_file = "") {
  config::WeChat c;
  c.base_url = base_url;
  c.ca_file = std::move(ca_file);
  c.timeout = 2s;
  return c;
}

config::Environment Env(ProbeKind kind) {
  config::Environment env;
  env.probe = kind;
  env.content = "wxcanary \xE5\xAE\x89\xE5\x85\xA8 \"canary\"";  // quotes and UTF-8 must survive
  env.openid = "oABC123_openid";
  env.scene = 3;
  return env;
}

std::string HttpBase(const ApiServer& s) { return "http://127.0.0.1:" + std::to_string(s.port()); }

void ExpectNoToken(const HttpResponse& r) {
  EXPECT_EQ(r.transport_error.find(kToken.Reveal()), std::string::npos) << r.transport_error;
  EXPECT_EQ(r.transport_error.find("access_token"), std::string::npos) << r.transport_error;
  EXPECT_EQ(r.transport_error.find("84_Tok"), std::string::npos) << r.transport_error;
}

TEST(Client, api_domain_ip_is_a_get_with_the_escaped_token_in_the_query) {
  ApiServer server;
  Client client(Cfg(HttpBase(server) + "/"));  // a trailing slash on base_url is tolerated
  const HttpResponse r =
      client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 2s);
  ASSERT_TRUE(r.transport_ok) << r.transport_error;
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(Classify(ProbeKind::kApiDomainIp, r, kToken).outcome, Outcome::kOk);

  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].path, "/cgi-bin/get_api_domain_ip");
  EXPECT_EQ(seen[0].token, kToken.Reveal());  // decoded by the server: escaping round-trips
  EXPECT_EQ(seen[0].body, "");
  EXPECT_EQ(seen[0].user_agent, "wxcanary/" WXCANARY_TEST_VERSION);
}

// kToken as curl_easy_escape writes it: everything but ALPHA / DIGIT / "-._~" percent-encoded.
constexpr const char* kEscapedToken = "84_Tok%2Ben%2Fwith%3Dodd%26chars%25-XYZ0123456789abcdef";

// A probe hands curl a parsed URL without the query and its request target verbatim (the fast
// path): the server must still get the origin-form target, the base URL's path kept.
TEST(Client, a_probe_sends_the_origin_form_target_with_the_escaped_token) {
  ApiServer server;
  for (const std::string prefix : {"", "/gw"}) {
    Client client(Cfg(HttpBase(server) + prefix));
    const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kMsgSecCheck)), kToken, 2s);
    ASSERT_TRUE(r.transport_ok) << r.transport_error;
    EXPECT_EQ(r.http_status, prefix.empty() ? 200 : 404);  // the double has no /gw routes
    ASSERT_FALSE(server.targets().empty());
    EXPECT_EQ(server.targets().back(),
              prefix + "/wxa/msg_sec_check?access_token=" + std::string(kEscapedToken));
  }
}

// One handle serves probes (parsed URL + target) and other calls (a URL string) in any order:
// each request must go where its own call says, not where the handle's last mode pointed.
TEST(Client, probes_and_other_calls_on_one_handle_each_reach_their_own_target) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  const auto check = Env(ProbeKind::kMsgSecCheck);  // ProbeCallOf views into its environment
  const auto ip = Env(ProbeKind::kApiDomainIp);
  EXPECT_TRUE(client.Probe(config::ProbeCallOf(check), kToken, 2s).transport_ok);
  EXPECT_TRUE(client.Get("/cgi-bin/get_api_domain_ip?access_token=zzz12345", 2s).transport_ok);
  EXPECT_TRUE(client.Probe(config::ProbeCallOf(ip), kToken, 2s).transport_ok);
  EXPECT_TRUE(
      client.Probe(config::ProbeCallOf(check), Secret("second_token_123"), 2s).transport_ok);
  EXPECT_TRUE(
      client.PostJson("/cgi-bin/openapi/quota/get?access_token=q123456789", "{}", 2s).transport_ok);
  const std::string e = kEscapedToken;
  EXPECT_EQ(server.targets(),
            (std::vector<std::string>{"/wxa/msg_sec_check?access_token=" + e,
                                      "/cgi-bin/get_api_domain_ip?access_token=zzz12345",
                                      "/cgi-bin/get_api_domain_ip?access_token=" + e,
                                      "/wxa/msg_sec_check?access_token=second_token_123",
                                      "/cgi-bin/openapi/quota/get?access_token=q123456789"}));
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[2].method, "GET");  // a probe after a POST is the probe kind's own method
  EXPECT_EQ(seen[2].body, "");
  EXPECT_EQ(seen[3].method, "POST");
}

// Through a forward proxy (plain http, http_proxy set: README's proxy support) the request
// target must be the absolute URL, so the fast path's origin-form target is not used there.
TEST(Client, through_an_http_proxy_a_probe_sends_the_absolute_url) {
  ApiServer proxy;  // stands in for the proxy: records what it was asked for, answers 404
  const std::string proxy_url = HttpBase(proxy);
  ASSERT_EQ(setenv("http_proxy", proxy_url.c_str(), 1), 0);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  Client client(Cfg("http://wechat.invalid"));  // only the proxy resolves it; it never does
  const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kMsgSecCheck)), kToken, 2s);
  unsetenv("http_proxy");
  ASSERT_TRUE(r.transport_ok) << r.transport_error;
  EXPECT_EQ(proxy.targets(),
            std::vector<std::string>{"http://wechat.invalid/wxa/msg_sec_check?access_token=" +
                                     std::string(kEscapedToken)});
}

// Without a proxy variable the handle is told "no proxy" once (curl would read the environment
// on every request); each variable curl reads must still be honoured when one is set.
TEST(Client, each_proxy_variable_set_when_the_client_is_made_is_honoured) {
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    SCOPED_TRACE(name);
    ApiServer proxy;
    ASSERT_EQ(setenv(name, HttpBase(proxy).c_str(), 1), 0);
    Client client(Cfg("http://wechat.invalid"));
    const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 2s);
    unsetenv(name);
    ASSERT_TRUE(r.transport_ok) << r.transport_error;
    EXPECT_EQ(proxy.targets(),
              std::vector<std::string>{"http://wechat.invalid/cgi-bin/get_api_domain_ip"
                                       "?access_token=" +
                                       std::string(kEscapedToken)});
  }
  // curl's own bypass list still works with a proxy variable set (it reads it itself then).
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    SCOPED_TRACE(name);
    ApiServer proxy, server;
    ASSERT_EQ(setenv("http_proxy", HttpBase(proxy).c_str(), 1), 0);
    ASSERT_EQ(setenv(name, "127.0.0.1", 1), 0);
    Client client(Cfg(HttpBase(server)));
    const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 2s);
    unsetenv("http_proxy");
    unsetenv(name);
    ASSERT_TRUE(r.transport_ok) << r.transport_error;
    EXPECT_TRUE(proxy.targets().empty());
    EXPECT_EQ(server.targets().size(), 1u);
  }
}

// Takes one connection and keeps what it was sent: the request's head, then as much of the body
// as its Content-Length names that arrives within `body_wait` (a client that held the body back
// for "100 Continue" sends none by then: keep it under curl's 1 s wait for one). Answers
// `answer` and closes. As an HTTPS proxy it refuses the tunnel.
class RequestRecorder {
 public:
  explicit RequestRecorder(
      std::string answer = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
      std::chrono::milliseconds body_wait = 500ms) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 4) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("RequestRecorder: cannot listen");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, answer = std::move(answer), body_wait] {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string got;
      char buf[4096];
      auto more = [&](int wait_ms) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, wait_ms) != 1) return false;
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) return false;
        got.append(buf, static_cast<size_t>(n));
        return true;
      };
      size_t end = std::string::npos;
      while ((end = got.find("\r\n\r\n")) == std::string::npos && more(5000)) {
      }
      if (end != std::string::npos) {
        const size_t cl = got.find("\r\nContent-Length: ");
        size_t want = 0;  // stays 0 for a missing or malformed length (no throw on this thread)
        if (cl < end)
          static_cast<void>(std::from_chars(got.data() + cl + 18, got.data() + end, want));
        while (got.size() < end + 4 + want && more(static_cast<int>(body_wait.count()))) {
        }
      }
      [[maybe_unused]] ssize_t sent = ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(c);
      std::lock_guard lock(mu_);
      got_ = got;
    });
  }
  ~RequestRecorder() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  [[nodiscard]] int port() const { return port_; }
  /// Everything the connection sent: the head and what arrived of the body.
  [[nodiscard]] std::string got() {
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string got_;
};

// A POST body goes out with its head: curl 7.88 asks for "100 Continue" only over 1 MiB (older
// ones did over 1 KiB), so the client no longer sends an empty "Expect:" header to prevent it.
// 2 KiB here, over the old threshold: waiting for a "100 Continue" the recorder never sends
// would hold it back for a second.
TEST(Client, a_post_over_one_kib_goes_out_with_its_head_and_no_expect_header) {
  RequestRecorder api(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
      R"({"errcode":0,"errmsg":"ok"})");
  Client client(Cfg("http://127.0.0.1:" + std::to_string(api.port())));
  const std::string body = R"({"content":")" + std::string(2048, 'x') + R"("})";
  const auto r = client.PostJson("/wxa/msg_sec_check?access_token=abc123456789", body, 3s);
  EXPECT_TRUE(r.transport_ok) << r.transport_error;
  const std::string got = api.got();
  const size_t end = got.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << got;
  const std::string head = got.substr(0, end + 2);
  EXPECT_EQ(head.rfind("POST /wxa/msg_sec_check?access_token=abc123456789 HTTP/1.1\r\n", 0), 0u);
  EXPECT_EQ(head.find("\r\nExpect"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << head;
  EXPECT_EQ(got.substr(end + 4), body);
}

// The variables production sets for the real (HTTPS) API: the call goes through the proxy's
// tunnel, and the CONNECT names wxcanary once.
TEST(Client, an_https_proxy_variable_tunnels_the_call_and_the_connect_names_wxcanary) {
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  for (const char* name : {"https_proxy", "HTTPS_PROXY"}) {
    SCOPED_TRACE(name);
    RequestRecorder proxy;
    ASSERT_EQ(setenv(name, ("http://127.0.0.1:" + std::to_string(proxy.port())).c_str(), 1), 0);
    Client client(Cfg("https://wechat.invalid"));
    const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 3s);
    unsetenv(name);
    EXPECT_FALSE(r.transport_ok);  // the tunnel was refused
    const std::string head = proxy.got();
    EXPECT_EQ(head.rfind("CONNECT wechat.invalid:443 HTTP/1.1\r\n", 0), 0u) << head;
    const std::string agent = "\r\nUser-Agent: wxcanary/" WXCANARY_TEST_VERSION "\r\n";
    const size_t at = head.find(agent);
    EXPECT_NE(at, std::string::npos) << head;
    EXPECT_EQ(head.find("User-Agent", at + agent.size()), std::string::npos) << head;
    EXPECT_EQ(head.find(kToken.Reveal()), std::string::npos);
  }
}

TEST(Client, msg_sec_check_bodies_are_json_per_version) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  const auto v1 = client.Probe(config::ProbeCallOf(Env(ProbeKind::kMsgSecCheck)), kToken, 2s);
  const auto v2 = client.Probe(config::ProbeCallOf(Env(ProbeKind::kMsgSecCheckV2)), kToken, 2s);
  ASSERT_TRUE(v1.transport_ok) << v1.transport_error;
  ASSERT_TRUE(v2.transport_ok) << v2.transport_error;
  EXPECT_EQ(Classify(ProbeKind::kMsgSecCheck, v1, kToken).outcome, Outcome::kOk);

  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  const std::string content = Env(ProbeKind::kMsgSecCheck).content;
  for (const auto& s : seen) {
    EXPECT_EQ(s.method, "POST");
    EXPECT_EQ(s.path, "/wxa/msg_sec_check");
    EXPECT_EQ(s.token, kToken.Reveal());
    EXPECT_EQ(s.content_type, "application/json");
    EXPECT_EQ(s.user_agent, "wxcanary/" WXCANARY_TEST_VERSION);
  }
  EXPECT_EQ(nlohmann::json::parse(seen[0].body), (nlohmann::json{{"content", content}}));
  EXPECT_EQ(nlohmann::json::parse(seen[1].body),
            (nlohmann::json{
                {"content", content}, {"version", 2}, {"scene", 3}, {"openid", "oABC123_openid"}}));
}

// One client serves many targets in turn and keeps the last body it built: every probe must
// still send its own target's content, version, scene and openid.
TEST(Client, consecutive_probes_send_each_targets_own_body) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  auto env = [](ProbeKind kind, std::string content, int scene, std::string openid) {
    config::Environment e = Env(kind);
    e.content = std::move(content);
    e.scene = scene;
    e.openid = std::move(openid);
    return e;
  };
  const std::vector<config::Environment> envs = {
      env(ProbeKind::kMsgSecCheck, "a", 1, "o1"),   env(ProbeKind::kMsgSecCheck, "a", 1, "o1"),
      env(ProbeKind::kMsgSecCheck, "b", 1, "o1"),   env(ProbeKind::kMsgSecCheckV2, "b", 1, "o1"),
      env(ProbeKind::kMsgSecCheckV2, "b", 4, "o1"), env(ProbeKind::kMsgSecCheckV2, "b", 4, "o2"),
      env(ProbeKind::kApiDomainIp, "b", 4, "o2"),   env(ProbeKind::kMsgSecCheck, "a", 1, "o1"),
  };
  for (const auto& e : envs)
    ASSERT_TRUE(client.Probe(config::ProbeCallOf(e), kToken, 2s).transport_ok);
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), envs.size());
  for (size_t i = 0; i < envs.size(); ++i) {
    const auto& e = envs[i];
    if (e.probe == ProbeKind::kApiDomainIp) {
      EXPECT_EQ(seen[i].body, "") << i;
      continue;
    }
    nlohmann::json want{{"content", e.content}};
    if (e.probe == ProbeKind::kMsgSecCheckV2)
      want = {{"content", e.content}, {"version", 2}, {"scene", e.scene}, {"openid", e.openid}};
    EXPECT_EQ(nlohmann::json::parse(seen[i].body), want) << i;
    EXPECT_EQ(seen[i].token, kToken.Reveal()) << i;
  }
}

TEST(Client, post_json_and_get_reach_other_paths) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  const std::string body = R"({"cgi_path":"/cgi-bin/token"})";
  const auto quota =
      client.PostJson("/cgi-bin/openapi/quota/get?access_token=abc123456789", body, 2s);
  ASSERT_TRUE(quota.transport_ok) << quota.transport_error;
  EXPECT_EQ(nlohmann::json::parse(quota.body)["quota"]["used"], 3);
  // GET after POST on the same handle must really be a GET with no body.
  const auto ip = client.Get("/cgi-bin/get_api_domain_ip?access_token=zzz", 2s);
  ASSERT_TRUE(ip.transport_ok) << ip.transport_error;

  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].path, "/cgi-bin/openapi/quota/get");
  EXPECT_EQ(seen[0].token, "abc123456789");
  EXPECT_EQ(seen[0].body, body);
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_EQ(seen[1].token, "zzz");
  EXPECT_EQ(seen[1].body, "");
}

TEST(Client, reuses_one_connection_for_100_sequential_probes) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  for (int i = 0; i < 100; ++i) {
    const auto kind = i % 2 ? ProbeKind::kApiDomainIp : ProbeKind::kMsgSecCheck;
    const auto r = client.Probe(config::ProbeCallOf(Env(kind)), kToken, 2s);
    ASSERT_TRUE(r.transport_ok) << i << ": " << r.transport_error;
  }
  EXPECT_EQ(server.seen().size(), 100u);
  EXPECT_EQ(server.ports().size(), 1u);
}

TEST(Client, gives_up_at_the_timeout_and_recovers) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  const auto start = Clock::now();
  const auto r = client.Get("/slow", 300ms);
  const auto elapsed = Clock::now() - start;
  EXPECT_FALSE(r.transport_ok);
  EXPECT_NE(r.transport_error.find("timed out"), std::string::npos) << r.transport_error;
  EXPECT_NE(r.transport_error.find("(curl error 28)"), std::string::npos) << r.transport_error;
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_EQ(Classify(ProbeKind::kApiDomainIp, r, kToken).outcome, Outcome::kTransportError);

  const auto again = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 2s);
  EXPECT_TRUE(again.transport_ok) << again.transport_error;
}

TEST(Client, probe_timeout_error_never_names_the_token) {
  ApiServer server;
  server.set_slow();
  Client client(Cfg(HttpBase(server)));
  const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 200ms);
  EXPECT_FALSE(r.transport_ok);
  EXPECT_NE(r.transport_error.find("timed out"), std::string::npos) << r.transport_error;
  ExpectNoToken(r);
  EXPECT_EQ(server.seen().size(), 1u);  // the request, token and all, did reach the server
}

TEST(Client, http_500_is_a_transport_error) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  const auto r = client.Get("/status500", 2s);
  ASSERT_TRUE(r.transport_ok) << r.transport_error;
  EXPECT_EQ(r.http_status, 500);
  const auto c = Classify(ProbeKind::kApiDomainIp, r, kToken);
  EXPECT_EQ(c.outcome, Outcome::kTransportError);
  EXPECT_EQ(c.detail, "HTTP 500");
}

TEST(Client, connection_refused_is_a_transport_error) {
  const int port = testing::FreePort();  // nothing listens there
  Client client(Cfg("http://127.0.0.1:" + std::to_string(port)));
  const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 2s);
  EXPECT_FALSE(r.transport_ok);
  EXPECT_NE(r.transport_error.find("(curl error 7)"), std::string::npos) << r.transport_error;
  ExpectNoToken(r);
  const auto c = Classify(ProbeKind::kApiDomainIp, r, kToken);
  EXPECT_EQ(c.outcome, Outcome::kTransportError);
  EXPECT_EQ(c.detail, r.transport_error);
}

TEST(Client, malformed_base_url_fails_without_naming_the_token) {
  Client client(Cfg("http://127.0.0.1:99999"));
  const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kMsgSecCheck)), kToken, 2s);
  EXPECT_FALSE(r.transport_ok);
  EXPECT_FALSE(r.transport_error.empty());
  ExpectNoToken(r);
}

TEST(Client, refuses_responses_over_the_size_cap_with_or_without_content_length) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  for (const char* path : {"/huge", "/huge_chunked"}) {
    SCOPED_TRACE(path);
    const auto r = client.Get(path, 5s);
    EXPECT_FALSE(r.transport_ok);
    EXPECT_EQ(r.transport_error, "response too large (over 1048576 bytes)");
    EXPECT_TRUE(r.body.empty());
  }
  const auto ok = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 2s);
  EXPECT_TRUE(ok.transport_ok) << ok.transport_error;
}

// --- TLS -----------------------------------------------------------------------------------

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = (dir_.path() / "cert.pem").string();
    key_ = (dir_.path() / "key.pem").string();
    testing::Subprocess openssl(
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key_, "-out", cert_, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"},
        dir_.path() / "openssl.log");
    const int status = openssl.Wait(30s);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << openssl.Output();
    server_ = std::make_unique<ApiServer>(
        std::make_unique<httplib::SSLServer>(cert_.c_str(), key_.c_str()));
    base_ = "https://127.0.0.1:" + std::to_string(server_->port());
  }

  testing::TempDir dir_;
  std::string cert_, key_, base_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(TlsTest, refuses_an_unknown_certificate_without_ca_file) {
  Client client(Cfg(base_));
  const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 3s);
  EXPECT_FALSE(r.transport_ok);
  EXPECT_NE(r.transport_error.find("certificate"), std::string::npos) << r.transport_error;
  ExpectNoToken(r);
  EXPECT_TRUE(server_->seen().empty());
}

TEST_F(TlsTest, accepts_the_certificate_given_as_ca_file) {
  Client client(Cfg(base_, cert_));
  const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 3s);
  ASSERT_TRUE(r.transport_ok) << r.transport_error;
  EXPECT_EQ(Classify(ProbeKind::kApiDomainIp, r, kToken).outcome, Outcome::kOk);
  ASSERT_EQ(server_->seen().size(), 1u);
  EXPECT_EQ(server_->seen()[0].token, kToken.Reveal());
}

TEST_F(TlsTest, refuses_a_trusted_certificate_for_another_host_name) {
  // The certificate names only IP 127.0.0.1; reached as "localhost" (from /etc/hosts), host
  // verification must reject it even though the CA is trusted.
  Client client(Cfg("https://localhost:" + std::to_string(server_->port()), cert_));
  const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 3s);
  EXPECT_FALSE(r.transport_ok);
  EXPECT_NE(r.transport_error.find("localhost"), std::string::npos) << r.transport_error;
  ExpectNoToken(r);
  EXPECT_TRUE(server_->seen().empty());
}

// --- measurement ---------------------------------------------------------------------------

TEST(ClientBench, ten_thousand_keep_alive_probes_on_one_connection) {
  ApiServer server;
  Client client(Cfg(HttpBase(server)));
  constexpr int kProbes = 10'000;
  const auto start = Clock::now();
  for (int i = 0; i < kProbes; ++i) {
    const auto r = client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 2s);
    ASSERT_TRUE(r.transport_ok && r.http_status == 200) << i << ": " << r.transport_error;
  }
  const auto total = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  std::printf("[ MEASURE  ] %d keep-alive probes: mean %.1f us per probe (total %.0f ms)\n",
              kProbes, total / kProbes, total / 1000);
  EXPECT_EQ(server.ports().size(), 1u);
  EXPECT_EQ(server.seen().size(), static_cast<size_t>(kProbes));
}

// The probe engine's client: the same requests as Client, many in flight on one event loop.
class AsyncClientTest : public ::testing::Test {
 protected:
  // Runs the loop until `n` answers are in (or 20 s pass).
  void RunUntil(const size_t& answered, size_t n) {
    const auto until = Clock::now() + 20s;
    while (answered < n && Clock::now() < until) loop_.RunOnce(100ms);
  }
  io::EventLoop loop_;
};

TEST_F(AsyncClientTest, sends_the_same_request_as_the_blocking_client) {
  ApiServer server;
  Client sync(Cfg(HttpBase(server)));
  AsyncClient async(loop_, Cfg(HttpBase(server)), 2);
  for (const auto kind : {ProbeKind::kMsgSecCheck, ProbeKind::kApiDomainIp}) {
    ASSERT_TRUE(sync.Probe(config::ProbeCallOf(Env(kind)), kToken, 2s).transport_ok);
    size_t answered = 0;
    HttpResponse got;
    async.Probe(config::ProbeCallOf(Env(kind)), kToken, 2s, [&](HttpResponse r) {
      got = std::move(r);
      ++answered;
    });
    RunUntil(answered, 1);
    ASSERT_TRUE(got.transport_ok) << got.transport_error;
    EXPECT_EQ(got.http_status, 200);
  }
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 4u);
  for (size_t i : {0u, 2u}) {
    EXPECT_EQ(seen[i].method, seen[i + 1].method);
    EXPECT_EQ(seen[i].path, seen[i + 1].path);
    EXPECT_EQ(seen[i].token, seen[i + 1].token);
    EXPECT_EQ(seen[i].body, seen[i + 1].body);
    EXPECT_EQ(seen[i].content_type, seen[i + 1].content_type);
    EXPECT_EQ(seen[i].user_agent, seen[i + 1].user_agent);
  }
}

TEST_F(AsyncClientTest, many_calls_at_once_share_at_most_max_connections_kept_alive) {
  ApiServer server;
  AsyncClient client(loop_, Cfg(HttpBase(server)), 4);
  size_t answered = 0, ok = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 200; ++i) {
      client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 5s,
                   [&](HttpResponse r) {
                     ++answered;
                     ok += r.transport_ok ? 1 : 0;
                   });
    }
    RunUntil(answered, 200u * (round + 1));
  }
  EXPECT_EQ(answered, 400u);
  EXPECT_EQ(ok, 400u);
  EXPECT_EQ(client.in_flight(), 0u);
  EXPECT_EQ(server.seen().size(), 400u);
  EXPECT_LE(server.ports().size(), 4u);  // bounded, and the second round reused them
  // The handles of 200 calls at once went back to a pool that keeps only so many.
  EXPECT_GT(client.pooled(), 0u);
  EXPECT_LE(client.pooled(), kMaxPooledTransfers);
}

// A burst larger than the pool: every call still answered, and only the pool's worth of easy
// handles kept afterwards (an API silent for a whole timeout piles up timeout x rate calls).
TEST_F(AsyncClientTest, a_burst_beyond_the_pool_keeps_only_the_pools_worth_of_handles) {
  ApiServer server;
  AsyncClient client(loop_, Cfg(HttpBase(server)), 4);
  const size_t burst = kMaxPooledTransfers + 100;
  size_t answered = 0, ok = 0;
  for (size_t i = 0; i < burst; ++i)
    client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 10s,
                 [&](HttpResponse r) {
                   ++answered;
                   ok += r.transport_ok ? 1 : 0;
                 });
  RunUntil(answered, burst);
  EXPECT_EQ(ok, burst);
  EXPECT_EQ(client.pooled(), kMaxPooledTransfers);
  size_t again = 0;
  client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 5s,
               [&](HttpResponse r) { again += r.transport_ok ? 1 : 0; });
  RunUntil(again, 1u);
  EXPECT_EQ(again, 1u);
}

TEST_F(AsyncClientTest, a_call_waiting_for_a_busy_connection_still_ends_at_its_timeout) {
  ApiServer server;
  server.set_slow();
  AsyncClient client(loop_, Cfg(HttpBase(server)), 1);
  size_t answered = 0;
  std::vector<HttpResponse> got;
  const auto start = Clock::now();
  // The first holds the one connection past the second's timeout.
  for (auto timeout : {600ms, 300ms})
    client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, timeout,
                 [&](HttpResponse r) {
                   got.push_back(std::move(r));
                   ++answered;
                 });
  RunUntil(answered, 2);
  const auto elapsed = Clock::now() - start;
  ASSERT_EQ(got.size(), 2u);
  for (const auto& r : got) {
    EXPECT_FALSE(r.transport_ok);
    EXPECT_NE(r.transport_error.find("timed out"), std::string::npos) << r.transport_error;
    ExpectNoToken(r);
  }
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_EQ(server.seen().size(), 1u);  // the second never got a connection
}

TEST_F(AsyncClientTest, calls_in_flight_end_when_the_client_goes) {
  ApiServer server;
  server.set_slow();
  size_t answered = 0;
  std::string error;
  {
    AsyncClient client(loop_, Cfg(HttpBase(server)), 2);
    client.Probe(config::ProbeCallOf(Env(ProbeKind::kApiDomainIp)), kToken, 5s,
                 [&](HttpResponse r) {
                   error = r.transport_error;
                   ++answered;
                 });
    for (int i = 0; i < 5; ++i) loop_.RunOnce(20ms);
  }
  EXPECT_EQ(answered, 1u);
  EXPECT_NE(error.find("client closed"), std::string::npos) << error;
}

}  // namespace
}  // namespace wxcanary::wechat
