#include "daemon/web_server.h"

#include <httplib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
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
    SSL_CTX_set_options(&ctx,
                        SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    // TLS 1.2 is exporter-toolkit's default floor too.
    int floor = web.min_version == "TLS13" ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(&ctx, floor) != 1) {
      problem = "tls_server_config.min_version: " + OpenSslError();
      return false;
    }
    if (SSL_CTX_use_certificate_chain_file(&ctx, web.cert_file.c_str()) != 1) {
      problem = "tls_server_config.cert_file: \"" + web.cert_file +
                "\" is not a usable PEM certificate (" + OpenSslError() + ")";
      return false;
    }
    if (SSL_CTX_use_PrivateKey_file(&ctx, web.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      // OpenSSL 3 checks the pair here already; say so plainly rather than "key values mismatch".
      if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        problem = "tls_server_config.key_file: \"" + web.key_file +
                  "\" does not match cert_file \"" + web.cert_file + "\"";
        return false;
      }
      problem = "tls_server_config.key_file: \"" + web.key_file +
                "\" is not a usable PEM private key (" + OpenSslError() + ")";
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

// httplib's default pool has 8 threads, and a connection holds its thread while it idles in
// keep-alive or dribbles its headers (5 s per read): 8 idle sockets used to stall /-/healthy for
// 5 s and 24 a scrape for 14 s. Here every connection gets a thread of its own as it arrives, up
// to kMaxConnectionThreads (a sleeping thread costs a few KiB of RSS); only past that do new
// connections wait for a free one. Threads idle for a while exit, down to a small core.
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(size_t max_threads) : max_threads_(max_threads) {}
  ~ConnectionThreads() override { shutdown(); }
  ConnectionThreads(const ConnectionThreads&) = delete;
  ConnectionThreads& operator=(const ConnectionThreads&) = delete;

  void enqueue(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && live_ < max_threads_) {
      ++live_;
      std::thread([this] { Work(); }).detach();
    } else {
      work_cv_.notify_one();
    }
  }

  void shutdown() override {
    std::unique_lock lock(mu_);
    stopping_ = true;
    work_cv_.notify_all();
    done_cv_.wait(lock, [this] { return live_ == 0; });
  }

 private:
  static constexpr size_t kCoreThreads = 4;
  static constexpr auto kIdleExit = std::chrono::seconds(30);

  void Work() {
    std::unique_lock lock(mu_);
    while (true) {
      ++idle_;
      const bool woke =
          work_cv_.wait_for(lock, kIdleExit, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty() && (stopping_ || (!woke && live_ > kCoreThreads))) break;
      if (jobs_.empty()) continue;
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();  // serves one connection until it closes (httplib closes idle ones after 5 s)
      lock.lock();
    }
    --live_;
    done_cv_.notify_all();  // under the lock: shutdown() cannot return before we let go of it
  }

  const size_t max_threads_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<std::function<void()>> jobs_;
  size_t live_ = 0;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace

WebServer::WebServer(std::function<std::vector<std::string>()> metrics,
                     std::function<bool()> healthy, const WebConfig& web)
    : auth_(web.auth() ? std::make_unique<BasicAuth>(web.basic_auth_users) : nullptr),
      server_(web.tls() ? MakeTlsServer(web) : std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new ConnectionThreads(kMaxConnectionThreads); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which let a second wxcanary bind the
  // same port without an error and take half of the scrapes (every target probed twice).
  server_->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (auth_) {
    // Every path, health included: what is reachable without credentials tells an attacker
    // what runs here, and Prometheus/systemd checks can carry credentials anyway.
    server_->set_pre_routing_handler(
        [auth = auth_.get()](const httplib::Request& req, httplib::Response& res) {
          if (auth->CheckHeader(req.get_header_value("Authorization")))
            return httplib::Server::HandlerResponse::Unhandled;
          res.status = 401;
          res.set_header("WWW-Authenticate", "Basic realm=\"wxcanary\", charset=\"UTF-8\"");
          res.set_content("Unauthorized\n", "text/plain");
          return httplib::Server::HandlerResponse::Handled;
        });
  }
  server_->Get(
      "/metrics", [metrics = std::move(metrics)](const httplib::Request&, httplib::Response& res) {
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

void WebServer::Route(const std::string& path, PageHandler handler) {
  server_->Get(path,
               [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
                 Page page = handler(req.params);
                 res.status = page.status;
                 res.set_content(std::move(page.body), page.content_type);
               });
}

int WebServer::Start(const std::string& host, int port) {
  // Registered last: httplib takes the first match, so a Route("/") made before wins.
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kLandingPage, "text/html; charset=utf-8");
  });
  std::string bind_host = host.empty() ? "0.0.0.0" : host;
  errno = 0;
  int bound = port == 0 ? server_->bind_to_any_port(bind_host)
                        : (server_->bind_to_port(bind_host, port) ? port : -1);
  if (bound <= 0) {
    const int err = errno;
    throw std::runtime_error("cannot listen on \"" + host + ":" + std::to_string(port) +
                             "\": " + (err != 0 ? std::strerror(err) : "address not available"));
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
