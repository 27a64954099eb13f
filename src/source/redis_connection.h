#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"
#include "source/value_decoder.h"

struct redisContext;
struct redisReply;

namespace wxcanary::source {

/// What Redis holds for one environment at one instant.
struct TokenRead {
  enum class Status { kOk, kMissing, kUndecodable, kRedisError };
  Status status = Status::kOk;
  Secret token;      // decoded token (kOk only)
  Secret raw_value;  // the stored string (string value or hash field) as read
  /// -2 no key, -1 no expiry. A key without a TTL whose value (env.expiry_path) or companion key
  /// (env.expiry_key) says when the token expires reports the seconds left until then (0 once
  /// past), so that TTL metrics and "Redis still holds it" see what the app sees.
  int64_t ttl_seconds = -2;
  std::optional<SystemTime> expires_at;  // from the value or the companion key, when configured
  int64_t redis_ttl_seconds = -2;        // the key's TTL as Redis says it: -2 no key, -1 none
  std::string error;  // one line, for kUndecodable / kRedisError; never contains the value
                      // (also a short reason for kMissing: no key, no field, empty value)
};

/// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key's bytes modulo 16384, or of
/// the part between the first '{' and the first '}' after it when that part is non-empty.
uint16_t ClusterKeySlot(std::string_view key);

/// One connection to one Redis server (under Sentinel: to the master the sentinels name at each
/// connect, so a failover is followed; under Cluster: one connection per node, each command on a
/// key sent to the node owning the key's slot per CLUSTER SLOTS, MOVED followed and the map
/// refreshed, ASK followed with ASKING for that command only). Reconnects lazily after an error,
/// with backoff (100 ms doubling to 5 s, measured on `clock`); while backing off every call fails
/// fast with "reconnect backoff" without touching the network. Errors never contain values or
/// passwords. Not thread-safe: each worker owns its own.
class RedisConnection {
 public:
  /// `clock` (reconnect backoff, timings) must outlive the connection.
  RedisConnection(config::Redis cfg, Clock& clock);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Reads the value and its TTL (and env.expiry_key, if set) in one round trip (pipelined).
  TokenRead Read(const config::Environment& env);

  /// Atomically deletes env's key (or hash field) only if it still holds exactly `expected`
  /// (Lua compare-and-delete). Returns 1 deleted, 0 changed, nullopt on a Redis error.
  std::optional<int> CompareAndDelete(const config::Environment& env, const Secret& expected,
                                      std::string* error);

  /// Atomically writes `value` with a TTL only if the key (or field) still holds `expected`
  /// (empty expected = only if absent). `ttl` 0 keeps the key's TTL as it is (none stays none).
  /// A hash's TTL covers its other fields too: it is set when the field is the hash's only one,
  /// and otherwise only ever extended, never added. Returns 1 written, 0 changed, nullopt on
  /// error.
  std::optional<int> CompareAndSet(const config::Environment& env, const Secret& expected,
                                   const Secret& value, std::chrono::seconds ttl,
                                   std::string* error);

  /// SET key value NX PX ttl. True when acquired.
  std::optional<bool> TryLock(const std::string& key, const std::string& owner,
                              std::chrono::milliseconds ttl, std::string* error);

  /// Takes the lease `key` for `owner` when it is free, or renews it when `owner` holds it
  /// (PX ttl, atomically). True when `owner` holds it afterwards, false when another does.
  std::optional<bool> HoldLease(const std::string& key, const std::string& owner,
                                std::chrono::milliseconds ttl, std::string* error);

  /// Adds `member` to the set `key` and sets the set's TTL, atomically (the keeper's memory of
  /// the tokens it wrote: fingerprints, never tokens).
  std::optional<bool> Remember(const std::string& key, const std::string& member,
                               std::chrono::seconds ttl, std::string* error);
  /// True when the set `key` holds `member`.
  std::optional<bool> Remembers(const std::string& key, const std::string& member,
                                std::string* error);

  /// Releases a lock (or a lease) only if `owner` still holds it (compare-and-delete on the lock
  /// key). True when released, false when it expired or another owner holds it.
  std::optional<bool> Unlock(const std::string& key, const std::string& owner, std::string* error);

  /// The servers a key scan visits: {""} for the one server or the Sentinel master; under
  /// Cluster every node owning slots ("host:port", from CLUSTER SLOTS). Empty with `error` set
  /// when they cannot be told. For wxcanary discover, as are Scan and Dump (read-only).
  std::vector<std::string> ScanNodes(std::string* error);

  /// One SCAN step on `node` (from ScanNodes): the next cursor ("0" when done) and the keys.
  struct ScanPage {
    std::string cursor;
    std::vector<std::string> keys;
  };
  std::optional<ScanPage> Scan(const std::string& node, const std::string& cursor, int count,
                               std::string* error);

  /// What a key holds: TYPE, TTL and sizes, then GET (a string of at most kMaxValueBytes) or
  /// HGETALL (a hash of at most max_fields fields); `value`/`fields` stay empty otherwise.
  struct KeyDump {
    std::string type;  // "string", "hash", "none", ...
    int64_t ttl_seconds = -2;
    int64_t size = 0;  // string bytes or hash fields
    Secret value;
    std::vector<std::pair<std::string, Secret>> fields;
  };
  std::optional<KeyDump> Dump(const std::string& key, size_t max_fields, std::string* error);

  /// Cluster redirections followed and slot-map refreshes, for tests and diagnostics.
  struct ClusterStats {
    uint64_t moved = 0;
    uint64_t asked = 0;
    uint64_t refreshes = 0;
  };
  [[nodiscard]] const ClusterStats& cluster_stats() const { return stats_; }

  /// True after the last command succeeded (feeds wxcanary_redis_up).
  [[nodiscard]] bool healthy() const { return healthy_; }
  [[nodiscard]] const config::Redis& config() const { return cfg_; }

 private:
  struct ReplyDeleter {
    void operator()(redisReply* r) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using Context = std::unique_ptr<redisContext, ContextDeleter>;
  /// 100 ms doubling to 5 s between failed connects.
  struct Backoff {
    std::chrono::steady_clock::time_point next{};
    std::chrono::milliseconds delay{0};
  };
  /// A cluster node, by "host:port".
  struct Node {
    std::string host;
    int port = 0;
    Context ctx;
    Backoff backoff;
  };
  struct SlotRange {
    uint16_t first;
    uint16_t last;
    std::string node;
  };

  /// Single server / Sentinel: connects ctx_ if needed and makes it current.
  bool EnsureConnected(std::string* error);
  /// Connects to host:port with the timeouts, AUTH and SELECT. Null with `error` set.
  Context Connect(const std::string& host, int port, std::string* error) const;
  /// Asks cfg_.sentinels, in order, for the current address of cfg_.master_name.
  bool ResolveMaster(std::string* host, int* port, std::string* error);
  /// Makes current the connection that serves `key` (the one server, or the slot's node).
  bool Route(const std::string& key, std::string* error);
  /// Makes current cluster node `addr` ("host:port"), connecting it if needed.
  bool UseNode(const std::string& addr, std::string* error);
  /// Reloads the slot map from the known nodes, then the seeds. False with `error` set.
  bool RefreshTopology(std::string* error);
  [[nodiscard]] const std::string* SlotOwner(uint16_t slot) const;
  bool Waiting(const Backoff& b, std::string* error) const;
  void Failed(Backoff* b) const;
  void Drop();
  /// Sends `cmds` (all on `key`) in one round trip to the connection serving `key`, following
  /// cluster redirections. The replies in order, or empty with `error` set ("<label>: ...") on
  /// an I/O error (the connection is dropped) or a connect failure.
  std::vector<Reply> Pipeline(const std::string& key,
                              const std::vector<std::vector<std::string>>& cmds,
                              const std::string& label, std::string* error);
  /// One command on `key`, one round trip. Null with `error` set on an I/O error.
  Reply Command(const std::string& key, const std::vector<std::string>& argv, std::string* error);
  /// EVALSHA with a NOSCRIPT fallback to EVAL. Null with `error` set on any failure.
  Reply Eval(const std::string& script, const std::string& sha1,
             const std::vector<std::string>& keys, const std::vector<std::string>& args,
             const std::string& shown_key, std::string* error);
  /// Eval of a script answering an integer; anything else is an error "<what>: unexpected
  /// reply type".
  std::optional<long long> EvalInteger(const std::string& script, const std::string& sha1,
                                       const std::vector<std::string>& keys,
                                       const std::vector<std::string>& args,
                                       const std::string& shown_key, const std::string& what,
                                       std::string* error);
  std::string Scrub(std::string message) const;

  config::Redis cfg_;
  Clock& clock_;
  Context ctx_;                        // single server / Sentinel master
  Backoff backoff_;                    // single server / Sentinel; cluster: the slot-map refresh
  std::map<std::string, Node> nodes_;  // cluster
  std::vector<SlotRange> slots_;       // cluster, sorted by first
  bool topology_stale_ = true;
  ClusterStats stats_;
  redisContext* cur_ = nullptr;   // the connection commands go to
  Context* cur_owner_ = nullptr;  // what owns cur_, reset by Drop()
  bool healthy_ = false;
};

}  // namespace wxcanary::source
