// Healing against a real redis-server: every storage layout, the rewrite race, two instances.

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <condition_variable>
#include <latch>
#include <random>
#include <thread>

#include "heal/fake_heal_store.h"
#include "heal/heal_store.h"
#include "heal/healer.h"
#include "source/redis_connection.h"
#include "support/fakes.h"
#include "support/redis_server.h"

namespace wxcanary::heal {
namespace {

using namespace std::chrono_literals;
using testing::MetricValue;
using wxcanary::testing::CapturingLogger;
using wxcanary::testing::RedisServer;

config::Redis RedisConfig(const RedisServer& server) {
  config::Redis r;
  r.name = "main";
  r.host = "127.0.0.1";
  r.port = server.port();
  return r;
}

Target MakeTarget(const std::string& key, config::Storage storage = config::Storage::kString,
                  config::HealMode mode = config::HealMode::kEvict) {
  Target t = wxcanary::testing::MakeTarget("wx0001", "prod");
  t.env.redis = "main";
  t.env.key = key;
  t.env.storage = storage;
  if (storage == config::Storage::kJson) t.env.json_path = "access_token";
  if (storage == config::Storage::kHash) t.env.hash_field = "token";
  t.env.heal = mode;
  return t;
}

// What the probe runner would hand over after WeChat said 40001 to what Redis holds now.
ProbeResult DeadProbe(source::RedisConnection& conn, const Target& t) {
  auto read = conn.Read(t.env);
  EXPECT_EQ(read.status, source::TokenRead::Status::kOk) << read.error;
  ProbeResult r;
  r.outcome = Outcome::kTokenInvalid;
  r.errcode = 40001;
  r.token_present = true;
  r.token = read.token;
  r.raw_value = read.raw_value;
  r.fingerprint = read.token.Fingerprint();
  r.ttl_seconds = read.ttl_seconds;
  return r;
}

// The app's own Redis client: plain SETs from another connection.
class AppClient {
 public:
  explicit AppClient(int port) : ctx_(redisConnect("127.0.0.1", port)) {
    if (!ctx_ || ctx_->err) throw std::runtime_error("app client cannot connect");
  }
  void Set(const std::string& key, const std::string& value) {
    Reply r(static_cast<redisReply*>(
        redisCommand(ctx_.get(), "SET %b %b", key.data(), key.size(), value.data(), value.size())));
    if (!r || r->type == REDIS_REPLY_ERROR) throw std::runtime_error("app SET failed");
  }
  std::optional<std::string> Get(const std::string& key) {
    Reply r(static_cast<redisReply*>(redisCommand(ctx_.get(), "GET %b", key.data(), key.size())));
    if (!r || r->type != REDIS_REPLY_STRING) return std::nullopt;
    return std::string(r->str, r->len);
  }

 private:
  struct CtxDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
  std::unique_ptr<redisContext, CtxDeleter> ctx_;
};

// The app's second thread: writes one value when told, after a short spin. Blocking waits
// only (no busy-waiting on another thread): the suite runs on 2 loaded cores.
class Racer {
 public:
  explicit Racer(int port) : client_(port), thread_([this] { Loop(); }) {}
  ~Racer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Post(std::string key, std::string value, std::chrono::microseconds spin) {
    {
      std::lock_guard lock(mu_);
      key_ = std::move(key);
      value_ = std::move(value);
      spin_ = spin;
      pending_ = true;
    }
    cv_.notify_all();
  }
  // Blocks until the posted write is done.
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !pending_; });
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return pending_ || stop_; });
      if (stop_) return;
      auto key = key_;
      auto value = value_;
      auto until = std::chrono::steady_clock::now() + spin_;
      lock.unlock();
      while (std::chrono::steady_clock::now() < until) {
      }
      client_.Set(key, value);
      lock.lock();
      pending_ = false;
      cv_.notify_all();
    }
  }

  AppClient client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string key_, value_;
  std::chrono::microseconds spin_{0};
  bool pending_ = false;
  bool stop_ = false;
  std::thread thread_;
};

class RedisHealTest : public ::testing::Test {
 protected:
  RedisHealTest()
      : store_({{"main", RedisConfig(server_)}}, RealClock::Instance()),
        reader_(RedisConfig(server_), RealClock::Instance()) {
    settings_.budget_per_hour = 1'000'000;  // the race runs many heals
  }

  std::unique_ptr<Healer> MakeHealer(telemetry::Exposition& exposition, HealStore& store,
                                     const std::string& instance, TokenFetcher* fetcher = nullptr) {
    return std::make_unique<Healer>(settings_, store, fetcher, exposition, logger_, clock_,
                                    instance);
  }

  double Heals(telemetry::Exposition& exposition, const Target& t, const std::string& action,
               const std::string& result) {
    return MetricValue(exposition, "wxcanary_heals_total",
                       {{"app_id", t.app_id},
                        {"app_env", t.app_env},
                        {"action", action},
                        {"result", result}})
        .value_or(0);
  }

  RedisServer server_;
  config::Heal settings_;
  FakeClock clock_;
  CapturingLogger logger_;
  RedisHealStore store_;
  source::RedisConnection reader_;
};

TEST_F(RedisHealTest, every_layout_is_evicted_only_while_it_holds_the_failing_value) {
  struct Layout {
    config::Storage storage;
    std::string stale;  // raw stored values
    std::string fresh;
  };
  const std::vector<Layout> layouts = {
      {config::Storage::kString, "STALE-1", "FRESH-1"},
      {config::Storage::kJson, R"({"access_token":"STALE-2","expires_at":1700007200})",
       R"({"access_token":"FRESH-2","expires_at":1700014400})"},
      {config::Storage::kHash, "STALE-3", "FRESH-3"},
  };
  telemetry::Exposition exposition;
  auto healer = MakeHealer(exposition, store_, "instance-a");
  for (const auto& l : layouts) {
    for (bool rewritten : {false, true}) {
      SCOPED_TRACE(std::string(l.stale) + (rewritten ? " rewritten" : " unchanged"));
      const std::string key = "cache:" + std::to_string(static_cast<int>(l.storage)) +
                              (rewritten ? ":rewritten" : ":unchanged");
      Target t = MakeTarget(key, l.storage);
      t.app_env = key;  // one target per case: no cooldown between them
      auto put = [&](const std::string& raw) {
        if (l.storage == config::Storage::kHash) {
          server_.Cli({"HSET", key, "token", raw, "other", "kept"});
        } else {
          server_.Cli({"SET", key, raw});
        }
      };
      put(l.stale);
      auto dead = DeadProbe(reader_, t);
      healer->Record(t, dead);
      if (rewritten) put(l.fresh);
      healer->Record(t, dead);

      if (l.storage == config::Storage::kHash) {
        EXPECT_EQ(server_.Cli({"HGET", key, "token"}), rewritten ? l.fresh : "");
        EXPECT_EQ(server_.Cli({"HGET", key, "other"}), "kept");  // only the field goes
      } else {
        EXPECT_EQ(server_.Cli({"GET", key}), rewritten ? l.fresh : "");
      }
      EXPECT_EQ(Heals(exposition, t, "evict", rewritten ? "skipped_changed" : "done"), 1);
    }
  }
}

TEST_F(RedisHealTest, a_token_rewritten_during_the_heal_is_never_deleted) {
  constexpr int kIterations = 1200;
  telemetry::Exposition exposition;
  auto healer = MakeHealer(exposition, store_, "instance-a");
  AppClient app(server_.port());
  Racer racer(server_.port());
  std::mt19937 rng(20261130);

  int fresh_deleted = 0;
  int stale_left = 0;
  int rewrites = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string key = "race:" + std::to_string(i);
    const std::string stale = "STALE-" + std::to_string(i);
    const std::string fresh = "FRESH-" + std::to_string(i);
    Target t = MakeTarget(key);
    t.app_env = "race" + std::to_string(i);  // own cooldown and lock per iteration
    app.Set(key, stale);
    auto dead = DeadProbe(reader_, t);
    healer->Record(t, dead);

    // 0: the app does not touch the key; 1: rewrites just before the heal;
    // 2: its other thread rewrites concurrently, after a random spin, so both orders happen.
    const int mode = i % 3;
    if (mode == 1) app.Set(key, fresh);
    if (mode == 2) {
      racer.Post(key, fresh,
                 std::chrono::microseconds(std::uniform_int_distribution<int>(0, 400)(rng)));
    }
    healer->Record(t, dead);
    if (mode == 2) racer.Wait();

    auto now = app.Get(key);
    if (mode == 0) {
      if (now.has_value()) ++stale_left;
    } else {
      ++rewrites;
      if (now != fresh) ++fresh_deleted;
    }
  }
  EXPECT_EQ(fresh_deleted, 0) << "of " << rewrites << " rewrites";
  EXPECT_EQ(stale_left, 0);
  const double done = testing::CounterSum(exposition, "wxcanary_heals_total",
                                          {{"action", "evict"}, {"result", "done"}});
  const double changed = testing::CounterSum(exposition, "wxcanary_heals_total",
                                             {{"action", "evict"}, {"result", "skipped_changed"}});
  EXPECT_EQ(done + changed, kIterations);
  EXPECT_GE(changed, kIterations / 3);  // at least every rewrite-before-heal
  EXPECT_GE(done, kIterations / 3);     // at least every untouched key
  std::cout << "race: " << kIterations << " heals, " << done << " evicted, " << changed
            << " skipped_changed, " << rewrites << " rewrites, 0 fresh deleted\n";
}

TEST_F(RedisHealTest, two_instances_on_one_key_only_one_acts) {
  constexpr int kRounds = 50;
  RedisHealStore other_store({{"main", RedisConfig(server_)}}, RealClock::Instance());
  telemetry::Exposition reg_a, reg_b;
  auto a = MakeHealer(reg_a, store_, "instance-a");
  auto b = MakeHealer(reg_b, other_store, "instance-b");
  AppClient app(server_.port());
  for (int i = 0; i < kRounds; ++i) {
    const std::string key = "shared:" + std::to_string(i);
    Target t = MakeTarget(key);
    t.app_env = "shared" + std::to_string(i);
    app.Set(key, "STALE");
    auto dead = DeadProbe(reader_, t);
    a->Record(t, dead);
    b->Record(t, dead);
    std::latch start(2);
    std::thread ta([&] {
      start.arrive_and_wait();
      a->Record(t, dead);
    });
    std::thread tb([&] {
      start.arrive_and_wait();
      b->Record(t, dead);
    });
    ta.join();
    tb.join();
    SCOPED_TRACE(key);
    EXPECT_EQ(Heals(reg_a, t, "evict", "done") + Heals(reg_b, t, "evict", "done"), 1);
    EXPECT_EQ(
        Heals(reg_a, t, "evict", "skipped_locked") + Heals(reg_b, t, "evict", "skipped_locked"), 1);
    EXPECT_EQ(app.Get(key), std::nullopt);
  }
}

TEST_F(RedisHealTest, the_lock_is_set_nx_with_the_configured_ttl_and_owner) {
  settings_.lock_ttl = 7s;
  telemetry::Exposition exposition;
  auto healer = MakeHealer(exposition, store_, "instance-a");
  Target t = MakeTarget("ACCESS_TOKEN_CACHE:wx0001");
  server_.Cli({"SET", t.env.key, "STALE"});
  auto dead = DeadProbe(reader_, t);
  healer->Record(t, dead);
  healer->Record(t, dead);
  EXPECT_EQ(server_.Cli({"GET", "wxcanary:heal-lock:ACCESS_TOKEN_CACHE:wx0001"}), "instance-a");
  const int pttl = std::stoi(server_.Cli({"PTTL", "wxcanary:heal-lock:ACCESS_TOKEN_CACHE:wx0001"}));
  EXPECT_GT(pttl, 0);
  EXPECT_LE(pttl, 7000);
}

TEST_F(RedisHealTest, dry_run_deletes_nothing_in_redis) {
  telemetry::Exposition exposition;
  auto healer = MakeHealer(exposition, store_, "instance-a");
  Target t =
      MakeTarget("ACCESS_TOKEN_CACHE:wx0001", config::Storage::kString, config::HealMode::kDryRun);
  server_.Cli({"SET", t.env.key, "STALE", "EX", "5400"});
  auto dead = DeadProbe(reader_, t);
  healer->Record(t, dead);
  healer->Record(t, dead);
  EXPECT_EQ(server_.Cli({"GET", t.env.key}), "STALE");
  EXPECT_EQ(Heals(exposition, t, "dry_run", "done"), 1);
  EXPECT_EQ(logger_.WithAction("heal_dry_run").at(0).fields["wxcanary.heal.reason"],
            "2 consecutive 40001 with redis ttl 5400s");
}

TEST_F(RedisHealTest, refresh_writes_the_fetched_token_with_a_ttl) {
  testing::FakeFetcher fetcher("STABLE-TOKEN", 7200s);
  telemetry::Exposition exposition;
  auto healer = MakeHealer(exposition, store_, "instance-a", &fetcher);
  Target t = MakeTarget("ACCESS_TOKEN_CACHE:wx0001");
  t.env.heal_refresh = true;
  server_.Cli({"SET", t.env.key, "STALE"});
  auto dead = DeadProbe(reader_, t);
  healer->Record(t, dead);
  healer->Record(t, dead);
  EXPECT_EQ(server_.Cli({"GET", t.env.key}), "STABLE-TOKEN");
  const int ttl = std::stoi(server_.Cli({"TTL", t.env.key}));
  EXPECT_GT(ttl, 6800);
  EXPECT_LE(ttl, 6900);  // 7200 - 300 margin
  EXPECT_EQ(Heals(exposition, t, "refresh", "done"), 1);
}

TEST_F(RedisHealTest, redis_down_is_a_heal_error_not_a_crash) {
  telemetry::Exposition exposition;
  auto healer = MakeHealer(exposition, store_, "instance-a");
  Target t = MakeTarget("ACCESS_TOKEN_CACHE:wx0001");
  server_.Cli({"SET", t.env.key, "STALE"});
  auto dead = DeadProbe(reader_, t);
  server_.Kill();
  healer->Record(t, dead);
  healer->Record(t, dead);
  EXPECT_EQ(Heals(exposition, t, "evict", "error"), 1);
  auto events = logger_.WithAction("heal_skipped");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].fields["error.message"].get<std::string>().empty());
}

TEST_F(RedisHealTest, an_unknown_redis_name_is_an_error_naming_it) {
  Target t = MakeTarget("k");
  t.env.redis = "nowhere";
  std::string error;
  EXPECT_FALSE(store_.CompareAndDelete(t.env, Secret("x"), &error).has_value());
  EXPECT_EQ(error, "redis \"nowhere\" is not configured");
}

}  // namespace
}  // namespace wxcanary::heal
