#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace wxcanary::daemon {

/// The daemon's HTTP endpoint: `/` (landing page), `/metrics` (Prometheus text format),
/// `/-/healthy` and `/-/ready`. Serves from its own thread pool; thread-safe.
class WebServer {
 public:
  /// `metrics` renders the exposition text; `healthy` decides /-/healthy's answer.
  WebServer(std::function<std::string()> metrics, std::function<bool()> healthy);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  /// Binds host:port (host "" = all interfaces, port 0 = any) and starts serving.
  /// Returns the bound port; throws std::runtime_error naming the address when it cannot bind.
  int Start(const std::string& host, int port);
  void Stop();

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace wxcanary::daemon
