#pragma once

#include <chrono>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "probe/result_sink.h"
#include "telemetry/log.h"

namespace wxcanary::telemetry {

/// A repeated failure is logged again at its own level this often (DEBUG in between).
inline constexpr std::chrono::minutes kFailureReminder{10};

/// Logs state changes, not every probe. A "probe" event at LevelFor() (ERROR for a dead token
/// (40001/40014/42001) and a missing one, WARN for other failures and flagged canary content,
/// INFO for ok) when a target's state (outcome, errcode, flagged) changes or is first seen;
/// the same state again is DEBUG, except that a failure is repeated at its level every
/// kFailureReminder with how long it has failed. The first ok after failures is a
/// "probe_recovered" event at WARN (so --log.level=warn sees the end of what it saw begin) with
/// how long the target failed. Targets not given by SetTargets() get every probe at its level.
/// The token itself never reaches the event: only its fingerprint, and any copy of it in an
/// API message or error detail is masked. Thread-safe as a ResultSink: Record() concurrently for
/// different targets and with SetTargets() (a reload keeps probing the targets it kept).
class ProbeLog final : public ResultSink {
 public:
  explicit ProbeLog(Logger& logger) : logger_(logger) {}

  void SetTargets(const TargetList& targets) override;
  void Record(const Target& target, const ProbeResult& result) override;

  /// The level of the event for `result`. Pure.
  static Level LevelFor(const ProbeResult& result);
  /// The human-readable message, e.g.
  /// "probe wx123/prod: token_invalid (errcode 40001) with token 1a2b3c4d, redis ttl 5400s". Pure.
  static std::string MessageFor(const Target& target, const ProbeResult& result);
  /// The event's fields in the documented order (docs/logging.md). Pure.
  static Fields FieldsFor(const Target& target, const ProbeResult& result);

 private:
  struct State {
    std::string app_id, app_env;  // whose state this is (kept across reloads by name)
    bool seen = false;
    Outcome outcome = Outcome::kOk;
    std::optional<int> errcode;
    bool flagged = false;
    SystemTime failing_since{};  // first failure of the current failing streak
    SystemTime last_logged{};    // last event at the state's own level
  };
  void Emit(Level level, std::string_view action, const Target& target, const ProbeResult& result,
            const std::string& message, const State* recovered_from);

  Logger& logger_;
  std::shared_mutex mu_;       // shared by Record(), which touches only its target's state
  std::vector<State> states_;  // by Target::index
};

/// What a Redis error line says went wrong, for the redis_down event's error.type: "auth" (AUTH
/// failed, NOAUTH, WRONGPASS), "refused", "timeout", "dns" (name resolution), "closed" (reset
/// or closed by the server), "unavailable" (LOADING, BUSY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN),
/// "select" (SELECT of the db failed), "sentinel" (no sentinel named the master), "backoff",
/// else "error". Pure.
std::string_view RedisErrorKind(std::string_view error);

/// Logs a Redis server's reachability change: redis_down at ERROR with error.type
/// (RedisErrorKind) and error.message (`error`: one line, never a password or value), or
/// redis_up at WARN (so --log.level=warn shows the end of the outage it showed begin).
void LogRedisHealth(Logger& logger, const std::string& redis, bool up, const std::string& error);

/// `text` (an errmsg or error detail of `result`) with any copy of its token or raw Redis value
/// and any access_token= query value masked, as the probe event has it. Pure.
std::string ScrubProbeText(std::string text, const ProbeResult& result);

}  // namespace wxcanary::telemetry
