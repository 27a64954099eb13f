#include "daemon/options.h"

#include <gtest/gtest.h>

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
      {{}, "--config.file"},
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

TEST(ListenAddress, accepts_host_port_and_bare_port) {
  EXPECT_EQ(ParseListenAddress(":10090"), std::make_pair(std::string(""), 10090));
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0"), std::make_pair(std::string("127.0.0.1"), 0));
  EXPECT_EQ(ParseListenAddress("[::1]:80"), std::make_pair(std::string("::1"), 80));
  EXPECT_FALSE(ParseListenAddress("10090"));
  EXPECT_FALSE(ParseListenAddress("host:"));
}

}  // namespace
}  // namespace wxcanary::daemon
