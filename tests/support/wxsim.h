#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace httplib {
class Client;
}

namespace wxcanary::testing {

/// A running `wxsim` (the built binary) on a free loopback port, stopped when destroyed.
/// Without --app/--apps-file in extra_args it serves one app: kAppId / kSecret.
/// Not thread-safe: use one WxSim per test thread (it owns one keep-alive client).
class WxSim {
 public:
  static constexpr const char* kAppId = "wx00000000000000a1";
  static constexpr const char* kSecret = "0123456789abcdef0123456789abcdef";

  /// A plain answer: HTTP status (-1 when the connection failed) and body.
  struct Reply {
    int status = -1;
    std::string body;
    /// The body as JSON (null when it is not JSON).
    [[nodiscard]] nlohmann::json Json() const;
  };

  /// Starts wxsim with extra_args (e.g. {"--grace", "60", "--app", "wx1:s1"}) and waits until it
  /// accepts connections. Throws std::runtime_error with its output if it does not start.
  explicit WxSim(std::vector<std::string> extra_args = {});
  ~WxSim();
  WxSim(const WxSim&) = delete;
  WxSim& operator=(const WxSim&) = delete;

  [[nodiscard]] int port() const { return port_; }
  /// "http://127.0.0.1:PORT" (https when started with --tls-cert).
  [[nodiscard]] std::string base_url() const;
  /// "127.0.0.1:PORT".
  [[nodiscard]] std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Moves sim time forward (POST /admin/advance). Throws on failure.
  void Advance(double seconds);
  /// GET /admin/state: sim_time, apps{id:{tokens[{fingerprint,source,current,issued_at,
  /// expires_at,invalidated_at}], calls{path:{errcode:n}}, usage, ...}}, calls, faults.
  nlohmann::json State();
  /// POST /admin/fault, e.g. {{"path","/wxa/msg_sec_check"},{"errcode",-1},{"count",1}}.
  /// Throws with wxsim's one-line reason if the fault is rejected.
  void InjectFault(const nlohmann::json& fault);
  /// DELETE /admin/fault.
  void ClearFaults();
  /// POST /admin/reset: forget tokens, counters, rids and faults.
  void Reset();

  /// A new token from GET /cgi-bin/token (invalidates the previous one after the grace).
  /// Throws std::runtime_error with the WeChat error (never a token) on failure.
  std::string FetchToken(const std::string& appid = kAppId, const std::string& secret = kSecret);
  /// The token from POST /cgi-bin/stable_token.
  std::string FetchStableToken(const std::string& appid = kAppId,
                               const std::string& secret = kSecret, bool force_refresh = false);

  /// GET path_and_query ("/cgi-bin/getcallbackip?access_token=...").
  Reply Get(const std::string& path_and_query);
  /// POST with a body (JSON by default).
  Reply Post(const std::string& path_and_query, const std::string& body,
             const std::string& content_type = "application/json");

  /// Everything wxsim printed so far (for failure messages).
  [[nodiscard]] std::string Output() const { return proc_ ? proc_->Output() : std::string(); }
  /// The process itself (e.g. to check it is still running()).
  Subprocess& process() { return *proc_; }

 private:
  httplib::Client& client();

  bool tls_ = false;
  int port_ = 0;
  TempDir dir_;
  std::unique_ptr<Subprocess> proc_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace wxcanary::testing
