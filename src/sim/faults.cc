#include "sim/faults.h"

namespace wxcanary::sim {
namespace {

using nlohmann::json;

std::string Show(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// Reads an integer field in [lo, hi]; returns an error line or empty.
std::string ReadInt(const json& j, const char* key, int lo, int hi, int& out) {
  auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_number_integer() || *it < lo || *it > hi)
    return std::string("fault: \"") + key + "\" must be an integer in [" + std::to_string(lo) +
           ", " + std::to_string(hi) + "], got " + Show(*it);
  out = it->get<int>();
  return {};
}

}  // namespace

std::variant<Fault, std::string> ParseFault(const json& j) {
  if (!j.is_object()) return std::string("fault: body must be a JSON object, got ") + Show(j);
  static const char* kKeys[] = {"path", "latency_ms", "http_status", "reset",
                                "body", "errcode",    "count"};
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* key : kKeys) known = known || k == key;
    if (!known) return "fault: unknown key \"" + k + "\"";
  }
  Fault f;
  auto p = j.find("path");
  if (p == j.end() || !p->is_string() || p->get_ref<const std::string&>().empty() ||
      (p->get_ref<const std::string&>() != "*" && p->get_ref<const std::string&>()[0] != '/'))
    return "fault: \"path\" must be an API path like \"/wxa/msg_sec_check\" or \"*\", got " +
           (p == j.end() ? std::string("nothing") : Show(*p));
  f.path = p->get<std::string>();
  if (f.path.rfind("/admin/", 0) == 0)
    return "fault: \"path\" cannot be an admin path, got " + Show(*p);
  if (auto e = ReadInt(j, "latency_ms", 0, 600'000, f.latency_ms); !e.empty()) return e;
  if (auto e = ReadInt(j, "http_status", 0, 599, f.http_status); !e.empty()) return e;
  if (f.http_status != 0 && f.http_status < 100)
    return "fault: \"http_status\" must be 100..599, got " + std::to_string(f.http_status);
  if (auto e = ReadInt(j, "count", 0, 1'000'000'000, f.count); !e.empty()) return e;
  if (auto it = j.find("reset"); it != j.end()) {
    if (!it->is_boolean()) return "fault: \"reset\" must be true or false, got " + Show(*it);
    f.reset = it->get<bool>();
  }
  if (auto it = j.find("body"); it != j.end()) {
    if (*it == "truncated") f.body = Fault::Body::kTruncated;
    else if (*it == "garbage") f.body = Fault::Body::kGarbage;
    else return "fault: \"body\" must be \"truncated\" or \"garbage\", got " + Show(*it);
  }
  if (auto it = j.find("errcode"); it != j.end()) {
    if (!it->is_number_integer() || *it < -1 || *it > 99'999'999)
      return "fault: \"errcode\" must be an integer errcode, got " + Show(*it);
    f.errcode = it->get<int>();
  }
  if (f.latency_ms == 0 && f.http_status == 0 && !f.reset && f.body == Fault::Body::kNormal &&
      !f.errcode)
    return "fault: nothing to inject for " + Show(*p) +
           " (set latency_ms, http_status, reset, body or errcode)";
  return f;
}

json FaultToJson(const Fault& f) {
  json j{{"path", f.path},
         {"latency_ms", f.latency_ms},
         {"http_status", f.http_status},
         {"reset", f.reset},
         {"count", f.count}};
  if (f.body == Fault::Body::kTruncated) j["body"] = "truncated";
  if (f.body == Fault::Body::kGarbage) j["body"] = "garbage";
  if (f.errcode) j["errcode"] = *f.errcode;
  return j;
}

void FaultTable::Set(Fault fault) {
  std::lock_guard lock(mu_);
  std::string key = fault.path;
  by_path_[key] = std::move(fault);
}

void FaultTable::Clear() {
  std::lock_guard lock(mu_);
  by_path_.clear();
}

std::optional<Fault> FaultTable::Take(const std::string& path) {
  std::lock_guard lock(mu_);
  if (by_path_.empty()) return std::nullopt;
  auto it = by_path_.find(path);
  if (it == by_path_.end()) it = by_path_.find("*");
  if (it == by_path_.end()) return std::nullopt;
  Fault f = it->second;
  if (it->second.count > 0 && --it->second.count == 0) by_path_.erase(it);
  return f;
}

json FaultTable::ToJson() {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [path, f] : by_path_) out.push_back(FaultToJson(f));
  return out;
}

}  // namespace wxcanary::sim
