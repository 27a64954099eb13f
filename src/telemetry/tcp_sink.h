#pragma once

#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>

#include "common/clock.h"

namespace wxcanary::telemetry {

/// Owns one file descriptor, closed on destruction or reset. Not synchronized.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// An spdlog sink speaking Logstash's json_lines codec: one formatted line per event over TCP.
/// Connects lazily; an event it cannot hand to the kernel within a short send timeout is dropped
/// and reported through `on_drop` (never retried, never queued beyond one partial line), and a
/// lost connection is re-established with exponential backoff (100 ms .. 5 s). Every deadline,
/// backoff and stall is measured on the injected clock (the socket waits are poll()s bounded by
/// them), so a test's FakeClock decides when a reconnect is due. Used from one
/// spdlog worker thread; BeginShutdown() may be called from any thread.
///
/// The reader only ever receives whole lines: a line whose first byte went out is finished on the
/// same connection before anything else (json_lines turns a fragment left at a connection's end
/// into a _jsonparsefailure event). A stalled connection is replaced only at a line boundary; with
/// a line half sent it is kept, new events are dropped, and the kernel's user timeout ends it if
/// the peer is really gone. At destruction a line that cannot be finished in time is discarded
/// with a reset (SO_LINGER 0), so its unsent part never reaches the reader.
class TcpSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  struct Options {
    std::string host;
    int port = 0;
    std::chrono::milliseconds connect_timeout{250};
    std::chrono::milliseconds send_timeout{100};
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    /// A connection that took no byte this long while events keep coming is replaced (at a line
    /// boundary only; see above).
    std::chrono::milliseconds stall_reset{10'000};
    /// TCP_USER_TIMEOUT: unacknowledged data this old means the peer is gone (not just slow).
    std::chrono::milliseconds user_timeout{30'000};
  };

  /// `clock` must outlive the sink.
  TcpSink(Options options, std::function<void(uint64_t)> on_drop, Clock& clock);
  ~TcpSink() override;
  TcpSink(const TcpSink&) = delete;
  TcpSink& operator=(const TcpSink&) = delete;

  /// From now on never wait past `deadline` (queued events are written only if the socket takes
  /// them at once), so that draining the queue at exit takes bounded time.
  void BeginShutdown(MonotonicTime deadline);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  using SteadyTime = MonotonicTime;

  bool EnsureConnected(SteadyTime now);
  bool PeerClosed() const;
  /// Writes data_[0..] until done or `until`; returns false on a broken connection.
  bool WriteSome(std::string& data, SteadyTime until);
  void Disconnect(SteadyTime now);
  /// Closes with RST so that the kernel discards what it still holds of a half-sent line.
  void Abort();
  SteadyTime WaitLimit(SteadyTime now, std::chrono::milliseconds budget) const;

  Options options_;
  std::function<void(uint64_t)> on_drop_;
  Clock& clock_;
  UniqueFd fd_;
  std::string pending_;         // the unsent tail of a line that was partly written
  SteadyTime last_progress_{};  // last time the peer took any byte (or connect)
  SteadyTime next_attempt_{};
  std::chrono::milliseconds backoff_;
  std::atomic<int64_t> shutdown_deadline_ns_{0};  // 0: not shutting down
};

}  // namespace wxcanary::telemetry
