#include "source/token_source.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

namespace wxcanary::source {
namespace {

using Json = nlohmann::json;

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

std::string TypeWithArticle(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    default: return std::string("a ") + j.type_name();
  }
}

// Tokens are opaque printable strings; anything else in a plain value is a serialization bug
// (a trailing newline, a Java object dump) that would make every probe fail confusingly.
bool CheckOpaque(std::string_view v, std::string_view what, std::string* error) {
  if (v.empty()) {
    *error = std::string(what) + " is empty";
    return false;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c <= 0x20 || c == 0x7f) {
      *error = std::string(what) + " contains whitespace or a control character at byte " +
               std::to_string(i) + " (tokens are opaque printable strings)";
      return false;
    }
  }
  return true;
}

// Some Java serializers (Jackson into RedisTemplate) store a string as its JSON literal.
std::optional<std::string> Unquote(std::string_view raw, std::string* error) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::string(raw);
  Json j = Json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_string()) {
    *error = "value looks JSON-quoted but is not a valid JSON string";
    return std::nullopt;
  }
  return j.get<std::string>();
}

// A copy of a JSON text with every number that overflows a double (1e400) replaced by 0: the
// parser rejects the whole document for one, and such a number is never the token we read.
std::string WithoutHugeNumbers(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  bool in_string = false;
  for (size_t i = 0; i < raw.size();) {
    const char c = raw[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < raw.size()) out.push_back(raw[++i]);
      else if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (c == '"') in_string = true;
    if (c != '-' && (c < '0' || c > '9')) {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < raw.size() && std::strchr("0123456789+-.eE", raw[end]) != nullptr) ++end;
    const std::string number(raw.substr(i, end - i));
    const double value = std::strtod(number.c_str(), nullptr);
    out += std::isfinite(value) ? number : "0";
    i = end;
  }
  return out;
}

std::optional<std::string> AtPath(std::string_view raw, const std::string& path,
                                  std::string* error) {
  Json doc;
  try {
    doc = Json::parse(raw);
  } catch (const Json::parse_error& e) {
    *error = "value is not JSON (parse error at byte " + std::to_string(e.byte) + ")";
    return std::nullopt;
  } catch (const Json::out_of_range&) {
    // A number too large for a double somewhere in the document: read the rest anyway.
    doc = Json::parse(WithoutHugeNumbers(raw), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      *error = "value is not usable JSON (a number out of range)";
      return std::nullopt;
    }
  } catch (const Json::exception& e) {
    *error = "value is not usable JSON (error " + std::to_string(e.id) + ")";
    return std::nullopt;
  }
  // A JSON document double-encoded as a JSON string: decode once more.
  if (doc.is_string() && !path.empty()) {
    Json inner = Json::parse(doc.get<std::string>(), nullptr, false);
    if (!inner.is_discarded()) doc = std::move(inner);
  }
  const Json* cur = &doc;
  size_t start = 0;
  while (!path.empty() && start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string seg = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const Json* next = nullptr;
    if (cur->is_object()) {
      auto it = cur->find(seg);
      if (it != cur->end()) next = &*it;
    } else if (cur->is_array() && !seg.empty() &&
               std::all_of(seg.begin(), seg.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      size_t idx = std::stoul(seg);
      if (idx < cur->size()) next = &(*cur)[idx];
    }
    if (next == nullptr) {
      *error = "json_path " + Quoted(path) + " not found";
      return std::nullopt;
    }
    cur = next;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (!cur->is_string()) {
    *error = "json_path " + Quoted(path) + " is " + TypeWithArticle(*cur) +
             ", not a string";
    return std::nullopt;
  }
  std::string token = cur->get<std::string>();
  if (!CheckOpaque(token, "json_path " + Quoted(path), error)) return std::nullopt;
  return token;
}

std::string ReplyText(const redisReply* r) { return std::string(r->str, r->len); }

}  // namespace

std::optional<std::string> DecodeToken(const config::Environment& env, std::string_view raw,
                                       std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  error->clear();
  if (raw.empty()) {
    *error = "value is empty";
    return std::nullopt;
  }
  if (raw.size() > kMaxValueBytes) {
    *error = "value is " + std::to_string(raw.size()) + " bytes, over the " +
             std::to_string(kMaxValueBytes) + "-byte limit";
    return std::nullopt;
  }
  // json_path on a string or hash value means the value is a JSON document.
  if (env.storage == config::Storage::kJson || !env.json_path.empty()) {
    return AtPath(raw, env.json_path, error);
  }
  auto token = Unquote(raw, error);
  if (!token) return std::nullopt;
  if (!CheckOpaque(*token, "value", error)) return std::nullopt;
  return token;
}

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
  const std::string where = cfg_.unix_socket.empty()
                                ? cfg_.host + ":" + std::to_string(cfg_.port)
                                : "unix:" + cfg_.unix_socket;
  const timeval connect_tv = ToTimeval(cfg_.connect_timeout);
  std::unique_ptr<redisContext, ContextDeleter> ctx(
      cfg_.unix_socket.empty() ? redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, connect_tv)
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
                                             std::string* error) {
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
    *error = Scrub("EVAL on " + (keys.empty() ? std::string() : keys[0]) + ": " +
                   ReplyText(r.get()));
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

  // Pipelined: the value and its TTL in one round trip.
  std::array<const char*, 3> get_argv{hash ? "HGET" : "GET", env.key.c_str(),
                                      env.hash_field.c_str()};
  std::array<size_t, 3> get_len{hash ? size_t{4} : size_t{3}, env.key.size(),
                                env.hash_field.size()};
  std::array<const char*, 2> ttl_argv{"TTL", env.key.c_str()};
  std::array<size_t, 2> ttl_len{3, env.key.size()};
  const std::string cmd = std::string(get_argv[0]) + " " + env.key;
  auto io_error = [&](const std::string& what) {
    out.status = TokenRead::Status::kRedisError;
    out.error = Scrub(what + ": " + (ctx_->errstr[0] != '\0' ? ctx_->errstr : "I/O error"));
    Drop();
    return out;
  };
  if (redisAppendCommandArgv(ctx_.get(), hash ? 3 : 2, get_argv.data(), get_len.data()) !=
          REDIS_OK ||
      redisAppendCommandArgv(ctx_.get(), 2, ttl_argv.data(), ttl_len.data()) != REDIS_OK) {
    return io_error(cmd);
  }
  void* raw_get = nullptr;
  if (redisGetReply(ctx_.get(), &raw_get) != REDIS_OK) return io_error(cmd);
  Reply value(static_cast<redisReply*>(raw_get));
  void* raw_ttl = nullptr;
  if (redisGetReply(ctx_.get(), &raw_ttl) != REDIS_OK) return io_error("TTL " + env.key);
  Reply ttl(static_cast<redisReply*>(raw_ttl));
  // The server answered, so it is up: an error reply is about the key (WRONGTYPE, an ACL's
  // NOPERM), except the few that say the server cannot serve data at all right now.
  healthy_ = true;

  if (value->type == REDIS_REPLY_ERROR) {
    const std::string text = ReplyText(value.get());
    if (text.rfind("WRONGTYPE", 0) == 0) {
      // The target's problem, not Redis': name what is there and what the config expects.
      std::string type_error;
      Reply type = Command({"TYPE", env.key}, &type_error);
      const std::string found = type && type->type == REDIS_REPLY_STATUS ? ReplyText(type.get())
                                                                         : "another type";
      out.status = TokenRead::Status::kUndecodable;
      out.error = Scrub("key " + env.key + " holds a " + found + ", not the " +
                        (hash ? "hash" : "string") + " that storage " +
                        std::string(config::StorageName(env.storage)) + " reads");
      return out;
    }
    for (const char* unavailable : {"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"}) {
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
  auto token = DecodeToken(env, out.raw_value.Reveal(), &out.error);
  if (!token) {
    out.status = TokenRead::Status::kUndecodable;
    return out;
  }
  out.status = TokenRead::Status::kOk;
  out.token = Secret(std::move(*token));
  return out;
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
  Reply r = hash ? Eval(HdelIfEqual().text, HdelIfEqual().sha1, {env.key},
                        {expected.Reveal(), env.hash_field}, error)
                 : Eval(DelIfEqual().text, DelIfEqual().sha1, {env.key}, {expected.Reveal()}, error);
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
  Reply r = hash ? Eval(HsetIfEqual().text, HsetIfEqual().sha1, {env.key},
                        {expected.Reveal(), value.Reveal(), env.hash_field, secs}, error)
                 : Eval(SetIfEqual().text, SetIfEqual().sha1, {env.key},
                        {expected.Reveal(), value.Reveal(), secs}, error);
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
  Reply r = Eval(DelIfEqual().text, DelIfEqual().sha1, {key}, {owner}, error);
  if (!r) return std::nullopt;
  if (r->type != REDIS_REPLY_INTEGER) {
    *error = "unlock " + key + ": unexpected reply type";
    return std::nullopt;
  }
  return r->integer > 0;
}

}  // namespace wxcanary::source
