#include "source/token_source.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <array>
#include <cstdio>
#include <utility>

namespace wxcanary::source {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

// string: compare-and-delete; also releases locks (the owner id is the value).
constexpr const char* kDelIfEqual =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";
constexpr const char* kHdelIfEqual =
    "if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then "
    "return redis.call('HDEL', KEYS[1], ARGV[2]) end return 0";
// Expected "" also matches an absent key: that is how a heal writes into an evicted slot.
constexpr const char* kSetIfEqual =
    "local cur = redis.call('GET', KEYS[1]) "
    "if cur == ARGV[1] or (cur == false and ARGV[1] == '') then "
    "redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0";
constexpr const char* kHsetIfEqual =
    "local cur = redis.call('HGET', KEYS[1], ARGV[3]) "
    "if cur == ARGV[1] or (cur == false and ARGV[1] == '') then "
    "redis.call('HSET', KEYS[1], ARGV[3], ARGV[2]) redis.call('EXPIRE', KEYS[1], ARGV[4]) "
    "return 1 end return 0";

std::string Sha1Hex(std::string_view data) {
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  std::string hex;
  hex.reserve(digest.size() * 2);
  for (unsigned char b : digest) {
    std::array<char, 3> two{};
    std::snprintf(two.data(), two.size(), "%02x", b);
    hex.append(two.data(), 2);
  }
  return hex;
}

// A script and its SHA-1, computed once: EVALSHA sends 40 bytes instead of the script.
struct LuaScript {
  explicit LuaScript(std::string t) : text(std::move(t)), sha1(Sha1Hex(text)) {}
  std::string text;
  std::string sha1;
};
const LuaScript& DelIfEqual() {
  static const LuaScript s(kDelIfEqual);
  return s;
}
const LuaScript& HdelIfEqual() {
  static const LuaScript s(kHdelIfEqual);
  return s;
}
const LuaScript& SetIfEqual() {
  static const LuaScript s(kSetIfEqual);
  return s;
}
const LuaScript& HsetIfEqual() {
  static const LuaScript s(kHsetIfEqual);
  return s;
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string OneLine(std::string s) {
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return s;
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string ReplyText(const redisReply* r) { return std::string(r->str, r->len); }

}  // namespace

void RedisConnection::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }
void RedisConnection::ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

RedisConnection::RedisConnection(config::Redis cfg, Clock& clock)
    : cfg_(std::move(cfg)), clock_(clock) {}

RedisConnection::~RedisConnection() = default;

std::string RedisConnection::Scrub(std::string message) const {
  message = OneLine(std::move(message));
  // Belt and braces: servers don't echo passwords, but a proxy in between might.
  const std::string& pw = cfg_.password_value.Reveal();
  if (!pw.empty()) {
    for (size_t at = message.find(pw); at != std::string::npos; at = message.find(pw, at)) {
      message.replace(at, pw.size(), "<redacted>");
    }
  }
  return message;
}

void RedisConnection::Drop() {
  ctx_.reset();
  healthy_ = false;
}

void RedisConnection::ScheduleReconnect() {
  backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
  next_attempt_ = clock_.MonotonicNow() + backoff_;
}

bool RedisConnection::EnsureConnected(std::string* error) {
  if (ctx_) return true;
  if (backoff_.count() > 0 && clock_.MonotonicNow() < next_attempt_) {
    *error = "reconnect backoff";
    return false;
  }
  std::string host = cfg_.host;
  int port = cfg_.port;
  // Under Sentinel the master is looked up at every connect: after a failover the old
  // connection breaks (Sentinel kills the demoted master's clients) and the next one finds
  // the new master.
  if (!cfg_.sentinels.empty() && !ResolveMaster(&host, &port, error)) {
    healthy_ = false;
    ScheduleReconnect();
    return false;
  }
  const std::string where = cfg_.unix_socket.empty() ? host + ":" + std::to_string(port)
                                                     : "unix:" + cfg_.unix_socket;
  const timeval connect_tv = ToTimeval(cfg_.connect_timeout);
  std::unique_ptr<redisContext, ContextDeleter> ctx(
      cfg_.unix_socket.empty() ? redisConnectWithTimeout(host.c_str(), port, connect_tv)
                               : redisConnectUnixWithTimeout(cfg_.unix_socket.c_str(), connect_tv));
  if (!ctx || ctx->err != 0) {
    *error = Scrub("connect " + where + ": " + (ctx ? ctx->errstr : "cannot allocate context"));
    healthy_ = false;
    ScheduleReconnect();
    return false;
  }
  if (redisSetTimeout(ctx.get(), ToTimeval(cfg_.read_timeout)) != REDIS_OK) {
    *error = Scrub("connect " + where + ": cannot set read timeout: " + ctx->errstr);
    healthy_ = false;
    ScheduleReconnect();
    return false;
  }
  ctx_ = std::move(ctx);

  // The handshake: the password goes out in argv form and is never part of an error.
  std::array<std::vector<std::string>, 2> handshake;
  if (!cfg_.password_value.empty()) {
    handshake[0] = cfg_.username.empty()
                       ? std::vector<std::string>{"AUTH", cfg_.password_value.Reveal()}
                       : std::vector<std::string>{"AUTH", cfg_.username,
                                                  cfg_.password_value.Reveal()};
  }
  if (cfg_.db != 0) handshake[1] = {"SELECT", std::to_string(cfg_.db)};
  for (const auto& cmd : handshake) {
    if (cmd.empty()) continue;
    std::string err;
    Reply r = Command(cmd, &err);
    if (r && r->type == REDIS_REPLY_ERROR) err = ReplyText(r.get());
    if (!r || r->type == REDIS_REPLY_ERROR) {
      *error = Scrub(where + ": " + cmd[0] + " failed: " + err);
      Drop();
      ScheduleReconnect();
      return false;
    }
  }
  backoff_ = std::chrono::milliseconds{0};
  return true;
}

bool RedisConnection::ResolveMaster(std::string* host, int* port, std::string* error) {
  std::string tried;
  const timeval tv = ToTimeval(cfg_.connect_timeout);
  for (const auto& [shost, sport] : cfg_.sentinels) {
    const std::string at = shost + ":" + std::to_string(sport);
    tried += (tried.empty() ? "" : "; ") + at + ": ";
    std::unique_ptr<redisContext, ContextDeleter> s(redisConnectWithTimeout(shost.c_str(), sport, tv));
    if (!s || s->err != 0) {
      tried += s ? s->errstr : "cannot allocate context";
      continue;
    }
    redisSetTimeout(s.get(), ToTimeval(cfg_.read_timeout));
    auto command = [&](std::vector<std::string> argv) {
      std::vector<const char*> args;
      std::vector<size_t> lens;
      for (const auto& a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
      }
      return Reply(static_cast<redisReply*>(redisCommandArgv(
          s.get(), static_cast<int>(args.size()), args.data(), lens.data())));
    };
    if (!cfg_.sentinel_password_value.empty()) {
      Reply auth = command({"AUTH", cfg_.sentinel_password_value.Reveal()});
      if (!auth || auth->type == REDIS_REPLY_ERROR) {
        tried += "AUTH failed" + (auth ? ": " + ReplyText(auth.get()) : std::string());
        continue;
      }
    }
    Reply r = command({"SENTINEL", "get-master-addr-by-name", cfg_.master_name});
    if (!r) {
      tried += s->errstr[0] != '\0' ? s->errstr : "I/O error";
      continue;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
      *host = ReplyText(r->element[0]);
      *port = std::atoi(ReplyText(r->element[1]).c_str());
      if (*port > 0) return true;
    }
    tried += r->type == REDIS_REPLY_ERROR ? ReplyText(r.get())
                                          : "does not know master " + Quoted(cfg_.master_name);
  }
  *error = Scrub("sentinel " + Quoted(cfg_.master_name) + ": no sentinel named the master (" +
                 tried + ")");
  return false;
}

RedisConnection::Reply RedisConnection::Command(const std::vector<std::string>& argv,
                                                std::string* error) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(), lens.data())));
  if (!reply) {
    // The reply stream is out of step after an I/O error or timeout: start afresh.
    *error = Scrub(argv[0] + ": " + (ctx_->errstr[0] != '\0' ? ctx_->errstr : "I/O error"));
    Drop();
    return nullptr;
  }
  return reply;
}

RedisConnection::Reply RedisConnection::Eval(const std::string& script, const std::string& sha1,
                                             const std::vector<std::string>& keys,
                                             const std::vector<std::string>& args,
                                             const std::string& shown, std::string* error) {
  std::vector<std::string> argv = {"EVALSHA", sha1, std::to_string(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  Reply r = Command(argv, error);
  if (r && r->type == REDIS_REPLY_ERROR && ReplyText(r.get()).rfind("NOSCRIPT", 0) == 0) {
    argv[0] = "EVAL";
    argv[1] = script;
    r = Command(argv, error);
  }
  if (!r) return nullptr;
  if (r->type == REDIS_REPLY_ERROR) {
    // Script errors quote the command, never ARGV values.
    *error = Scrub("EVAL on " + shown + ": " + ReplyText(r.get()));
    healthy_ = true;
    return nullptr;
  }
  healthy_ = true;
  return r;
}

TokenRead RedisConnection::Read(const config::Environment& env) {
  TokenRead out;
  const bool hash = env.storage == config::Storage::kHash;
  if (hash && env.hash_field.empty()) {
    out.status = TokenRead::Status::kRedisError;
    out.error = "storage hash needs hash_field (key " + env.key + ")";
    return out;
  }
  if (!EnsureConnected(&out.error)) {
    out.status = TokenRead::Status::kRedisError;
    return out;
  }

  // Pipelined: the value and its TTL (and the companion expiry key) in one round trip. `key` is
  // what goes to Redis; messages name env.key, its shown form (a fingerprint when secret-derived).
  const std::string& key = config::RedisKey(env);
  const bool companion = !env.expiry_key.empty();
  std::array<const char*, 3> get_argv{hash ? "HGET" : "GET", key.c_str(), env.hash_field.c_str()};
  std::array<size_t, 3> get_len{hash ? size_t{4} : size_t{3}, key.size(), env.hash_field.size()};
  std::array<const char*, 2> ttl_argv{"TTL", key.c_str()};
  std::array<size_t, 2> ttl_len{3, key.size()};
  std::array<const char*, 2> expiry_argv{"GET", env.expiry_key.c_str()};
  std::array<size_t, 2> expiry_len{3, env.expiry_key.size()};
  const std::string cmd = std::string(get_argv[0]) + " " + env.key;
  auto io_error = [&](const std::string& what) {
    out.status = TokenRead::Status::kRedisError;
    out.error = Scrub(what + ": " + (ctx_->errstr[0] != '\0' ? ctx_->errstr : "I/O error"));
    Drop();
    return out;
  };
  if (redisAppendCommandArgv(ctx_.get(), hash ? 3 : 2, get_argv.data(), get_len.data()) !=
          REDIS_OK ||
      redisAppendCommandArgv(ctx_.get(), 2, ttl_argv.data(), ttl_len.data()) != REDIS_OK ||
      (companion && redisAppendCommandArgv(ctx_.get(), 2, expiry_argv.data(), expiry_len.data()) !=
                        REDIS_OK)) {
    return io_error(cmd);
  }
  void* raw_get = nullptr;
  if (redisGetReply(ctx_.get(), &raw_get) != REDIS_OK) return io_error(cmd);
  Reply value(static_cast<redisReply*>(raw_get));
  void* raw_ttl = nullptr;
  if (redisGetReply(ctx_.get(), &raw_ttl) != REDIS_OK) return io_error("TTL " + env.key);
  Reply ttl(static_cast<redisReply*>(raw_ttl));
  Reply expiry;
  if (companion) {
    void* raw_expiry = nullptr;
    if (redisGetReply(ctx_.get(), &raw_expiry) != REDIS_OK) return io_error("GET expiry_key");
    expiry.reset(static_cast<redisReply*>(raw_expiry));
  }
  // The server answered, so it is up: an error reply is about the key (WRONGTYPE, an ACL's
  // NOPERM), except the few that say the server cannot serve data at all right now, or not to
  // us (NOAUTH: the config lacks the password the server wants).
  healthy_ = true;

  if (value->type == REDIS_REPLY_ERROR) {
    const std::string text = ReplyText(value.get());
    if (text.rfind("WRONGTYPE", 0) == 0) {
      // The target's problem, not Redis': name what is there and what the config expects.
      std::string type_error;
      Reply type = Command({"TYPE", key}, &type_error);
      const std::string found = type && type->type == REDIS_REPLY_STATUS ? ReplyText(type.get())
                                                                         : "another type";
      out.status = TokenRead::Status::kUndecodable;
      out.error = Scrub("key " + env.key + " holds a " + found + ", not the " +
                        (hash ? "hash" : "string") + " that storage " +
                        std::string(config::StorageName(env.storage)) + " reads");
      return out;
    }
    for (const char* unavailable : {"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN",
                                    "NOAUTH"}) {
      if (text.rfind(unavailable, 0) == 0) healthy_ = false;
    }
    out.status = TokenRead::Status::kRedisError;
    out.error = Scrub(cmd + ": " + text);
    return out;
  }
  if (ttl->type != REDIS_REPLY_INTEGER) {
    out.status = TokenRead::Status::kRedisError;
    out.error = Scrub("TTL " + env.key + ": " +
                      (ttl->type == REDIS_REPLY_ERROR ? ReplyText(ttl.get())
                                                      : std::string("unexpected reply type")));
    return out;
  }
  out.ttl_seconds = ttl->integer;
  if (value->type == REDIS_REPLY_NIL) {
    out.status = TokenRead::Status::kMissing;
    out.error = hash && out.ttl_seconds != -2
                    ? "hash field " + Quoted(env.hash_field) + " does not exist"
                    : "key does not exist";
    return out;
  }
  if (value->type != REDIS_REPLY_STRING) {
    out.status = TokenRead::Status::kRedisError;
    out.error = cmd + ": unexpected reply type " + std::to_string(value->type);
    return out;
  }
  if (value->len == 0) {
    out.status = TokenRead::Status::kMissing;
    out.error = "value is empty";
    return out;
  }
  out.raw_value = Secret(ReplyText(value.get()));
  auto decoded = DecodeValue(env, out.raw_value.Reveal(), &out.error);
  if (!decoded) {
    out.status = TokenRead::Status::kUndecodable;
    return out;
  }
  out.expires_at = decoded->expires_at;
  if (companion && !CompanionExpiry(env, expiry.get(), &out)) return out;
  if (out.ttl_seconds == -1 && out.expires_at) {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(*out.expires_at -
                                                                       clock_.SystemNow());
    out.ttl_seconds = std::max<int64_t>(0, left.count());
  }
  out.status = TokenRead::Status::kOk;
  out.token = Secret(std::move(decoded->token));
  return out;
}

bool RedisConnection::CompanionExpiry(const config::Environment& env, const redisReply* reply,
                                      TokenRead* out) const {
  // No companion value: the app has not written one (yet); the key's own TTL stands.
  if (reply->type == REDIS_REPLY_NIL) return true;
  std::string text = reply->type == REDIS_REPLY_STRING ? ReplyText(reply) : std::string();
  // wechatpy writes it through its JSON serializer: a number, perhaps a quoted one.
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  auto at = ParseExpiry(text);
  if (!at) {
    out->status = reply->type == REDIS_REPLY_ERROR ? TokenRead::Status::kRedisError
                                                    : TokenRead::Status::kUndecodable;
    out->error = reply->type == REDIS_REPLY_ERROR
                     ? Scrub("GET expiry_key " + env.expiry_key_template + ": " + ReplyText(reply))
                     : "expiry_key " + Quoted(env.expiry_key_template) +
                           " does not hold a time (Unix seconds or an ISO 8601 date-time)";
    return false;
  }
  out->expires_at = at;
  return true;
}

std::optional<int> RedisConnection::CompareAndDelete(const config::Environment& env,
                                                     const Secret& expected, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  // An empty expectation would match an empty stored value: never delete on a guess.
  if (expected.empty()) {
    *error = "compare-and-delete on " + env.key + ": expected value is empty";
    return std::nullopt;
  }
  if (!EnsureConnected(error)) return std::nullopt;
  const bool hash = env.storage == config::Storage::kHash;
  const std::string& key = config::RedisKey(env);
  Reply r = hash ? Eval(HdelIfEqual().text, HdelIfEqual().sha1, {key},
                        {expected.Reveal(), env.hash_field}, env.key, error)
                 : Eval(DelIfEqual().text, DelIfEqual().sha1, {key}, {expected.Reveal()}, env.key,
                        error);
  if (!r) return std::nullopt;
  if (r->type != REDIS_REPLY_INTEGER) {
    *error = "compare-and-delete on " + env.key + ": unexpected reply type";
    return std::nullopt;
  }
  return r->integer > 0 ? 1 : 0;
}

std::optional<int> RedisConnection::CompareAndSet(const config::Environment& env,
                                                  const Secret& expected, const Secret& value,
                                                  std::chrono::seconds ttl, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (ttl.count() <= 0) {
    *error = "compare-and-set on " + env.key + ": ttl " + std::to_string(ttl.count()) +
             "s must be positive";
    return std::nullopt;
  }
  if (value.empty()) {
    *error = "compare-and-set on " + env.key + ": new value is empty";
    return std::nullopt;
  }
  if (!EnsureConnected(error)) return std::nullopt;
  const bool hash = env.storage == config::Storage::kHash;
  const std::string secs = std::to_string(ttl.count());
  const std::string& key = config::RedisKey(env);
  Reply r = hash ? Eval(HsetIfEqual().text, HsetIfEqual().sha1, {key},
                        {expected.Reveal(), value.Reveal(), env.hash_field, secs}, env.key, error)
                 : Eval(SetIfEqual().text, SetIfEqual().sha1, {key},
                        {expected.Reveal(), value.Reveal(), secs}, env.key, error);
  if (!r) return std::nullopt;
  if (r->type != REDIS_REPLY_INTEGER) {
    *error = "compare-and-set on " + env.key + ": unexpected reply type";
    return std::nullopt;
  }
  return r->integer > 0 ? 1 : 0;
}

std::optional<bool> RedisConnection::TryLock(const std::string& key, const std::string& owner,
                                             std::chrono::milliseconds ttl, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (ttl.count() <= 0 || owner.empty()) {
    *error = "lock " + key + ": needs a positive ttl and an owner";
    return std::nullopt;
  }
  if (!EnsureConnected(error)) return std::nullopt;
  Reply r = Command({"SET", key, owner, "NX", "PX", std::to_string(ttl.count())}, error);
  if (!r) return std::nullopt;
  healthy_ = true;
  if (r->type == REDIS_REPLY_NIL) return false;
  if (r->type == REDIS_REPLY_STATUS) return true;
  *error = Scrub("lock " + key + ": " +
                 (r->type == REDIS_REPLY_ERROR ? ReplyText(r.get()) : "unexpected reply type"));
  return std::nullopt;
}

std::optional<bool> RedisConnection::Unlock(const std::string& key, const std::string& owner,
                                            std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (owner.empty()) {
    *error = "unlock " + key + ": owner is empty";
    return std::nullopt;
  }
  if (!EnsureConnected(error)) return std::nullopt;
  Reply r = Eval(DelIfEqual().text, DelIfEqual().sha1, {key}, {owner}, key, error);
  if (!r) return std::nullopt;
  if (r->type != REDIS_REPLY_INTEGER) {
    *error = "unlock " + key + ": unexpected reply type";
    return std::nullopt;
  }
  return r->integer > 0;
}

}  // namespace wxcanary::source
