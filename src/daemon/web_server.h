#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/web_config.h"

namespace httplib {
class Server;
}

namespace wxcanary::daemon {

/// The daemon's HTTP endpoint: `/` (landing page), `/metrics` (Prometheus text format),
/// `/-/healthy` and `/-/ready`; over HTTPS and behind basic auth when the web config asks
/// (auth covers every path). Each connection is served by a thread of its own (up to
/// kMaxConnectionThreads at once), so idle or slow clients cannot queue ahead of a scrape or a
/// health check; thread-safe.
class WebServer {
 public:
  static constexpr size_t kMaxConnectionThreads = 512;

  /// `metrics` renders the exposition text (in chunks, sent one after another); `healthy`
  /// decides /-/healthy's answer.
  /// Throws std::runtime_error (one line naming the file) when the TLS certificate or key
  /// cannot be used.
  WebServer(std::function<std::vector<std::string>()> metrics, std::function<bool()> healthy,
            const WebConfig& web = {});
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  /// An answer of a page registered with Route().
  struct Page {
    int status = 200;
    std::string content_type;
    std::string body;
  };
  /// Builds a page from the request's query parameters.
  using PageHandler = std::function<Page(const std::multimap<std::string, std::string>& query)>;
  /// Serves GET `path` with `handler` (behind the same TLS and basic auth as every path); a
  /// route for "/" replaces the landing page. Call before Start().
  void Route(const std::string& path, PageHandler handler);

  /// Binds host:port (host "" = all interfaces, port 0 = any) and starts serving.
  /// Returns the bound port; throws std::runtime_error naming the address when it cannot bind.
  int Start(const std::string& host, int port);
  void Stop();

 private:
  std::unique_ptr<BasicAuth> auth_;  // null without basic_auth_users
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace wxcanary::daemon
