// The redis_down event end to end: the wxcanary binary against a password-protected
// redis-server it has the wrong password for, a closed port and a listener that never answers;
// checked in the bytes of its JSON log, as Logstash receives them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "support/config_yaml.h"
#include "support/daemon.h"
#include "support/process.h"
#include "support/redis_server.h"
#include "support/silent_listener.h"

namespace wxcanary::testing {
namespace {

const std::string kRightPassword = "right-Pw-4711";
const std::string kWrongPassword = "wrong-Pw-0815";

// One environment per Redis entry, named after it.
std::string Config(const std::vector<std::pair<std::string, ConfigYaml::Fields>>& redis) {
  // Every probe fails at Redis, before any API call; the API address is a closed port anyway.
  ConfigYaml c("http://127.0.0.1:" + std::to_string(FreePort()));
  c.WeChat("timeout", "1s").Workers(3).Default("interval", "300ms").Default("timeout", "250ms");
  c.Default("probe", "msg_sec_check");
  for (const auto& [name, fields] : redis) {
    ConfigYaml::Fields f = fields;
    f.insert(f.end(), {{"connect_timeout", "200ms"}, {"read_timeout", "200ms"}});
    c.Redis(name, f.front().second, f);
  }
  c.App("wx00000000000000a1");
  for (const auto& [name, fields] : redis) c.Env(name, name);
  return c;
}

// The redis_down lines of the captured stdout, by wxcanary.redis.name.
std::map<std::string, nlohmann::json> RedisDown(const std::string& output) {
  std::map<std::string, nlohmann::json> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event.action", "") == "redis_down")
      out.emplace(j.value("wxcanary.redis.name", ""), j);
  }
  return out;
}

TEST(RedisDownEvent, names_auth_refused_and_timeout_in_the_log) {
  RedisServer redis({"--requirepass", kRightPassword});
  SilentListener silent;
  const int closed = FreePort();
  Daemon d(Config({{"wrongpw",
                    {{"address", redis.address()}, {"password_env", "WXCANARY_TEST_REDIS_PW"}}},
                   {"closed", {{"address", "127.0.0.1:" + std::to_string(closed)}}},
                   {"silent", {{"address", "127.0.0.1:" + std::to_string(silent.port())}}}}),
           {}, {"WXCANARY_TEST_REDIS_PW=" + kWrongPassword});
  ASSERT_TRUE(d.WaitFor([](const Scrape& s) {
    for (const char* r : {"wrongpw", "closed", "silent"})
      if (s.Value("wxcanary_redis_up", {{"redis", r}}) != 0) return false;
    return true;
  })) << d.Output();

  const std::string output = d.Output();
  const auto down = RedisDown(output);
  ASSERT_EQ(down.size(), 3u) << output;
  struct Want {
    std::string redis, type, in_message;
  };
  for (const Want& w : {Want{"wrongpw", "auth", redis.address() + ": AUTH failed: WRONGPASS"},
                        Want{"closed", "refused", "Connection refused"},
                        Want{"silent", "timeout", ": timed out after "}}) {
    const auto& e = down.at(w.redis);
    EXPECT_EQ(e["log.level"], "error") << e;
    EXPECT_EQ(e["error.type"], w.type) << e;
    EXPECT_NE(e.value("error.message", "").find(w.in_message), std::string::npos) << e;
    EXPECT_EQ(
        e.value("message", "").rfind("redis " + w.redis + " is unreachable (" + w.type + "): ", 0),
        0u)
        << e;
  }
  EXPECT_EQ(output.find(kWrongPassword), std::string::npos);
}

}  // namespace
}  // namespace wxcanary::testing
