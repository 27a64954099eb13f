// scripts/demo, the README's main command, run as a newcomer would and judged by its output.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/process.h"

namespace wxcanary::testing {
namespace {

using namespace std::chrono_literals;

// Processes whose command line mentions `needle` (the demo's work directory).
std::vector<std::string> ProcessesMentioning(const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(needle) != std::string::npos) found.push_back(pid + ": " + cmdline);
  }
  return found;
}

TEST(Demo, replays_the_incident_detects_names_the_cause_heals_keeps_and_cleans_up) {
  TempDir dir;
  auto start = std::chrono::steady_clock::now();
  Subprocess demo({(SourceDir() / "scripts" / "demo").string()}, dir.path() / "demo.out");
  int status = demo.Wait(150s);
  auto took = std::chrono::steady_clock::now() - start;
  std::string out = demo.Output();
  ASSERT_NE(status, -1) << "demo still running after 150 s:\n" << out;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_LT(took, 120s) << out;

  EXPECT_NE(out.find("prod token_invalid (errcode 40001)"), std::string::npos) << out;
  EXPECT_NE(out.find("cause named: test refreshed the token"), std::string::npos) << out;
  EXPECT_NE(out.find("evicted; prod probes ok again"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(out, m, std::regex(R"(40001 detected\s+\+(\d+)\.\d+s\s+\[\+(\d+)s sim)")))
      << out;
  EXPECT_GE(std::stoi(m[2]), 300) << "detected before the 300 s grace had passed in sim time";
  EXPECT_TRUE(std::regex_search(
      out, std::regex(R"(heals_total\{[^}]*action="evict"[^}]*result="done"[^}]*\} [1-9])")))
      << out;

  // It ends with keeper mode on (issue 20): one stable token in both keys, and test's next
  // /cgi-bin/token fetch no longer kills prod's token.
  EXPECT_NE(out.find("config reloaded: wxcanary_config_last_reload_successful 1"),
            std::string::npos)
      << out;
  ASSERT_TRUE(std::regex_search(
      out, m,
      std::regex(
          R"(keeper on: prod and test hold one token \((\w+)\), wxcanary_app_distinct_tokens 1\n)")))
      << out;
  const std::string fingerprint = m[1];
  EXPECT_TRUE(std::regex_match(fingerprint, std::regex("[0-9a-f]{8}"))) << fingerprint;
  EXPECT_NE(out.find("keeper put the stable token back in test's key (" + fingerprint + ")"),
            std::string::npos)
      << out;
  ASSERT_TRUE(std::regex_search(
      out, m,
      std::regex(R"(after test fetched again and the 300 s grace passed: prod (\d+) new )"
                 R"(token_invalid, (\d+) more ok probes \[\+(\d+)s sim\])")))
      << out;
  EXPECT_EQ(m[1].str(), "0") << out;
  EXPECT_GT(std::stoi(m[2]), 0) << out;
  EXPECT_GE(std::stoi(m[3]), 300) << "checked before the 300 s grace had passed in sim time";
  EXPECT_NE(out.find("prod holds " + fingerprint + ", test holds " + fingerprint +
                     ": wxcanary_app_distinct_tokens 1"),
            std::string::npos)
      << out;

  // Never a token or the secret: only fingerprints. wxsim's tokens are 136 characters of
  // [A-Za-z0-9_-] starting "86_" (real ones ~130-160); nothing else printed is that long.
  EXPECT_FALSE(std::regex_search(out, m, std::regex("86_[A-Za-z0-9_-]{20,}"))) << m[0];
  EXPECT_FALSE(std::regex_search(out, m, std::regex("[A-Za-z0-9_-]{64,}"))) << m[0];

  // Nothing it started may outlive it.
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(Logs are in (\S+))"))) << out;
  std::string work = m[1];
  std::ifstream secret_file(std::filesystem::path(work) / "app.secret");
  std::string secret((std::istreambuf_iterator<char>(secret_file)), {});
  ASSERT_FALSE(secret.empty()) << "the demo wrote no app secret to " << work;
  EXPECT_EQ(out.find(secret), std::string::npos) << "the app secret is in the output";
  EXPECT_EQ(std::filesystem::status(std::filesystem::path(work) / "app.secret").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::string script = (SourceDir() / "scripts" / "demo").string();  // the app stand-in loops
  std::vector<std::string> stray;
  for (int i = 0; i < 50; ++i) {
    stray = ProcessesMentioning(work);
    for (auto& p : ProcessesMentioning(script)) stray.push_back(p);
    if (stray.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(stray.empty()) << stray.front();
  std::filesystem::remove_all(work);
}

}  // namespace
}  // namespace wxcanary::testing
