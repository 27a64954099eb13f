// Security end to end, through the wxcanary binary on loopback: HTTPS and basic auth on the
// metrics port, certificate verification towards WeChat (wxsim serving TLS), secrets absent
// from /proc, output and metrics, and Redis ACL (username + password) auth.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/fingerprint.h"
#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/redis_server.h"
#include "support/wxsim.h"
#include "tls_files.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

constexpr const char* kApp = WxSim::kAppId;
constexpr const char* kEnv = "prod";

std::string Key() { return std::string("ACCESS_TOKEN_CACHE:") + kApp; }

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::trunc) << text;
}

// A one-target config; `redis_fields` and `app_fields` go under its Redis entry and its app.
ConfigYaml OneTarget(const std::string& base_url, const RedisServer& redis,
                     const ConfigYaml::Fields& redis_fields = {},
                     const ConfigYaml::Fields& app_fields = {}) {
  ConfigYaml::Fields r = {{"connect_timeout", "250ms"}, {"read_timeout", "250ms"}};
  r.insert(r.end(), redis_fields.begin(), redis_fields.end());
  ConfigYaml c(base_url);
  c.Default("interval", "300ms").Default("timeout", "250ms").Redis("main", redis.address(), r);
  c.App(kApp, app_fields).Env(kEnv, "main");
  return c;
}

double Outcome(const Scrape& s, const std::string& outcome) {
  return s
      .Value("wxcanary_probes_total", {{"app_id", kApp}, {"app_env", kEnv}, {"outcome", outcome}})
      .value_or(0);
}

// The daemon behind TLS and/or auth, which the plain-HTTP Daemon fixture cannot reach.
class SecureDaemon {
 public:
  SecureDaemon(const std::string& config_yaml, const std::string& web_yaml) : port_(FreePort()) {
    WriteFile(dir_.path() / "wxcanary.yml", config_yaml);
    WriteFile(dir_.path() / "web.yml", web_yaml);
    proc_ = std::make_unique<Subprocess>(
        std::vector<std::string>{BuiltBinary("wxcanary").string(),
                                 "--config.file=" + (dir_.path() / "wxcanary.yml").string(),
                                 "--web.config.file=" + (dir_.path() / "web.yml").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
        dir_.path() / "out");
  }
  ~SecureDaemon() { proc_->Stop(5s); }

  int port() const { return port_; }
  Subprocess& process() { return *proc_; }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Subprocess> proc_;
};

// An HTTPS client that trusts only `ca`.
std::unique_ptr<httplib::SSLClient> HttpsClient(int port, const std::filesystem::path& ca) {
  auto cli = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  cli->set_ca_cert_path(ca.c_str());
  cli->enable_server_certificate_verification(true);
  cli->set_connection_timeout(2s);
  cli->set_read_timeout(5s);
  return cli;
}

// Polls until the port answers an HTTP request with any status (startup done); false on timeout.
bool WaitForAnswer(const std::function<bool()>& answered, Subprocess& proc) {
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline && proc.running()) {
    if (answered()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class WebSecurity : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = MakeSelfSignedCert(dir_.path(), "web");
    other_ = MakeSelfSignedCert(dir_.path(), "other");
  }
  std::string Config() { return OneTarget(sim_.base_url(), redis_); }
  std::string Tls() {
    return "tls_server_config:\n  cert_file: " + cert_.cert.string() +
           "\n  key_file: " + cert_.key.string() + "\n";
  }

  TempDir dir_;
  CertFiles cert_, other_;
  RedisServer redis_;
  WxSim sim_;
};

TEST_F(WebSecurity, serves_metrics_over_https_and_refuses_plain_http_and_unknown_cas) {
  SecureDaemon d(Config(), Tls());
  auto https = HttpsClient(d.port(), cert_.cert);
  ASSERT_TRUE(
      WaitForAnswer([&] { return static_cast<bool>(https->Get("/-/healthy")); }, d.process()))
      << d.process().Output();
  auto res = https->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("wxcanary_build_info{"), std::string::npos);

  httplib::Client plain("127.0.0.1", d.port());
  plain.set_connection_timeout(2s);
  plain.set_read_timeout(2s);
  auto plain_res = plain.Get("/metrics");
  EXPECT_FALSE(plain_res) << "plain HTTP got status " << plain_res->status;

  // A client that trusts another CA refuses the server: the cert really is the one configured.
  auto wrong_ca = HttpsClient(d.port(), other_.cert);
  auto wrong = wrong_ca->Get("/metrics");
  EXPECT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), httplib::Error::SSLServerVerification);
}

TEST_F(WebSecurity, min_version_tls13_refuses_a_tls12_client) {
  SecureDaemon d(Config(), Tls() + "  min_version: TLS13\n");
  auto https = HttpsClient(d.port(), cert_.cert);
  ASSERT_TRUE(
      WaitForAnswer([&] { return static_cast<bool>(https->Get("/-/healthy")); }, d.process()))
      << d.process().Output();
  auto handshake = [&](const char* version) {
    std::string cmd = "openssl s_client -connect 127.0.0.1:" + std::to_string(d.port()) + " " +
                      version + " -CAfile '" + cert_.cert.string() + "' </dev/null >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  };
  EXPECT_TRUE(handshake("-tls1_3"));
  EXPECT_FALSE(handshake("-tls1_2"));
}

TEST_F(WebSecurity, basic_auth_answers_401_with_challenge_unless_credentials_are_right) {
  SecureDaemon d(Config(), Tls() + "basic_auth_users:\n  prometheus: " + BcryptHash("scrape-pw") +
                               "\n  other: " + BcryptHash("other-pw") + "\n");
  auto https = HttpsClient(d.port(), cert_.cert);
  ASSERT_TRUE(
      WaitForAnswer([&] { return static_cast<bool>(https->Get("/-/healthy")); }, d.process()))
      << d.process().Output();
  struct Case {
    std::string user, password;  // user "" = no Authorization header
    int status;
  };
  const Case cases[] = {
      {"", "", 401},
      {"prometheus", "wrong", 401},
      {"prometheus", "", 401},
      {"nobody", "scrape-pw", 401},
      {"other", "scrape-pw", 401},
      {"prometheus", "scrape-pw", 200},
      {"other", "other-pw", 200},
  };
  for (const char* path : {"/metrics", "/", "/-/healthy"}) {
    for (const auto& c : cases) {
      auto cli = HttpsClient(d.port(), cert_.cert);
      if (!c.user.empty()) cli->set_basic_auth(c.user.c_str(), c.password.c_str());
      auto res = cli->Get(path);
      ASSERT_TRUE(res) << path << " " << c.user;
      EXPECT_EQ(res->status, c.status) << path << " as " << c.user << ":" << c.password;
      if (c.status == 401) {
        EXPECT_EQ(res->get_header_value("WWW-Authenticate"),
                  "Basic realm=\"wxcanary\", charset=\"UTF-8\"");
        EXPECT_EQ(res->body.find("wxcanary_"), std::string::npos) << "metrics leaked to " << c.user;
      } else if (std::string(path) == "/metrics") {
        EXPECT_NE(res->body.find("wxcanary_build_info{"), std::string::npos);
      }
    }
  }
}

// The status page and its JSON twin name every target: they are exactly as closed as /metrics.
TEST_F(WebSecurity, status_page_and_targets_api_need_the_same_basic_auth_as_metrics) {
  SecureDaemon d(Config(),
                 Tls() + "basic_auth_users:\n  prometheus: " + BcryptHash("scrape-pw") + "\n");
  auto https = HttpsClient(d.port(), cert_.cert);
  ASSERT_TRUE(
      WaitForAnswer([&] { return static_cast<bool>(https->Get("/-/healthy")); }, d.process()))
      << d.process().Output();
  for (const char* path : {"/metrics", "/", "/api/v1/targets", "/api/v1/targets?app_env=prod"}) {
    for (const bool right : {false, true}) {
      for (const bool with_header : {false, true}) {
        if (right && !with_header) continue;
        auto cli = HttpsClient(d.port(), cert_.cert);
        if (with_header) cli->set_basic_auth("prometheus", right ? "scrape-pw" : "wrong-pw");
        auto res = cli->Get(path);
        ASSERT_TRUE(res) << path;
        const std::string who = !with_header ? "no credentials" : right ? "right" : "wrong";
        if (!right) {
          EXPECT_EQ(res->status, 401) << path << " with " << who;
          EXPECT_EQ(res->get_header_value("WWW-Authenticate"),
                    "Basic realm=\"wxcanary\", charset=\"UTF-8\"")
              << path;
          EXPECT_EQ(res->body.find(kApp), std::string::npos) << path << " leaked the targets";
        } else {
          EXPECT_EQ(res->status, 200) << path;
          EXPECT_NE(res->body.find(kApp), std::string::npos) << path << ": " << res->body;
        }
      }
    }
  }
}

TEST_F(WebSecurity, a_bad_web_config_stops_startup_with_one_line_naming_the_problem) {
  WriteFile(dir_.path() / "garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  struct Case {
    std::string web_yaml;
    std::string expected;  // must appear in the single stderr line
  };
  const Case cases[] = {
      {"tls_server_config:\n  cert_file: " + cert_.cert.string() + "\n  key_file: " +
           cert_.key.string() + "\n  client_auth_type: RequireAndVerifyClientCert\n",
       "key \"client_auth_type\" is not supported"},
      {"basic_auth_user: {}\n", "unknown key \"basic_auth_user\""},
      {"tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: " + cert_.key.string() +
           "\n",
       "tls_server_config.cert_file: cannot read file \"/nonexistent.crt\""},
      {"tls_server_config:\n  cert_file: " + (dir_.path() / "garbage.pem").string() +
           "\n  key_file: " + cert_.key.string() + "\n",
       "tls_server_config.cert_file: \"" + (dir_.path() / "garbage.pem").string() +
           "\" is not a usable PEM certificate"},
      {"tls_server_config:\n  cert_file: " + cert_.cert.string() +
           "\n  key_file: " + other_.key.string() + "\n",
       "does not match cert_file"},
  };
  for (const auto& c : cases) {
    SecureDaemon d(Config(), c.web_yaml);
    int status = d.process().Wait(10s);
    ASSERT_TRUE(WIFEXITED(status)) << c.web_yaml;
    EXPECT_EQ(WEXITSTATUS(status), 1) << c.web_yaml;
    std::string out = d.process().Output();
    EXPECT_NE(out.find("wxcanary: --web.config.file \""), std::string::npos) << out;
    EXPECT_NE(out.find(c.expected), std::string::npos) << out;
    size_t line = out.find("--web.config.file");
    EXPECT_EQ(out.find('\n', line), out.size() - 1) << "not one line: " << out;
  }
}

// OneTarget with a probe timeout a TLS handshake with the sanitized wxsim meets on a busy
// box: at 250 ms, a fresh-clone CI run sharing 2 cores with other builds timed out instead
// of reaching the certificate check.
std::string TlsConfig(const std::string& base_url, const RedisServer& redis,
                      const std::string& ca_file = "") {
  ConfigYaml c = OneTarget(base_url, redis);
  c.Default("interval", "1s").Default("timeout", "1s");
  if (!ca_file.empty()) c.WeChat("ca_file", ca_file);
  return c;
}

// True once a probe event's error names the certificate (polls the log up to 20 s).
bool WaitForCertificateError(const Daemon& d) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : d.LogEvents())
      if (e.value("event.action", "") == "probe" &&
          e.value("error.message", "").find("certificate") != std::string::npos)
        return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// The WeChat client verifies certificates always; ca_file adds trust, nothing turns it off.
TEST(WeChatTls, refuses_a_self_signed_wxsim_without_ca_file_and_accepts_it_with_ca_file) {
  TempDir dir;
  CertFiles cert = MakeSelfSignedCert(dir.path(), "wxsim");
  WxSim sim({"--tls-cert", cert.cert.string(), "--tls-key", cert.key.string()});
  ASSERT_EQ(sim.base_url().rfind("https://", 0), 0u);
  RedisServer redis;
  redis.Cli({"SET", Key(), sim.FetchToken()});

  {
    Daemon d(TlsConfig(sim.base_url(), redis));
    EXPECT_TRUE(WaitForCertificateError(d)) << d.Output();
    EXPECT_EQ(Outcome(d.ScrapeMetrics(), "ok"), 0);
  }
  {
    Daemon d(TlsConfig(sim.base_url(), redis, cert.cert.string()));
    EXPECT_TRUE(d.WaitFor([](const Scrape& s) { return Outcome(s, "ok") >= 2; })) << d.Output();
    EXPECT_EQ(Outcome(d.ScrapeMetrics(), "transport_error"), 0);
  }
}

TEST(WeChatTls, a_ca_file_for_another_certificate_does_not_help) {
  TempDir dir;
  CertFiles cert = MakeSelfSignedCert(dir.path(), "wxsim");
  CertFiles other = MakeSelfSignedCert(dir.path(), "other");
  WxSim sim({"--tls-cert", cert.cert.string(), "--tls-key", cert.key.string()});
  RedisServer redis;
  redis.Cli({"SET", Key(), sim.FetchToken()});
  Daemon d(TlsConfig(sim.base_url(), redis, other.cert.string()));
  EXPECT_TRUE(WaitForCertificateError(d)) << d.Output();
  EXPECT_EQ(Outcome(d.ScrapeMetrics(), "ok"), 0);
}

// Everything a secret could leak through, for one running daemon.
std::string Exposed(Daemon& d) {
  pid_t pid = d.process().pid();
  std::string all = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  all += "\n" + ReadFile("/proc/" + std::to_string(pid) + "/environ");
  all += "\n" + d.Output();
  all += "\n" + d.Get("/metrics").second;
  all += "\n" + d.Get("/").second;
  return all;
}

TEST(Secrets, never_appear_in_cmdline_environ_output_metrics_or_errors) {
  const std::string password = "redis-pw-Zq8vL2";
  const std::string wrong_password = "wrong-pw-Kx93Ta";
  RedisServer redis({"--requirepass", password});
  WxSim sim;
  const std::string token = sim.FetchToken();
  const std::string secret = WxSim::kSecret;
  redis.Cli({"--no-auth-warning", "-a", password, "SET", Key(), token});
  TempDir dir;
  WriteFile(dir.path() / "redis.pw", password + "\n");
  WriteFile(dir.path() / "wrong.pw", wrong_password + "\n");
  WriteFile(dir.path() / "app.secret", secret + "\n");
  const ConfigYaml::Fields app = {{"secret_file", (dir.path() / "app.secret").string()}};

  {
    Daemon d(OneTarget(sim.base_url(), redis,
                       {{"password_file", (dir.path() / "redis.pw").string()}}, app));
    ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcome(s, "ok") >= 3; })) << d.Output();
    std::string exposed = Exposed(d);
    EXPECT_EQ(exposed.find(password), std::string::npos) << "Redis password leaked";
    EXPECT_EQ(exposed.find(secret), std::string::npos) << "AppSecret leaked";
    EXPECT_EQ(exposed.find(token), std::string::npos) << "token leaked";
    // Not vacuous: the token's fingerprint is where the token would otherwise be.
    EXPECT_NE(exposed.find(Fingerprint(token)), std::string::npos);
  }
  {
    Daemon d(OneTarget(sim.base_url(), redis,
                       {{"password_file", (dir.path() / "wrong.pw").string()}}, app));
    ASSERT_TRUE(d.WaitFor([](const Scrape& s) { return Outcome(s, "redis_error") >= 2; }))
        << d.Output();
    bool saw_error = false;
    for (const auto& e : d.LogEvents())
      if (e.value("wxcanary.probe.outcome", "") == "redis_error" && e.contains("error.message"))
        saw_error = true;
    EXPECT_TRUE(saw_error) << d.Output();
    std::string exposed = Exposed(d);
    EXPECT_EQ(exposed.find(wrong_password), std::string::npos) << "wrong Redis password leaked";
    EXPECT_EQ(exposed.find(password), std::string::npos);
    EXPECT_EQ(exposed.find(secret), std::string::npos);
    EXPECT_EQ(exposed.find(token), std::string::npos);
  }
}

TEST(RedisAcl, authenticates_with_username_and_password) {
  // The default user's password differs, so AUTH without the username would fail.
  RedisServer redis({"--requirepass", "default-pw-1"});
  auto admin = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--no-auth-warning", "-a", "default-pw-1"});
    return redis.Cli(args);
  };
  ASSERT_EQ(admin({"ACL", "SETUSER", "canary", "on", ">canary-pw-7", "~ACCESS_TOKEN_CACHE:*",
                   "+@read", "+@connection"}),
            "OK");
  WxSim sim;
  admin({"SET", Key(), sim.FetchToken()});
  TempDir dir;
  WriteFile(dir.path() / "good.pw", "canary-pw-7\n");
  WriteFile(dir.path() / "bad.pw", "default-pw-1\n");
  auto redis_fields = [&](const std::string& file) {
    return ConfigYaml::Fields{{"username", "canary"},
                              {"password_file", (dir.path() / file).string()}};
  };
  {
    Daemon d(OneTarget(sim.base_url(), redis, redis_fields("good.pw")));
    EXPECT_TRUE(d.WaitFor([](const Scrape& s) { return Outcome(s, "ok") >= 2; })) << d.Output();
    auto s = d.ScrapeMetrics();
    EXPECT_EQ(s.Value("wxcanary_redis_up", {{"redis", "main"}}), 1);
    EXPECT_EQ(Outcome(s, "redis_error"), 0);
  }
  {
    // Right password for another user: refused, so the username really is sent.
    Daemon d(OneTarget(sim.base_url(), redis, redis_fields("bad.pw")));
    EXPECT_TRUE(d.WaitFor([](const Scrape& s) { return Outcome(s, "redis_error") >= 2; }))
        << d.Output();
    EXPECT_EQ(Outcome(d.ScrapeMetrics(), "ok"), 0);
  }
}

}  // namespace
}  // namespace wxcanary::testing
