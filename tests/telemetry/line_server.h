#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wxcanary::testing {

/// A plain TCP listener on 127.0.0.1 standing in for Logstash: collects newline-terminated
/// lines, or (stalled) accepts connections and does not read them until SetStalled(false).
/// Bytes left after a connection's last newline when it ends (EOF or reset) are kept apart as
/// fragments: what Logstash's json_lines would turn into a _jsonparsefailure event. Thread-safe.
class LineServer {
 public:
  struct Options {
    int port = 0;          // 0: any free port
    bool stalled = false;  // accept, never read
    int rcvbuf = 0;        // SO_RCVBUF on the listener (inherited by accepted sockets)
  };
  explicit LineServer(Options options);
  ~LineServer();
  LineServer(const LineServer&) = delete;
  LineServer& operator=(const LineServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  std::vector<std::string> lines() const;
  /// Tail bytes without a newline that connections ended with, one entry per such connection.
  std::vector<std::string> fragments() const;
  /// Connections accepted so far.
  int connections() const { return accepted_.load(); }
  void SetStalled(bool stalled) { stalled_.store(stalled); }
  /// Lines received so far, or waits (polling, up to timeout) until `pred` holds for them.
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (pred(lines())) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
  }
  /// Closes the listener and every connection (a peer that went away).
  void Stop();

 private:
  void Run();

  Options options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<int> accepted_{0};
  std::vector<std::string> fragments_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

}  // namespace wxcanary::testing
