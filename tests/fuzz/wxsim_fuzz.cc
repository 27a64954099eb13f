// Fuzzes wxsim's request handling in-process: a sequence of API calls (token fetches, probes
// with live or forged tokens, stable_token, quota/rid lookups, raw requests), clock jumps, fault
// definitions and admin views against one SimState. Every answer must be a JSON object whose
// errcode (when present) matches, and no answer or admin view may carry an app secret; admin
// views never carry a token.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "fuzz/fuzz_util.h"
#include "sim/faults.h"
#include "sim/sim_state.h"

namespace {

using nlohmann::json;
using wxcanary::fuzz::Check;

constexpr const char* kApps[][2] = {{"wxfuzz0000000001", "secret-one-0123456789abcdef"},
                                    {"wxfuzz0000000002", "secret-two-0123456789abcdef"}};
constexpr const char* kPaths[] = {"/cgi-bin/token",           "/cgi-bin/stable_token",
                                  "/wxa/msg_sec_check",       "/cgi-bin/get_api_domain_ip",
                                  "/cgi-bin/getcallbackip",   "/cgi-bin/openapi/quota/get",
                                  "/cgi-bin/openapi/rid/get", "/cgi-bin/unknown"};
constexpr const char* kKeys[] = {"access_token",  "appid",    "secret", "grant_type",
                                 "force_refresh", "cgi_path", "rid",    "content",
                                 "openid",        "version",  "scene"};

struct Session {
  wxcanary::FakeClock clock;
  wxcanary::sim::SimState state{Options(), clock};
  wxcanary::sim::FaultTable faults;
  std::vector<std::string> tokens;  // every token the sim has handed out, for reuse and checks
  std::vector<std::string> rids;

  static wxcanary::sim::SimOptions Options() {
    wxcanary::sim::SimOptions o;
    o.risky_words = {"canary-bad"};
    o.seed = 1;
    return o;
  }
};

void CheckAnswer(Session& s, const wxcanary::sim::ApiResponse& r) {
  const json j = json::parse(r.body, nullptr, false);
  Check(!j.is_discarded() && j.is_object(), "answer is a JSON object");
  if (auto it = j.find("errcode"); it != j.end()) {
    Check(it->is_number_integer() && it->get<int>() == r.errcode, "errcode matches the body");
  }
  for (const auto& app : kApps)
    Check(r.body.find(app[1]) == std::string::npos, "no secret in answer");
  for (const char* key : {"access_token"}) {
    if (auto it = j.find(key); it != j.end() && it->is_string() && s.tokens.size() < 64)
      s.tokens.push_back(it->get<std::string>());
  }
  if (auto it = j.find("rid"); it != j.end() && it->is_string() && s.rids.size() < 64)
    s.rids.push_back(it->get<std::string>());
  if (auto it = j.find("errmsg"); it != j.end() && it->is_string()) {
    const std::string& m = it->get_ref<const std::string&>();
    if (auto pos = m.find("rid: "); pos != std::string::npos && s.rids.size() < 64)
      s.rids.push_back(m.substr(pos + 5));
  }
}

std::string PickToken(Session& s, FuzzedDataProvider& in) {
  if (!s.tokens.empty() && in.ConsumeBool())
    return s.tokens[in.ConsumeIntegralInRange<size_t>(0, s.tokens.size() - 1)];
  return in.ConsumeRandomLengthString(200);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Session s;
  for (const auto& app : kApps) s.state.AddApp(app[0], app[1]);

  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    wxcanary::sim::ApiRequest req;
    const auto& app = kApps[in.ConsumeIntegralInRange<int>(0, 1)];
    switch (in.ConsumeIntegralInRange<int>(0, 8)) {
      case 0:  // /cgi-bin/token, right or wrong secret
        req.path = kPaths[0];
        req.query.emplace("grant_type", in.ConsumeBool() ? "client_credential" : "x");
        req.query.emplace("appid", in.ConsumeBool() ? app[0] : in.ConsumeRandomLengthString(32));
        req.query.emplace("secret", in.ConsumeBool() ? app[1] : in.ConsumeRandomLengthString(32));
        break;
      case 1: {  // /cgi-bin/stable_token with a JSON body
        req.method = "POST";
        req.path = kPaths[1];
        json body = {{"grant_type", "client_credential"}, {"appid", app[0]}, {"secret", app[1]}};
        if (in.ConsumeBool()) body["force_refresh"] = in.ConsumeBool();
        if (in.ConsumeBool()) body["secret"] = in.ConsumeRandomLengthString(32);
        req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
        break;
      }
      case 2: {  // a probe or lookup with a live or forged token
        req.method = in.ConsumeBool() ? "POST" : "GET";
        req.path = kPaths[in.ConsumeIntegralInRange<int>(2, 6)];
        req.query.emplace("access_token", PickToken(s, in));
        json body = json::object();
        if (in.ConsumeBool()) body["content"] = in.ConsumeRandomLengthString(64);
        if (in.ConsumeBool()) body["openid"] = in.ConsumeRandomLengthString(32);
        if (in.ConsumeBool()) body["version"] = in.ConsumeIntegralInRange<int>(0, 3);
        if (in.ConsumeBool()) body["scene"] = in.ConsumeIntegralInRange<int>(-1, 5);
        if (in.ConsumeBool()) body["cgi_path"] = kPaths[in.ConsumeIntegralInRange<int>(0, 7)];
        if (in.ConsumeBool())
          body["rid"] = s.rids.empty() || in.ConsumeBool()
                            ? in.ConsumeRandomLengthString(40)
                            : s.rids[in.ConsumeIntegralInRange<size_t>(0, s.rids.size() - 1)];
        req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
        break;
      }
      case 3:  // time passes: seconds to days, across grace and lifetime edges
        s.clock.Advance(std::chrono::seconds(in.ConsumeIntegralInRange<int64_t>(0, 3 * 86400)));
        continue;
      case 4: {  // anything at all
        req.method = in.ConsumeRandomLengthString(8);
        req.path = in.ConsumeBool() ? kPaths[in.ConsumeIntegralInRange<int>(0, 7)]
                                    : in.ConsumeRandomLengthString(64);
        const int n = in.ConsumeIntegralInRange<int>(0, 4);
        for (int i = 0; i < n; ++i)
          req.query.emplace(kKeys[in.ConsumeIntegralInRange<int>(0, std::size(kKeys) - 1)],
                            in.ConsumeRandomLengthString(64));
        req.body = in.ConsumeRandomLengthString(512);
        req.client_ip = in.ConsumeRandomLengthString(40);
        break;
      }
      case 5: {  // /admin/fault bodies
        const json j = json::parse(in.ConsumeRandomLengthString(256), nullptr, false);
        auto parsed = wxcanary::sim::ParseFault(j);
        if (auto* f = std::get_if<wxcanary::sim::Fault>(&parsed)) {
          s.faults.Set(*f);
          (void)wxcanary::sim::FaultToJson(*f).dump();
        } else {
          Check(!std::get<std::string>(parsed).empty(), "fault rejection says why");
        }
        (void)s.faults.Take(kPaths[in.ConsumeIntegralInRange<int>(0, 7)]);
        (void)s.faults.ToJson().dump(-1, ' ', false, json::error_handler_t::replace);
        continue;
      }
      case 6: {  // admin state: never a token
        const std::string view = s.state.StateJson().dump();
        for (const auto& t : s.tokens)
          if (t.size() >= 16) Check(view.find(t) == std::string::npos, "no token in /admin/state");
        if (in.ConsumeBool()) s.state.Reset();
        continue;
      }
      case 7: {  // an injected errcode answer
        req.path = kPaths[in.ConsumeIntegralInRange<int>(0, 7)];
        req.query.emplace("access_token", PickToken(s, in));
        const int code = in.ConsumeIntegralInRange<int>(-1, 99'999'999);
        const auto r = s.state.InjectedError(req, code);
        CheckAnswer(s, r);
        Check(r.errcode == code, "injected errcode answered");
        continue;
      }
      default:  // a raw body for a known path
        req.method = "POST";
        req.path = kPaths[in.ConsumeIntegralInRange<int>(0, 7)];
        req.query.emplace("access_token", PickToken(s, in));
        req.body = in.ConsumeRandomLengthString(512);
        break;
    }
    CheckAnswer(s, s.state.Handle(req));
  }
  return 0;
}
