#include "source/async_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/epoll.h>

#include <algorithm>

namespace wxcanary::source {
namespace {

std::string Ms(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

// One connection attempt and, when it succeeds, the connection. hiredis owns `ac` and frees it
// (after answering every pending command with a null reply) on an error, a close or
// redisAsyncFree; its cleanup hook then unwatches the descriptor and nulls `ac`.
struct AsyncRedis::Conn {
  AsyncRedis* owner = nullptr;
  redisAsyncContext* ac = nullptr;  // null once hiredis freed it
  int fd = -1;
  uint32_t events = 0;
  bool connected = false;
  bool timed_out = false;  // a read got no reply in read_timeout: every read on it fails so
  std::string fail;        // why it was dropped, for the reads still on it
  std::vector<std::string> handshake;  // AUTH / SELECT sent first, in order
  size_t handshake_done = 0;
  io::EventLoop::TimerId connect_timer = 0;

  void Want(uint32_t add, uint32_t remove) {
    const uint32_t next = (events | add) & ~remove;
    if (ac == nullptr || next == events) return;
    events = next;
    owner->loop_.Modify(fd, events);
  }
  static void AddRead(void* c) { static_cast<Conn*>(c)->Want(EPOLLIN, 0); }
  static void DelRead(void* c) { static_cast<Conn*>(c)->Want(0, EPOLLIN); }
  static void AddWrite(void* c) { static_cast<Conn*>(c)->Want(EPOLLOUT, 0); }
  static void DelWrite(void* c) { static_cast<Conn*>(c)->Want(0, EPOLLOUT); }
  static void Cleanup(void* data) {
    auto* c = static_cast<Conn*>(data);
    AsyncRedis* owner = c->owner;
    owner->loop_.Unwatch(c->fd);
    if (c->connect_timer != 0) owner->loop_.Cancel(c->connect_timer);
    c->connect_timer = 0;
    c->ac = nullptr;
    // The last reference may go here; hiredis touches nothing of ours after this hook.
    if (owner->conn_.get() == c) owner->conn_.reset();
  }
};

AsyncRedis::AsyncRedis(io::EventLoop& loop, config::Redis cfg, Clock& clock)
    : loop_(loop), cfg_(std::move(cfg)), clock_(clock) {
  where_ = cfg_.unix_socket.empty()
               ? (cfg_.host.find(':') != std::string::npos ? "[" + cfg_.host + "]" : cfg_.host) +
                     ":" + std::to_string(cfg_.port)
               : "unix:" + cfg_.unix_socket;
}

AsyncRedis::~AsyncRedis() {
  if (timer_ != 0) loop_.Cancel(timer_);
  timer_ = 0;
  if (conn_) Fail(conn_, ScrubRedisMessage(cfg_, "redis " + where_ + ": connection closed"));
}

std::shared_ptr<AsyncRedis::Conn> AsyncRedis::Connect(std::string* error) {
  if (backoff_delay_.count() > 0 && clock_.MonotonicNow() < backoff_next_) {
    *error = "reconnect backoff";
    return nullptr;
  }
  // hiredis resolves a host name with a blocking getaddrinfo: addresses (and /etc/hosts names)
  // cost nothing; a name only DNS knows stalls the loop for the lookup.
  redisAsyncContext* ac = cfg_.unix_socket.empty()
                              ? redisAsyncConnect(cfg_.host.c_str(), cfg_.port)
                              : redisAsyncConnectUnix(cfg_.unix_socket.c_str());
  if (ac == nullptr || ac->err != 0) {
    *error = ScrubRedisMessage(
        cfg_, "connect " + where_ + ": " + (ac ? ac->errstr : "cannot allocate context"));
    if (ac != nullptr) redisAsyncFree(ac);
    BackOff();
    return nullptr;
  }
  auto conn = std::make_shared<Conn>();
  conn->owner = this;
  conn->ac = ac;
  conn->fd = ac->c.fd;
  conn->events = EPOLLOUT;  // a connect in progress finishes with the socket writable
  // The watch holds the connection: a reply handled on it may drop every other reference.
  if (!loop_.Watch(conn->fd, conn->events, [conn](uint32_t ev) {
        if (conn->ac != nullptr && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
          redisAsyncHandleRead(conn->ac);
        if (conn->ac != nullptr && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0)
          redisAsyncHandleWrite(conn->ac);
      })) {
    *error = "connect " + where_ + ": cannot watch the socket";
    redisAsyncFree(ac);
    BackOff();
    return nullptr;
  }
  ac->ev.data = conn.get();
  ac->ev.addRead = &Conn::AddRead;
  ac->ev.delRead = &Conn::DelRead;
  ac->ev.addWrite = &Conn::AddWrite;
  ac->ev.delWrite = &Conn::DelWrite;
  ac->ev.cleanup = &Conn::Cleanup;
  redisAsyncSetConnectCallback(ac, &AsyncRedis::OnConnect);
  conn->connect_timer = loop_.After(cfg_.connect_timeout, [this, c = conn.get()] {
    c->connect_timer = 0;
    if (c->connected || c->ac == nullptr) return;
    BackOff();
    Fail(conn_.get() == c ? conn_ : nullptr,
         "connect " + where_ + ": timed out after " + Ms(cfg_.connect_timeout));
  });
  // The handshake: the password goes out in argv form and is never part of an error.
  std::vector<std::vector<std::string>> handshake;
  if (!cfg_.password_value.empty()) {
    handshake.push_back(
        cfg_.username.empty()
            ? std::vector<std::string>{"AUTH", cfg_.password_value.Reveal()}
            : std::vector<std::string>{"AUTH", cfg_.username, cfg_.password_value.Reveal()});
  }
  if (cfg_.db != 0) handshake.push_back({"SELECT", std::to_string(cfg_.db)});
  for (const auto& cmd : handshake) {
    Argv a(cmd);
    conn->handshake.push_back(cmd[0]);
    redisAsyncCommandArgv(ac, &AsyncRedis::OnHandshake, conn.get(), static_cast<int>(a.ptrs.size()),
                          a.ptrs.data(), a.lens.data());
  }
  return conn;
}

void AsyncRedis::BackOff() {
  healthy_ = false;
  backoff_delay_ =
      backoff_delay_.count() == 0 ? kFirstBackoff : std::min(backoff_delay_ * 2, kMaxBackoff);
  backoff_next_ = clock_.MonotonicNow() + backoff_delay_;
}

void AsyncRedis::OnConnect(const redisAsyncContext* ac, int status) {
  auto* c = static_cast<Conn*>(ac->ev.data);
  AsyncRedis* self = c->owner;
  if (status == REDIS_OK) {
    c->connected = true;
    if (c->connect_timer != 0) self->loop_.Cancel(c->connect_timer);
    c->connect_timer = 0;
    // The reads sent while connecting wait for their replies from now on: read_timeout each,
    // so the deadlines stay in the order of the list and the oldest is the earliest.
    const auto deadline = io::EventLoop::Steady::now() + self->cfg_.read_timeout;
    for (auto& req : self->requests_)
      if (req.conn.get() == c) req.deadline = deadline;
    if (self->timer_ != 0) self->loop_.Cancel(self->timer_);
    self->timer_ = 0;
    self->ArmTimer();
    if (c->handshake.empty()) self->backoff_delay_ = std::chrono::milliseconds{0};
    return;
  }
  // hiredis frees the context next, answering every command on it with a null reply.
  c->fail = ScrubRedisMessage(self->cfg_, "connect " + self->where_ + ": " + ac->errstr);
  self->BackOff();
}

void AsyncRedis::OnHandshake(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* c = static_cast<Conn*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr) return;  // the connection is going; its reads say why
  AsyncRedis* self = c->owner;
  const std::string& cmd = c->handshake.at(c->handshake_done++);
  if (r->type == REDIS_REPLY_ERROR) {
    c->fail = ScrubRedisMessage(
        self->cfg_, self->where_ + ": " + cmd + " failed: " + std::string(r->str, r->len));
    self->BackOff();
    redisAsyncFree(ac);  // inside a callback: hiredis frees it when the callback returns
    return;
  }
  if (c->handshake_done == c->handshake.size()) self->backoff_delay_ = std::chrono::milliseconds{0};
}

bool AsyncRedis::Send(Request& req, std::span<const ReadCommand> cmds) {
  req.expected += cmds.size();
  for (const auto& cmd : cmds) {
    // Formatted here, into one reused buffer: hiredis' own formatting (sds strings, two heap
    // buffers a command) was ~3,200 instructions per command, two or three a probe.
    FormatResp(cmd, &resp_);
    if (req.conn->ac == nullptr ||
        redisAsyncFormattedCommand(req.conn->ac, &AsyncRedis::OnReply, &req, resp_.data(),
                                   resp_.size()) != REDIS_OK) {
      ++req.received;
      if (req.error.empty())
        req.error = ScrubRedisMessage(cfg_, ReadLabel(*req.env) + ": connection closing");
    }
  }
  return req.received < req.expected;
}

void AsyncRedis::Read(const config::Environment& env, ReadCallback done) {
  if (std::string why = ReadPrecondition(env); !why.empty()) {
    FailFast(done, std::move(why));
    return;
  }
  if (!conn_) {
    std::string error;
    conn_ = Connect(&error);
    if (!conn_) {
      FailFast(done, std::move(error));
      return;
    }
  }
  Request& req = requests_.emplace_back();
  req.owner = this;
  req.conn = conn_;
  req.env = &env;
  req.done = std::move(done);
  req.parts.reserve(3);
  // While connecting, the connect timer bounds the wait; OnConnect restarts this from there.
  req.deadline = io::EventLoop::Steady::now() + cfg_.read_timeout +
                 (conn_->connected ? std::chrono::milliseconds{0} : cfg_.connect_timeout);
  size_t count = 0;
  const auto cmds = ReadCommandViews(env, true, &count);
  if (!Send(req, std::span<const ReadCommand>(cmds.data(), count))) {
    Complete(std::prev(requests_.end()));
    return;
  }
  ArmTimer();
}

void AsyncRedis::FailFast(ReadCallback& done, std::string error) {
  healthy_ = false;
  TokenRead out;
  out.status = TokenRead::Status::kRedisError;
  out.error = std::move(error);
  done(std::move(out));
}

void AsyncRedis::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* req = static_cast<Request*>(privdata);
  AsyncRedis* self = req->owner;
  ++req->received;
  if (reply == nullptr) {
    if (req->error.empty()) {
      // A read timeout drops the connection for every read on it: each names its own key.
      const std::string why = req->conn->timed_out ? ReadLabel(*req->env) + ": timed out after " +
                                                         Ms(self->cfg_.read_timeout)
                              : !req->conn->fail.empty() ? req->conn->fail
                              : ac->errstr != nullptr && ac->errstr[0] != '\0'
                                  ? ReadLabel(*req->env) + ": " + ac->errstr
                                  : ReadLabel(*req->env) + ": connection closed";
      req->error = ScrubRedisMessage(self->cfg_, why);
    }
  } else if (req->type_asked) {
    auto* r = static_cast<redisReply*>(reply);
    if (r->type == REDIS_REPLY_STATUS) req->found_type.assign(r->str, r->len);
  } else {
    req->parts.push_back(PartOf(static_cast<redisReply*>(reply)));
  }
  if (req->received < req->expected) return;
  // The server answers in order: the request is almost always the oldest.
  auto it = &self->requests_.front() == req
                ? self->requests_.begin()
                : std::find_if(self->requests_.begin(), self->requests_.end(),
                               [req](const Request& r) { return &r == req; });
  if (req->error.empty() && !req->type_asked && IsWrongType(req->parts.front())) {
    // Say what the key holds: one more round trip, at the back of the line.
    req->type_asked = true;
    req->deadline = io::EventLoop::Steady::now() + self->cfg_.read_timeout;
    self->requests_.splice(self->requests_.end(), self->requests_, it);
    const ReadCommand type{{"TYPE", config::RedisKey(*req->env), {}}, 2};
    if (self->Send(*req, std::span<const ReadCommand>(&type, 1))) return;
    it = std::prev(self->requests_.end());
  }
  self->Complete(it);
}

void AsyncRedis::Complete(std::list<Request>::iterator it) {
  Request& req = *it;
  TokenRead out;
  if (!req.error.empty()) {
    healthy_ = false;
    out.status = TokenRead::Status::kRedisError;
    out.error = req.error;
  } else {
    const bool companion = !req.env->expiry_key.empty();
    bool up = true;
    out =
        InterpretRead(*req.env, cfg_, req.parts[0], req.parts[1],
                      companion ? &req.parts[2] : nullptr, req.found_type, clock_.SystemNow(), &up);
    healthy_ = up;
  }
  ReadCallback done = std::move(req.done);
  requests_.erase(it);
  done(std::move(out));
}

void AsyncRedis::Fail(const std::shared_ptr<Conn>& conn, std::string reason) {
  if (!conn) return;
  std::shared_ptr<Conn> hold = conn;  // Cleanup may drop conn_, the caller's reference
  healthy_ = false;
  if (hold->fail.empty()) hold->fail = ScrubRedisMessage(cfg_, std::move(reason));
  if (hold->ac != nullptr) redisAsyncFree(hold->ac);  // answers its reads, then Cleanup
  if (conn_ == hold) conn_.reset();
}

void AsyncRedis::ArmTimer() {
  if (timer_ != 0 || requests_.empty()) return;
  timer_ = loop_.At(requests_.front().deadline, [this] {
    timer_ = 0;
    OnTimer();
  });
}

void AsyncRedis::OnTimer() {
  // One timer for the oldest read only: the server answers in order, so when the oldest is in
  // time every later one is too.
  if (requests_.empty()) return;
  const Request& front = requests_.front();
  if (front.deadline <= io::EventLoop::Steady::now()) {
    front.conn->timed_out = true;
    Fail(front.conn, "redis " + where_ + ": timed out after " + Ms(cfg_.read_timeout));
  }
  ArmTimer();
}

}  // namespace wxcanary::source
