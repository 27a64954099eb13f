#include "daemon/web_server.h"

#include <httplib.h>

#include <stdexcept>

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

}  // namespace

WebServer::WebServer(std::function<std::string()> metrics, std::function<bool()> healthy)
    : server_(std::make_unique<httplib::Server>()) {
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kLandingPage, "text/html; charset=utf-8");
  });
  server_->Get("/metrics", [metrics = std::move(metrics)](const httplib::Request&,
                                                          httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
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
