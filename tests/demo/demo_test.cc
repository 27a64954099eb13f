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

TEST(Demo, replays_the_incident_detects_names_the_cause_heals_and_cleans_up) {
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

  // Nothing it started may outlive it.
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(Logs are in (\S+))"))) << out;
  std::string work = m[1];
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
