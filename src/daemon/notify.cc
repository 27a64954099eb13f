#include "daemon/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

namespace wxcanary::daemon {

void Notifier::Ready() const { sd_notify(0, "READY=1\nSTATUS=probing"); }

void Notifier::Reloading() const {
  // MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reload; older ones ignore it.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                            static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

void Notifier::Stopping() const { sd_notify(0, "STOPPING=1"); }

void Notifier::Watchdog() const { sd_notify(0, "WATCHDOG=1"); }

void Notifier::Status(const std::string& text) const { sd_notifyf(0, "STATUS=%s", text.c_str()); }

std::optional<std::chrono::microseconds> Notifier::WatchdogInterval() const {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds{usec};
  return std::nullopt;
}

}  // namespace wxcanary::daemon
