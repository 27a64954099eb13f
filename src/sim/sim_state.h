#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"

namespace wxcanary::sim {

/// Per-AppId limits of one API path; 0 means unlimited.
struct Limit {
  int64_t per_minute = 0;
  int64_t per_day = 0;
};

/// Everything that shapes the simulated platform. Defaults follow ../shared/wechat-api.md.
struct SimOptions {
  std::chrono::seconds grace{300};                 // /cgi-bin/token: overlap of the previous token
  std::chrono::seconds expires_in{7200};           // lifetime of every token
  int expired_errcode = 42001;                     // or 40014, as some deployments answer
  std::chrono::seconds stable_rotate_window{300};  // stable token rotates in its last N s
  std::chrono::seconds force_refresh_overlap{0};   // 0: force_refresh kills the previous at once
  std::chrono::seconds force_refresh_spacing{30};
  int force_refresh_per_day = 20;
  std::vector<std::string> risky_words;  // msg_sec_check flags content containing any of these
  uint64_t seed = 0;                     // token/rid generator seed
  /// Per-path limits; the defaults are the documented ones. Keys are API paths.
  std::map<std::string, Limit> limits = DefaultLimits();

  static std::map<std::string, Limit> DefaultLimits();
};

/// One API call as the HTTP layer hands it over. Not synchronized.
struct ApiRequest {
  std::string method = "GET";
  std::string path;
  std::multimap<std::string, std::string> query;  // first value of a key wins
  std::string body;
  std::string client_ip = "127.0.0.1";
};

/// The answer: always HTTP 200 with a JSON body (errors included, as WeChat does).
struct ApiResponse {
  int errcode = 0;
  std::string body;
};

/// The errmsg WeChat uses for errcode (without the rid suffix); generic text for unknown codes.
std::string_view ErrMsg(int errcode);

/// True when rid looks like "xxxxxxxx-xxxxxxxx-xxxxxxxx" (lowercase hex).
bool IsRid(std::string_view rid);

/// The simulated WeChat platform: apps, tokens, stable tokens, limits, rids and call counters.
/// A pure state machine over an injected clock. Thread-safe (one mutex; every request is O(1)
/// amortized, no scans over apps or tokens).
class SimState {
 public:
  SimState(SimOptions options, Clock& clock);

  /// Registers (or re-keys) an app. Thread-safe.
  void AddApp(const std::string& appid, const std::string& secret);

  /// Answers one API call, updating tokens and counters.
  ApiResponse Handle(const ApiRequest& request);

  /// An error answer for an injected fault (errcode from the fault), recorded for rid/get and
  /// counted like any other answer.
  ApiResponse InjectedError(const ApiRequest& request, int errcode);

  /// Admin view: sim time, per app live tokens by fingerprint and call counters. Never a token.
  nlohmann::json StateJson();

  /// Forgets every token, counter and rid record; keeps the apps, options and the clock.
  void Reset();

  [[nodiscard]] const SimOptions& options() const { return options_; }

 private:
  enum class Source { kToken, kStable };
  struct TokenInfo {
    std::string appid;
    Source source = Source::kToken;
    SystemTime issued;
    SystemTime expires;
    std::optional<SystemTime> invalid_from;  // 40001 from this instant on
  };
  struct Usage {
    int64_t minute = -1, minute_count = 0;
    int64_t day = -1, day_count = 0;
  };
  struct App {
    std::string secret;
    std::string token_current, token_previous;     // /cgi-bin/token
    std::string stable_current, stable_previous;   // /cgi-bin/stable_token
    std::unordered_map<std::string, Usage> usage;  // by API path
    int64_t force_day = -1;
    int force_count = 0;
    std::optional<SystemTime> last_force;
    uint64_t tokens_issued = 0, stable_issued = 0;
    std::map<std::string, std::map<int, uint64_t>> calls;  // path -> errcode -> count
  };
  struct RidRecord {
    std::string appid;  // empty when the call had no known app
    SystemTime invoke_time;
    int64_t cost_ms = 0;
    std::string request_url, request_body, response_body, client_ip;
  };
  enum class TokenCheck { kValid, kMissing, kInvalid, kMalformed, kExpired };

  // All below run with mu_ held.
  ApiResponse Dispatch(const ApiRequest& req, const std::optional<nlohmann::json>& body,
                       std::string& appid_out, SystemTime now);
  ApiResponse Token(const ApiRequest& req, std::string& appid_out, SystemTime now);
  ApiResponse StableToken(const ApiRequest& req, const std::optional<nlohmann::json>& body,
                          std::string& appid_out, SystemTime now);
  ApiResponse MsgSecCheck(const ApiRequest& req, const std::optional<nlohmann::json>& body,
                          const std::string& appid, SystemTime now);
  ApiResponse QuotaGet(const std::optional<nlohmann::json>& body, const std::string& appid,
                       SystemTime now);
  ApiResponse RidGet(const std::optional<nlohmann::json>& body, const std::string& appid,
                     SystemTime now);
  ApiResponse Error(int errcode, SystemTime now, std::string_view errmsg = {});
  /// Checks ?access_token; on success sets appid. Returns errcode (0 when valid).
  int CheckToken(const ApiRequest& req, std::string& appid, SystemTime now);
  /// Counts one accepted call against the limits of path; returns 0, 45011 or 45009.
  int ChargeLimit(App& app, const std::string& path, SystemTime now);
  std::string IssueToken(const std::string& appid, Source source, SystemTime now);
  void Invalidate(const std::string& token, SystemTime at);
  bool TokenLive(const std::string& token, SystemTime now) const;
  std::string NewRid(SystemTime now);
  void Record(const ApiRequest& req, const std::string& appid, const ApiResponse& resp,
              SystemTime now);
  void Prune(SystemTime now);

  const SimOptions options_;
  Clock& clock_;
  std::mutex mu_;
  std::mt19937_64 rng_;
  std::unordered_map<std::string, App> apps_;
  std::unordered_map<std::string, TokenInfo> tokens_;
  std::deque<std::pair<SystemTime, std::string>> token_prune_;  // (forget at, token), in order
  std::unordered_map<std::string, RidRecord> rids_;
  std::deque<std::pair<SystemTime, std::string>> rid_prune_;
  std::map<std::string, std::map<int, uint64_t>> calls_;  // all calls: path -> errcode -> n
  std::string last_rid_;  // rid of the answer being built (for Record)
};

}  // namespace wxcanary::sim
