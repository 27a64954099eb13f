// wxbench_fill: gives every bench app a real token from wxsim and caches it in Redis under
// each environment's key, as the apps being watched would. Also writes the token list used by
// the blackbox_exporter load (one probe URL per line). Tokens go only to Redis and that file.
//
//   wxbench_fill SIM_PORT REDIS_PORT APPS ENVS TARGETS_OUT
//     app ids: wxbench%010d (0..APPS-1), secret s%d; keys tok:{app_id}:{app_env}, env e0..
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <httplib.h>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct RedisFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(void* r) const { freeReplyObject(r); }
};

std::string AppId(int a) {
  char id[32];
  std::snprintf(id, sizeof id, "wxbench%010d", a);
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: wxbench_fill SIM_PORT REDIS_PORT APPS ENVS TARGETS_OUT\n";
    return 2;
  }
  const int sim_port = std::atoi(argv[1]), redis_port = std::atoi(argv[2]);
  const int apps = std::atoi(argv[3]), envs = std::atoi(argv[4]);
  httplib::Client sim("127.0.0.1", sim_port);
  sim.set_keep_alive(true);
  timeval tv{5, 0};
  std::unique_ptr<redisContext, RedisFree> redis(
      redisConnectWithTimeout("127.0.0.1", redis_port, tv));
  if (!redis || redis->err) {
    std::cerr << "wxbench_fill: redis 127.0.0.1:" << redis_port << ": "
              << (redis ? redis->errstr : "alloc") << "\n";
    return 1;
  }
  std::ofstream urls(argv[5]);
  int pending = 0;
  auto drain = [&]() -> bool {
    for (; pending > 0; --pending) {
      void* r = nullptr;
      if (redisGetReply(redis.get(), &r) != REDIS_OK) return false;
      std::unique_ptr<void, ReplyFree> own(r);
    }
    return true;
  };
  for (int a = 0; a < apps; ++a) {
    const std::string id = AppId(a);
    auto res = sim.Get("/cgi-bin/token?grant_type=client_credential&appid=" + id + "&secret=s" +
                       std::to_string(a));
    auto j = res ? nlohmann::json::parse(res->body, nullptr, false) : nlohmann::json();
    if (!j.is_object() || !j.contains("access_token")) {
      std::cerr << "wxbench_fill: wxsim /cgi-bin/token for " << id
                << " failed: " << (res ? res->body : httplib::to_string(res.error())) << "\n";
      return 1;
    }
    const std::string token = j["access_token"];
    for (int e = 0; e < envs; ++e) {
      const std::string key = "tok:" + id + ":e" + std::to_string(e);
      redisAppendCommand(redis.get(), "SET %b %b EX 7200", key.data(), key.size(), token.data(),
                         token.size());
      ++pending;
    }
    urls << "http://127.0.0.1:" << sim_port << "/wxa/msg_sec_check?access_token=" << token << "\n";
    if (pending >= 1000 && !drain()) break;
  }
  if (!drain()) {
    std::cerr << "wxbench_fill: redis: " << redis->errstr << "\n";
    return 1;
  }
  std::cout << "wxbench_fill: " << apps << " apps x " << envs << " envs cached\n";
  return 0;
}
