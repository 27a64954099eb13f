#pragma once

namespace wxcanary::testing {

/// A loopback TCP port that accepts connections (the kernel's backlog does) and never answers:
/// a hung Redis, or a firewall that drops replies (an API blackhole). Closed when destroyed.
/// Not thread-safe.
class SilentListener {
 public:
  /// Throws std::runtime_error when it cannot listen.
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  [[nodiscard]] int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

}  // namespace wxcanary::testing
