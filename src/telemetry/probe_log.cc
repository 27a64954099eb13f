#include "telemetry/probe_log.h"

#include <algorithm>
#include <map>
#include <regex>

#include "common/redact.h"
#include "config/config.h"

namespace wxcanary::telemetry {

namespace {

constexpr size_t kMaxDetailInMessage = 200;

// Defence in depth: the client is supposed to strip tokens already, but a curl error or an
// echoed request can still carry one, and a log line is forever.
std::string Scrub(std::string text, const ProbeResult& r) {
  if (text.empty()) return text;
  // The stored value first (a JSON or serialized wrapper may hold more than the token, e.g.
  // Senparc's bag holds the AppSecret), then the token. A value shorter than any token (a stray
  // "1") is no secret, and masking it would mangle the text.
  if (r.raw_value.Reveal().size() >= 16) text = Redact(std::move(text), r.raw_value);
  text = Redact(std::move(text), r.token);
  // Any other token a URL in the text carries (one we never read: nothing to fingerprint).
  static const std::regex kQueryToken("access_token=(?!<)[^&\\s\"'<]+");
  if (text.find("access_token=") != std::string::npos) {
    text = std::regex_replace(text, kQueryToken, "access_token=<redacted>");
  }
  return text;
}

}  // namespace

Level ProbeLog::LevelFor(const ProbeResult& result) {
  if (IsTokenError(result.outcome) || result.outcome == Outcome::kTokenMissing) {
    return Level::kError;
  }
  if (result.outcome != Outcome::kOk || result.content_flagged) return Level::kWarn;
  return Level::kInfo;
}

std::string ProbeLog::MessageFor(const Target& target, const ProbeResult& result) {
  std::string m = "probe " + target.app_id + "/" + target.app_env + ": ";
  m += OutcomeName(result.outcome);
  if (result.content_flagged) m += ", canary content flagged";
  if (result.errcode) m += " (errcode " + std::to_string(*result.errcode) + ")";
  if (!result.fingerprint.empty()) m += " with token " + result.fingerprint;
  if (result.outcome == Outcome::kRedisError) {
    m += ", redis " + target.env.redis + " unavailable";
  } else if (result.ttl_seconds == -2) {
    m += ", redis key " + target.env.key + " absent";
  } else if (result.ttl_seconds == -1) {
    m += ", redis ttl none (key never expires)";
  } else {
    m += ", redis ttl " + std::to_string(result.ttl_seconds) + "s";
  }
  if (result.outcome != Outcome::kOk && !result.detail.empty()) {
    std::string detail = Scrub(result.detail, result);
    if (detail.size() > kMaxDetailInMessage) detail = detail.substr(0, kMaxDetailInMessage) + "...";
    m += ": " + detail;
  }
  return m;
}

namespace {

// Writes an event's fields into `f` in order, reusing what the previous event of this thread
// left there: a key already in its place is kept, a string value is reassigned in place, and
// whatever follows a change of layout is dropped. Building a fresh ordered_json cost ~50 heap
// allocations per probe (a key string, a value string and its buffer per field, regrowth).
class InPlaceFields {
 public:
  explicit InPlaceFields(Fields& f) : obj_(Object(f)) {}
  InPlaceFields(const InPlaceFields&) = delete;
  InPlaceFields& operator=(const InPlaceFields&) = delete;
  ~InPlaceFields() { obj_.erase(obj_.begin() + static_cast<std::ptrdiff_t>(next_), obj_.end()); }

  void Set(std::string_view key, std::string_view value) {
    Fields& slot = Slot(key);
    if (slot.is_string()) {
      slot.get_ref<std::string&>().assign(value);
    } else {
      slot = std::string(value);
    }
  }
  void Set(std::string_view key, const char* value) { Set(key, std::string_view(value)); }
  void Set(std::string_view key, int64_t value) { Slot(key) = value; }
  void Set(std::string_view key, int value) { Slot(key) = value; }
  void Set(std::string_view key, bool value) { Slot(key) = value; }

 private:
  static Fields::object_t& Object(Fields& f) {
    if (!f.is_object()) f = Fields::object();
    return f.get_ref<Fields::object_t&>();
  }
  Fields& Slot(std::string_view key) {
    auto at = obj_.begin() + static_cast<std::ptrdiff_t>(next_);
    if (at == obj_.end() || at->first != key) {
      obj_.erase(at, obj_.end());  // the layout changed here (an optional field came or went)
      obj_.emplace_back(std::string(key), nullptr);
      at = obj_.end() - 1;
    }
    ++next_;
    return at->second;
  }

  Fields::object_t& obj_;
  size_t next_ = 0;
};

void FillFields(Fields& fields, const Target& target, const ProbeResult& result) {
  InPlaceFields f(fields);
  f.Set("event.outcome", result.outcome == Outcome::kOk ? "success" : "failure");
  f.Set("event.duration", static_cast<int64_t>(result.duration.count()));
  f.Set("labels.app_id", target.app_id);
  f.Set("labels.app_env", target.app_env);
  for (const auto& [k, v] : target.env.labels) {
    if (k != "app_id" && k != "app_env") f.Set("labels." + k, v);
  }
  f.Set("wxcanary.probe.kind", config::ProbeKindName(target.env.probe));
  f.Set("wxcanary.probe.outcome", OutcomeName(result.outcome));
  if (result.content_flagged) f.Set("wxcanary.probe.content_flagged", true);
  f.Set("wxcanary.redis.name", target.env.redis);
  f.Set("wxcanary.redis.key", target.env.key);
  if (!result.fingerprint.empty()) f.Set("wxcanary.token.fingerprint", result.fingerprint);
  if (result.outcome != Outcome::kRedisError)
    f.Set("wxcanary.token.ttl_seconds", result.ttl_seconds);
  if (result.errcode) {
    f.Set("wxcanary.wechat.errcode", *result.errcode);
    if (!result.errmsg.empty()) f.Set("wxcanary.wechat.errmsg", Scrub(result.errmsg, result));
    if (!result.rid.empty()) f.Set("wxcanary.wechat.rid", result.rid);
  }
  if (!result.detail.empty()) f.Set("error.message", Scrub(result.detail, result));
}

}  // namespace

Fields ProbeLog::FieldsFor(const Target& target, const ProbeResult& result) {
  Fields f = Fields::object();
  FillFields(f, target, result);
  return f;
}

void ProbeLog::SetTargets(const TargetList& targets) {
  std::map<std::pair<std::string, std::string>, State> old;
  size_t size = 0;  // indexes are unique, not necessarily dense (the runner keeps them)
  for (const auto& t : targets) size = std::max(size, t.index + 1);
  std::unique_lock lock(mu_);
  for (auto& st : states_) old[{st.app_id, st.app_env}] = std::move(st);
  states_.assign(size, State{});
  for (const auto& t : targets) {
    auto it = old.find({t.app_id, t.app_env});
    if (it != old.end()) states_[t.index] = std::move(it->second);
    states_[t.index].app_id = t.app_id;
    states_[t.index].app_env = t.app_env;
  }
}

void ProbeLog::Emit(Level level, std::string_view action, const Target& target,
                    const ProbeResult& result, const std::string& message,
                    const State* recovered_from) {
  // Log() formats the event before it returns, so one set of fields per thread can serve
  // every event that thread records.
  thread_local Fields fields = Fields::object();
  FillFields(fields, target, result);
  if (recovered_from != nullptr) {
    fields["wxcanary.probe.previous_outcome"] = std::string(OutcomeName(recovered_from->outcome));
    if (recovered_from->errcode)
      fields["wxcanary.probe.previous_errcode"] = *recovered_from->errcode;
    fields["wxcanary.probe.failed_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(
                                                  result.started - recovered_from->failing_since)
                                                  .count();
  }
  logger_.Log(level, action, message, fields);
}

void ProbeLog::Record(const Target& target, const ProbeResult& result) {
  const Level level = LevelFor(result);
  std::shared_lock lock(mu_);
  State* st = target.index < states_.size() && states_[target.index].app_id == target.app_id &&
                      states_[target.index].app_env == target.app_env
                  ? &states_[target.index]
                  : nullptr;
  if (st == nullptr) {  // not a target of SetTargets(): every probe at its level
    if (logger_.Enabled(level))
      Emit(level, "probe", target, result, MessageFor(target, result), nullptr);
    return;
  }
  const bool failed = result.outcome != Outcome::kOk;
  const bool same = st->seen && st->outcome == result.outcome && st->errcode == result.errcode &&
                    st->flagged == result.content_flagged;
  const State before = *st;
  st->seen = true;
  st->outcome = result.outcome;
  st->errcode = result.errcode;
  st->flagged = result.content_flagged;
  if (failed && (!before.seen || before.outcome == Outcome::kOk))
    st->failing_since = result.started;

  if (same) {
    if (failed && result.started - st->last_logged >= kFailureReminder) {
      st->last_logged = result.started;
      if (!logger_.Enabled(level)) return;
      const auto secs =
          std::chrono::duration_cast<std::chrono::seconds>(result.started - st->failing_since);
      Emit(level, "probe", target, result,
           MessageFor(target, result) + " (failing for " + std::to_string(secs.count()) + " s)",
           nullptr);
      return;
    }
    if (logger_.Enabled(Level::kDebug))
      Emit(Level::kDebug, "probe", target, result, MessageFor(target, result), nullptr);
    return;
  }
  st->last_logged = result.started;
  if (!failed && before.seen && before.outcome != Outcome::kOk) {
    const Level recovered = std::max(level, Level::kWarn);
    if (!logger_.Enabled(recovered)) return;
    const auto secs =
        std::chrono::duration_cast<std::chrono::seconds>(result.started - before.failing_since);
    std::string m = MessageFor(target, result) + "; recovered after " +
                    std::to_string(secs.count()) + " s of " +
                    std::string(OutcomeName(before.outcome));
    if (before.errcode) m += " (errcode " + std::to_string(*before.errcode) + ")";
    Emit(recovered, "probe_recovered", target, result, m, &before);
    return;
  }
  if (logger_.Enabled(level))
    Emit(level, "probe", target, result, MessageFor(target, result), nullptr);
}

std::string_view RedisErrorKind(std::string_view error) {
  auto has = [&](std::initializer_list<std::string_view> needles) {
    for (auto n : needles)
      if (error.find(n) != std::string_view::npos) return true;
    return false;
  };
  // The sentinel lookup's line lists every sentinel's own failure: the lookup is what failed.
  if (error.rfind("sentinel ", 0) == 0) return "sentinel";
  if (error == "reconnect backoff") return "backoff";
  // Reply errors follow "COMMAND ...: ", so anchoring on ": " keeps a key name from matching.
  if (has({"AUTH failed", ": NOAUTH", ": WRONGPASS", "invalid password",
           "invalid username-password"}))
    return "auth";
  if (has({"SELECT failed"})) return "select";
  if (has({": LOADING", ": BUSY", ": MASTERDOWN", ": CLUSTERDOWN", ": TRYAGAIN"}))
    return "unavailable";
  if (has({"Connection refused"})) return "refused";
  if (has({"timed out", "Timeout", "Resource temporarily unavailable"})) return "timeout";
  if (has({"Name or service not known", "name resolution", "No address associated",
           "nodename nor servname"}))
    return "dns";
  if (has({"Server closed the connection", "Connection reset", "Broken pipe", "EOF"}))
    return "closed";
  return "error";
}

void LogRedisHealth(Logger& logger, const std::string& redis, bool up, const std::string& error) {
  if (up) {
    logger.Log(Level::kWarn, "redis_up", "redis " + redis + " is reachable",
               Fields{{"wxcanary.redis.name", redis}});
    return;
  }
  const std::string_view kind = RedisErrorKind(error);
  std::string message = "redis " + redis + " is unreachable (" + std::string(kind) + ")";
  if (!error.empty()) message += ": " + error;
  Fields fields{{"wxcanary.redis.name", redis}, {"error.type", std::string(kind)}};
  if (!error.empty()) fields["error.message"] = error;
  logger.Log(Level::kError, "redis_down", message, fields);
}

std::string ScrubProbeText(std::string text, const ProbeResult& result) {
  return Scrub(std::move(text), result);
}

}  // namespace wxcanary::telemetry
