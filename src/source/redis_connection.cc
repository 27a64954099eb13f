#include "source/redis_connection.h"

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

#include "common/quote.h"
#include "common/redact.h"
#include "source/redis_read.h"

namespace wxcanary::source {
namespace {

// string: compare-and-delete; also releases locks (the owner id is the value).
constexpr const char* kDelIfEqual =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";
constexpr const char* kHdelIfEqual =
    "if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then "
    "return redis.call('HDEL', KEYS[1], ARGV[2]) end return 0";
// Expected "" also matches an absent key: that is how a heal writes into an evicted slot. A TTL
// of 0 keeps the key's own (a key the app keeps without one stays without one); PTTL and
// PEXPIRE rather than SET's KEEPTTL, which Redis before 6.0 refuses.
constexpr const char* kSetIfEqual =
    "local cur = redis.call('GET', KEYS[1]) "
    "if cur == ARGV[1] or (cur == false and ARGV[1] == '') then "
    "if ARGV[3] == '0' then local p = redis.call('PTTL', KEYS[1]) "
    "redis.call('SET', KEYS[1], ARGV[2]) if p > 0 then redis.call('PEXPIRE', KEYS[1], p) end "
    "else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return 1 end return 0";
// A hash's TTL covers every field, so other apps' tokens in it (Senparc's layout) too: set when
// the field is the hash's only one (this write created it, or nothing else is in it), else only
// ever extended, never added.
constexpr const char* kHsetIfEqual =
    "local cur = redis.call('HGET', KEYS[1], ARGV[3]) "
    "if cur == ARGV[1] or (cur == false and ARGV[1] == '') then "
    "local created = redis.call('EXISTS', KEYS[1]) == 0 "
    "redis.call('HSET', KEYS[1], ARGV[3], ARGV[2]) "
    "local ttl = redis.call('TTL', KEYS[1]) local want = tonumber(ARGV[4]) "
    "if want > 0 and (created or redis.call('HLEN', KEYS[1]) == 1 or (ttl >= 0 and ttl < want)) "
    "then "
    "redis.call('EXPIRE', KEYS[1], want) end "
    "return 1 end return 0";

// A lease: renewed by its owner, taken when free; anybody else's is left alone.
constexpr const char* kHoldLease =
    "local cur = redis.call('GET', KEYS[1]) "
    "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
    "if cur == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "return 0";

constexpr const char* kRemember =
    "redis.call('SADD', KEYS[1], ARGV[1]) redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1";

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
// Hashed once, at load.
const LuaScript kDelIfEqualLua(kDelIfEqual);
const LuaScript kHdelIfEqualLua(kHdelIfEqual);
const LuaScript kSetIfEqualLua(kSetIfEqual);
const LuaScript kHsetIfEqualLua(kHsetIfEqual);
const LuaScript kRememberLua(kRemember);
const LuaScript kHoldLeaseLua(kHoldLease);

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string ReplyText(const redisReply* r) { return std::string(r->str, r->len); }

redisReply* CommandOn(redisContext* ctx, const std::vector<std::string>& argv) {
  Argv a(argv);
  return static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(a.ptrs.size()), a.ptrs.data(), a.lens.data()));
}

std::string ErrText(const redisContext* ctx) {
  return ctx->errstr[0] != '\0' ? ctx->errstr : "I/O error";
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381": the kind and the node, else empty.
std::string_view RedirectOf(const redisReply* r, std::string* node) {
  if (r == nullptr || r->type != REDIS_REPLY_ERROR) return {};
  const std::string text = ReplyText(r);
  for (std::string_view kind : {"MOVED ", "ASK "}) {
    if (text.rfind(kind, 0) != 0) continue;
    const size_t sp = text.find(' ', kind.size());
    if (sp == std::string::npos || sp + 1 >= text.size()) return {};
    *node = text.substr(sp + 1);
    return kind.substr(0, kind.size() - 1);
  }
  return {};
}

uint16_t Crc16Xmodem(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<uint16_t>(byte) << 8;
    for (int i = 0; i < 8; ++i)
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
  }
  return crc;
}

constexpr int kMaxRedirects = 5;
constexpr uint16_t kClusterSlots = 16384;

}  // namespace

uint16_t ClusterKeySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return Crc16Xmodem(key) % kClusterSlots;
}

void RedisConnection::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }
void RedisConnection::ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

RedisConnection::RedisConnection(config::Redis cfg, Clock& clock)
    : cfg_(std::move(cfg)), clock_(clock) {}

RedisConnection::~RedisConnection() = default;

std::string RedisConnection::Scrub(std::string message) const {
  return ScrubRedisMessage(cfg_, std::move(message));
}

void RedisConnection::Drop() {
  if (cur_owner_ != nullptr) cur_owner_->reset();
  cur_ = nullptr;
  cur_owner_ = nullptr;
  healthy_ = false;
  // A cluster node that broke may have failed over: ask for the map again.
  topology_stale_ = true;
}

bool RedisConnection::Waiting(const Backoff& b, std::string* error) const {
  if (b.delay.count() > 0 && clock_.MonotonicNow() < b.next) {
    *error = "reconnect backoff";
    return true;
  }
  return false;
}

void RedisConnection::Failed(Backoff* b) const {
  b->delay = b->delay.count() == 0 ? kFirstBackoff : std::min(b->delay * 2, kMaxBackoff);
  b->next = clock_.MonotonicNow() + b->delay;
}

RedisConnection::Context RedisConnection::Connect(const std::string& host, int port,
                                                  std::string* error) const {
  const std::string where = cfg_.unix_socket.empty()
                                ? (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                                      ":" + std::to_string(port)
                                : "unix:" + cfg_.unix_socket;
  const timeval connect_tv = ToTimeval(cfg_.connect_timeout);
  Context ctx(cfg_.unix_socket.empty()
                  ? redisConnectWithTimeout(host.c_str(), port, connect_tv)
                  : redisConnectUnixWithTimeout(cfg_.unix_socket.c_str(), connect_tv));
  if (!ctx || ctx->err != 0) {
    *error = Scrub("connect " + where + ": " + (ctx ? ctx->errstr : "cannot allocate context"));
    return nullptr;
  }
  if (redisSetTimeout(ctx.get(), ToTimeval(cfg_.read_timeout)) != REDIS_OK) {
    *error = Scrub("connect " + where + ": cannot set read timeout: " + ctx->errstr);
    return nullptr;
  }
  // The handshake: the password goes out in argv form and is never part of an error.
  std::array<std::vector<std::string>, 2> handshake;
  if (!cfg_.password_value.empty()) {
    handshake[0] =
        cfg_.username.empty()
            ? std::vector<std::string>{"AUTH", cfg_.password_value.Reveal()}
            : std::vector<std::string>{"AUTH", cfg_.username, cfg_.password_value.Reveal()};
  }
  if (cfg_.db != 0) handshake[1] = {"SELECT", std::to_string(cfg_.db)};
  for (const auto& cmd : handshake) {
    if (cmd.empty()) continue;
    Reply r(CommandOn(ctx.get(), cmd));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      const std::string err = r ? ReplyText(r.get()) : cmd[0] + ": " + ErrText(ctx.get());
      *error = Scrub(where + ": " + cmd[0] + " failed: " + err);
      return nullptr;
    }
  }
  return ctx;
}

bool RedisConnection::EnsureConnected(std::string* error) {
  if (!ctx_) {
    if (Waiting(backoff_, error)) return false;
    std::string host = cfg_.host;
    int port = cfg_.port;
    // Under Sentinel the master is looked up at every connect: after a failover the old
    // connection breaks (Sentinel kills the demoted master's clients) and the next one finds
    // the new master.
    if (!cfg_.sentinels.empty() && !ResolveMaster(&host, &port, error)) {
      healthy_ = false;
      Failed(&backoff_);
      return false;
    }
    ctx_ = Connect(host, port, error);
    if (!ctx_) {
      healthy_ = false;
      Failed(&backoff_);
      return false;
    }
    backoff_ = Backoff{};
  }
  cur_ = ctx_.get();
  cur_owner_ = &ctx_;
  return true;
}

bool RedisConnection::ResolveMaster(std::string* host, int* port, std::string* error) {
  std::string tried;
  const timeval tv = ToTimeval(cfg_.connect_timeout);
  for (const auto& [shost, sport] : cfg_.sentinels) {
    const std::string at = shost + ":" + std::to_string(sport);
    tried += (tried.empty() ? "" : "; ") + at + ": ";
    Context s(redisConnectWithTimeout(shost.c_str(), sport, tv));
    if (!s || s->err != 0) {
      tried += s ? s->errstr : "cannot allocate context";
      continue;
    }
    redisSetTimeout(s.get(), ToTimeval(cfg_.read_timeout));
    if (!cfg_.sentinel_password_value.empty()) {
      Reply auth(CommandOn(s.get(), {"AUTH", cfg_.sentinel_password_value.Reveal()}));
      if (!auth || auth->type == REDIS_REPLY_ERROR) {
        tried += "AUTH failed" + (auth ? ": " + ReplyText(auth.get()) : std::string());
        continue;
      }
    }
    Reply r(CommandOn(s.get(), {"SENTINEL", "get-master-addr-by-name", cfg_.master_name}));
    if (!r) {
      tried += ErrText(s.get());
      continue;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
      *host = ReplyText(r->element[0]);
      *port = std::atoi(ReplyText(r->element[1]).c_str());
      if (*port > 0) return true;
    }
    tried += r->type == REDIS_REPLY_ERROR ? ReplyText(r.get())
                                          : "does not know master " + Quote(cfg_.master_name);
  }
  *error = Scrub("sentinel " + Quote(cfg_.master_name) + ": no sentinel named the master (" +
                 tried + ")");
  return false;
}

bool RedisConnection::UseNode(const std::string& addr, std::string* error) {
  auto it = nodes_.find(addr);
  if (it == nodes_.end()) {
    const size_t colon = addr.rfind(':');
    Node node;
    node.host = addr.substr(0, colon);
    node.port = colon == std::string::npos ? 0 : std::atoi(addr.c_str() + colon + 1);
    if (node.host.size() > 2 && node.host.front() == '[')
      node.host = node.host.substr(1, node.host.size() - 2);
    if (node.port <= 0) {
      *error = Scrub("cluster: bad node address " + Quote(addr));
      return false;
    }
    it = nodes_.emplace(addr, std::move(node)).first;
  }
  Node& node = it->second;
  if (!node.ctx) {
    if (Waiting(node.backoff, error)) return false;
    node.ctx = Connect(node.host, node.port, error);
    if (!node.ctx) {
      Failed(&node.backoff);
      topology_stale_ = true;
      return false;
    }
    node.backoff = Backoff{};
  }
  cur_ = node.ctx.get();
  cur_owner_ = &node.ctx;
  return true;
}

bool RedisConnection::RefreshTopology(std::string* error) {
  // The nodes of the current map first (they know of a failover first), then the seeds.
  std::vector<std::string> candidates;
  auto add = [&](const std::string& addr) {
    if (std::find(candidates.begin(), candidates.end(), addr) == candidates.end())
      candidates.push_back(addr);
  };
  for (const auto& range : slots_) add(range.node);
  for (const auto& [host, port] : cfg_.cluster)
    add((host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
        std::to_string(port));
  std::string tried;
  for (const auto& addr : candidates) {
    std::string err;
    tried += (tried.empty() ? "" : "; ") + addr + ": ";
    if (!UseNode(addr, &err)) {
      tried += err;
      continue;
    }
    Reply r(CommandOn(cur_, {"CLUSTER", "SLOTS"}));
    if (!r) {
      tried += ErrText(cur_);
      Drop();
      continue;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
      tried += r->type == REDIS_REPLY_ERROR ? ReplyText(r.get()) : "unexpected reply";
      continue;
    }
    const std::string& seed_host = nodes_.at(addr).host;
    std::vector<SlotRange> ranges;
    for (size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
          e->element[0]->type != REDIS_REPLY_INTEGER ||
          e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY ||
          e->element[2]->elements < 2 || e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
          e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        continue;
      const long long first = e->element[0]->integer;
      const long long last = e->element[1]->integer;
      if (first < 0 || last < first || last >= kClusterSlots) continue;
      // An empty host means "the address you reached me at".
      std::string host = ReplyText(e->element[2]->element[0]);
      if (host.empty()) host = seed_host;
      const std::string node = (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                               ":" + std::to_string(e->element[2]->element[1]->integer);
      ranges.push_back({static_cast<uint16_t>(first), static_cast<uint16_t>(last), node});
    }
    if (ranges.empty()) {
      tried += "no slots assigned";
      continue;
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
    slots_ = std::move(ranges);
    topology_stale_ = false;
    ++stats_.refreshes;
    return true;
  }
  *error = Scrub("cluster: no node answered CLUSTER SLOTS (" + tried + ")");
  return false;
}

const std::string* RedisConnection::SlotOwner(uint16_t slot) const {
  auto it = std::upper_bound(slots_.begin(), slots_.end(), slot,
                             [](uint16_t s, const SlotRange& r) { return s < r.first; });
  if (it == slots_.begin()) return nullptr;
  --it;
  return slot <= it->last ? &it->node : nullptr;
}

bool RedisConnection::Route(const std::string& key, std::string* error) {
  if (cfg_.cluster.empty()) return EnsureConnected(error);
  if (slots_.empty() || topology_stale_) {
    std::string refresh_error;
    if (Waiting(backoff_, error)) return false;
    if (!RefreshTopology(&refresh_error)) {
      healthy_ = false;
      Failed(&backoff_);
      // With a map still at hand, carry on with it: the failing node fails on its own.
      if (slots_.empty()) {
        *error = refresh_error;
        return false;
      }
    } else {
      backoff_ = Backoff{};
    }
  }
  const uint16_t slot = ClusterKeySlot(key);
  const std::string* owner = SlotOwner(slot);
  if (owner == nullptr) {
    topology_stale_ = true;
    healthy_ = false;
    *error = "cluster: no node serves slot " + std::to_string(slot);
    return false;
  }
  const std::string addr = *owner;  // UseNode may refresh nothing, but copy: slots_ can change
  if (!UseNode(addr, error)) {
    healthy_ = false;
    return false;
  }
  return true;
}

std::vector<RedisConnection::Reply> RedisConnection::Pipeline(
    const std::string& key, const std::vector<std::vector<std::string>>& cmds,
    const std::string& label, std::string* error) {
  std::string redirect_to;  // the node a redirection named, for the next attempt
  bool asking = false;
  std::string last_redirect;
  for (int attempt = 0; attempt <= kMaxRedirects; ++attempt) {
    const bool routed = redirect_to.empty() ? Route(key, error) : UseNode(redirect_to, error);
    if (!routed) {
      healthy_ = false;
      return {};
    }
    // ASKING holds for the one command after it: each command of the batch gets its own.
    std::vector<std::vector<std::string>> batch;
    for (const auto& cmd : cmds) {
      if (asking) batch.push_back({"ASKING"});
      batch.push_back(cmd);
    }
    for (const auto& cmd : batch) {
      Argv a(cmd);
      if (redisAppendCommandArgv(cur_, static_cast<int>(a.ptrs.size()), a.ptrs.data(),
                                 a.lens.data()) != REDIS_OK) {
        *error = Scrub(label + ": " + ErrText(cur_));
        Drop();
        return {};
      }
    }
    std::vector<Reply> replies;
    for (size_t i = 0; i < batch.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(cur_, &raw) != REDIS_OK) {
        // The reply stream is out of step after an I/O error or timeout: start afresh.
        *error = Scrub(label + ": " + ErrText(cur_));
        Drop();
        return {};
      }
      Reply reply(static_cast<redisReply*>(raw));
      if (asking && batch[i].size() == 1 && batch[i][0] == "ASKING") continue;
      replies.push_back(std::move(reply));
    }
    if (cfg_.cluster.empty()) return replies;

    // The commands share the key, so a redirection answers them alike; follow the first.
    std::string node;
    std::string_view kind;
    for (const auto& r : replies) {
      kind = RedirectOf(r.get(), &node);
      if (!kind.empty()) break;
      if (r->type == REDIS_REPLY_ERROR && ReplyText(r.get()).rfind("CLUSTERDOWN", 0) == 0)
        topology_stale_ = true;
    }
    if (kind.empty()) return replies;
    last_redirect = std::string(kind) + " " + node;
    if (kind == "ASK") {
      // Mid-migration: this key is at `node` now; the slot map stays as it is.
      ++stats_.asked;
      redirect_to = node;
      asking = true;
      continue;
    }
    ++stats_.moved;
    asking = false;
    std::string refresh_error;
    const bool refreshed = RefreshTopology(&refresh_error);
    const std::string* owner = SlotOwner(ClusterKeySlot(key));
    if (refreshed && owner != nullptr && *owner == node) {
      redirect_to.clear();
    } else {
      // The map we were given is behind the node that answered: trust the answer, ask again
      // next time.
      redirect_to = node;
      topology_stale_ = true;
    }
  }
  healthy_ = false;
  *error = Scrub(label + ": more than " + std::to_string(kMaxRedirects) +
                 " cluster redirections (last " + last_redirect + ")");
  return {};
}

RedisConnection::Reply RedisConnection::Command(const std::string& key,
                                                const std::vector<std::string>& argv,
                                                std::string* error) {
  std::vector<Reply> replies = Pipeline(key, {argv}, argv[0], error);
  if (replies.empty()) return nullptr;
  return std::move(replies.front());
}

RedisConnection::Reply RedisConnection::Eval(const std::string& script, const std::string& sha1,
                                             const std::vector<std::string>& keys,
                                             const std::vector<std::string>& args,
                                             const std::string& shown, std::string* error) {
  std::vector<std::string> argv = {"EVALSHA", sha1, std::to_string(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  // Every script here takes one key: it picks the node.
  Reply r = Command(keys.front(), argv, error);
  if (r && r->type == REDIS_REPLY_ERROR && ReplyText(r.get()).rfind("NOSCRIPT", 0) == 0) {
    argv[0] = "EVAL";
    argv[1] = script;
    r = Command(keys.front(), argv, error);
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

std::vector<std::string> RedisConnection::ScanNodes(std::string* error) {
  if (cfg_.cluster.empty()) return {""};
  if ((slots_.empty() || topology_stale_) && !RefreshTopology(error)) return {};
  std::vector<std::string> nodes;
  for (const auto& range : slots_)
    if (std::find(nodes.begin(), nodes.end(), range.node) == nodes.end())
      nodes.push_back(range.node);
  return nodes;
}

std::optional<RedisConnection::ScanPage> RedisConnection::Scan(const std::string& node,
                                                               const std::string& cursor, int count,
                                                               std::string* error) {
  const std::string label = node.empty() ? std::string("SCAN") : "SCAN on " + node;
  if (!(node.empty() ? EnsureConnected(error) : UseNode(node, error))) {
    healthy_ = false;
    return std::nullopt;
  }
  Reply r(CommandOn(cur_, {"SCAN", cursor, "COUNT", std::to_string(count)}));
  if (!r) {
    *error = Scrub(label + ": " + ErrText(cur_));
    Drop();
    return std::nullopt;
  }
  healthy_ = true;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
    *error = Scrub(
        label + ": " +
        (r->type == REDIS_REPLY_ERROR ? ReplyText(r.get()) : std::string("unexpected reply")));
    return std::nullopt;
  }
  ScanPage page;
  page.cursor = ReplyText(r->element[0]);
  for (size_t i = 0; i < r->element[1]->elements; ++i)
    if (r->element[1]->element[i]->type == REDIS_REPLY_STRING)
      page.keys.push_back(ReplyText(r->element[1]->element[i]));
  return page;
}

std::optional<RedisConnection::KeyDump> RedisConnection::Dump(const std::string& key,
                                                              size_t max_fields,
                                                              std::string* error) {
  // STRLEN and HLEN answer WRONGTYPE for the other types: only the one matching TYPE is read.
  std::vector<Reply> meta =
      Pipeline(key, {{"TYPE", key}, {"TTL", key}, {"STRLEN", key}, {"HLEN", key}}, "TYPE", error);
  if (meta.empty()) return std::nullopt;
  healthy_ = true;
  if (meta[0]->type != REDIS_REPLY_STATUS || meta[1]->type != REDIS_REPLY_INTEGER) {
    *error =
        Scrub("TYPE: " + (meta[0]->type == REDIS_REPLY_ERROR ? ReplyText(meta[0].get())
                                                             : std::string("unexpected reply")));
    return std::nullopt;
  }
  KeyDump out;
  out.type = ReplyText(meta[0].get());
  out.ttl_seconds = meta[1]->integer;
  const bool string = out.type == "string", hash = out.type == "hash";
  const redisReply* size = meta[string ? 2 : 3].get();
  if (!string && !hash) return out;
  out.size = size->type == REDIS_REPLY_INTEGER ? size->integer : 0;
  if (string ? out.size > static_cast<int64_t>(kMaxValueBytes)
             : out.size > static_cast<int64_t>(max_fields))
    return out;
  Reply r = Command(key, {string ? "GET" : "HGETALL", key}, error);
  if (!r) return std::nullopt;
  if (string && r->type == REDIS_REPLY_STRING) out.value = Secret(ReplyText(r.get()));
  if (hash && r->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i + 1 < r->elements; i += 2)
      if (r->element[i]->type == REDIS_REPLY_STRING &&
          r->element[i + 1]->type == REDIS_REPLY_STRING)
        out.fields.emplace_back(ReplyText(r->element[i]), Secret(ReplyText(r->element[i + 1])));
  return out;
}

TokenRead RedisConnection::Read(const config::Environment& env) {
  TokenRead out;
  if (std::string why = ReadPrecondition(env); !why.empty()) {
    out.status = TokenRead::Status::kRedisError;
    out.error = std::move(why);
    return out;
  }
  // Pipelined: the value and its TTL (and the companion expiry key) in one round trip. Under
  // Cluster the companion key has a slot of its own, so it is a second round trip.
  const std::string& key = config::RedisKey(env);
  const bool companion = !env.expiry_key.empty();
  const bool companion_apart = companion && !cfg_.cluster.empty();
  std::vector<Reply> replies =
      Pipeline(key, ReadCommands(env, !companion_apart), ReadLabel(env), &out.error);
  if (replies.empty()) {
    out.status = TokenRead::Status::kRedisError;
    return out;
  }
  if (companion_apart) {
    std::vector<Reply> more =
        Pipeline(env.expiry_key, {{"GET", env.expiry_key}}, "GET expiry_key", &out.error);
    if (more.empty()) {
      out.status = TokenRead::Status::kRedisError;
      return out;
    }
    replies.push_back(std::move(more.front()));
  }
  std::vector<ReplyPart> parts;
  parts.reserve(replies.size());
  for (const auto& r : replies) parts.push_back(PartOf(r.get()));
  std::string found_type;
  if (IsWrongType(parts[0])) {
    std::string type_error;
    Reply type = Command(key, {"TYPE", key}, &type_error);
    if (type && type->type == REDIS_REPLY_STATUS) found_type = ReplyText(type.get());
  }
  bool up = true;
  out = InterpretRead(env, cfg_, parts[0], parts[1], companion ? &parts[2] : nullptr, found_type,
                      clock_.SystemNow(), &up);
  healthy_ = up;
  return out;
}

std::optional<long long> RedisConnection::EvalInteger(const std::string& script,
                                                      const std::string& sha1,
                                                      const std::vector<std::string>& keys,
                                                      const std::vector<std::string>& args,
                                                      const std::string& shown_key,
                                                      const std::string& what, std::string* error) {
  Reply r = Eval(script, sha1, keys, args, shown_key, error);
  if (!r) return std::nullopt;
  if (r->type != REDIS_REPLY_INTEGER) {
    *error = what + ": unexpected reply type";
    return std::nullopt;
  }
  return r->integer;
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
  const bool hash = env.storage == config::Storage::kHash;
  const std::string& key = config::RedisKey(env);
  const std::string what = "compare-and-delete on " + env.key;
  auto n = hash ? EvalInteger(kHdelIfEqualLua.text, kHdelIfEqualLua.sha1, {key},
                              {expected.Reveal(), env.hash_field}, env.key, what, error)
                : EvalInteger(kDelIfEqualLua.text, kDelIfEqualLua.sha1, {key}, {expected.Reveal()},
                              env.key, what, error);
  if (!n) return std::nullopt;
  return *n > 0 ? 1 : 0;
}

std::optional<int> RedisConnection::CompareAndSet(const config::Environment& env,
                                                  const Secret& expected, const Secret& value,
                                                  std::chrono::seconds ttl, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (ttl.count() < 0) {
    *error =
        "compare-and-set on " + env.key + ": ttl " + std::to_string(ttl.count()) + "s is negative";
    return std::nullopt;
  }
  if (value.empty()) {
    *error = "compare-and-set on " + env.key + ": new value is empty";
    return std::nullopt;
  }
  const bool hash = env.storage == config::Storage::kHash;
  const std::string secs = std::to_string(ttl.count());
  const std::string& key = config::RedisKey(env);
  const std::string what = "compare-and-set on " + env.key;
  auto n = hash ? EvalInteger(kHsetIfEqualLua.text, kHsetIfEqualLua.sha1, {key},
                              {expected.Reveal(), value.Reveal(), env.hash_field, secs}, env.key,
                              what, error)
                : EvalInteger(kSetIfEqualLua.text, kSetIfEqualLua.sha1, {key},
                              {expected.Reveal(), value.Reveal(), secs}, env.key, what, error);
  if (!n) return std::nullopt;
  return *n > 0 ? 1 : 0;
}

std::optional<bool> RedisConnection::TryLock(const std::string& key, const std::string& owner,
                                             std::chrono::milliseconds ttl, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (ttl.count() <= 0 || owner.empty()) {
    *error = "lock " + key + ": needs a positive ttl and an owner";
    return std::nullopt;
  }
  Reply r = Command(key, {"SET", key, owner, "NX", "PX", std::to_string(ttl.count())}, error);
  if (!r) return std::nullopt;
  healthy_ = true;
  if (r->type == REDIS_REPLY_NIL) return false;
  if (r->type == REDIS_REPLY_STATUS) return true;
  *error = Scrub("lock " + key + ": " +
                 (r->type == REDIS_REPLY_ERROR ? ReplyText(r.get()) : "unexpected reply type"));
  return std::nullopt;
}

std::optional<bool> RedisConnection::HoldLease(const std::string& key, const std::string& owner,
                                               std::chrono::milliseconds ttl, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (ttl.count() <= 0 || owner.empty()) {
    *error = "lease " + key + ": needs a positive ttl and an owner";
    return std::nullopt;
  }
  auto n = EvalInteger(kHoldLeaseLua.text, kHoldLeaseLua.sha1, {key},
                       {owner, std::to_string(ttl.count())}, key, "lease " + key, error);
  if (!n) return std::nullopt;
  return *n > 0;
}

std::optional<bool> RedisConnection::Remember(const std::string& key, const std::string& member,
                                              std::chrono::seconds ttl, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (!EvalInteger(kRememberLua.text, kRememberLua.sha1, {key},
                   {member, std::to_string(std::max<int64_t>(1, ttl.count()))}, key,
                   "remember in " + key, error))
    return std::nullopt;
  return true;
}

std::optional<bool> RedisConnection::Remembers(const std::string& key, const std::string& member,
                                               std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  Reply r = Command(key, {"SISMEMBER", key, member}, error);
  if (!r) return std::nullopt;
  if (r->type != REDIS_REPLY_INTEGER) {
    *error = Scrub("SISMEMBER " + key + ": " +
                   (r->type == REDIS_REPLY_ERROR ? ReplyText(r.get()) : "unexpected reply type"));
    return std::nullopt;
  }
  healthy_ = true;
  return r->integer == 1;
}

std::optional<bool> RedisConnection::Unlock(const std::string& key, const std::string& owner,
                                            std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (owner.empty()) {
    *error = "unlock " + key + ": owner is empty";
    return std::nullopt;
  }
  auto n = EvalInteger(kDelIfEqualLua.text, kDelIfEqualLua.sha1, {key}, {owner}, key,
                       "unlock " + key, error);
  if (!n) return std::nullopt;
  return *n > 0;
}

}  // namespace wxcanary::source
