#include "telemetry/log.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <atomic>
#include <vector>

#include "common/rfc3339.h"
#include "config/config.h"
#include "telemetry/tcp_sink.h"

namespace wxcanary::telemetry {

namespace {

constexpr std::string_view kEcsVersion = "8.11.0";
constexpr std::string_view kServiceName = "wxcanary";
constexpr std::array<std::string_view, 6> kHeadKeys = {
    "@timestamp", "log.level", "message", "ecs.version", "service.name", "event.action"};

bool IsHeadKey(std::string_view key) {
  for (auto k : kHeadKeys)
    if (k == key) return true;
  return false;
}

// Invalid UTF-8 (a hostile or broken API answer) becomes U+FFFD instead of throwing.
std::string Dump(const Fields& value) {
  return value.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

std::string ToUtf8String(std::string_view s) {
  // A string_view may carry any bytes; the JSON library validates at dump time.
  return std::string(s);
}

// logfmt value: bare when it is a safe token, else a JSON-quoted string (escapes included).
std::string TextValue(const Fields& v) {
  if (!v.is_string()) return Dump(v);
  const auto& s = v.get_ref<const std::string&>();
  bool bare = !s.empty();
  for (unsigned char c : s) {
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      bare = false;
      break;
    }
  }
  return bare ? s : Dump(v);
}

}  // namespace

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

std::optional<Level> ParseLevel(std::string_view name) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError})
    if (LevelName(l) == name) return l;
  return std::nullopt;
}

std::string FormatJsonLine(SystemTime ts, Level level, std::string_view action,
                           std::string_view message, const Fields& fields) {
  // Written directly rather than through a temporary ordered_json: Log() runs on probe threads,
  // and copying every field value first roughly doubled its cost. Every string still goes
  // through the library's serializer (escaping, invalid UTF-8 replaced).
  std::string out;
  out.reserve(256 + message.size());
  nlohmann::detail::serializer<Fields> json(
      nlohmann::detail::output_adapter<char, std::string>(out), ' ',
      nlohmann::detail::error_handler_t::replace);
  // Strings (message, action, keys) go through one string value per thread, reassigned in
  // place: a Fields(std::string) per string cost two allocations each, ~30 per probe event.
  thread_local Fields scratch = std::string();
  auto dump_string = [&](std::string_view s) {
    scratch.get_ref<std::string&>().assign(s);
    json.dump(scratch, false, false, 0);
  };
  out += R"({"@timestamp":")";
  out += FormatRfc3339(ts);
  out += R"(","log.level":")";
  out += LevelName(level);
  out += R"(","message":)";
  dump_string(message);
  out += R"(,"ecs.version":")";
  out += kEcsVersion;
  out += R"(","service.name":")";
  out += kServiceName;
  out += R"(","event.action":)";
  dump_string(action);
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) {
      if (IsHeadKey(key)) continue;  // the head is ours: a field cannot reorder or forge it
      out += ',';
      dump_string(key);
      out += ':';
      json.dump(value, false, false, 0);
    }
  }
  out += '}';
  return out;
}

std::string FormatTextLine(SystemTime ts, Level level, std::string_view action,
                           std::string_view message, const Fields& fields) {
  std::string out = FormatRfc3339(ts);
  out += " level=";
  out += LevelName(level);
  out += " action=";
  out += TextValue(Fields(ToUtf8String(action)));
  out += " msg=";
  out += Dump(Fields(ToUtf8String(message)));
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) {
      out += ' ';
      out += TextValue(Fields(key));
      out += '=';
      out += TextValue(value);
    }
  }
  return out;
}

namespace {

std::string_view SinkName(config::LogSink::Kind kind) {
  switch (kind) {
    case config::LogSink::Kind::kStdout: return "stdout";
    case config::LogSink::Kind::kFile: return "file";
    case config::LogSink::Kind::kTcp: return "tcp";
  }
  return "stdout";
}

// Dropped events of one sink: queue overruns plus write failures, mirrored into the counter.
class DropCount {
 public:
  explicit DropCount(prometheus::Counter* counter) : counter_(counter) {}
  void Add(uint64_t n) {
    if (n == 0) return;
    total_.fetch_add(n, std::memory_order_relaxed);
    if (counter_ != nullptr) counter_->Increment(static_cast<double>(n));
  }
  // The pool's overrun counter only grows; whoever observes growth first accounts for it.
  void SyncOverruns(size_t now_seen) {
    size_t prev = overruns_seen_.load(std::memory_order_relaxed);
    while (now_seen > prev) {
      if (overruns_seen_.compare_exchange_weak(prev, now_seen, std::memory_order_relaxed)) {
        Add(now_seen - prev);
        return;
      }
    }
  }
  [[nodiscard]] uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  prometheus::Counter* counter_;
  std::atomic<uint64_t> total_{0};
  std::atomic<size_t> overruns_seen_{0};
};

struct Channel {
  std::string name;
  Format format = Format::kJson;
  std::shared_ptr<DropCount> drops;
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<spdlog::async_logger> logger;
  std::shared_ptr<TcpSink> tcp;  // set for the tcp sink, to bound its drain at exit
};

class AsyncLogger final : public Logger {
 public:
  AsyncLogger(Level min_level, Clock& clock) : min_level_(min_level), clock_(clock) {}

  ~AsyncLogger() override {
    // Bounded exit: a stalled TCP peer gets at most kDrainBudget in total, after which queued
    // events are written only if the socket takes them at once.
    auto deadline = clock_.MonotonicNow() + kDrainBudget;
    for (auto& c : channels_)
      if (c.tcp) c.tcp->BeginShutdown(deadline);
    for (auto& c : channels_) {
      c.drops->SyncOverruns(c.pool->overrun_counter());
      c.logger->flush();  // queued behind the events; processed during the drain below
      c.logger.reset();
      c.pool.reset();  // posts terminate behind the queued events and joins the worker
    }
  }

  void Add(Channel channel) { channels_.push_back(std::move(channel)); }

  void Log(Level level, std::string_view action, std::string_view message,
           const Fields& fields) override {
    if (!Enabled(level)) return;
    SystemTime ts = clock_.SystemNow();
    std::string json;
    std::string text;
    for (auto& c : channels_) {
      std::string& line = c.format == Format::kJson ? json : text;
      if (line.empty()) {
        line = c.format == Format::kJson ? FormatJsonLine(ts, level, action, message, fields)
                                         : FormatTextLine(ts, level, action, message, fields);
      }
      c.logger->log(spdlog::source_loc{}, spdlog::level::info,
                    spdlog::string_view_t(line.data(), line.size()));
      c.drops->SyncOverruns(c.pool->overrun_counter());
    }
  }

  [[nodiscard]] bool Enabled(Level level) const override {
    return static_cast<int>(level) >= static_cast<int>(min_level_);
  }

 private:
  static constexpr std::chrono::milliseconds kDrainBudget{1000};
  Level min_level_;
  Clock& clock_;
  std::vector<Channel> channels_;
};

}  // namespace

std::unique_ptr<Logger> MakeLogger(const config::Logging& logging, Format format, Level min_level,
                                   Clock& clock, prometheus::Registry* registry) {
  prometheus::Family<prometheus::Counter>* dropped = nullptr;
  if (registry != nullptr) {
    dropped = &prometheus::BuildCounter()
                   .Name("wxcanary_log_events_dropped_total")
                   .Help(
                       "Log events dropped per sink: queue overruns (oldest first) plus write "
                       "failures.")
                   .Register(*registry);
  }

  std::vector<config::LogSink> sinks = logging.sinks;
  if (sinks.empty()) sinks.emplace_back();  // default: one stdout sink

  auto logger = std::make_unique<AsyncLogger>(min_level, clock);
  for (size_t i = 0; i < sinks.size(); ++i) {
    const config::LogSink& cfg = sinks[i];
    const std::string key = "logging.sinks[" + std::to_string(i) + "]";
    if (cfg.queue_size <= 0) {
      throw config::ConfigError(key + ".queue_size: " + std::to_string(cfg.queue_size) +
                                " must be positive");
    }
    Channel c;
    c.name = std::string(SinkName(cfg.kind));
    c.drops = std::make_shared<DropCount>(dropped ? &dropped->Add({{"sink", c.name}}) : nullptr);
    // Files and Logstash are read by machines (Filebeat ndjson, json_lines): always JSON there.
    c.format = cfg.kind == config::LogSink::Kind::kStdout ? format : Format::kJson;

    spdlog::sink_ptr sink;
    switch (cfg.kind) {
      case config::LogSink::Kind::kStdout:
        sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
        break;
      case config::LogSink::Kind::kFile:
        if (cfg.path.empty()) throw config::ConfigError(key + ".path: \"\" must name a file");
        if (cfg.max_size_bytes <= 0 || cfg.max_files < 0) {
          throw config::ConfigError(key + ": max_size_bytes " + std::to_string(cfg.max_size_bytes) +
                                    " and max_files " + std::to_string(cfg.max_files) +
                                    " must be positive");
        }
        try {
          sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
              cfg.path, static_cast<size_t>(cfg.max_size_bytes),
              static_cast<size_t>(cfg.max_files));
        } catch (const spdlog::spdlog_ex& e) {
          throw config::ConfigError(key + ".path: \"" + cfg.path +
                                    "\" cannot be opened: " + e.what());
        }
        break;
      case config::LogSink::Kind::kTcp: {
        if (cfg.host.empty() || cfg.port <= 0 || cfg.port > 65535) {
          throw config::ConfigError(key + ": \"" + cfg.host + ":" + std::to_string(cfg.port) +
                                    "\" is not a host:port");
        }
        TcpSink::Options opts;
        opts.host = cfg.host;
        opts.port = cfg.port;
        std::weak_ptr<DropCount> drops = c.drops;
        c.tcp = std::make_shared<TcpSink>(
            opts,
            [drops](uint64_t n) {
              if (auto d = drops.lock()) d->Add(n);
            },
            clock);
        sink = c.tcp;
        break;
      }
    }
    sink->set_pattern("%v");  // the line is already formatted by us

    c.pool = std::make_shared<spdlog::details::thread_pool>(static_cast<size_t>(cfg.queue_size), 1);
    c.logger = std::make_shared<spdlog::async_logger>(
        "wxcanary-" + c.name, sink, c.pool, spdlog::async_overflow_policy::overrun_oldest);
    c.logger->set_level(spdlog::level::trace);
    c.logger->flush_on(spdlog::level::trace);  // Filebeat and tests see whole lines promptly
    std::weak_ptr<DropCount> drops = c.drops;
    c.logger->set_error_handler([drops](const std::string&) {
      if (auto d = drops.lock()) d->Add(1);  // e.g. disk full: the event is lost, count it
    });
    logger->Add(std::move(c));
  }
  return logger;
}

}  // namespace wxcanary::telemetry
