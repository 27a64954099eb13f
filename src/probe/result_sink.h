#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/outcome.h"
#include "common/secret.h"
#include "config/config.h"

namespace wxcanary {

/// One (app_id, app_env) pair being watched. Immutable once the scheduler owns it.
struct Target {
  std::string app_id;
  std::string app_env;
  config::Environment env;  // copy: a reload swaps whole target sets
  size_t index = 0;         // unique within a target set; the runner keeps it across reloads
};

/// What one probe of one target found. Tokens appear only as the Secret/fingerprint.
struct ProbeResult {
  Outcome outcome = Outcome::kOk;
  SystemTime started{};
  std::chrono::nanoseconds duration{0};

  // From Redis.
  bool token_present = false;
  Secret token;              // the token sent to the API (never logged)
  Secret raw_value;          // the stored value it was decoded from (for compare-and-delete)
  std::string fingerprint;   // Fingerprint(token), "" when absent
  int64_t ttl_seconds = -2;  // Redis TTL: -2 no key, -1 no expiry
  /// When the token expires by what the app stored with it (env.expiry_path / expiry_key);
  /// nullopt when not configured. Tells a 40014 of old age from one of a conflict.
  std::optional<SystemTime> expires_at;

  // From the API.
  long http_status = 0;        // 0 when no HTTP answer arrived (or no call was sent)
  std::optional<int> errcode;  // absent when the call did not return WeChat JSON
  std::string errmsg;          // rid and any token removed
  std::string rid;             // parsed out of errmsg, "" when none
  bool content_flagged =
      false;  // 87014 / v2 suggest=risky: the token worked, the canary text didn't

  std::string detail;  // free-form context for failures (curl error, Redis error, parse error)
};

/// Receives every probe outcome exactly once, from the runner. Metrics, logs, the conflict
/// tracker and the healer each implement it. Record() is called from worker threads,
/// concurrently for different targets and never concurrently for the same target. SetTargets()
/// may run while Record() runs for targets a reload kept (their index does not change); a target
/// it drops gets no Record() once SetTargets() has begun.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  /// Called at start and after every reload, before any Record() for the new set. Targets
  /// absent from the new set are gone; per-target state for them should be dropped.
  virtual void SetTargets(const std::vector<Target>& targets) { (void)targets; }
  virtual void Record(const Target& target, const ProbeResult& result) = 0;
};

}  // namespace wxcanary
