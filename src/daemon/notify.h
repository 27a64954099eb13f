#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace wxcanary::daemon {

/// Talks to systemd's notify socket (Type=notify). Every call is a no-op when NOTIFY_SOCKET is
/// unset, so the daemon behaves the same outside systemd. Thread-safe.
class Notifier {
 public:
  void Ready() const;
  void Reloading() const;
  void Stopping() const;
  void Watchdog() const;
  void Status(const std::string& text) const;
  /// The interval systemd expects pings at (WatchdogSec), when it asked for them.
  [[nodiscard]] std::optional<std::chrono::microseconds> WatchdogInterval() const;
};

}  // namespace wxcanary::daemon
