#include "daemon/options.h"

#include <gtest/gtest.h>

#include "daemon/version.h"

namespace wxcanary::daemon {
namespace {

TEST(Options, parses_exporter_style_flags) {
  auto p = ParseOptions({"--config.file=/etc/wxcanary.yml", "--web.listen-address=127.0.0.1:0",
                         "--log.level=debug", "--log.format=text", "--config.check"});
  ASSERT_TRUE(p.options) << p.output;
  EXPECT_EQ(p.options->config_file, "/etc/wxcanary.yml");
  EXPECT_EQ(p.options->listen_address, "127.0.0.1:0");
  EXPECT_EQ(p.options->log_level, telemetry::Level::kDebug);
  EXPECT_EQ(p.options->log_format, telemetry::Format::kText);
  EXPECT_TRUE(p.options->config_check);
}

TEST(Options, defaults_listen_outside_the_exporter_port_range) {
  auto p = ParseOptions({"--config.file=x.yml"});
  ASSERT_TRUE(p.options);
  auto addr = ParseListenAddress(p.options->listen_address);
  ASSERT_TRUE(addr);
  EXPECT_TRUE(addr->second < 9100 || addr->second > 9999) << addr->second;
}

TEST(Options, rejects_bad_values_with_one_line_naming_them) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  } cases[] = {
      {{"--config.file=x", "--log.level=loud"}, "loud"},
      {{"--config.file=x", "--log.format=xml"}, "xml"},
      {{"--config.file=x", "--web.listen-address=nope"}, "\"nope\""},
      {{"--config.file=x", "--web.listen-address=:99999"}, "\":99999\""},
      {{"--config.file=x", "--no-such-flag"}, "--no-such-flag"},
  };
  for (const auto& c : cases) {
    auto p = ParseOptions(c.args);
    EXPECT_FALSE(p.options);
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_NE(p.output.find(c.needle), std::string::npos) << p.output;
    EXPECT_EQ(std::count(p.output.begin(), p.output.end(), '\n'), 1) << p.output;
  }
}

TEST(Options, config_file_defaults_to_the_installed_example_path) {
  auto p = ParseOptions({});
  ASSERT_TRUE(p.options) << p.output;
  EXPECT_EQ(p.options->config_file, kDefaultConfigFile);
  // The path `cmake --install` (and the .deb, prefix /usr: /etc/wxcanary/wxcanary.yml) writes.
  EXPECT_NE(std::string(kDefaultConfigFile).find("/etc/wxcanary/wxcanary.yml"), std::string::npos)
      << kDefaultConfigFile;
  EXPECT_EQ(kDefaultConfigFile[0], '/') << kDefaultConfigFile;
}

TEST(Options, help_shows_every_default) {
  auto p = ParseOptions({"--help"});
  EXPECT_FALSE(p.options);
  EXPECT_EQ(p.exit_code, 0);
  // CLI11 prints a default as "--flag TYPE=VALUE".
  for (std::string needle :
       {std::string("--config.file TEXT=") + kDefaultConfigFile + "\n",
        std::string("--web.listen-address TEXT=:10090\n"), std::string("}=info\n"),
        std::string("}=json\n"), std::string("-V,--version"), std::string("default: all apps)"),
        std::string("wxcanary discover (")})
    EXPECT_NE(p.output.find(needle), std::string::npos) << needle << " not in:\n" << p.output;
}

TEST(Options, version_and_V_print_build_info_like_an_exporter) {
  for (std::string flag : {"--version", "-V"}) {
    auto p = ParseOptions({flag});
    EXPECT_FALSE(p.options) << flag;
    EXPECT_EQ(p.exit_code, 0) << flag;
    EXPECT_EQ(p.output, VersionText()) << flag;
  }
  std::string v = VersionText();
  EXPECT_EQ(
      v.rfind(std::string("wxcanary, version ") + kVersion + " (revision: " + kRevision + ")\n", 0),
      0u)
      << v;
  for (std::string field : {"build date:", "build type:", "sanitizers:", "compiler:", "platform:"})
    EXPECT_NE(v.find("  " + field), std::string::npos) << field << " not in:\n" << v;
  // The configure-time values are filled in, not left as @PLACEHOLDERS@.
  EXPECT_EQ(v.find('@'), std::string::npos) << v;
  EXPECT_EQ(std::string(kBuildDate).size(), 20u) << kBuildDate;  // 2026-12-01T23:51:17Z
  EXPECT_EQ(kBuildDate[19], 'Z') << kBuildDate;
  EXPECT_NE(std::string(kCompiler).find_first_of("0123456789"), std::string::npos) << kCompiler;
  // The sanitized test build says so: a package must never ship one (tests/systemd/check_deb.sh
  // asserts "none" on the packaged binary).
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_NE(std::string(kSanitizers).find("address"), std::string::npos) << kSanitizers;
#endif
}

TEST(ListenAddress, accepts_host_port_and_bare_port) {
  EXPECT_EQ(ParseListenAddress(":10090"), std::make_pair(std::string(""), 10090));
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0"), std::make_pair(std::string("127.0.0.1"), 0));
  EXPECT_EQ(ParseListenAddress("[::1]:80"), std::make_pair(std::string("::1"), 80));
  EXPECT_FALSE(ParseListenAddress("10090"));
  EXPECT_FALSE(ParseListenAddress("host:"));
}

}  // namespace
}  // namespace wxcanary::daemon
