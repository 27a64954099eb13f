// `wxcanary probe` and `wxcanary evict` as an operator runs them: the built binary against a
// password-protected redis-server and wxsim; what is checked is the exit code, what the
// terminal shows, and what Redis holds afterwards.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "common/fingerprint.h"
#include "support/config_yaml.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kApp = WxSim::kAppId;
constexpr const char* kPassword = "cmd-redis-pw-Q7x2";

std::string Key(const std::string& env) { return "ACCESS_TOKEN_CACHE:" + env + ":" + kApp; }

struct Ran {
  int code = -1;
  std::string out;
};

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest() {
    std::ofstream(dir_.path() / "redis.pw") << kPassword << "\n";
    std::ofstream(config_) << ConfigText();
  }

  std::string ConfigText() const {
    const ConfigYaml::Fields env = {{"key", "ACCESS_TOKEN_CACHE:{app_env}:{app_id}"}};
    return ConfigYaml(sim_.base_url())
        .Default("interval", "30s")
        .Default("timeout", "2s")
        .Default("probe", "msg_sec_check")
        .Redis("main", redis_.address(),
               {{"db", "3"}, {"password_file", (dir_.path() / "redis.pw").string()}})
        .App(kApp)
        .Env("prod", "main", env)
        .Env("test", "main", env);
  }

  std::string Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--no-auth-warning", "-a", kPassword});
    return redis_.Cli(args, 3);
  }
  void Cache(const std::string& env, const std::string& token) {
    ASSERT_EQ(Cli({"SET", Key(env), token, "EX", "7200"}), "OK");
  }
  // A token the API rejects with 40001: superseded by a newer fetch, past the grace.
  std::string DeadToken() {
    std::string dead = sim_.FetchToken();
    fresh_ = sim_.FetchToken();
    sim_.Advance(301);
    return dead;
  }

  // Runs `wxcanary ARGS` (stdin /dev/null), or `sh -c SCRIPT` with $WXCANARY, $CONFIG set.
  Ran Wxcanary(std::vector<std::string> args) {
    args.insert(args.begin(), BuiltBinary("wxcanary").string());
    return Wait(args, {});
  }
  Ran Shell(const std::string& script) {
    return Wait({"sh", "-c", script},
                {"WXCANARY=" + BuiltBinary("wxcanary").string(), "CONFIG=" + config_.string(),
                 "REDISCLI_AUTH=" + std::string(kPassword),
                 "REDIS_PORT=" + std::to_string(redis_.port()), "DIR=" + dir_.path().string()});
  }
  Ran Wait(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    Subprocess p(argv, dir_.path() / ("run" + std::to_string(++runs_) + ".out"), env);
    int st = p.Wait(30s);
    Ran r;
    r.out = p.Output();
    if (st != -1 && WIFEXITED(st)) r.code = WEXITSTATUS(st);
    // Whatever the command did, no secret reaches the terminal.
    EXPECT_EQ(r.out.find(kPassword), std::string::npos) << "Redis password printed";
    for (const auto& t : tokens_) EXPECT_EQ(r.out.find(t), std::string::npos) << "token printed";
    return r;
  }
  std::string Track(std::string token) {
    tokens_.push_back(token);
    return token;
  }
  std::string Config() const { return "--config.file=" + config_.string(); }

  RedisServer redis_{{"--requirepass", kPassword}};
  WxSim sim_;
  TempDir dir_;
  std::filesystem::path config_ = dir_.path() / "wxcanary.yml";
  std::string fresh_;
  std::vector<std::string> tokens_;
  int runs_ = 0;
};

bool Has(const std::string& out, const std::string& what) {
  return out.find(what) != std::string::npos;
}

TEST_F(CommandsTest, probe_prints_the_trail_and_exits_0_when_the_token_works) {
  std::string token = Track(sim_.FetchToken());
  Cache("prod", token);
  Ran r = Wxcanary({"probe", Config(), "--target", std::string(kApp) + "/prod"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "main " + redis_.address() + " db 3 user default (password set)"))
      << r.out;
  EXPECT_TRUE(Has(r.out, "key      " + Key("prod") + " (string)")) << r.out;
  EXPECT_TRUE(Has(r.out, "fingerprint " + Fingerprint(token))) << r.out;
  EXPECT_TRUE(Has(r.out, "ttl      72")) << r.out;  // 7200 s, give or take a second
  EXPECT_TRUE(Has(r.out, "POST " + sim_.base_url() + "/wxa/msg_sec_check")) << r.out;
  EXPECT_TRUE(Has(r.out, "http     200")) << r.out;
  EXPECT_TRUE(Has(r.out, "errcode  0")) << r.out;
  EXPECT_TRUE(Has(r.out, "verdict  ok: the token works")) << r.out;
  EXPECT_TRUE(Has(r.out, " ms\n")) << r.out;
}

TEST_F(CommandsTest, probe_exits_1_on_a_dead_token_naming_errcode_rid_and_the_fix) {
  std::string dead = Track(DeadToken());
  Track(fresh_);
  Cache("prod", dead);
  Ran r = Wxcanary({"probe", Config(), "--target", std::string(kApp) + "/prod"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "fingerprint " + Fingerprint(dead))) << r.out;
  EXPECT_TRUE(Has(r.out, "errcode  40001")) << r.out;
  EXPECT_TRUE(Has(r.out, "rid      ")) << r.out;
  EXPECT_TRUE(Has(r.out, "verdict  token_invalid:")) << r.out;
  EXPECT_TRUE(Has(r.out, "wxcanary evict")) << r.out;
}

TEST_F(CommandsTest, probe_reports_a_missing_key_and_a_wrong_password_without_calling) {
  Ran missing = Wxcanary({"probe", Config(), "--target", std::string(kApp) + "/prod"});
  EXPECT_EQ(missing.code, 1) << missing.out;
  EXPECT_TRUE(Has(missing.out, "ttl      no key")) << missing.out;
  EXPECT_TRUE(Has(missing.out, "verdict  token_missing:")) << missing.out;
  EXPECT_FALSE(Has(missing.out, "http ")) << missing.out;

  std::ofstream(dir_.path() / "redis.pw") << "not-the-password\n";
  Ran denied = Wxcanary({"probe", Config(), "--target", std::string(kApp) + "/prod"});
  EXPECT_EQ(denied.code, 1) << denied.out;
  EXPECT_TRUE(Has(denied.out, "read     failed: ")) << denied.out;
  EXPECT_TRUE(Has(denied.out, "verdict  redis_error:")) << denied.out;
  EXPECT_FALSE(Has(denied.out, "not-the-password")) << denied.out;
}

TEST_F(CommandsTest, probe_all_prints_a_table_failing_targets_first) {
  std::string dead = Track(DeadToken());
  Track(fresh_);
  Cache("test", fresh_);
  Cache("prod", dead);
  Ran r = Wxcanary({"probe", Config(), "--all"});
  EXPECT_EQ(r.code, 1) << r.out;
  std::istringstream lines(r.out);
  std::string header, first, second, total;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, total);
  EXPECT_EQ(header.rfind("APP_ID", 0), 0u) << r.out;
  EXPECT_TRUE(Has(first, "prod") && Has(first, "token_invalid") && Has(first, "40001") &&
              Has(first, Fingerprint(dead)))
      << r.out;
  EXPECT_TRUE(Has(second, "test") && Has(second, " ok ") && Has(second, Fingerprint(fresh_)))
      << r.out;
  EXPECT_EQ(total, "2 targets, 1 not ok") << r.out;
}

TEST_F(CommandsTest, bad_input_gets_one_line_naming_the_value_and_exit_2) {
  Ran unknown = Wxcanary({"probe", Config(), "--target", "wxnope/prod"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_TRUE(Has(unknown.out, "--target: \"wxnope/prod\" is not in config file")) << unknown.out;
  Ran shape = Wxcanary({"probe", Config(), "--target", "prod"});
  EXPECT_EQ(shape.code, 2);
  EXPECT_TRUE(Has(shape.out, "\"prod\" is not APP_ID/APP_ENV")) << shape.out;
  Ran fp = Wxcanary(
      {"evict", Config(), "--target", std::string(kApp) + "/prod", "--fingerprint", "XYZ"});
  EXPECT_EQ(fp.code, 2);
  EXPECT_TRUE(Has(fp.out, "--fingerprint: \"XYZ\" is not 8 lowercase hex")) << fp.out;
  Ran neither = Wxcanary({"probe", Config()});
  EXPECT_EQ(neither.code, 2);
  EXPECT_TRUE(Has(neither.out, "--target APP_ID/APP_ENV or --all")) << neither.out;
}

TEST_F(CommandsTest, evict_with_yes_deletes_the_failing_token) {
  std::string dead = Track(DeadToken());
  Track(fresh_);
  Cache("prod", dead);
  Ran r = Wxcanary({"evict", Config(), "--target", std::string(kApp) + "/prod", "--yes"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "deleted token " + Fingerprint(dead))) << r.out;
  EXPECT_EQ(Cli({"EXISTS", Key("prod")}), "0");
}

TEST_F(CommandsTest, evict_asks_and_no_answer_means_no) {
  std::string dead = Track(DeadToken());
  Track(fresh_);
  Cache("prod", dead);
  Ran r = Wxcanary({"evict", Config(), "--target", std::string(kApp) + "/prod"});  // stdin empty
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "will delete key " + Key("prod"))) << r.out;
  EXPECT_TRUE(Has(r.out, "only if it still holds token " + Fingerprint(dead))) << r.out;
  EXPECT_TRUE(Has(r.out, "delete? [y/N]")) << r.out;
  EXPECT_TRUE(Has(r.out, "not confirmed: nothing deleted")) << r.out;
  EXPECT_EQ(Cli({"GET", Key("prod")}), dead);

  Ran yes = Shell("echo y | \"$WXCANARY\" evict --config.file=\"$CONFIG\" --target " +
                  std::string(kApp) + "/prod");
  EXPECT_EQ(yes.code, 0) << yes.out;
  EXPECT_EQ(Cli({"EXISTS", Key("prod")}), "0");
}

TEST_F(CommandsTest, evict_refuses_a_working_token_unless_its_fingerprint_is_given) {
  std::string token = Track(sim_.FetchToken());
  Cache("prod", token);
  Ran r = Wxcanary({"evict", Config(), "--target", std::string(kApp) + "/prod", "--yes"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "refusing: token " + Fingerprint(token) + " is not failing (ok)"))
      << r.out;
  EXPECT_EQ(Cli({"GET", Key("prod")}), token);

  Ran forced = Wxcanary({"evict", Config(), "--target", std::string(kApp) + "/prod",
                         "--fingerprint", Fingerprint(token), "--yes"});
  EXPECT_EQ(forced.code, 0) << forced.out;
  EXPECT_EQ(Cli({"EXISTS", Key("prod")}), "0");
}

TEST_F(CommandsTest, evict_refuses_when_the_key_holds_another_token_than_the_fingerprint) {
  std::string dead = Track(DeadToken());
  Track(fresh_);
  Cache("prod", fresh_);  // the app already replaced the dead token
  Ran r = Wxcanary({"evict", Config(), "--target", std::string(kApp) + "/prod", "--fingerprint",
                    Fingerprint(dead), "--yes"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "refusing: the key now holds token " + Fingerprint(fresh_) + ", not " +
                             Fingerprint(dead)))
      << r.out;
  EXPECT_EQ(Cli({"GET", Key("prod")}), fresh_);
}

TEST_F(CommandsTest, evict_refuses_when_the_key_changes_while_it_asks) {
  std::string dead = Track(DeadToken());
  Track(fresh_);
  Cache("prod", dead);
  // The operator hesitates at the prompt; meanwhile the app writes its fresh token. The
  // answer "y" must then delete nothing: the compare-and-delete sees the changed value.
  std::ofstream(dir_.path() / "fresh") << fresh_;
  Ran r = Shell(
      "mkfifo \"$DIR/answer\"\n"
      "\"$WXCANARY\" evict --config.file=\"$CONFIG\" --target " +
      std::string(kApp) +
      "/prod < \"$DIR/answer\" > \"$DIR/evict.out\" 2>&1 &\n"
      "pid=$!\n"
      "exec 3> \"$DIR/answer\"\n"
      "i=0; until grep -q 'delete?' \"$DIR/evict.out\"; do i=$((i+1)); [ $i -gt 200 ] && break; "
      "sleep 0.05; done\n"
      "redis-cli --no-auth-warning -p \"$REDIS_PORT\" -n 3 SET '" +
      Key("prod") +
      "' \"$(cat \"$DIR/fresh\")\" > /dev/null\n"
      "echo y >&3; exec 3>&-\n"
      "wait $pid; rc=$?\n"
      "cat \"$DIR/evict.out\"; exit $rc\n");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "delete? [y/N]")) << r.out;
  EXPECT_TRUE(Has(r.out, "refusing: the key changed since it was read")) << r.out;
  EXPECT_EQ(Cli({"GET", Key("prod")}), fresh_);
}

}  // namespace
}  // namespace wxcanary::testing
