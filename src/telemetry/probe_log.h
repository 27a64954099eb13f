#pragma once

#include <string>

#include "probe/result.h"
#include "telemetry/log.h"

namespace wxcanary::telemetry {

/// Writes one "probe" event per result: ERROR for a dead token (40001/40014/42001) and a
/// missing one, WARN for other failures and for flagged canary content, INFO for ok. The token
/// itself never reaches the event: only its fingerprint, and any copy of it in an API message or
/// error detail is masked. Thread-safe (the Logger is).
class ProbeLog final : public ResultSink {
 public:
  explicit ProbeLog(Logger& logger) : logger_(logger) {}

  void Record(const Target& target, const ProbeResult& result) override;

  /// The level of the event for `result`. Pure.
  static Level LevelFor(const ProbeResult& result);
  /// The human-readable message, e.g.
  /// "probe wx123/prod: token_invalid (errcode 40001) with token 1a2b3c4d, redis ttl 5400s". Pure.
  static std::string MessageFor(const Target& target, const ProbeResult& result);
  /// The event's fields in the documented order (docs/logging.md). Pure.
  static Fields FieldsFor(const Target& target, const ProbeResult& result);

 private:
  Logger& logger_;
};

}  // namespace wxcanary::telemetry
