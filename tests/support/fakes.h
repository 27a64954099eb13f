#pragma once

// The one place for test doubles shared across test directories.

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "probe/result_sink.h"
#include "telemetry/log.h"

namespace wxcanary::testing {

/// Keeps every event in memory, as the JSON line the daemon would write. Thread-safe.
class CapturingLogger final : public telemetry::Logger {
 public:
  struct Event {
    telemetry::Level level;
    std::string action;
    std::string message;
    telemetry::Fields fields;
  };

  void Log(telemetry::Level level, std::string_view action, std::string_view message,
           const telemetry::Fields& fields) override {
    std::lock_guard lock(mu_);
    events_.push_back({level, std::string(action), std::string(message), fields});
  }
  [[nodiscard]] bool Enabled(telemetry::Level) const override { return true; }

  std::vector<Event> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<Event> WithAction(std::string_view action) const {
    std::lock_guard lock(mu_);
    std::vector<Event> out;
    for (const auto& e : events_)
      if (e.action == action) out.push_back(e);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Event> events_;
};

/// Keeps every probe result a runner records. Thread-safe.
class RecordingSink final : public ResultSink {
 public:
  void Record(const Target& target, const ProbeResult& result) override {
    std::lock_guard lock(mu_);
    records_.push_back({target, result});
  }
  std::vector<std::pair<Target, ProbeResult>> records() const {
    std::lock_guard lock(mu_);
    return records_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<Target, ProbeResult>> records_;
};

/// A ProbeResult as the runner would record it: `token` read from Redis ("" = no token cached,
/// TTL -2) and the API's answer. errcode defaults to what WeChat sends for `outcome`.
inline ProbeResult MakeResult(const std::string& token, Outcome outcome = Outcome::kOk,
                              int64_t ttl_seconds = 7000,
                              std::optional<int> errcode = std::nullopt) {
  ProbeResult r;
  r.outcome = outcome;
  r.token_present = !token.empty();
  r.token = Secret(token);
  r.raw_value = Secret(token);
  r.fingerprint = r.token.Fingerprint();
  r.ttl_seconds = token.empty() ? -2 : ttl_seconds;
  if (!errcode) {
    if (outcome == Outcome::kOk) errcode = 0;
    if (outcome == Outcome::kTokenInvalid) errcode = 40001;
    if (outcome == Outcome::kTokenMalformed) errcode = 40014;
    if (outcome == Outcome::kTokenExpired) errcode = 42001;
  }
  r.errcode = errcode;
  return r;
}

/// A Target for unit tests.
inline Target MakeTarget(std::string app_id, std::string app_env, size_t index = 0) {
  Target t;
  t.app_id = std::move(app_id);
  t.app_env = std::move(app_env);
  t.env.name = t.app_env;
  t.env.key = "ACCESS_TOKEN_CACHE:" + t.app_id;
  t.index = index;
  return t;
}

}  // namespace wxcanary::testing
