#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include <nlohmann/json.hpp>

namespace wxcanary::sim {

/// One injected misbehaviour of an API path. Not synchronized.
struct Fault {
  enum class Body { kNormal, kTruncated, kGarbage };
  std::string path;            // exact API path, or "*" for every non-admin path
  int latency_ms = 0;          // added before answering (real time, not sim time)
  int http_status = 0;         // != 0: answer this status with a non-JSON body, no processing
  bool reset = false;          // close the connection without any HTTP answer
  Body body = Body::kNormal;   // truncated: processed, half the JSON; garbage: not processed
  std::optional<int> errcode;  // answer this WeChat errcode (with rid) instead of processing
  int count = 0;               // how many requests it hits; 0 = until cleared
};

/// Parses the POST /admin/fault body. On bad input returns one line naming the key and value.
std::variant<Fault, std::string> ParseFault(const nlohmann::json& j);

nlohmann::json FaultToJson(const Fault& f);

/// Faults by path; a new fault for a path replaces the old one. Thread-safe, O(1) per request.
class FaultTable {
 public:
  void Set(Fault fault);
  void Clear();
  /// The fault that applies to this request (exact path before "*"), consuming one of its count.
  std::optional<Fault> Take(const std::string& path);
  nlohmann::json ToJson();

 private:
  std::mutex mu_;
  std::unordered_map<std::string, Fault> by_path_;
};

}  // namespace wxcanary::sim
