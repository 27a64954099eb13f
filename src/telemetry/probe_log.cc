#include "telemetry/probe_log.h"

#include <regex>

#include "config/config.h"

namespace wxcanary::telemetry {

namespace {

constexpr size_t kMaxDetailInMessage = 200;

void ReplaceAll(std::string& s, const std::string& needle, std::string_view with) {
  // Too short to be a token; masking it would mangle ordinary text (a raw value of "1").
  if (needle.size() < 16) return;
  for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos)) {
    s.replace(pos, needle.size(), with);
    pos += with.size();
  }
}

// Defence in depth: the client is supposed to strip tokens already, but a curl error or an
// echoed request can still carry one, and a log line is forever.
std::string Scrub(std::string text, const ProbeResult& r) {
  if (text.empty()) return text;
  ReplaceAll(text, r.token.Reveal(), "[token]");
  ReplaceAll(text, r.raw_value.Reveal(), "[token]");
  static const std::regex kQueryToken("access_token=[^&\\s\"']*");
  if (text.find("access_token=") != std::string::npos) {
    text = std::regex_replace(text, kQueryToken, "access_token=[token]");
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

Fields ProbeLog::FieldsFor(const Target& target, const ProbeResult& result) {
  Fields f = Fields::object();
  f["event.outcome"] = result.outcome == Outcome::kOk ? "success" : "failure";
  f["event.duration"] = static_cast<int64_t>(result.duration.count());
  f["labels.app_id"] = target.app_id;
  f["labels.app_env"] = target.app_env;
  for (const auto& [k, v] : target.env.labels) {
    if (k != "app_id" && k != "app_env") f["labels." + k] = v;
  }
  f["wxcanary.probe.kind"] = config::ProbeKindName(target.env.probe);
  f["wxcanary.probe.outcome"] = OutcomeName(result.outcome);
  if (result.content_flagged) f["wxcanary.probe.content_flagged"] = true;
  f["wxcanary.redis.name"] = target.env.redis;
  f["wxcanary.redis.key"] = target.env.key;
  if (!result.fingerprint.empty()) f["wxcanary.token.fingerprint"] = result.fingerprint;
  if (result.outcome != Outcome::kRedisError) f["wxcanary.token.ttl_seconds"] = result.ttl_seconds;
  if (result.errcode) {
    f["wxcanary.wechat.errcode"] = *result.errcode;
    if (!result.errmsg.empty()) f["wxcanary.wechat.errmsg"] = Scrub(result.errmsg, result);
    if (!result.rid.empty()) f["wxcanary.wechat.rid"] = result.rid;
  }
  if (!result.detail.empty()) f["error.message"] = Scrub(result.detail, result);
  return f;
}

void ProbeLog::Record(const Target& target, const ProbeResult& result) {
  const Level level = LevelFor(result);
  if (!logger_.Enabled(level)) return;
  logger_.Log(level, "probe", MessageFor(target, result), FieldsFor(target, result));
}

}  // namespace wxcanary::telemetry
