#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <thread>

#include "common/clock.h"
#include "source/async_redis.h"
#include "source/redis_connection.h"
#include "support/redis_server.h"
#include "support/silent_listener.h"

namespace wxcanary::source {
namespace {

using config::Storage;
using Status = TokenRead::Status;
using testing::RedisServer;
using namespace std::chrono_literals;

config::Redis RedisCfg(const RedisServer& server, int db = 0) {
  config::Redis cfg;
  cfg.name = "main";
  cfg.host = "127.0.0.1";
  cfg.port = server.port();
  cfg.db = db;
  return cfg;
}

config::Environment Env(std::string key, Storage storage = Storage::kString,
                        std::string json_path = "", std::string field = "") {
  config::Environment env;
  env.name = "prod";
  env.redis = "main";
  env.key = std::move(key);
  env.storage = storage;
  env.json_path = std::move(json_path);
  env.hash_field = std::move(field);
  return env;
}

// A plain second client for the other side of a race: the app rewriting its key.
class RawClient {
 public:
  explicit RawClient(int port) : ctx_(redisConnect("127.0.0.1", port)) {
    if (!ctx_ || ctx_->err) throw std::runtime_error("raw client cannot connect");
  }
  void Set(const std::string& key, const std::string& value) {
    std::array<const char*, 3> argv{"SET", key.c_str(), value.c_str()};
    std::array<size_t, 3> len{3, key.size(), value.size()};
    freeReplyObject(redisCommandArgv(ctx_.get(), 3, argv.data(), len.data()));
  }
  /// The value, or "<nil>" when the key is absent.
  std::string Get(const std::string& key) {
    std::array<const char*, 2> argv{"GET", key.c_str()};
    std::array<size_t, 2> len{3, key.size()};
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_.get(), 2, argv.data(), len.data()));
    if (r == nullptr) throw std::runtime_error("raw client: GET failed");
    std::string out = r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "<nil>";
    freeReplyObject(r);
    return out;
  }

 private:
  struct Free {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, Free> ctx_;
};

// Every read test runs through both readers: RedisConnection (blocking, what the worker pool and
// the heal and keeper stores use) and AsyncRedis (the probe engine's event loop). They must say
// exactly the same about every key.
class SyncReader {
 public:
  SyncReader(const config::Redis& cfg, Clock& clock) : conn_(cfg, clock) {}
  TokenRead Read(const config::Environment& env) { return conn_.Read(env); }
  [[nodiscard]] bool healthy() const { return conn_.healthy(); }

 private:
  RedisConnection conn_;
};

class AsyncReader {
 public:
  AsyncReader(const config::Redis& cfg, Clock& clock) : redis_(loop_, cfg, clock) {}
  TokenRead Read(const config::Environment& env) {
    std::optional<TokenRead> out;
    redis_.Read(env, [&out](TokenRead r) { out = std::move(r); });
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (!out && std::chrono::steady_clock::now() < until) loop_.RunOnce(100ms);
    if (!out) throw std::runtime_error("AsyncRedis never answered");
    return std::move(*out);
  }
  [[nodiscard]] bool healthy() const { return redis_.healthy(); }

 private:
  io::EventLoop loop_;
  AsyncRedis redis_;
};

template <typename Reader>
class Read : public ::testing::Test {};
class ReaderNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SyncReader> ? "RedisConnection" : "AsyncRedis";
  }
};
using Readers = ::testing::Types<SyncReader, AsyncReader>;
TYPED_TEST_SUITE(Read, Readers, ReaderNames);

TYPED_TEST(Read, reads_each_storage_layout_with_its_ttl) {
  RedisServer redis;
  redis.Cli({"SET", "ACCESS_TOKEN_CACHE:wx1", "tokString", "EX", "7200"});
  redis.Cli(
      {"SET", "wx:json:wx1", R"({"data":{"token":"tokJson"},"expires_in":7200})", "EX", "600"});
  redis.Cli({"HSET", "wx:hash", "wx1", "tokHash", "other", "x"});
  redis.Cli({"EXPIRE", "wx:hash", "300"});
  redis.Cli({"HSET", "wx:hashjson", "wx1", R"({"access_token":"tokHashJson"})"});
  TypeParam conn(RedisCfg(redis), RealClock::Instance());

  struct Case {
    config::Environment env;
    std::string token;
    std::string raw;
    int64_t min_ttl, max_ttl;
  };
  const Case cases[] = {
      {Env("ACCESS_TOKEN_CACHE:wx1"), "tokString", "tokString", 7190, 7200},
      {Env("wx:json:wx1", Storage::kJson, "data.token"), "tokJson",
       R"({"data":{"token":"tokJson"},"expires_in":7200})", 590, 600},
      {Env("wx:hash", Storage::kHash, "", "wx1"), "tokHash", "tokHash", 290, 300},
      {Env("wx:hashjson", Storage::kHash, "access_token", "wx1"), "tokHashJson",
       R"({"access_token":"tokHashJson"})", -1, -1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.env.key);
    TokenRead r = conn.Read(c.env);
    ASSERT_EQ(r.status, Status::kOk) << r.error;
    EXPECT_EQ(r.token.Reveal(), c.token);
    EXPECT_EQ(r.raw_value.Reveal(), c.raw);
    EXPECT_GE(r.ttl_seconds, c.min_ttl);
    EXPECT_LE(r.ttl_seconds, c.max_ttl);
    EXPECT_EQ(r.error, "");
  }
  EXPECT_TRUE(conn.healthy());
}

TYPED_TEST(Read, maps_absent_empty_undecodable_and_wrong_type) {
  RedisServer redis;
  redis.Cli({"SET", "empty", ""});
  redis.Cli({"SET", "noexpiry", "tokNoTtl"});
  redis.Cli({"SET", "notjson", "secretNotJson", "EX", "100"});
  redis.Cli({"LPUSH", "alist", "x"});
  redis.Cli({"HSET", "h", "other", "x"});
  TypeParam conn(RedisCfg(redis), RealClock::Instance());

  TokenRead missing = conn.Read(Env("nokey"));
  EXPECT_EQ(missing.status, Status::kMissing);
  EXPECT_EQ(missing.ttl_seconds, -2);
  EXPECT_EQ(missing.error, "key does not exist");

  TokenRead field = conn.Read(Env("h", Storage::kHash, "", "wx1"));
  EXPECT_EQ(field.status, Status::kMissing);
  EXPECT_EQ(field.ttl_seconds, -1);
  EXPECT_EQ(field.error, R"(hash field "wx1" does not exist)");

  TokenRead empty = conn.Read(Env("empty"));
  EXPECT_EQ(empty.status, Status::kMissing);
  EXPECT_EQ(empty.ttl_seconds, -1);

  TokenRead no_ttl = conn.Read(Env("noexpiry"));
  EXPECT_EQ(no_ttl.status, Status::kOk);
  EXPECT_EQ(no_ttl.ttl_seconds, -1);

  TokenRead bad = conn.Read(Env("notjson", Storage::kJson, "access_token"));
  EXPECT_EQ(bad.status, Status::kUndecodable);
  EXPECT_EQ(bad.error, "value is not JSON (parse error at byte 1)");
  EXPECT_EQ(bad.raw_value.Reveal(), "secretNotJson");  // kept for compare-and-delete
  EXPECT_TRUE(bad.token.empty());
  EXPECT_GT(bad.ttl_seconds, 0);

  EXPECT_EQ(empty.error, "value is empty");

  // A key of the wrong type is the target's problem (issue 21.2), named with what is there.
  TokenRead wrong = conn.Read(Env("alist"));
  EXPECT_EQ(wrong.status, Status::kUndecodable);
  EXPECT_EQ(wrong.error, "key alist holds a list, not the string that storage string reads");
  // The server answered: the connection stays usable and healthy.
  EXPECT_TRUE(conn.healthy());
  EXPECT_EQ(conn.Read(Env("noexpiry")).status, Status::kOk);

  TokenRead hash_on_string = conn.Read(Env("noexpiry", Storage::kHash, "", "wx1"));
  EXPECT_EQ(hash_on_string.status, Status::kUndecodable);
  EXPECT_EQ(hash_on_string.error,
            "key noexpiry holds a string, not the hash that storage hash reads");
  TokenRead json_on_hash = conn.Read(Env("h", Storage::kJson, "access_token"));
  EXPECT_EQ(json_on_hash.error, "key h holds a hash, not the string that storage json reads");
  EXPECT_TRUE(conn.healthy());
}

// A JSON value with a number no double holds elsewhere in it still yields its token (issue 21.5:
// it used to fail as "error 406").
// The event loop formats its commands itself (FormatResp): a key with spaces, CR LF, a quote,
// UTF-8 or binary bytes must still be read as exactly that key, never split into arguments.
TYPED_TEST(Read, reads_keys_with_spaces_line_breaks_and_binary_bytes_as_one_argument) {
  RedisServer server;
  RawClient app(server.port());
  const std::vector<std::string> keys = {"token cache:wx1", "tok\r\n*1\r\n$4\r\nPING\r\n",
                                         "tok\"en\xE4\xB8\xAD", std::string("bin\0ary\xff", 9),
                                         std::string(300, 'k')};
  for (size_t i = 0; i < keys.size(); ++i) app.Set(keys[i], "token-" + std::to_string(i));
  TypeParam reader(RedisCfg(server), RealClock::Instance());
  for (size_t i = 0; i < keys.size(); ++i) {
    const TokenRead r = reader.Read(Env(keys[i]));
    ASSERT_EQ(r.status, Status::kOk) << i << ": " << r.error;
    EXPECT_EQ(r.token.Reveal(), "token-" + std::to_string(i)) << i;
  }
  EXPECT_EQ(app.Get("PING"), "<nil>");  // nothing of a key ran as a command of its own
}

TEST(FormatResp, writes_each_argument_length_prefixed) {
  std::string out = "left over from the last command";
  ReadCommand cmd;
  cmd.argv = {"GET", std::string_view("a\r\nb\0c", 6)};
  cmd.argc = 2;
  FormatResp(cmd, &out);
  EXPECT_EQ(out, std::string("*2\r\n$3\r\nGET\r\n$6\r\na\r\nb\0c\r\n", 25));
  const std::string long_arg(1000, 'x');  // the views must outlive FormatResp
  cmd.argv = {"HGET", "", long_arg};
  cmd.argc = 3;
  FormatResp(cmd, &out);
  EXPECT_EQ(out, "*3\r\n$4\r\nHGET\r\n$0\r\n\r\n$1000\r\n" + std::string(1000, 'x') + "\r\n");
}

TYPED_TEST(Read, reads_a_token_beside_a_number_out_of_double_range) {
  RedisServer redis;
  redis.Cli(
      {"SET", "huge", R"({"n":1e400,"m":[-2E+999,"1e400 in a string"],"access_token":"tokBig"})"});
  TypeParam conn(RedisCfg(redis), RealClock::Instance());
  TokenRead r = conn.Read(Env("huge", Storage::kJson, "access_token"));
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.token.Reveal(), "tokBig");
  TokenRead n = conn.Read(Env("huge", Storage::kJson, "n"));
  EXPECT_EQ(n.error, R"(json_path "n" is a number, not a string)");
}

TYPED_TEST(Read, selects_the_configured_db) {
  RedisServer redis;
  redis.Cli({"SET", "k", "tokInDb3"}, 3);
  TypeParam db3(RedisCfg(redis, 3), RealClock::Instance());
  TypeParam db0(RedisCfg(redis, 0), RealClock::Instance());
  TokenRead r = db3.Read(Env("k"));
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.token.Reveal(), "tokInDb3");
  EXPECT_EQ(db0.Read(Env("k")).status, Status::kMissing);
}

TYPED_TEST(Read, connects_over_a_unix_socket) {
  testing::TempDir dir;
  const std::string sock = (dir.path() / "redis.sock").string();
  RedisServer redis({"--unixsocket", sock, "--unixsocketperm", "700"});
  redis.Cli({"SET", "k", "tokUnix"});
  config::Redis cfg;
  cfg.name = "local";
  cfg.unix_socket = sock;
  cfg.port = 1;  // must be ignored in favour of the socket
  TypeParam conn(cfg, RealClock::Instance());
  TokenRead r = conn.Read(Env("k"));
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.token.Reveal(), "tokUnix");
}

TYPED_TEST(Read, authenticates_acl_user_and_requirepass_and_hides_wrong_passwords) {
  RedisServer redis;
  redis.Cli({"SET", "k", "tokAuth"});
  redis.Cli({"ACL", "SETUSER", "canary", "on", ">userPw-91", "~*", "+@all"});
  redis.Cli({"CONFIG", "SET", "requirepass", "defaultPw-42"});

  config::Redis user = RedisCfg(redis);
  user.username = "canary";
  user.password_value = Secret("userPw-91");
  TypeParam as_user(user, RealClock::Instance());
  TokenRead ok = as_user.Read(Env("k"));
  ASSERT_EQ(ok.status, Status::kOk) << ok.error;
  EXPECT_EQ(ok.token.Reveal(), "tokAuth");

  config::Redis by_pass = RedisCfg(redis);
  by_pass.password_value = Secret("defaultPw-42");
  TypeParam as_default(by_pass, RealClock::Instance());
  EXPECT_EQ(as_default.Read(Env("k")).status, Status::kOk);

  TypeParam anonymous(RedisCfg(redis), RealClock::Instance());
  TokenRead noauth = anonymous.Read(Env("k"));
  EXPECT_EQ(noauth.status, Status::kRedisError);
  EXPECT_NE(noauth.error.find("NOAUTH"), std::string::npos) << noauth.error;
  EXPECT_FALSE(anonymous.healthy());  // wxcanary_redis_up 0: this Redis serves nothing to us

  struct Wrong {
    std::string username, password;
  };
  for (const Wrong& w : {Wrong{"canary", "wrongUserPw-7"}, Wrong{"", "wrongDefaultPw-8"}}) {
    config::Redis cfg = RedisCfg(redis);
    cfg.username = w.username;
    cfg.password_value = Secret(w.password);
    TypeParam conn(cfg, RealClock::Instance());
    TokenRead r = conn.Read(Env("k"));
    EXPECT_EQ(r.status, Status::kRedisError);
    EXPECT_NE(r.error.find("AUTH failed: WRONGPASS"), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find(w.password), std::string::npos) << r.error;
    EXPECT_FALSE(conn.healthy());
  }
}

TYPED_TEST(Read, backs_off_while_down_and_recovers_after_restart) {
  RedisServer redis;
  redis.Cli({"SET", "k", "tokBefore"});
  FakeClock clock;
  TypeParam conn(RedisCfg(redis), clock);
  ASSERT_EQ(conn.Read(Env("k")).status, Status::kOk);
  EXPECT_TRUE(conn.healthy());

  redis.Kill();
  TokenRead io = conn.Read(Env("k"));  // the established connection breaks
  EXPECT_EQ(io.status, Status::kRedisError);
  EXPECT_FALSE(conn.healthy());
  TokenRead refused = conn.Read(Env("k"));  // first reconnect attempt is immediate
  EXPECT_EQ(refused.status, Status::kRedisError);
  EXPECT_NE(refused.error.find("connect 127.0.0.1:"), std::string::npos) << refused.error;

  // Backoff doubles from 100 ms: a call inside the window never touches the network.
  const std::chrono::milliseconds waits[] = {100ms,  200ms,  400ms,  800ms,
                                             1600ms, 3200ms, 5000ms, 5000ms};
  for (auto wait : waits) {
    SCOPED_TRACE(wait.count());
    clock.Advance(wait - 1ms);
    EXPECT_EQ(conn.Read(Env("k")).error, "reconnect backoff");
    clock.Advance(1ms);
    TokenRead r = conn.Read(Env("k"));
    EXPECT_EQ(r.status, Status::kRedisError);
    EXPECT_NE(r.error, "reconnect backoff");
  }

  redis.Start();
  redis.Cli({"SET", "k", "tokAfter"});
  EXPECT_EQ(conn.Read(Env("k")).error, "reconnect backoff");
  clock.Advance(5000ms);
  TokenRead back = conn.Read(Env("k"));
  ASSERT_EQ(back.status, Status::kOk) << back.error;
  EXPECT_EQ(back.token.Reveal(), "tokAfter");
  EXPECT_TRUE(conn.healthy());

  // Success reset the backoff: the next outage starts again at 100 ms.
  redis.Kill();
  EXPECT_EQ(conn.Read(Env("k")).status, Status::kRedisError);
  EXPECT_NE(conn.Read(Env("k")).error, "reconnect backoff");
  clock.Advance(100ms);
  EXPECT_NE(conn.Read(Env("k")).error, "reconnect backoff");
}

TEST(RedisConnectionHeal, compare_and_delete_removes_only_the_expected_value) {
  RedisServer redis;
  redis.Cli({"SET", "s", "stale"});
  redis.Cli({"HSET", "h", "wx1", "staleH", "wx2", "keep"});
  RedisConnection conn(RedisCfg(redis), RealClock::Instance());
  std::string error;

  EXPECT_EQ(conn.CompareAndDelete(Env("s"), Secret("other"), &error), 0);
  EXPECT_EQ(redis.Cli({"GET", "s"}), "stale");
  EXPECT_EQ(conn.CompareAndDelete(Env("s"), Secret("stale"), &error), 1);
  EXPECT_EQ(redis.Cli({"EXISTS", "s"}), "0");
  EXPECT_EQ(conn.CompareAndDelete(Env("s"), Secret("stale"), &error), 0);

  auto hash = Env("h", Storage::kHash, "", "wx1");
  EXPECT_EQ(conn.CompareAndDelete(hash, Secret("keep"), &error), 0);
  EXPECT_EQ(conn.CompareAndDelete(hash, Secret("staleH"), &error), 1);
  EXPECT_EQ(redis.Cli({"HEXISTS", "h", "wx1"}), "0");
  EXPECT_EQ(redis.Cli({"HGET", "h", "wx2"}), "keep");  // only the field goes

  EXPECT_EQ(conn.CompareAndDelete(Env("s"), Secret(""), &error), std::nullopt);
  EXPECT_EQ(error, "compare-and-delete on s: expected value is empty");

  // Survives a SCRIPT FLUSH (NOSCRIPT -> EVAL fallback).
  redis.Cli({"SET", "s", "again"});
  redis.Cli({"SCRIPT", "FLUSH"});
  EXPECT_EQ(conn.CompareAndDelete(Env("s"), Secret("again"), &error), 1) << error;

  // A type error is an error, without the value in it.
  redis.Cli({"LPUSH", "l", "x"});
  EXPECT_EQ(conn.CompareAndDelete(Env("l"), Secret("secretVal"), &error), std::nullopt);
  EXPECT_NE(error.find("WRONGTYPE"), std::string::npos) << error;
  EXPECT_EQ(error.find("secretVal"), std::string::npos) << error;
}

TEST(RedisConnectionHeal, compare_and_delete_never_deletes_a_value_rewritten_after_the_read) {
  RedisServer redis;
  RedisConnection healer(RedisCfg(redis), RealClock::Instance());
  RawClient app(redis.port());
  const auto env = Env("ACCESS_TOKEN_CACHE:race");
  int fresh_deleted = 0, stale_deleted = 0, errors = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string stale = "stale-" + std::to_string(i);
    const std::string fresh = "fresh-" + std::to_string(i);
    app.Set(env.key, stale);
    TokenRead seen = healer.Read(env);
    ASSERT_EQ(seen.token.Reveal(), stale);
    const bool rewrite = i % 2 == 0;  // odd rounds: nobody rewrote, the heal must act
    if (rewrite) app.Set(env.key, fresh);
    auto deleted = healer.CompareAndDelete(env, seen.raw_value, nullptr);
    if (!deleted) {
      ++errors;
      continue;
    }
    const std::string now = app.Get(env.key);
    if (rewrite && now != fresh) ++fresh_deleted;
    if (!rewrite && *deleted == 1 && now == "<nil>") ++stale_deleted;
  }
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(fresh_deleted, 0);
  EXPECT_EQ(stale_deleted, 500);
}

TEST(RedisConnectionHeal, compare_and_delete_is_atomic_against_a_concurrent_writer) {
  RedisServer redis;
  RedisConnection healer(RedisCfg(redis), RealClock::Instance());
  RawClient seeder(redis.port());
  RawClient app(redis.port());
  const auto env = Env("ACCESS_TOKEN_CACHE:concurrent");
  int lost = 0, deleted_before_write = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string fresh = "fresh-" + std::to_string(i);
    seeder.Set(env.key, "stale");
    // The app's write lands before or after the heal; either way the fresh token must survive.
    std::thread writer([&] { app.Set(env.key, fresh); });
    auto deleted = healer.CompareAndDelete(env, Secret("stale"), nullptr);
    writer.join();
    ASSERT_TRUE(deleted.has_value());
    deleted_before_write += *deleted;
    if (seeder.Get(env.key) != fresh) ++lost;
  }
  EXPECT_EQ(lost, 0);
  std::printf("[ info ] concurrent race: heal won %d of 1000 rounds\n", deleted_before_write);
}

TEST(RedisConnectionHeal, compare_and_set_writes_only_over_the_expected_value_with_a_ttl) {
  RedisServer redis;
  RedisConnection conn(RedisCfg(redis), RealClock::Instance());
  std::string error;
  const auto s = Env("s");

  EXPECT_EQ(conn.CompareAndSet(s, Secret(""), Secret("new1"), 600s, &error), 1) << error;
  EXPECT_EQ(redis.Cli({"GET", "s"}), "new1");
  const int ttl = std::stoi(redis.Cli({"TTL", "s"}));
  EXPECT_GT(ttl, 590);
  EXPECT_LE(ttl, 600);
  EXPECT_EQ(conn.CompareAndSet(s, Secret(""), Secret("new2"), 600s, &error), 0);  // not absent
  EXPECT_EQ(conn.CompareAndSet(s, Secret("other"), Secret("new2"), 600s, &error), 0);
  EXPECT_EQ(redis.Cli({"GET", "s"}), "new1");
  EXPECT_EQ(conn.CompareAndSet(s, Secret("new1"), Secret("new2"), 60s, &error), 1);
  EXPECT_EQ(redis.Cli({"GET", "s"}), "new2");
  EXPECT_LE(std::stoi(redis.Cli({"TTL", "s"})), 60);

  const auto h = Env("h", Storage::kHash, "", "wx1");
  EXPECT_EQ(conn.CompareAndSet(h, Secret(""), Secret("hv1"), 300s, &error), 1) << error;
  EXPECT_EQ(redis.Cli({"HGET", "h", "wx1"}), "hv1");
  EXPECT_EQ(conn.CompareAndSet(h, Secret("nope"), Secret("hv2"), 300s, &error), 0);
  EXPECT_EQ(conn.CompareAndSet(h, Secret("hv1"), Secret("hv2"), 300s, &error), 1);
  EXPECT_EQ(redis.Cli({"HGET", "h", "wx1"}), "hv2");
  const int hash_ttl = std::stoi(redis.Cli({"TTL", "h"}));
  EXPECT_GT(hash_ttl, 290);
  EXPECT_LE(hash_ttl, 300);

  EXPECT_EQ(conn.CompareAndSet(s, Secret("new2"), Secret("x"), -1s, &error), std::nullopt);
  EXPECT_EQ(error, "compare-and-set on s: ttl -1s is negative");

  // ttl 0 keeps the key's TTL: a key without one (an app that keeps the expiry in the value)
  // stays without one, and one with a TTL keeps it.
  redis.Cli({"SET", "s", "no-ttl"});
  EXPECT_EQ(conn.CompareAndSet(s, Secret("no-ttl"), Secret("still-no-ttl"), 0s, &error), 1);
  EXPECT_EQ(redis.Cli({"TTL", "s"}), "-1");
  redis.Cli({"SET", "s", "ttl", "EX", "500"});
  EXPECT_EQ(conn.CompareAndSet(s, Secret("ttl"), Secret("kept"), 0s, &error), 1);
  EXPECT_GT(std::stoi(redis.Cli({"TTL", "s"})), 490);

  // A hash holding other fields: no TTL is added (it would expire them too); one it has is
  // only ever extended.
  redis.Cli({"HSET", "shared", "other-app", "theirs"});
  const auto f = Env("shared", Storage::kHash, "", "wx1");
  EXPECT_EQ(conn.CompareAndSet(f, Secret(""), Secret("ours"), 300s, &error), 1) << error;
  EXPECT_EQ(redis.Cli({"TTL", "shared"}), "-1");
  redis.Cli({"EXPIRE", "shared", "1000"});
  EXPECT_EQ(conn.CompareAndSet(f, Secret("ours"), Secret("ours2"), 300s, &error), 1);
  EXPECT_GT(std::stoi(redis.Cli({"TTL", "shared"})), 990) << "not shortened";
  EXPECT_EQ(conn.CompareAndSet(f, Secret("ours2"), Secret("ours3"), 2000s, &error), 1);
  EXPECT_GT(std::stoi(redis.Cli({"TTL", "shared"})), 1990) << "extended";
  // A hash whose one field this is: its TTL is the field's, shortened too.
  redis.Cli({"HSET", "solo", "wx1", "app-own"});
  redis.Cli({"EXPIRE", "solo", "7200"});
  const auto solo = Env("solo", Storage::kHash, "", "wx1");
  EXPECT_EQ(conn.CompareAndSet(solo, Secret("app-own"), Secret("kept"), 300s, &error), 1);
  EXPECT_LE(std::stoi(redis.Cli({"TTL", "solo"})), 300);
}

TEST(RedisConnectionHeal, lock_is_exclusive_and_only_its_owner_unlocks) {
  RedisServer redis;
  RedisConnection a(RedisCfg(redis), RealClock::Instance());
  RedisConnection b(RedisCfg(redis), RealClock::Instance());
  std::string error;
  const std::string key = "wxcanary:lock:wx1:prod";

  EXPECT_EQ(a.TryLock(key, "instance-a", 10s, &error), true) << error;
  EXPECT_EQ(b.TryLock(key, "instance-b", 10s, &error), false);
  const int pttl = std::stoi(redis.Cli({"PTTL", key}));
  EXPECT_GT(pttl, 9000);
  EXPECT_LE(pttl, 10000);
  EXPECT_EQ(b.Unlock(key, "instance-b", &error), false);  // not b's lock
  EXPECT_EQ(redis.Cli({"GET", key}), "instance-a");
  EXPECT_EQ(a.Unlock(key, "instance-a", &error), true);
  EXPECT_EQ(a.Unlock(key, "instance-a", &error), false);  // already released
  EXPECT_EQ(b.TryLock(key, "instance-b", 10s, &error), true);
  EXPECT_EQ(a.TryLock(key, "instance-a", 10s, &error), false);
}

TEST(RedisConnectionBench, ten_thousand_sequential_reads) {
  RedisServer redis;
  redis.Cli({"SET", "ACCESS_TOKEN_CACHE:bench", "tokBench", "EX", "7200"});
  RedisConnection conn(RedisCfg(redis), RealClock::Instance());
  const auto env = Env("ACCESS_TOKEN_CACHE:bench");
  int ok = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10'000; ++i) ok += conn.Read(env).status == Status::kOk;
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ok, 10'000);
  const double ms = std::chrono::duration<double, std::milli>(elapsed).count();
  std::printf("[ info ] 10000 sequential Read() on loopback: %.1f ms (%.1f us each)\n", ms,
              ms / 10.0);
  ::testing::Test::RecordProperty("read_10k_ms", static_cast<int>(ms));
}

TYPED_TEST(Read, a_key_without_ttl_takes_its_ttl_from_the_value_or_companion_key) {
  RedisServer redis;
  FakeClock clock;  // 1'700'000'000 s
  const std::string bag_1000 =
      R"({"AccessTokenExpireTime":"2023-11-15T06:30:00+08:00","R":{"access_token":"tokBag"}})";
  redis.Cli({"SET", "bag", bag_1000});
  redis.Cli({"SET", "bag_ttl", bag_1000, "EX", "600"});
  redis.Cli({"SET", "bag_past",
             R"({"AccessTokenExpireTime":"2023-11-14T22:00:00Z","R":{"access_token":"tokBag"}})"});
  redis.Cli({"SET", "py", "\"tokPy\""});
  redis.Cli({"SET", "py_expires_at", "1700000500"});
  redis.Cli({"SET", "py_quoted", "\"1700000500\""});
  redis.Cli({"SET", "py_junk", "soon"});
  TypeParam conn(RedisCfg(redis), clock);

  config::Environment bag = Env("bag", Storage::kJson, "R.access_token");
  bag.expiry_path = "AccessTokenExpireTime";
  TokenRead r = conn.Read(bag);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.ttl_seconds, 1000);  // 22:30:00Z is 1000 s after the clock
  EXPECT_EQ(r.expires_at, SystemTime{std::chrono::seconds{1'700'001'000}});

  bag.key = "bag_ttl";  // the key's own TTL wins when it has one
  r = conn.Read(bag);
  EXPECT_GE(r.ttl_seconds, 590);
  EXPECT_LE(r.ttl_seconds, 600);

  bag.key = "bag_past";  // past its expiry: the app would fetch anew; nothing left
  r = conn.Read(bag);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.ttl_seconds, 0);

  config::Environment py = Env("py");
  py.encoding = config::Encoding::kJsonString;
  for (const char* companion : {"py_expires_at", "py_quoted"}) {
    py.expiry_key = py.expiry_key_template = companion;
    r = conn.Read(py);
    ASSERT_EQ(r.status, Status::kOk) << r.error;
    EXPECT_EQ(r.token.Reveal(), "tokPy");
    EXPECT_EQ(r.ttl_seconds, 500) << companion;
  }
  py.expiry_key = py.expiry_key_template = "py_absent";
  r = conn.Read(py);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.ttl_seconds, -1);
  py.expiry_key = py.expiry_key_template = "py_junk";
  r = conn.Read(py);
  EXPECT_EQ(r.status, Status::kUndecodable);
  EXPECT_EQ(r.error, R"(expiry_key "py_junk" does not hold a time (Unix seconds or an ISO 8601 )"
                     R"(date-time))");
}

TEST(RedisConnectionRead, a_secret_derived_key_is_read_by_its_bytes_and_named_by_its_fingerprint) {
  RedisServer redis;
  const std::string real_key = "official_account.access_token.wx1.TOPSECRETvalue.0";
  redis.Cli({"SET", real_key, R"(s:6:"tokPhp";)"});
  RedisConnection conn(RedisCfg(redis), RealClock::Instance());
  config::Environment env = Env("[secret-derived key 1a2b3c4d]");
  env.redis_key = Secret(real_key);
  env.key_from_secret = true;
  TokenRead r = conn.Read(env);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.token.Reveal(), "tokPhp");

  std::string error;
  EXPECT_EQ(conn.CompareAndDelete(env, Secret(R"(s:6:"tokPhp";)"), &error), 1) << error;
  EXPECT_EQ(redis.Cli({"EXISTS", real_key}), "0");

  redis.Cli({"LPUSH", real_key, "x"});  // WRONGTYPE: the message names the key, as shown
  r = conn.Read(env);
  EXPECT_EQ(r.status, Status::kUndecodable);  // the key's problem, not Redis down (issue 21)
  EXPECT_NE(r.error.find("[secret-derived key 1a2b3c4d]"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("TOPSECRET"), std::string::npos) << r.error;
}

// A server that accepts and never answers: every read pipelined on the one connection fails at
// read_timeout, each naming its own key (not the oldest read's), and the server is down.
TEST(AsyncRedisTimeout, every_read_on_a_silent_server_times_out_naming_its_own_key) {
  testing::SilentListener silent;
  config::Redis cfg;
  cfg.name = "silent";
  cfg.host = "127.0.0.1";
  cfg.port = silent.port();
  cfg.read_timeout = 300ms;
  io::EventLoop loop;
  AsyncRedis redis(loop, cfg, RealClock::Instance());
  std::map<std::string, TokenRead> got;
  const auto start = std::chrono::steady_clock::now();
  // Read() keeps a reference to its environment until the answer: they must outlive it.
  const std::vector<config::Environment> envs{Env("first"), Env("second"), Env("third")};
  for (const auto& env : envs)
    redis.Read(env, [&got, key = env.key](TokenRead r) { got[key] = std::move(r); });
  while (got.size() < 3 && std::chrono::steady_clock::now() - start < 10s) loop.RunOnce(100ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(got.size(), 3u);
  for (const auto& [key, r] : got) {
    EXPECT_EQ(r.status, Status::kRedisError);
    EXPECT_EQ(r.error, "GET " + key + ": timed out after 300 ms");
  }
  EXPECT_GE(elapsed, 300ms);
  // Not connect_timeout (1 s) more: the reads sent while connecting wait read_timeout from the
  // connect on.
  EXPECT_LT(elapsed, 1200ms);
  EXPECT_FALSE(redis.healthy());
  EXPECT_EQ(redis.pending(), 0u);
}

}  // namespace
}  // namespace wxcanary::source
