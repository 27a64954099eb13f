// The runbook's WxCanaryTokenInvalid section is executable as written: its fenced `sh`
// commands are taken from alerts/runbook.md, the placeholders filled in, and run in order by
// sh against a redis-server with a password and an ACL user, wxsim and the built wxcanary.
// What counts is what Redis holds afterwards and each step's exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <utility>

#include "common/fingerprint.h"
#include "support/config_yaml.h"
#include "support/redis_server.h"
#include "support/wxsim.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kApp = WxSim::kAppId;
constexpr const char* kAdminPassword = "rb-admin-pw-M3";
constexpr const char* kUserPassword = "rb-canary-pw-T9";

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The ```sh blocks of one "## NAME" section, indentation removed, in order.
std::vector<std::string> ShellBlocks(const std::string& markdown, const std::string& section) {
  std::istringstream in(markdown);
  std::vector<std::string> blocks;
  bool inside_section = false, inside_block = false;
  std::string block;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) inside_section = line == "## " + section;
    if (!inside_section) continue;
    auto first = line.find_first_not_of(' ');
    std::string trimmed = first == std::string::npos ? "" : line.substr(first);
    if (!inside_block && trimmed == "```sh") {
      inside_block = true;
      block.clear();
    } else if (inside_block && trimmed == "```") {
      inside_block = false;
      blocks.push_back(block);
    } else if (inside_block) {
      block += trimmed + "\n";
    }
  }
  return blocks;
}

std::string Fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [word, value] : values)
    text = std::regex_replace(text, std::regex("\\b" + word + "\\b"), value);
  return text;
}

struct Step {
  int code = -1;
  std::string out;
};

TEST(Runbook, token_invalid_section_runs_as_written_against_a_redis_with_a_password) {
  RedisServer redis({"--requirepass", kAdminPassword});
  auto admin = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--no-auth-warning", "-a", kAdminPassword});
    return redis.Cli(args, 3);
  };
  // An ACL user that may do what the runbook does to the token keys, and nothing else.
  ASSERT_EQ(admin({"ACL", "SETUSER", "canary", "on", std::string(">") + kUserPassword,
                   "~ACCESS_TOKEN_CACHE:*", "+@read", "+@write", "+@scripting", "+@connection"}),
            "OK");
  WxSim sim;
  TempDir dir;
  const auto pw = dir.path() / "redis.pw", wrong_pw = dir.path() / "wrong.pw";
  std::ofstream(pw) << kUserPassword << "\n";
  std::ofstream(wrong_pw) << "not-it\n";
  const auto config = dir.path() / "wxcanary.yml";
  const std::string key = std::string("ACCESS_TOKEN_CACHE:") + kApp;
  std::ofstream(config) << ConfigYaml(sim.base_url())
                               .Redis("main", redis.address(),
                                      {{"db", "3"},
                                       {"username", "canary"},
                                       {"password_file", pw.string()}})
                               .App(kApp)
                               .Env("prod", "main")
                               .str();

  const std::string dead = sim.FetchToken();
  const std::string fresh = sim.FetchToken();
  sim.Advance(301);  // the dead one is past the grace: 40001
  auto cache = [&](const std::string& token) {
    ASSERT_EQ(admin({"SET", key, token, "EX", "7200"}), "OK");
  };

  std::map<std::string, std::string> values = {{"CONFIG", config.string()},
                                               {"APP", kApp},
                                               {"ENV", "prod"},
                                               {"HOST", "127.0.0.1"},
                                               {"PORT", std::to_string(redis.port())},
                                               {"DB", "3"},
                                               {"USER", "canary"},
                                               {"KEY", key},
                                               {"PASSWORD_FILE", pw.string()}};
  const std::vector<std::string> blocks =
      ShellBlocks(Slurp(SourceDir() / "alerts/runbook.md"), "WxCanaryTokenInvalid");
  // confirm (probe), fix (evict), check (probe), the redis-cli fallback.
  ASSERT_EQ(blocks.size(), 4u) << "the section's commands changed: update this test";

  int n = 0;
  auto run = [&](const std::string& block, const std::map<std::string, std::string>& v) {
    const std::string script = Fill(block, v);
    Subprocess p(
        {"sh", "-ec", script}, dir.path() / ("step" + std::to_string(++n) + ".out"),
        {"PATH=" + BuiltBinary("wxcanary").parent_path().string() + ":" + std::getenv("PATH")});
    int st = p.Wait(30s);
    Step s;
    s.out = "$ " + script + p.Output();
    if (st != -1 && WIFEXITED(st)) s.code = WEXITSTATUS(st);
    for (const std::string& secret :
         {std::string(kUserPassword), std::string(kAdminPassword), dead, fresh})
      EXPECT_EQ(p.Output().find(secret), std::string::npos) << "a secret reached the terminal";
    return s;
  };

  cache(dead);
  Step confirm = run(blocks[0], values);
  EXPECT_EQ(confirm.code, 1) << confirm.out;
  EXPECT_NE(confirm.out.find("db 3 user canary (password set)"), std::string::npos) << confirm.out;
  EXPECT_NE(confirm.out.find("fingerprint " + Fingerprint(dead)), std::string::npos) << confirm.out;
  EXPECT_NE(confirm.out.find("errcode  40001"), std::string::npos) << confirm.out;

  Step fix = run(blocks[1], values);
  EXPECT_EQ(fix.code, 0) << fix.out;
  EXPECT_EQ(admin({"EXISTS", key}), "0") << fix.out;

  cache(fresh);  // the application's next call caches a new token
  Step check = run(blocks[2], values);
  EXPECT_EQ(check.code, 0) << check.out;
  EXPECT_NE(check.out.find("verdict  ok"), std::string::npos) << check.out;

  // The fallback: a wrong password must fail the step (not exit 0 behind NOAUTH/WRONGPASS)
  // and delete nothing; the right one deletes the key.
  cache(dead);
  auto wrong = values;
  wrong["PASSWORD_FILE"] = wrong_pw.string();
  Step denied = run(blocks[3], wrong);
  EXPECT_NE(denied.code, 0) << denied.out;
  EXPECT_EQ(admin({"GET", key}), dead);
  Step fallback = run(blocks[3], values);
  EXPECT_EQ(fallback.code, 0) << fallback.out;
  EXPECT_NE(fallback.out.find("\n1\n"), std::string::npos) << fallback.out;  // DEL's count
  EXPECT_EQ(admin({"EXISTS", key}), "0") << fallback.out;
}

// The early warning's fix, as written: evict a token that still works (it was superseded) by
// its fingerprint, so the application fetches anew before the grace ends; a token the
// application cached meanwhile is never deleted.
TEST(Runbook, token_superseded_section_evicts_the_superseded_token_by_its_fingerprint_only) {
  RedisServer redis;
  WxSim sim;
  TempDir dir;
  const auto config = dir.path() / "wxcanary.yml";
  const std::string key = std::string("ACCESS_TOKEN_CACHE:") + kApp;
  std::ofstream(config) << ConfigYaml(sim.base_url())
                               .Redis("main", redis.address())
                               .App(kApp)
                               .Env("prod", "main")
                               .str();
  const std::string older = sim.FetchToken();
  const std::string newer = sim.FetchToken();  // another environment's fetch: older has 300 s
  ASSERT_EQ(redis.Cli({"SET", key, older, "EX", "7000"}), "OK");

  const std::vector<std::string> blocks =
      ShellBlocks(Slurp(SourceDir() / "alerts/runbook.md"), "WxCanaryTokenSuperseded");
  ASSERT_EQ(blocks.size(), 1u) << "the section's commands changed: update this test";
  const std::map<std::string, std::string> values = {
      {"CONFIG", config.string()}, {"APP", kApp}, {"ENV", "prod"}, {"FP", Fingerprint(older)}};
  int n = 0;
  auto run = [&] {
    Subprocess p(
        {"sh", "-ec", Fill(blocks[0], values)},
        dir.path() / ("step" + std::to_string(++n) + ".out"),
        {"PATH=" + BuiltBinary("wxcanary").parent_path().string() + ":" + std::getenv("PATH")});
    const int st = p.Wait(30s);
    for (const std::string& secret : {older, newer})
      EXPECT_EQ(p.Output().find(secret), std::string::npos) << "a token reached the terminal";
    return std::pair{st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1, p.Output()};
  };

  const auto [code, out] = run();
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("note: this token still works"), std::string::npos) << out;
  EXPECT_EQ(redis.Cli({"EXISTS", key}), "0") << out;

  // Run again after the application cached its new token: refused, the key keeps it.
  ASSERT_EQ(redis.Cli({"SET", key, newer, "EX", "7000"}), "OK");
  const auto [again, again_out] = run();
  EXPECT_EQ(again, 1) << again_out;
  EXPECT_EQ(redis.Cli({"GET", key}), newer) << again_out;
}

}  // namespace
}  // namespace wxcanary::testing
