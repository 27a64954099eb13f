#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wxcanary::testing {

/// A plain TCP listener on 127.0.0.1 standing in for Logstash: collects newline-terminated
/// lines, or (stalled) accepts connections and never reads them. Thread-safe accessors.
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
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

}  // namespace wxcanary::testing
