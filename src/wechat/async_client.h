#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <unordered_set>
#include <vector>

#include "common/secret.h"
#include "config/config.h"
#include "io/event_loop.h"
#include "wechat/classify.h"
#include "wechat/probe_kinds.h"

namespace wxcanary::wechat {

class CurlRequest;

/// The most easy handles AsyncClient keeps pooled once their calls end. The pool only needs as
/// many as are in flight at once (a handful at 1,000 probes/s); after a burst (an API that
/// answers nothing for the whole timeout holds timeout x rate calls in flight: 5,000 at 10k
/// targets), the rest are freed instead of staying (~13 KB each with curl's own state).
inline constexpr size_t kMaxPooledTransfers = 256;

/// The probe engine's HTTPS client: libcurl's multi interface on an io::EventLoop
/// (curl_multi_socket_action on the loop's epoll, curl's timer on the loop's timers), many
/// canary calls in flight at once over at most `max_connections` keep-alive connections to the
/// API (HTTP/1.1, no pipelining; calls beyond them wait in curl for a free one). Easy handles
/// are pooled and reused, as Client reuses its one. Every call ends within its timeout,
/// including the time it waited for a connection. Loop thread only.
class AsyncClient {
 public:
  using Callback = std::function<void(HttpResponse)>;

  /// `loop` must outlive it.
  AsyncClient(io::EventLoop& loop, const config::WeChat& cfg, int max_connections);
  /// Calls in flight end (with a transport error) before it returns.
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  /// Sends the canary call of call.kind with `token`, giving up after `timeout`. `done` runs
  /// once on the loop's thread, possibly before Probe returns. `call`'s views need only last
  /// until Probe returns; `token` must outlive `done`.
  void Probe(const ProbeCall& call, const Secret& token, std::chrono::milliseconds timeout,
             Callback done);

  /// The next calls use `cfg` and the new limit; calls in flight finish as they started.
  void Reconfigure(const config::WeChat& cfg, int max_connections);

  /// Easy handles pooled for the next calls (at most kMaxPooledTransfers).
  [[nodiscard]] size_t pooled() const { return idle_.size(); }

  /// Calls sent and not answered yet.
  [[nodiscard]] size_t in_flight() const { return live_.size(); }

 private:
  struct Transfer;
  static int OnSocket(void* easy, int fd, int what, void* userp, void* socketp);
  static int OnTimer(void* multi, long timeout_ms, void* userp);
  void Act(int fd, int flags);
  void Drain();
  void End(Transfer* t, HttpResponse response);

  io::EventLoop& loop_;
  config::WeChat cfg_;
  uint64_t generation_ = 1;  // bumped by Reconfigure: pooled handles of older ones are dropped
  void* multi_ = nullptr;    // CURLM*
  io::EventLoop::TimerId curl_timer_ = 0;
  std::vector<std::unique_ptr<Transfer>> idle_;  // pooled, ready for the next call
  std::unordered_set<Transfer*> live_;           // added to the multi, owned here until End()
};

}  // namespace wxcanary::wechat
