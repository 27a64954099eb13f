// The web server in process, against real sockets on loopback: what a client that holds
// connections open (idle, or sending its request a byte at a time) does to real requests, and
// what a second server on the same port gets.
#include "daemon/web_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace wxcanary::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One request on a fresh connection; returns the whole answer (the server closes after it).
// Empty if nothing complete arrived within `timeout`.
std::string Get(int port, const std::string& path, std::chrono::milliseconds timeout) {
  int fd = Connect(port);
  if (fd < 0) return {};
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (::poll(&p, 1, std::max(left, 1)) <= 0) break;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(fd);
      return out;  // EOF: complete
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return {};
}

struct Served {
  std::unique_ptr<WebServer> server;
  int port = 0;
};

Served Serve() {
  Served s;
  s.server = std::make_unique<WebServer>(
      [] { return std::vector<std::string>{std::string(200'000, '#') + "\nwxcanary_up 1\n"}; },
      [] { return true; });
  s.port = s.server->Start("127.0.0.1", 0);
  return s;
}

// Issue 21.3: 100 idle connections and 20 slowloris clients (a request line, then one header
// byte every 300 ms, never finishing) must not delay a scrape or a health check past 1 s. With
// httplib's 8-thread pool the first 8 sockets took every thread for 5 s each.
TEST(WebServer, idle_and_slowloris_connections_do_not_delay_scrapes_or_health_checks) {
  Served s = Serve();
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) {
    int fd = Connect(s.port);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    int fd = Connect(s.port);
    ASSERT_GE(fd, 0);
    const std::string start = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    ASSERT_GT(::send(fd, start.data(), start.size(), MSG_NOSIGNAL), 0);
    slow.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread dribble([&] {
    while (!stop) {
      for (int fd : slow) (void)::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(300ms);
    }
  });
  std::this_thread::sleep_for(200ms);  // every socket accepted and parked

  const auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    std::string metrics = Get(s.port, "/metrics", 1s);
    EXPECT_NE(metrics.find("wxcanary_up 1"), std::string::npos)
        << "scrape " << i << " did not answer within 1 s";
    std::string health = Get(s.port, "/-/healthy", 1s);
    EXPECT_NE(health.find("Healthy"), std::string::npos)
        << "health check " << i << " did not answer within 1 s";
    std::cout << "scrape + health check " << i << " with 120 parked connections: "
              << std::chrono::duration<double, std::milli>(Clock::now() - start).count() << " ms\n";
  }
  EXPECT_LT(Clock::now() - t0, 5s);
  stop = true;
  dribble.join();
  for (int fd : idle) ::close(fd);
  for (int fd : slow) ::close(fd);
}

// Issue 17.1: a second server on a port in use fails with the address and the reason, instead
// of sharing the port through SO_REUSEPORT and taking half of the scrapes.
TEST(WebServer, a_second_server_on_a_port_in_use_fails_naming_the_address) {
  Served first = Serve();
  WebServer second([] { return std::vector<std::string>{"second\n"}; }, [] { return true; });
  try {
    second.Start("127.0.0.1", first.port);
    FAIL() << "the second server bound port " << first.port << " too";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on \"127.0.0.1:" + std::to_string(first.port) +
                                         "\": Address already in use");
  }
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(Get(first.port, "/metrics", 2s).find("second"), std::string::npos);
}

}  // namespace
}  // namespace wxcanary::daemon
