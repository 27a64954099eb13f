#include "wechat/async_client.h"

#include <curl/curl.h>
#include <sys/epoll.h>

#include <algorithm>

#include "wechat/curl_request.h"

namespace wxcanary::wechat {

struct AsyncClient::Transfer {
  Transfer(const config::WeChat& cfg, uint64_t gen) : request(cfg), generation(gen) {}
  CurlRequest request;
  uint64_t generation;
  Callback done;
  io::EventLoop::TimerId deadline = 0;  // ours: curl does not time a call waiting for a connection
  std::chrono::milliseconds timeout{0};
};

AsyncClient::AsyncClient(io::EventLoop& loop, const config::WeChat& cfg, int max_connections)
    : loop_(loop), cfg_(cfg) {
  CurlGlobalInitOnce();
  CURLM* multi = curl_multi_init();
  multi_ = multi;
  if (multi == nullptr) return;
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &AsyncClient::OnSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &AsyncClient::OnTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_NOTHING));
  Reconfigure(cfg, max_connections);
}

AsyncClient::~AsyncClient() {
  if (curl_timer_ != 0) loop_.Cancel(curl_timer_);
  curl_timer_ = 0;
  while (!live_.empty()) {
    HttpResponse r;
    r.transport_error = "client closed (reload or stop)";
    End(*live_.begin(), std::move(r));
  }
  idle_.clear();
  if (multi_ != nullptr) curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void AsyncClient::Reconfigure(const config::WeChat& cfg, int max_connections) {
  auto* multi = static_cast<CURLM*>(multi_);
  if (!(cfg == cfg_)) {
    cfg_ = cfg;
    ++generation_;
    idle_.clear();
  }
  if (multi == nullptr) return;
  const long limit = std::max(1, max_connections);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, limit);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, limit);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, limit);  // the cache keeps every one alive
}

void AsyncClient::Probe(const ProbeCall& call, const Secret& token,
                        std::chrono::milliseconds timeout, Callback done) {
  std::unique_ptr<Transfer> t;
  if (!idle_.empty()) {
    t = std::move(idle_.back());
    idle_.pop_back();
  } else {
    t = std::make_unique<Transfer>(cfg_, generation_);
  }
  auto* multi = static_cast<CURLM*>(multi_);
  if (multi == nullptr || !t->request.SetUpProbe(call, token, timeout)) {
    done(CurlRequest::NoHandle());
    return;
  }
  if (timeout.count() <= 0) timeout = cfg_.timeout;
  Transfer* raw = t.release();
  raw->done = std::move(done);
  raw->timeout = timeout;
  curl_easy_setopt(raw->request.handle(), CURLOPT_PRIVATE, raw);
  const CURLMcode rc = curl_multi_add_handle(multi, raw->request.handle());
  if (rc != CURLM_OK) {
    HttpResponse r;
    r.transport_error = std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc);
    raw->request.Finish(CURLE_FAILED_INIT);
    Callback cb = std::move(raw->done);
    idle_.emplace_back(raw);
    cb(std::move(r));
    return;
  }
  live_.insert(raw);
  // A little after curl's own timeout, which covers every call that got a connection: this one
  // ends those that waited for a connection the whole time.
  raw->deadline = loop_.After(timeout + std::chrono::milliseconds{50}, [this, raw] {
    raw->deadline = 0;
    // Whether the request went out says whom to blame: the API, or our connection limit.
    curl_off_t sent_after = 0;
    curl_easy_getinfo(raw->request.handle(), CURLINFO_PRETRANSFER_TIME_T, &sent_after);
    HttpResponse r = raw->request.Finish(CURLE_OPERATION_TIMEDOUT);
    r.transport_error = "timed out after " + std::to_string(raw->timeout.count()) +
                        (sent_after > 0 ? " milliseconds waiting for the API's answer"
                                        : " milliseconds waiting for one of the connections to "
                                          "the API") +
                        " (curl error 28)";
    End(raw, std::move(r));
  });
}

void AsyncClient::End(Transfer* t, HttpResponse response) {
  auto* multi = static_cast<CURLM*>(multi_);
  if (t->deadline != 0) loop_.Cancel(t->deadline);
  t->deadline = 0;
  curl_multi_remove_handle(multi, t->request.handle());
  live_.erase(t);
  Callback done = std::move(t->done);
  if (t->generation == generation_ && idle_.size() < kMaxPooledTransfers) {
    idle_.emplace_back(t);
  } else {
    delete t;  // made for a config that is gone, or one more than the pool keeps
  }
  done(std::move(response));
}

int AsyncClient::OnSocket(void* /*easy*/, int fd, int what, void* userp, void* /*socketp*/) {
  auto* self = static_cast<AsyncClient*>(userp);
  if (what == CURL_POLL_REMOVE) {
    self->loop_.Unwatch(fd);
    return 0;
  }
  uint32_t events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= EPOLLOUT;
  self->loop_.Watch(fd, events, [self, fd](uint32_t ev) {
    int flags = 0;
    if ((ev & EPOLLIN) != 0) flags |= CURL_CSELECT_IN;
    if ((ev & EPOLLOUT) != 0) flags |= CURL_CSELECT_OUT;
    if ((ev & (EPOLLERR | EPOLLHUP)) != 0) flags |= CURL_CSELECT_ERR;
    self->Act(fd, flags);
  });
  return 0;
}

int AsyncClient::OnTimer(void* /*multi*/, long timeout_ms, void* userp) {
  auto* self = static_cast<AsyncClient*>(userp);
  if (timeout_ms < 0) {
    if (self->curl_timer_ != 0) self->loop_.Cancel(self->curl_timer_);
    self->curl_timer_ = 0;
    return 0;
  }
  // curl moves its deadline several times a probe: the pending timer is moved, not remade.
  const auto at = io::EventLoop::Steady::now() + std::chrono::milliseconds{timeout_ms};
  if (self->curl_timer_ != 0 && self->loop_.Reschedule(self->curl_timer_, at)) return 0;
  // Never from inside this callback: curl may not be re-entered; the loop runs it next turn.
  self->curl_timer_ = self->loop_.At(at, [self] {
    self->curl_timer_ = 0;
    self->Act(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

void AsyncClient::Act(int fd, int flags) {
  auto* multi = static_cast<CURLM*>(multi_);
  int running = 0;
  curl_multi_socket_action(multi, fd, flags, &running);
  Drain();
}

void AsyncClient::Drain() {
  auto* multi = static_cast<CURLM*>(multi_);
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    const CURLcode rc = msg->data.result;
    End(t, t->request.Finish(rc));
  }
}

}  // namespace wxcanary::wechat
