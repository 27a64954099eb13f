// Every tests/config/testdata/invalid-*.yml must be rejected with exactly the message on its
// first line (`# error: <message>`), blackbox_exporter style: one file per invalid case.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "support/process.h"

namespace wxcanary::config {
namespace {

namespace fs = std::filesystem;

fs::path TestData() { return testing::SourceDir() / "tests" / "config" / "testdata"; }

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> InvalidFiles() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(TestData())) {
    std::string name = entry.path().filename().string();
    if (name.rfind("invalid-", 0) == 0 && entry.path().extension() == ".yml")
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// One test per file, so that one failing case shows by name and hides none of the rest.
class InvalidConfig : public ::testing::TestWithParam<fs::path> {
 protected:
  static void SetUpTestSuite() {
    // The credential and env-var cases depend on these being absent.
    ::unsetenv("CREDENTIALS_DIRECTORY");
    ::unsetenv("WXCANARY_TEST_NEVER_SET");
    ::unsetenv("A");
  }
};

TEST_P(InvalidConfig, is_rejected_with_the_message_on_its_first_line) {
  const std::vector<std::string> secrets = {ReadAll(TestData() / "secrets" / "redis-password"),
                                            ReadAll(TestData() / "secrets" / "app-secret")};
  const std::string text = ReadAll(GetParam());
  const std::string marker = "# error: ";
  ASSERT_EQ(text.rfind(marker, 0), 0u) << "first line must be `# error: <message>`";
  const std::string expected = text.substr(marker.size(), text.find('\n') - marker.size());
  try {
    LoadFile(GetParam());
    ADD_FAILURE() << "accepted; expected: " << expected;
  } catch (const ConfigError& e) {
    const std::string got = e.what();
    EXPECT_EQ(got, expected);
    EXPECT_EQ(got.find('\n'), std::string::npos) << "error must be one line";
    for (const auto& s : secrets) {
      const std::string value = s.substr(0, s.find('\n'));
      EXPECT_EQ(got.find(value), std::string::npos) << "error reveals a secret";
    }
  }
}

// The test name is the file's: invalid-bad-port.yml -> bad_port.
std::string CaseName(const ::testing::TestParamInfo<fs::path>& info) {
  std::string name = info.param.stem().string().substr(std::string("invalid-").size());
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Testdata, InvalidConfig, ::testing::ValuesIn(InvalidFiles()), CaseName);

TEST(InvalidConfigs, the_cases_are_all_there) {
  EXPECT_GE(InvalidFiles().size(), 30u) << "invalid-*.yml cases went missing from " << TestData();
}

TEST(InvalidConfigs, the_valid_example_next_to_them_loads) {
  // Guards the table above: a loader that rejected everything would pass it.
  EXPECT_NO_THROW(LoadFile(TestData() / "valid-full.yml"));
}

}  // namespace
}  // namespace wxcanary::config
