#include "telemetry/tcp_sink.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace wxcanary::telemetry {

namespace {

using std::chrono::milliseconds;

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

int RemainingMs(MonotonicTime now, MonotonicTime until) {
  if (until <= now) return 0;
  auto ms = std::chrono::ceil<milliseconds>(until - now).count();
  return static_cast<int>(ms);
}

// Non-blocking connect bounded by `until`; the socket stays non-blocking so that no later send
// can block the worker longer than we choose to poll.
UniqueFd ConnectBefore(const std::string& host, int port, milliseconds user_timeout,
                       MonotonicTime until, Clock& clock) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &raw) != 0) return {};
  AddrInfoPtr list(raw);
  for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) continue;
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    const auto user_ms = static_cast<unsigned>(user_timeout.count());
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms);
    int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) continue;
    if (rc != 0) {
      pollfd p{fd.get(), POLLOUT, 0};
      if (::poll(&p, 1, RemainingMs(clock.MonotonicNow(), until)) != 1) continue;
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) continue;
    }
    return fd;
  }
  return {};
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

TcpSink::TcpSink(Options options, std::function<void(uint64_t)> on_drop, Clock& clock)
    : options_(std::move(options)),
      on_drop_(std::move(on_drop)),
      clock_(clock),
      backoff_(options_.backoff_min) {}

TcpSink::~TcpSink() {
  if (!fd_.valid() || pending_.empty()) return;
  // Give the half-sent line its last chance, then make sure no fragment of it follows.
  WriteSome(pending_, WaitLimit(clock_.MonotonicNow(), options_.send_timeout));
  if (!pending_.empty()) {
    Abort();
    pending_.clear();
    on_drop_(1);
  }
}

void TcpSink::Abort() {
  linger hard{1, 0};
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  fd_.reset();
}

void TcpSink::BeginShutdown(MonotonicTime deadline) {
  int64_t ns = deadline.time_since_epoch().count();
  shutdown_deadline_ns_.store(ns == 0 ? 1 : ns, std::memory_order_release);
}

TcpSink::SteadyTime TcpSink::WaitLimit(SteadyTime now, milliseconds budget) const {
  SteadyTime until = now + budget;
  int64_t ns = shutdown_deadline_ns_.load(std::memory_order_acquire);
  if (ns != 0) {
    SteadyTime deadline{SteadyTime::duration{ns}};
    if (deadline < until) until = deadline;
  }
  return until;
}

void TcpSink::Disconnect(SteadyTime now) {
  fd_.reset();
  if (!pending_.empty()) {
    pending_.clear();
    on_drop_(1);  // the partly written line never completes
  }
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
}

bool TcpSink::PeerClosed() const {
  // Logstash never writes to us, so a readable socket means EOF or RST: seeing it before the
  // send avoids handing the next event to a connection the peer has already dropped.
  char byte;
  ssize_t n = ::recv(fd_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  return false;
}

bool TcpSink::EnsureConnected(SteadyTime now) {
  if (fd_.valid() && PeerClosed()) Disconnect(now);
  if (fd_.valid()) return true;
  if (now < next_attempt_) return false;
  fd_ = ConnectBefore(options_.host, options_.port, options_.user_timeout,
                      WaitLimit(now, options_.connect_timeout), clock_);
  if (!fd_.valid()) {
    SteadyTime after = clock_.MonotonicNow();
    next_attempt_ = after + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.backoff_max);
    return false;
  }
  backoff_ = options_.backoff_min;
  last_progress_ = clock_.MonotonicNow();
  return true;
}

bool TcpSink::WriteSome(std::string& data, SteadyTime until) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_.get(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int wait = RemainingMs(clock_.MonotonicNow(), until);
      if (wait <= 0) break;
      pollfd p{fd_.get(), POLLOUT, 0};
      int rc = ::poll(&p, 1, wait);
      if (rc == 0) break;
      if (rc < 0 && errno != EINTR) {
        data.erase(0, off);
        return false;
      }
      continue;
    }
    data.erase(0, off);
    return false;
  }
  data.erase(0, off);
  return true;
}

void TcpSink::sink_it_(const spdlog::details::log_msg& msg) {
  SteadyTime now = clock_.MonotonicNow();
  if (!EnsureConnected(now)) {
    on_drop_(1);
    return;
  }
  // A peer that took nothing for stall_reset gets no more waiting: each event tries the socket
  // once and is dropped if it does not go, so the worker keeps up with the queue meanwhile.
  const bool stalled = now - last_progress_ > options_.stall_reset;
  SteadyTime until = stalled ? now : WaitLimit(now, options_.send_timeout);

  // Finish the line a stalled peer left half-sent first: the stream must stay line-framed.
  bool ok = true;
  if (!pending_.empty()) {
    size_t before = pending_.size();
    ok = WriteSome(pending_, until);
    if (pending_.size() < before) last_progress_ = clock_.MonotonicNow();
  }
  if (ok && pending_.empty()) {
    std::string line;
    line.reserve(msg.payload.size() + 1);
    line.append(msg.payload.data(), msg.payload.size());
    line.push_back('\n');
    const size_t full = line.size();
    ok = WriteSome(line, until);
    if (line.size() < full) last_progress_ = clock_.MonotonicNow();
    if (line.empty()) return;  // delivered
    if (ok && line.size() < full) {
      // Partly taken: the rest goes out before the next event, so this one still counts as sent.
      pending_ = std::move(line);
      return;
    }
  }
  on_drop_(1);
  now = clock_.MonotonicNow();
  if (!ok) {
    Disconnect(now);  // broken: the peer is gone, and with it whatever it had of a line
  } else if (now - last_progress_ > options_.stall_reset && pending_.empty()) {
    // Stalled reader or silent partition: a fresh connection, but only at a line boundary. With
    // a line half sent the connection stays until the peer takes the rest (or TCP_USER_TIMEOUT
    // declares it dead): closing it now would leave a fragment at the end of its stream.
    Disconnect(now);
  }
}

}  // namespace wxcanary::telemetry
