#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/process.h"

namespace wxcanary::testing {

/// What systemd would be for a Type=notify service: a unix datagram socket in a temp dir that
/// records every message with its arrival time and the sender's pid (SCM_CREDENTIALS).
/// Thread-safe; the optional hook runs on the reader thread.
class NotifySocket {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Message {
    TimePoint at;
    pid_t pid = -1;
    std::string text;  // newline-separated VAR=VALUE lines, as sent
    /// True when one line is exactly `assignment` ("READY=1").
    [[nodiscard]] bool Has(std::string_view assignment) const;
    /// The value of VAR, when a line assigns it.
    [[nodiscard]] std::optional<std::string> Get(std::string_view var) const;
  };

  /// `hook`, when set, sees each message on the reader thread before it is recorded (and
  /// before any waiter wakes), so it can act while the sender has barely moved on.
  explicit NotifySocket(std::function<void(const Message&)> hook = {});
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  /// "NOTIFY_SOCKET=/tmp/.../notify", for the daemon's environment.
  [[nodiscard]] std::string Env() const { return "NOTIFY_SOCKET=" + path_.string(); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  /// Everything received so far, in arrival order.
  [[nodiscard]] std::vector<Message> Messages() const;
  /// Waits until a message at index >= from has `assignment`; returns its index.
  std::optional<size_t> WaitFor(std::string_view assignment, size_t from,
                                std::chrono::milliseconds timeout);
  /// Messages with `assignment` that arrived in [begin, end).
  [[nodiscard]] std::vector<Message> Between(std::string_view assignment, TimePoint begin,
                                             TimePoint end) const;

 private:
  void ReadLoop();

  TempDir dir_;
  std::filesystem::path path_;
  int fd_ = -1;
  std::function<void(const Message&)> hook_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
  bool stop_ = false;
  std::thread reader_;
};

}  // namespace wxcanary::testing
