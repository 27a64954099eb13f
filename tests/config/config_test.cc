#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/duration.h"
#include "support/process.h"

namespace wxcanary::config {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

fs::path TestData() { return testing::SourceDir() / "tests" / "config" / "testdata"; }

void WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A minimal config: one app, one environment, plus `env_extra` lines inside the environment
// and `top` appended at top level.
std::string Minimal(const std::string& env_extra = "", const std::string& top = "",
                    const std::string& app_extra = "") {
  std::string y =
      "redis:\n"
      "  main: {address: 10.0.0.7:6380, db: 2}\n"
      "apps:\n"
      "  - app_id: wx1234567890abcdef\n" +
      app_extra +
      "    environments:\n"
      "      - name: prod\n"
      "        redis: main\n"
      "        key: \"ACCESS_TOKEN_CACHE:{app_id}\"\n" +
      env_extra + top;
  return y;
}

// Sets an environment variable for one test and restores the previous state.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

TEST(Config, applies_named_defaults_when_keys_are_absent) {
  Config c = LoadString(Minimal());
  EXPECT_EQ(c.wechat.base_url, "https://api.weixin.qq.com");
  EXPECT_EQ(c.wechat.timeout, 5s);
  EXPECT_EQ(c.wechat.ca_file, "");
  EXPECT_EQ(c.workers, 16);
  EXPECT_FALSE(c.conflict.window.has_value());
  EXPECT_EQ(c.conflict.daily_quota, 2000);
  EXPECT_EQ(c.conflict.quota_poll_interval, 10min);
  EXPECT_EQ(c.heal.confirmations, 2);
  EXPECT_EQ(c.heal.cooldown, 5min);
  EXPECT_EQ(c.heal.budget_per_hour, 20);
  EXPECT_EQ(c.heal.lock_ttl, 10s);
  EXPECT_EQ(c.heal.refresh_margin, 5min);
  EXPECT_TRUE(c.logging.sinks.empty());

  ASSERT_EQ(c.TargetCount(), 1u);
  const Environment& e = c.apps.at(0).environments.at(0);
  EXPECT_EQ(e.storage, Storage::kString);
  EXPECT_EQ(e.probe, ProbeKind::kApiDomainIp);
  EXPECT_EQ(e.interval, 30s);
  EXPECT_EQ(e.timeout, 5s);
  EXPECT_EQ(e.heal, HealMode::kOff);
  EXPECT_FALSE(e.heal_refresh);
  EXPECT_EQ(e.content, "wxcanary canary");
  EXPECT_EQ(e.scene, 1);
  EXPECT_TRUE(e.labels.empty());

  const Redis& r = c.redis.at("main");
  EXPECT_EQ(r.name, "main");
  EXPECT_EQ(r.Address(), "10.0.0.7:6380");
  EXPECT_EQ(r.db, 2);
  EXPECT_EQ(r.connect_timeout, 1s);
  EXPECT_EQ(r.read_timeout, 1s);
  EXPECT_FALSE(r.password.set());
  EXPECT_TRUE(r.password_value.empty());
  EXPECT_FALSE(c.apps[0].secret.set());
}

TEST(Config, environments_inherit_from_defaults_and_their_own_keys_win) {
  Config c = LoadString(
      "defaults:\n"
      "  interval: 1m\n"
      "  timeout: 7s\n"
      "  probe: msg_sec_check\n"
      "  content: canary text\n"
      "  heal: dry_run\n"
      "  storage: json\n"
      "  json_path: access_token\n"
      "redis: {main: {address: 127.0.0.1:6379}}\n"
      "apps:\n"
      "  - app_id: wxa\n"
      "    environments:\n"
      "      - {name: prod, redis: main, key: k1}\n"
      "      - {name: test, redis: main, key: k2, interval: 2m, probe: api_domain_ip,\n"
      "         storage: hash, hash_field: tok, heal: off}\n");
  ASSERT_EQ(c.TargetCount(), 2u);
  const Environment& inherited = c.apps[0].environments[0];
  EXPECT_EQ(inherited.interval, 1min);
  EXPECT_EQ(inherited.timeout, 7s);
  EXPECT_EQ(inherited.probe, ProbeKind::kMsgSecCheck);
  EXPECT_EQ(inherited.content, "canary text");
  EXPECT_EQ(inherited.heal, HealMode::kDryRun);
  EXPECT_EQ(inherited.storage, Storage::kJson);
  EXPECT_EQ(inherited.json_path, "access_token");

  const Environment& own = c.apps[0].environments[1];
  EXPECT_EQ(own.interval, 2min);
  EXPECT_EQ(own.timeout, 7s);  // not overridden: still inherited
  EXPECT_EQ(own.probe, ProbeKind::kApiDomainIp);
  EXPECT_EQ(own.storage, Storage::kHash);
  EXPECT_EQ(own.hash_field, "tok");
  EXPECT_EQ(own.json_path, "access_token");  // inherited; with hash it means "field holds JSON"
  EXPECT_EQ(own.heal, HealMode::kOff);       // yaml-cpp keeps `off` as text: must not be a bool
}

TEST(Config, defaults_json_path_does_not_reach_a_storage_string_environment) {
  Config c = LoadString(
      "defaults:\n"
      "  storage: json\n"
      "  json_path: access_token\n"
      "redis: {main: {address: 127.0.0.1:6379}}\n"
      "apps:\n"
      "  - app_id: wxa\n"
      "    environments:\n"
      "      - {name: prod, redis: main, key: k1}\n"
      "      - {name: plain, redis: main, key: k2, storage: string}\n"
      "      - {name: php, redis: main, key: k3, storage: string, encoding: php}\n");
  const auto& envs = c.apps[0].environments;
  EXPECT_EQ(envs[0].json_path, "access_token");
  EXPECT_EQ(envs[1].storage, Storage::kString);
  EXPECT_EQ(envs[1].json_path, "") << "a plain token would be parsed as JSON";
  EXPECT_EQ(envs[2].json_path, "access_token");  // a PHP array is read with json_path
  const std::string described = Describe(c);
  EXPECT_NE(described.find("wxa/plain  redis=main"), std::string::npos) << described;
  const auto plain = described.substr(described.find("wxa/plain"));
  EXPECT_EQ(plain.substr(0, plain.find('\n')).find("access_token"), std::string::npos) << described;
}

TEST(Config, expands_placeholders_in_key_templates) {
  struct Case {
    std::string tmpl, want;
  } cases[] = {
      {"ACCESS_TOKEN_CACHE:{app_id}", "ACCESS_TOKEN_CACHE:wx1234567890abcdef"},
      {"wx:access_token:{app_id}", "wx:access_token:wx1234567890abcdef"},
      {"{app_env}:{app_id}:token", "prod:wx1234567890abcdef:token"},
      {"{app_id}{app_id}", "wx1234567890abcdefwx1234567890abcdef"},
      {"plain_key", "plain_key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.tmpl);
    std::string y = Minimal();
    y.replace(y.find("\"ACCESS_TOKEN_CACHE:{app_id}\""), 29, "\"" + c.tmpl + "\"");
    Config cfg = LoadString(y);
    EXPECT_EQ(cfg.apps[0].environments[0].key_template, c.tmpl);
    EXPECT_EQ(cfg.apps[0].environments[0].key, c.want);
  }
}

TEST(Config, decodes_each_storage_layout) {
  struct Case {
    std::string yaml;
    Storage storage;
    std::string json_path, hash_field;
  } cases[] = {
      {"        storage: string\n", Storage::kString, "", ""},
      {"        storage: json\n        json_path: data.access_token\n", Storage::kJson,
       "data.access_token", ""},
      {"        storage: hash\n        hash_field: token\n", Storage::kHash, "", "token"},
      {"        storage: hash\n        hash_field: value\n        json_path: access_token\n",
       Storage::kHash, "access_token", "value"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    const Environment e = LoadString(Minimal(c.yaml)).apps[0].environments[0];
    EXPECT_EQ(e.storage, c.storage);
    EXPECT_EQ(e.json_path, c.json_path);
    EXPECT_EQ(e.hash_field, c.hash_field);
  }
}

TEST(Config, decodes_each_probe_kind) {
  Environment v1 = LoadString(Minimal("        probe: msg_sec_check\n        content: hi\n"))
                       .apps[0]
                       .environments[0];
  EXPECT_EQ(v1.probe, ProbeKind::kMsgSecCheck);
  EXPECT_EQ(v1.content, "hi");
  Environment v2 =
      LoadString(
          Minimal("        probe: msg_sec_check_v2\n        openid: oABC\n        scene: 4\n"))
          .apps[0]
          .environments[0];
  EXPECT_EQ(v2.probe, ProbeKind::kMsgSecCheckV2);
  EXPECT_EQ(v2.openid, "oABC");
  EXPECT_EQ(v2.scene, 4);
  EXPECT_EQ(v2.content, "wxcanary canary");
}

TEST(Config, reads_secret_file_and_strips_trailing_newline) {
  testing::TempDir dir;
  WriteFile(dir.path() / "pw", "hunter2-pw\r\n");
  WriteFile(dir.path() / "secret", "app-secret-value\n");
  Config c = LoadString(Minimal("", "", "    secret_file: secret\n"), dir.path());
  EXPECT_EQ(c.apps[0].secret.kind, SecretRef::Kind::kFile);
  EXPECT_EQ(c.apps[0].secret.name, "secret");
  EXPECT_EQ(c.apps[0].secret_value.Reveal(), "app-secret-value");

  std::string y = Minimal();
  y.replace(y.find("db: 2}"), 6, "db: 2, password_file: " + (dir.path() / "pw").string() + "}");
  Config r = LoadString(y);
  EXPECT_EQ(r.redis.at("main").password.kind, SecretRef::Kind::kFile);
  EXPECT_EQ(r.redis.at("main").password_value.Reveal(), "hunter2-pw");
}

TEST(Config, reads_secret_from_environment_variable) {
  ScopedEnv env("WXCANARY_TEST_APP_SECRET", "from-env-secret");
  Config c = LoadString(Minimal("", "", "    secret_env: WXCANARY_TEST_APP_SECRET\n"));
  EXPECT_EQ(c.apps[0].secret.kind, SecretRef::Kind::kEnv);
  EXPECT_EQ(c.apps[0].secret.name, "WXCANARY_TEST_APP_SECRET");
  EXPECT_EQ(c.apps[0].secret_value.Reveal(), "from-env-secret");
}

TEST(Config, reads_secret_from_systemd_credential) {
  testing::TempDir dir;
  WriteFile(dir.path() / "wechat-secret", "cred-secret\n");
  ScopedEnv env("CREDENTIALS_DIRECTORY", dir.path().string());
  std::string y = Minimal("", "", "    secret_credential: wechat-secret\n");
  y.replace(y.find("db: 2}"), 6, "db: 2, password_credential: wechat-secret}");
  Config c = LoadString(y);
  EXPECT_EQ(c.apps[0].secret.kind, SecretRef::Kind::kCredential);
  EXPECT_EQ(c.apps[0].secret_value.Reveal(), "cred-secret");
  EXPECT_EQ(c.redis.at("main").password_value.Reveal(), "cred-secret");
}

TEST(Config, load_file_resolves_relative_paths_against_the_config_directory) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "etc" / "secrets");
  WriteFile(dir.path() / "etc" / "secrets" / "s", "relative-secret\n");
  WriteFile(dir.path() / "etc" / "ca.pem", "pem\n");
  WriteFile(dir.path() / "etc" / "wxcanary.yml",
            Minimal("", "wechat: {ca_file: ca.pem, base_url: \"http://127.0.0.1:8080/\"}\n",
                    "    secret_file: secrets/s\n"));
  Config c = LoadFile(dir.path() / "etc" / "wxcanary.yml");
  EXPECT_EQ(c.source, dir.path() / "etc" / "wxcanary.yml");
  EXPECT_EQ(c.apps[0].secret_value.Reveal(), "relative-secret");
  EXPECT_EQ(fs::path(c.wechat.ca_file), dir.path() / "etc" / "ca.pem");
  EXPECT_EQ(c.wechat.base_url, "http://127.0.0.1:8080");  // trailing slash dropped
}

TEST(Config, load_file_names_a_missing_file) {
  try {
    LoadFile("/nonexistent/wxcanary.yml");
    FAIL() << "accepted a missing file";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "cannot read: No such file or directory");
  }
}

TEST(Config, formats_redis_addresses) {
  struct Case {
    std::string address, want;
  } cases[] = {
      {"127.0.0.1:6379", "127.0.0.1:6379"},
      {"redis.internal:7000", "redis.internal:7000"},
      {"\"[::1]:6379\"", "[::1]:6379"},
      {"unix:/run/redis/redis.sock", "unix:/run/redis/redis.sock"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.address);
    std::string y = Minimal();
    y.replace(y.find("10.0.0.7:6380"), 13, c.address);
    EXPECT_EQ(LoadString(y).redis.at("main").Address(), c.want);
  }
  Config unix_cfg =
      LoadString(Minimal().replace(Minimal().find("10.0.0.7:6380"), 13, "unix:/tmp/r.sock"));
  EXPECT_EQ(unix_cfg.redis.at("main").unix_socket, "/tmp/r.sock");
}

TEST(Config, loads_the_full_documented_example) {
  Config c = LoadFile(TestData() / "valid-full.yml");
  EXPECT_EQ(c.TargetCount(), 4u);
  ASSERT_EQ(c.apps.size(), 2u);
  EXPECT_EQ(c.workers, 16);
  EXPECT_EQ(c.redis.at("prod").username, "wxcanary");
  EXPECT_EQ(c.redis.at("prod").password_value.Reveal(), "redis-pw-Zq81");
  EXPECT_EQ(c.redis.at("staging").Address(), "unix:/run/redis/redis.sock");
  EXPECT_EQ(c.redis.at("staging").db, 3);
  EXPECT_EQ(c.apps[0].secret_value.Reveal(), "app-secret-Kx27");

  const auto& envs = c.apps[0].environments;
  ASSERT_EQ(envs.size(), 3u);
  EXPECT_EQ(envs[0].labels, (std::map<std::string, std::string>{{"team", "pay"}}));
  EXPECT_EQ(envs[0].heal, HealMode::kEvict);
  EXPECT_TRUE(envs[0].heal_refresh);
  EXPECT_EQ(envs[1].key, "wx:staging:access_token:wx1234567890abcdef");
  EXPECT_EQ(envs[1].json_path, "data.access_token");
  EXPECT_EQ(envs[2].probe, ProbeKind::kMsgSecCheckV2);
  EXPECT_EQ(envs[2].timeout, 10s);
  EXPECT_EQ(c.apps[1].environments[0].key, "wx:access_token:wxfedcba0987654321");

  EXPECT_EQ(envs[0].keep, KeepMode::kStable);
  EXPECT_TRUE(envs[0].owner);
  EXPECT_FALSE(envs[0].keep_dry_run);
  EXPECT_EQ(envs[1].keep, KeepMode::kOff);
  EXPECT_EQ(c.keeper.interval, 30s);
  EXPECT_EQ(c.keeper.margin, 2min);
  EXPECT_EQ(c.keeper.lease_ttl, 20s);
  EXPECT_TRUE(c.keeper.force_refresh_on_dead);
  EXPECT_EQ(Config{}.keeper, (Keeper{1min, 1min, 30s, false}));  // the documented defaults

  EXPECT_EQ(c.conflict.window, std::optional<milliseconds>(6min));
  ASSERT_EQ(c.logging.sinks.size(), 3u);
  EXPECT_EQ(c.logging.sinks[1].kind, LogSink::Kind::kFile);
  EXPECT_EQ(c.logging.sinks[1].max_size_bytes, 100 * 1024 * 1024);
  EXPECT_EQ(c.logging.sinks[1].max_files, 5);
  EXPECT_EQ(c.logging.sinks[2].kind, LogSink::Kind::kTcp);
  EXPECT_EQ(c.logging.sinks[2].host, "127.0.0.1");
  EXPECT_EQ(c.logging.sinks[2].port, 5000);
  EXPECT_EQ(c.logging.sinks[2].queue_size, 8192);
}

TEST(Config, describe_prints_one_line_per_target_in_the_documented_format) {
  Config c = LoadString(
      "redis: {prod: {address: 127.0.0.1:6379}}\n"
      "apps:\n"
      "  - app_id: wx123\n"
      "    environments:\n"
      "      - {name: prod, redis: prod, key: \"ACCESS_TOKEN_CACHE:{app_id}\"}\n"
      "      - {name: gray, redis: prod, key: \"t:{app_env}\", storage: json, json_path: a.b,\n"
      "         interval: 1m30s, labels: {team: pay}}\n");
  EXPECT_EQ(Describe(c),
            "wxcanary: 2 targets in 1 apps, 1 redis connections, 16 workers, wechat "
            "https://api.weixin.qq.com\n"
            "wx123/prod  redis=prod(127.0.0.1:6379) key=ACCESS_TOKEN_CACHE:wx123 storage=string "
            "probe=api_domain_ip interval=30s timeout=5s heal=off\n"
            "wx123/gray  redis=prod(127.0.0.1:6379) key=t:gray storage=json(a.b) "
            "probe=api_domain_ip interval=1m30s timeout=5s heal=off labels={team=pay}\n");
}

TEST(Config, describe_never_prints_a_secret) {
  ScopedEnv env("WXCANARY_TEST_DESCRIBE_SECRET", "env-secret-Q9");
  Config c = LoadFile(TestData() / "valid-full.yml");
  std::string y = Minimal("", "", "    secret_env: WXCANARY_TEST_DESCRIBE_SECRET\n");
  Config c2 = LoadString(y);
  const std::string text = Describe(c) + Describe(c2);
  for (const char* secret : {"redis-pw-Zq81", "app-secret-Kx27", "env-secret-Q9"})
    EXPECT_EQ(text.find(secret), std::string::npos) << secret;
  EXPECT_NE(text.find("wx1234567890abcdef/gray"), std::string::npos);  // it did describe
  EXPECT_NE(text.find("heal=evict+refresh keep=stable+owner"), std::string::npos) << text;
}

TEST(Config, enum_names_round_trip_to_the_yaml_spelling) {
  EXPECT_EQ(StorageName(Storage::kHash), "hash");
  EXPECT_EQ(ProbeKindName(ProbeKind::kMsgSecCheckV2), "msg_sec_check_v2");
  EXPECT_EQ(HealModeName(HealMode::kDryRun), "dry_run");
}

TEST(Config, accepts_sections_in_any_order_and_null_optional_sections) {
  Config c = LoadString(
      "apps:\n"
      "  - app_id: wxa\n"
      "    environments: [{name: e, redis: r, key: k}]\n"
      "defaults:\n"
      "heal:\n"
      "redis: {r: {address: \"unix:/x.sock\"}}\n");
  EXPECT_EQ(c.TargetCount(), 1u);
}

// Issue 21.6: the config fuzzer's reproducer (a map key holding a NUL byte, kept in
// tests/fuzz/corpus/config_fuzz) and keys holding a newline or a quote: every error is one line
// that shows the key escaped.
TEST(Config, errors_on_keys_with_control_characters_stay_one_line) {
  static const char kNulKey[] = "redis:\n  prod:J      e\0nvironments:\n  _CACHE:{app_id}\"\n";
  const std::string nul_key(kNulKey, sizeof kNulKey - 1);
  const std::string cases[] = {
      nul_key,
      "redis:\n  \"a\\nb\": {address: 127.0.0.1:6379}\napps: []\n",
      "redis:\n  \"a\\\"b\": 7\n",
      "\"x\\ry\": 1\n",
  };
  for (const auto& yaml : cases) {
    try {
      LoadString(yaml);
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find_first_of(std::string("\n\r\0", 3)), std::string::npos) << what;
      EXPECT_FALSE(what.empty());
    }
  }
}

TEST(Config, a_key_that_is_not_a_plain_name_is_quoted_in_the_error_path) {
  try {
    LoadString("redis:\n  \"a\\nb\": {address: 127.0.0.1:6379, bogus: 1}\n");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), R"(redis["a\nb"]: unknown key "bogus")");
  }
}

}  // namespace
}  // namespace wxcanary::config
