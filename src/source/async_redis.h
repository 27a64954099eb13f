#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "io/event_loop.h"
#include "source/redis_connection.h"
#include "source/redis_read.h"

struct redisAsyncContext;

namespace wxcanary::source {

/// A non-blocking connection to one Redis server (host:port or a unix socket: Supports()),
/// driven by an io::EventLoop. Every read of the server's targets is pipelined on it: the same
/// commands as RedisConnection::Read (value and TTL in one round trip), answers interpreted by
/// the same code (source/redis_read.h), so both say the same about a key. Connects on the first
/// read, AUTH and SELECT first on the new connection. A connect not done within connect_timeout,
/// a reply not in within read_timeout of its request, or a failed AUTH drops the connection and
/// fails every read on it with the reason; the next connect waits the same backoff as
/// RedisConnection's (100 ms doubling to 5 s on `clock`; reads fail fast with "reconnect
/// backoff" meanwhile). Errors never contain values or passwords. Loop thread only.
class AsyncRedis {
 public:
  using ReadCallback = std::function<void(TokenRead)>;

  /// `loop` and `clock` must outlive it.
  AsyncRedis(io::EventLoop& loop, config::Redis cfg, Clock& clock);
  /// Reads still pending complete (with an error) before it returns.
  ~AsyncRedis();
  AsyncRedis(const AsyncRedis&) = delete;
  AsyncRedis& operator=(const AsyncRedis&) = delete;

  /// True for one server (host:port or unix_socket); Sentinel and Cluster need the routing of
  /// RedisConnection.
  static bool Supports(const config::Redis& cfg) {
    return cfg.sentinels.empty() && cfg.cluster.empty();
  }

  /// Reads env's token. `done` runs once on the loop's thread, possibly before Read returns (a
  /// fast failure). `env` must outlive `done`.
  void Read(const config::Environment& env, ReadCallback done);

  /// True after the last answer came from a server able to serve (feeds wxcanary_redis_up).
  [[nodiscard]] bool healthy() const { return healthy_; }
  [[nodiscard]] const config::Redis& config() const { return cfg_; }
  /// Reads sent and not answered yet.
  [[nodiscard]] size_t pending() const { return requests_.size(); }

 private:
  struct Conn;
  struct Request {
    AsyncRedis* owner = nullptr;
    std::shared_ptr<Conn> conn;
    const config::Environment* env = nullptr;
    ReadCallback done;
    std::vector<ReplyPart> parts;
    size_t expected = 0;      // replies this request waits for
    size_t received = 0;      // replies (or failures) in
    bool type_asked = false;  // the TYPE after a WRONGTYPE is on its way
    std::string found_type;   // its answer
    std::string error;        // the first failure, "" when none
    io::EventLoop::Steady::time_point deadline;
  };

  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnHandshake(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* ac, int status);
  std::shared_ptr<Conn> Connect(std::string* error);
  /// Sends `cmds` for `req`; false when none went out (the request is complete).
  bool Send(Request& req, std::span<const ReadCommand> cmds);
  /// Drops `conn`: every read on it fails with `reason`.
  void Fail(const std::shared_ptr<Conn>& conn, std::string reason);
  void Complete(std::list<Request>::iterator it);
  /// A connect failed: the next waits 100 ms, doubling to 5 s.
  void BackOff();
  void ArmTimer();
  void OnTimer();
  void FailFast(ReadCallback& done, std::string error);

  io::EventLoop& loop_;
  config::Redis cfg_;
  Clock& clock_;
  std::string where_;                 // "host:port" or "unix:/path", for errors
  std::string resp_;                  // Send's command in Redis' protocol, reused
  std::shared_ptr<Conn> conn_;        // the live connection, null when none
  std::list<Request> requests_;       // in the order sent: the server answers in that order
  io::EventLoop::TimerId timer_ = 0;  // the read-timeout check, 0 when none
  MonotonicTime backoff_next_{};
  std::chrono::milliseconds backoff_delay_{0};
  bool healthy_ = false;
};

}  // namespace wxcanary::source
