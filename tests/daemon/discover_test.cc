// `wxcanary discover` as a new user runs it: the built binary against a real, password-protected
// redis-server holding tokens (issued by a real wxsim) in the layouts real SDKs write, plus
// decoys. Its stdout is written to a file, which `--config.check` must accept and `wxcanary
// probe --all` must find ok on every target; the output must hold no token, secret,
// secret-derived key or password; and Redis must have seen SCAN and reads only.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/fingerprint.h"
#include "common/jdk_string.h"
#include "config/config.h"
#include "support/redis_cluster.h"
#include "support/redis_sentinel.h"
#include "support/redis_server.h"
#include "support/sdk_values.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPassword = "discover-redis-pw-K9z4";

struct Ran {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

bool Has(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

std::string AppId(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wx00000000000000%02x", 0xd0 + i);
  return buf;
}
std::string SecretOf(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "5ec2e7%024d%02d", 0, i);
  return buf;
}

std::vector<std::string> SimArgs(int apps) {
  std::vector<std::string> args;
  for (int i = 0; i < apps; ++i) {
    args.push_back("--app");
    args.push_back(AppId(i) + ":" + SecretOf(i));
  }
  return args;
}

// Runs the built wxcanary with args; stdout and stderr apart.
Ran Wxcanary(const TempDir& dir, std::vector<std::string> args) {
  static int runs = 0;
  const std::string n = std::to_string(++runs);
  const auto out_file = dir.path() / ("out" + n), err_file = dir.path() / ("err" + n);
  std::string cmd = "exec \"$0\"";
  for (size_t i = 0; i < args.size(); ++i) cmd += " \"$" + std::to_string(i + 1) + "\"";
  cmd += " >" + out_file.string() + " 2>" + err_file.string() + " </dev/null";
  args.insert(args.begin(), {"sh", "-c", cmd, BuiltBinary("wxcanary").string()});
  Subprocess p(args, dir.path() / ("log" + n));
  const int st = p.Wait(60s);
  Ran r;
  if (st != -1 && WIFEXITED(st)) r.code = WEXITSTATUS(st);
  std::ifstream o(out_file), e(err_file);
  std::stringstream os, es;
  os << o.rdbuf();
  es << e.rdbuf();
  r.out = os.str();
  r.err = es.str();
  return r;
}

// The key bytes an sdk preset makes for an app, as the daemon's config makes them.
std::string PresetKey(const std::string& sdk, int app, const std::string& extra = "") {
  ::setenv("WXCANARY_TEST_DISCOVER_SECRET", SecretOf(app).c_str(), 1);
  config::Config cfg =
      config::LoadString("redis: {r: {address: 127.0.0.1:6379}}\napps:\n  - app_id: " + AppId(app) +
                         "\n    secret_env: WXCANARY_TEST_DISCOVER_SECRET\n    environments:\n"
                         "      - {name: x, redis: r, sdk: " +
                         sdk + extra + "}\n");
  return config::RedisKey(cfg.apps[0].environments[0]);
}

// The output lines that are not comments (the config itself).
std::string Uncommented(const std::string& out) {
  std::istringstream in(out);
  std::string line, body;
  while (std::getline(in, line))
    if (line.rfind("#", 0) != 0) body += line + "\n";
  return body;
}

class DiscoverTest : public ::testing::Test {
 protected:
  static constexpr int kApps = 17;

  DiscoverTest() : sim_(SimArgs(kApps)), app_(redis_.port(), kPassword) {
    std::ofstream(pw_file_) << kPassword << "\n";
    for (int i = 0; i < kApps; ++i) {
      secret_files_.push_back(dir_.path() / ("secret" + std::to_string(i)));
      std::ofstream(secret_files_.back()) << SecretOf(i) << "\n";
    }
  }

  std::string Token(int app) {
    tokens_.push_back(sim_.FetchToken(AppId(app), SecretOf(app)));
    return tokens_.back();
  }
  void Set(const std::string& key, const std::string& value, int ttl = 0) {
    app_.Set(key, value, ttl);
    keys_.push_back(key);
  }
  std::string SecretFlag(int app) const {
    return "--secret=" + AppId(app) + "=" + secret_files_[app].string();
  }
  std::vector<std::string> Discover(std::vector<std::string> more = {}) const {
    std::vector<std::string> args = {"discover", "--redis.address=" + redis_.address(),
                                     "--redis.password-file=" + pw_file_.string(),
                                     "--wechat.base-url=" + sim_.base_url()};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  std::string Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--no-auth-warning", "-a", kPassword});
    return redis_.Cli(args);
  }
  // Nothing secret in what discover printed, whatever it printed.
  void ExpectNoSecrets(const Ran& r) {
    const std::string all = r.out + r.err;
    EXPECT_FALSE(Has(all, kPassword)) << "password printed";
    for (const auto& t : tokens_) EXPECT_FALSE(Has(all, t)) << "token printed";
    for (int i = 0; i < kApps; ++i) EXPECT_FALSE(Has(all, SecretOf(i))) << "secret printed";
    for (const auto& k : secret_keys_) {
      EXPECT_FALSE(Has(all, k)) << "secret-derived key printed";
      // An md5-derived key's hash is what makes it secret.
      if (k.size() > 32) {
        EXPECT_FALSE(Has(all, k.substr(k.size() - 32))) << "md5 of a secret printed";
      }
    }
  }

  RedisServer redis_{{"--requirepass", kPassword}};
  WxSim sim_;
  AppRedis app_;
  TempDir dir_;
  std::filesystem::path pw_file_ = dir_.path() / "redis.pw";
  std::vector<std::filesystem::path> secret_files_;
  std::vector<std::string> tokens_;
  std::vector<std::string> keys_;
  std::vector<std::string> secret_keys_;
};

TEST_F(DiscoverTest, prints_a_config_that_checks_and_probes_every_layout_ok_and_lists_the_decoys) {
  const std::time_t now = std::time(nullptr);
  // One app per layout, each with a token of its own (wxsim keeps two per app alive).
  Set("wx:access_token:" + AppId(0), Token(0), 7200);                         // wxjava
  Set("wa:access_token:" + AppId(1), Token(1), 7000);                         // wxjava-ma
  Set("gowechat_officialaccount__access_token_" + AppId(2), Token(2), 5700);  // silenceper
  Set("gowechat_miniprogram__access_token_" + AppId(3), Token(3), 5700);      // silenceper-ma
  // EasyWeChat 6 behind a Symfony cache namespace: the AppSecret is in the key.
  const std::string ew6 = "wxapp:" + PresetKey("easywechat6", 4);
  secret_keys_.push_back(ew6);
  Set(ew6, PhpString(Token(4)), 7200);
  const std::string ew4 = PresetKey("easywechat4", 5);
  secret_keys_.push_back(ew4);
  Set(ew4, EasyWeChat4Value(Token(5)), 7200);
  const std::string pw = PresetKey("powerwechat", 6);
  secret_keys_.push_back(pw);
  Set(pw, PowerWeChatValue(Token(6)), 7200);
  // Senparc: no TTL, the expiry is in the bag (which holds the AppSecret too).
  Set("Senparc:DefaultCache:Container:Senparc.Weixin.MP.Containers.AccessTokenBag:" + AppId(7),
      SenparcBag(Token(7), AppId(7), SecretOf(7), now + 3600));
  // wechatpy, with its companion expiry key.
  Set("wechatpy:" + AppId(8) + "_access_token", JsonStringValue(Token(8)), 7200);
  Set("wechatpy:" + AppId(8) + "_access_token_expires_at", std::to_string(now + 7200), 7200);
  // Spring's default RedisTemplate: JDK-serialized key and value.
  Set(JdkSerializeString("wx:token:" + AppId(9)), JdkSerializeString(Token(9)), 3600);
  // Generic: a plain value, a JSON document, a hash field; Senparc's hash layout.
  Set("myservice:token:" + AppId(10), Token(10), 7200);
  Set("cache:" + AppId(11) + ":access", PowerWeChatValue(Token(11)), 7200);
  app_.HSet("tokens:" + AppId(12), "access_token", Token(12));
  app_.HSet("tokens:" + AppId(12), "expires_in", "7200");
  app_.HSet("Senparc:DefaultCache:Container:Senparc.Weixin.MP.Containers.AccessTokenBag", AppId(13),
            SenparcBag(Token(13), AppId(13), SecretOf(13), now + 3600));
  // ... which holds every app's bag: one environment each.
  app_.HSet("Senparc:DefaultCache:Container:Senparc.Weixin.MP.Containers.AccessTokenBag", AppId(16),
            SenparcBag(Token(16), AppId(16), SecretOf(16), now + 3600));
  const int kTargets = 15;
  // Decoys: an unrelated key; a Redisson/Kryo value under WxJava's key; a secret-derived key
  // without its --secret; jfinal-weixin's FST bytes; an AppId-named key holding no token; a
  // hash without a token field.
  Set("session:4f2a9c", "hello");
  Set("wx:access_token:" + AppId(14), KryoValue(Token(14)), 7200);
  const std::string pw_nosecret = PresetKey("powerwechat", 15);
  secret_keys_.push_back(pw_nosecret);
  Set(pw_nosecret, PowerWeChatValue(Token(15)), 7200);
  Set("jfinal_weixin:" + AppId(15), std::string("\x00\x01\xfc\x0bwx", 6) + "binary", 7200);
  Set("user:" + AppId(15) + ":nickname", "Alice");
  app_.HSet("profile:" + AppId(15), "city", "Shenzhen");

  ASSERT_EQ(Cli({"CONFIG", "RESETSTAT"}), "OK");
  Ran r = Wxcanary(dir_, Discover({"--count=3", SecretFlag(4), SecretFlag(5), SecretFlag(6)}));
  ExpectNoSecrets(r);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  EXPECT_EQ(r.err, "");

  // Read-only, and SCAN (with COUNT), never KEYS: what the server itself counted.
  const std::string stats = Cli({"INFO", "commandstats"});
  EXPECT_TRUE(Has(stats, "cmdstat_scan:")) << stats;
  const std::set<std::string> read_only = {"scan",    "type", "ttl",  "strlen", "hlen",   "get",
                                           "hgetall", "auth", "info", "config", "command"};
  std::istringstream lines(stats);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("cmdstat_", 0) != 0) continue;
    // Redis 7 counts subcommands apart: cmdstat_config|resetstat.
    const std::string cmd = line.substr(8, line.find_first_of(":|") - 8);
    EXPECT_TRUE(read_only.count(cmd)) << "discover sent " << cmd << ": " << line;
  }

  // The config: one environment per key, the preset it matched, the TTL seen.
  const std::filesystem::path config = dir_.path() / "discovered.yml";
  std::ofstream(config) << r.out;
  const std::string body = Uncommented(r.out);
  for (const char* sdk : {"wxjava", "wxjava-ma", "silenceper", "silenceper-ma", "easywechat6",
                          "easywechat4", "powerwechat", "senparc", "wechatpy", "spring-jdk"})
    EXPECT_TRUE(Has(body, std::string("sdk: ") + sdk + "}") ||
                Has(body, std::string("sdk: ") + sdk + ","))
        << sdk << "\n"
        << r.out;
  EXPECT_TRUE(Has(body, "key: \"wxapp:official_account.access_token.{app_id}.{secret}.0\""))
      << r.out;
  EXPECT_TRUE(Has(body, "key: \"myservice:token:{app_id}\"")) << r.out;
  EXPECT_TRUE(Has(body, "key: \"cache:{app_id}:access\", storage: json, json_path: access_token"))
      << r.out;
  EXPECT_TRUE(Has(body, "key: \"tokens:{app_id}\", storage: hash, hash_field: \"access_token\""))
      << r.out;
  EXPECT_TRUE(Has(body, "storage: hash, hash_field: \"" + AppId(13) + "\"")) << r.out;
  EXPECT_TRUE(Has(body, "storage: hash, hash_field: \"" + AppId(16) + "\"")) << r.out;
  EXPECT_TRUE(Has(body, "secret_file: \"" + secret_files_[4].string() + "\"")) << r.out;
  EXPECT_TRUE(Has(body, "password_file: \"" + pw_file_.string() + "\"")) << r.out;
  EXPECT_TRUE(Has(r.out, "sdk: wxjava}  # TTL 7")) << r.out;  // 7200 s, give or take
  EXPECT_TRUE(Has(r.out, "sdk: senparc}  # no TTL; the value says it expires in 3")) << r.out;

  // The decoys, each with its reason.
  EXPECT_TRUE(Has(r.out, "#   \"session:4f2a9c\"\n")) << r.out;
  EXPECT_TRUE(
      Has(r.out, "#   \"wx:access_token:" + AppId(14) + "\": value looks Redisson/Kryo-encoded"))
      << r.out;
  EXPECT_TRUE(Has(r.out, "#   [secret-derived key " + Fingerprint(pw_nosecret) +
                             "]: secret-derived key (sdk powerwechat): no --secret given makes it: "
                             "pass --secret APPID=FILE"))
      << r.out;
  EXPECT_TRUE(Has(r.out, "#   \"jfinal_weixin:" + AppId(15) + "\": value is binary")) << r.out;
  EXPECT_TRUE(Has(r.out, "sdk jfinal-weixin: jfinal-weixin stores FST-serialized objects"))
      << r.out;
  EXPECT_TRUE(Has(
      r.out, "#   \"user:" + AppId(15) +
                 ":nickname\": value (5 characters decoded) does not look like an access token"))
      << r.out;
  EXPECT_TRUE(Has(r.out, "#   \"profile:" + AppId(15) + "\": hash without a token field")) << r.out;
  EXPECT_TRUE(Has(r.out, "1 key is an SDK's companion expiry key")) << r.out;

  Ran check = Wxcanary(dir_, {"--config.check", "--config.file=" + config.string()});
  ExpectNoSecrets(check);
  ASSERT_EQ(check.code, 0) << check.err << check.out << "\n" << r.out;
  EXPECT_TRUE(Has(check.out,
                  std::to_string(kTargets) + " targets in " + std::to_string(kTargets) + " apps"))
      << check.out;

  Ran probe = Wxcanary(dir_, {"probe", "--all", "--config.file=" + config.string()});
  ExpectNoSecrets(probe);
  EXPECT_EQ(probe.code, 0) << probe.out << probe.err << "\n" << r.out;
  EXPECT_TRUE(Has(probe.out, std::to_string(kTargets) + " targets, 0 not ok")) << probe.out;
  for (int i : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16})
    EXPECT_TRUE(Has(probe.out, AppId(i) + "  ")) << AppId(i) << probe.out;
}

TEST_F(DiscoverTest, stops_at_max_keys_and_says_so) {
  for (int i = 0; i < 40; ++i) Set("filler:" + std::to_string(i), "x");
  Set("wx:access_token:" + AppId(0), Token(0), 7200);
  Ran r = Wxcanary(dir_, Discover({"--max-keys=7", "--count=2"}));
  ExpectNoSecrets(r);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, ": 7 keys scanned on 1 node (SCAN COUNT 2), 7 read")) << r.out;
  EXPECT_TRUE(Has(r.out, "# stopped at --max-keys=7: more keys remain unscanned")) << r.out;
  const std::string stats = Cli({"INFO", "commandstats"});
  EXPECT_FALSE(Has(stats, "cmdstat_keys:")) << stats;
}

TEST_F(DiscoverTest, stops_at_the_timeout_and_says_so) {
  for (int i = 0; i < 40; ++i) Set("filler:" + std::to_string(i), "x");
  // Every command waits out the pause (under the 1 s read timeout): the 300 ms are gone after
  // the first SCAN page.
  ASSERT_EQ(Cli({"CLIENT", "PAUSE", "800"}), "OK");
  Ran r = Wxcanary(dir_, Discover({"--timeout=300ms", "--count=2"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "# stopped at --timeout=300ms after reading 0 of ")) << r.out;
  EXPECT_TRUE(Has(r.out, "# no token keys found")) << r.out;
}

TEST_F(DiscoverTest,
       a_password_in_a_redis_url_is_used_but_not_printed_and_odd_names_stay_comments) {
  Set("wx:access_token:" + AppId(0), Token(0), 7200);
  Set("odd\nname\xff\xfe:" + AppId(1), "x");  // a newline and bytes that are not UTF-8
  Ran r = Wxcanary(
      dir_, {"discover",
             "--redis.address=redis://:" + std::string(kPassword) + "@" + redis_.address() + "/0",
             "--wechat.base-url=" + sim_.base_url()});
  ExpectNoSecrets(r);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "    address: \"" + redis_.address() + "\"\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "# the password of the redis:// address is not printed")) << r.out;
  EXPECT_TRUE(Has(r.out, "#   \"odd\\nname\\xff\\xfe:" + AppId(1) +
                             "\": value (1 characters decoded) does not look"))
      << r.out;
  const std::filesystem::path config = dir_.path() / "discovered.yml";
  std::ofstream(config) << r.out;
  Ran check = Wxcanary(dir_, {"--config.check", "--config.file=" + config.string()});
  EXPECT_EQ(check.code, 0) << check.out << check.err;
}

TEST_F(DiscoverTest, says_so_when_it_finds_nothing) {
  Set("session:1", "x");
  Ran r = Wxcanary(dir_, Discover());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "# no token keys found")) << r.out;
  EXPECT_EQ(Uncommented(r.out), "") << r.out;
}

TEST_F(DiscoverTest, a_secret_derived_key_is_not_read_without_its_secret) {
  const std::string key = PresetKey("easywechat6", 4);
  secret_keys_.push_back(key);
  Set(key, PhpString(Token(4)), 7200);
  ASSERT_EQ(Cli({"CONFIG", "RESETSTAT"}), "OK");
  Ran r = Wxcanary(dir_, Discover());
  ExpectNoSecrets(r);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "[secret-derived key " + Fingerprint(key.substr(0)) +
                             "]: secret-derived key (sdk easywechat6, app " + AppId(4) +
                             "): pass --secret " + AppId(4) + "=FILE"))
      << r.out;
  EXPECT_FALSE(Has(Cli({"INFO", "commandstats"}), "cmdstat_get:"));
}

TEST_F(DiscoverTest, bad_flags_are_one_line_naming_the_value_and_exit_2) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"discover", "--redis.address=nonsense"},
       "wxcanary discover: --redis.address: \"nonsense\" is not host:port, unix:/path or a "
       "redis:// URL"},
      {{"discover", "--redis.address=127.0.0.1:1", "--redis.db=16"},
       "--redis.db: 16 is out of range 0..15"},
      {{"discover", "--redis.address=127.0.0.1:1", "--timeout=soon"},
       "--timeout: \"soon\" is not a duration"},
      {{"discover", "--redis.address=127.0.0.1:1", "--count=0"}, "--count"},
      {{"discover", "--redis.address=127.0.0.1:1", "--secret=" + AppId(0)},
       "--secret: \"" + AppId(0) + "\" is not APPID=FILE"},
      {{"discover", "--redis.address=127.0.0.1:1", "--secret=" + SecretOf(0)},
       "--secret: the value (not shown"},
      {{"discover", "--redis.address=127.0.0.1:1", "--secret=" + AppId(0) + "=/nonexistent/s"},
       "--secret: cannot read \"/nonexistent/s\""},
      {{"discover", "--redis.address=redis://u:" + std::string(kPassword) + "@host:99999"},
       "--redis.address: \"redis://u:***@host:99999\""},
      {{"discover", "--redis.address=127.0.0.1:1", "--redis.password-file=/nonexistent/pw"},
       "--redis.password-file: cannot read \"/nonexistent/pw\""},
      {{"discover", "--redis.sentinels=127.0.0.1:1"},
       "--redis.master-name: required with sentinels"},
      {{"discover"}, "give --redis.address"},
      {{"discover", "--redis.address=127.0.0.1:1", "--no-such-flag"}, "--no-such-flag"},
  };
  for (const auto& c : cases) {
    Ran r = Wxcanary(dir_, c.args);
    EXPECT_EQ(r.code, 2) << c.args.back() << ": " << r.err;
    EXPECT_TRUE(Has(r.err, c.says)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(Has(r.err + r.out, kPassword));
    EXPECT_FALSE(Has(r.err + r.out, SecretOf(0)));
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(DiscoverTest, an_unreachable_or_refusing_redis_is_one_line_and_exit_1) {
  const std::string down = "127.0.0.1:" + std::to_string(FreePort());
  Ran r = Wxcanary(dir_,
                   {"discover", "--redis.address=redis://:" + std::string(kPassword) + "@" + down});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "wxcanary discover: redis " + down + ": connect " + down)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(Has(r.err, kPassword));
  // The right server, the wrong password: AUTH fails, and says so without the password.
  Ran wrong =
      Wxcanary(dir_, {"discover", "--redis.address=redis://:wrong-pw-here@" + redis_.address()});
  EXPECT_EQ(wrong.code, 1) << wrong.err;
  EXPECT_TRUE(Has(wrong.err, "AUTH failed")) << wrong.err;
  EXPECT_FALSE(Has(wrong.err, "wrong-pw-here")) << wrong.err;
  EXPECT_EQ(wrong.out, "");
}

// Under Sentinel the master the sentinels name is scanned, and the config names the sentinels.
TEST(DiscoverSentinel, scans_the_master_the_sentinels_name) {
  WxSim sim(SimArgs(1));
  RedisServer master;
  RedisSentinel sentinel(master.port());
  TempDir dir;
  const std::string token = sim.FetchToken(AppId(0), SecretOf(0));
  ASSERT_EQ(master.Cli({"SET", "wx:access_token:" + AppId(0), token, "EX", "7200"}), "OK");
  const std::string down = "127.0.0.1:" + std::to_string(FreePort());  // skipped: down
  Ran r = Wxcanary(dir, {"discover", "--redis.sentinels=" + down + "," + sentinel.address(),
                         "--redis.master-name=mymaster", "--wechat.base-url=" + sim.base_url()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(Has(r.out, token));
  EXPECT_TRUE(Has(r.out, "    sentinels: [\"" + down + "\", \"" + sentinel.address() +
                             "\"]\n    master_name: \"mymaster\"\n"))
      << r.out;
  EXPECT_TRUE(Has(r.out, "sdk: wxjava}  # TTL 7")) << r.out;
  const std::filesystem::path config = dir.path() / "discovered.yml";
  std::ofstream(config) << r.out;
  Ran probe = Wxcanary(dir, {"probe", "--all", "--config.file=" + config.string()});
  EXPECT_EQ(probe.code, 0) << probe.out << probe.err;
  EXPECT_TRUE(Has(probe.out, "1 target, 0 not ok")) << probe.out;
}

// Under Cluster every master is scanned: keys on all three are found, and probed ok.
TEST(DiscoverCluster, finds_keys_on_every_master_and_the_config_probes_them_ok) {
  constexpr int kKeys = 12;
  WxSim sim(SimArgs(kKeys));
  RedisCluster cluster(3);
  TempDir dir;
  std::vector<std::string> tokens;
  std::set<int> owners;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "wx:access_token:" + AppId(i);
    tokens.push_back(sim.FetchToken(AppId(i), SecretOf(i)));
    const int owner = cluster.Owner(key);
    ASSERT_GE(owner, 0) << key;
    owners.insert(owner);
    ASSERT_EQ(cluster.nodes()[owner]->Cli({"SET", key, tokens.back(), "EX", "7200"}), "OK");
  }
  ASSERT_EQ(owners.size(), 3u) << "the keys do not spread over the three masters";

  Ran r = Wxcanary(dir, {"discover", "--redis.address=" + cluster.nodes()[0]->address(),
                         "--redis.cluster", "--wechat.base-url=" + sim.base_url()});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& t : tokens) EXPECT_FALSE(Has(r.out, t)) << "token printed";
  EXPECT_TRUE(Has(r.out, std::to_string(kKeys) + " keys scanned on 3 nodes")) << r.out;
  EXPECT_TRUE(Has(r.out, "    cluster: [\"" + cluster.nodes()[0]->address() + "\"]\n")) << r.out;
  for (int i = 0; i < kKeys; ++i) EXPECT_TRUE(Has(r.out, "app_id: \"" + AppId(i) + "\"")) << r.out;

  const std::filesystem::path config = dir.path() / "discovered.yml";
  std::ofstream(config) << r.out;
  Ran probe = Wxcanary(dir, {"probe", "--all", "--config.file=" + config.string()});
  EXPECT_EQ(probe.code, 0) << probe.out << probe.err;
  EXPECT_TRUE(Has(probe.out, std::to_string(kKeys) + " targets, 0 not ok")) << probe.out;
}

}  // namespace
}  // namespace wxcanary::testing
