#include "daemon/web_server.h"

#include <httplib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <stdexcept>

#include "common/memory.h"
#include "daemon/version.h"

namespace wxcanary::daemon {
namespace {

constexpr const char* kLandingPage = R"(<!DOCTYPE html>
<html><head><title>wxcanary</title></head>
<body><h1>wxcanary</h1>
<p>Canary probes for cached WeChat access tokens.</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li></ul>
</body></html>
)";

// The newest OpenSSL error, for a one-line startup message (e.g. "key values mismatch").
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

// An HTTPS server for the web config's certificate and key. The context is set up here rather
// than by httplib's file constructor so a bad file gives a reason and min_version applies.
std::unique_ptr<httplib::Server> MakeTlsServer(const WebConfig& web) {
  std::string problem;
  auto server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    // TLS 1.2 is exporter-toolkit's default floor too.
    int floor = web.min_version == "TLS13" ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(&ctx, floor) != 1) {
      problem = "tls_server_config.min_version: " + OpenSslError();
      return false;
    }
    if (SSL_CTX_use_certificate_chain_file(&ctx, web.cert_file.c_str()) != 1) {
      problem = "tls_server_config.cert_file: \"" + web.cert_file + "\" is not a usable PEM certificate (" +
                OpenSslError() + ")";
      return false;
    }
    if (SSL_CTX_use_PrivateKey_file(&ctx, web.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      // OpenSSL 3 checks the pair here already; say so plainly rather than "key values mismatch".
      if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        problem = "tls_server_config.key_file: \"" + web.key_file + "\" does not match cert_file \"" +
                  web.cert_file + "\"";
        return false;
      }
      problem = "tls_server_config.key_file: \"" + web.key_file + "\" is not a usable PEM private key (" +
                OpenSslError() + ")";
      return false;
    }
    if (SSL_CTX_check_private_key(&ctx) != 1) {
      problem = "tls_server_config.key_file: \"" + web.key_file + "\" does not match cert_file \"" +
                web.cert_file + "\"";
      return false;
    }
    return true;
  });
  if (!server->is_valid()) throw std::runtime_error(problem.empty() ? OpenSslError() : problem);
  return server;
}

}  // namespace

WebServer::WebServer(std::function<std::vector<std::string>()> metrics, std::function<bool()> healthy,
                     const WebConfig& web)
    : auth_(web.auth() ? std::make_unique<BasicAuth>(web.basic_auth_users) : nullptr),
      server_(web.tls() ? MakeTlsServer(web) : std::make_unique<httplib::Server>()) {
  if (auth_) {
    // Every path, health included: what is reachable without credentials tells an attacker
    // what runs here, and Prometheus/systemd checks can carry credentials anyway.
    server_->set_pre_routing_handler([auth = auth_.get()](const httplib::Request& req,
                                                          httplib::Response& res) {
      if (auth->CheckHeader(req.get_header_value("Authorization")))
        return httplib::Server::HandlerResponse::Unhandled;
      res.status = 401;
      res.set_header("WWW-Authenticate", "Basic realm=\"wxcanary\", charset=\"UTF-8\"");
      res.set_content("Unauthorized\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kLandingPage, "text/html; charset=utf-8");
  });
  server_->Get("/metrics", [metrics = std::move(metrics)](const httplib::Request&,
                                                          httplib::Response& res) {
    // Sent chunk by chunk as rendered: at 10,000 targets the body is tens of MB, and one
    // string would be regrown (and held twice) on the way there.
    struct Body {
      std::vector<std::string> chunks;
      std::vector<size_t> ends;  // end offset of each chunk
    };
    auto body = std::make_shared<Body>();
    body->chunks = metrics();
    size_t total = 0;
    for (const auto& c : body->chunks) body->ends.push_back(total += c.size());
    res.set_content_provider(
        total, "text/plain; version=0.0.4; charset=utf-8",
        [body](size_t offset, size_t length, httplib::DataSink& sink) {
          const auto& ends = body->ends;
          const size_t i = static_cast<size_t>(
              std::upper_bound(ends.begin(), ends.end(), offset) - ends.begin());
          if (i == body->chunks.size()) return false;
          const std::string& chunk = body->chunks[i];
          const size_t from = offset - (i == 0 ? 0 : ends[i - 1]);
          return sink.write(chunk.data() + from, std::min(length, chunk.size() - from));
        },
        [body](bool) {
          // The chunks are heap blocks below glibc's mmap threshold: freed, they would stay in
          // RSS until reused (12 MiB more after scrapes at 10k targets). Give them back.
          body->chunks = {};
          ReturnFreedMemory();
        });
  });
  auto health = [healthy = std::move(healthy)](const httplib::Request&, httplib::Response& res) {
    bool ok = healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "Healthy\n" : "Unhealthy\n", "text/plain");
  };
  server_->Get("/-/healthy", health);
  server_->Get("/-/ready", health);
}

WebServer::~WebServer() { Stop(); }

int WebServer::Start(const std::string& host, int port) {
  std::string bind_host = host.empty() ? "0.0.0.0" : host;
  int bound = port == 0 ? server_->bind_to_any_port(bind_host)
                        : (server_->bind_to_port(bind_host, port) ? port : -1);
  if (bound <= 0) {
    throw std::runtime_error("cannot listen on \"" + host + ":" + std::to_string(port) +
                             "\": address in use or not available");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return bound;
}

void WebServer::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace wxcanary::daemon
