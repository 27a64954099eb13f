#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace prometheus {
class Registry;
}
namespace wxcanary::config {
struct Logging;
}

namespace wxcanary::telemetry {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kJson, kText };

std::string_view LevelName(Level level);  // "debug", "info", "warn", "error"

/// Inverse of LevelName (for --log.level); nullopt for anything else. Pure.
std::optional<Level> ParseLevel(std::string_view name);

/// Extra fields of one event: flat dotted ECS keys ("labels.app_id", "event.outcome",
/// "wxcanary.token.fingerprint", ...), kept in the order given. Never put a token in one.
using Fields = nlohmann::ordered_json;

/// Where events go. Implementations are thread-safe and never block the caller on I/O.
class Logger {
 public:
  virtual ~Logger() = default;
  /// Writes one event. Nothing passed in may be referenced after Log returns (callers reuse
  /// their buffers for the next event): an implementation copies what it keeps.
  virtual void Log(Level level, std::string_view action, std::string_view message,
                   const Fields& fields) = 0;
  [[nodiscard]] virtual bool Enabled(Level level) const = 0;

  void Log(Level level, std::string_view action, std::string_view message) {
    Log(level, action, message, Fields::object());
  }
};

/// One ECS JSON line (no trailing newline): "@timestamp", "log.level", "message", "ecs.version"
/// first, then "service.name", "event.action", then `fields` in order. Every string goes
/// through the JSON library (invalid UTF-8 is replaced, never passed through). Pure.
std::string FormatJsonLine(SystemTime ts, Level level, std::string_view action,
                           std::string_view message, const Fields& fields);

/// The same event as one logfmt-style line for humans (--log.format=text). Pure.
std::string FormatTextLine(SystemTime ts, Level level, std::string_view action,
                           std::string_view message, const Fields& fields);

/// The daemon's logger: the configured sinks (stdout, rotating file, Logstash TCP), each behind
/// its own bounded asynchronous queue that drops the oldest event when full and counts it in
/// wxcanary_log_events_dropped_total{sink} (registered in `registry` when not null).
/// `format` applies to stdout; file and tcp sinks always get JSON (Filebeat, Logstash parse it).
/// Log() only formats and enqueues; destruction drains the queues within about a second even
/// with a stalled TCP peer. Throws config::ConfigError naming the sink key on unusable settings.
std::unique_ptr<Logger> MakeLogger(const config::Logging& logging, Format format, Level min_level,
                                   Clock& clock, prometheus::Registry* registry);

}  // namespace wxcanary::telemetry
