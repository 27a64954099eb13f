#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace wxcanary::wechat {

/// The type of a JSON value in an answer.
enum class JsonType : uint8_t {
  kNull,
  kBoolean,
  kInteger,  // any integer the parser read as one ("a number")
  kFloat,    // a number with a fraction or an exponent
  kString,
  kArray,
  kObject,
};

/// "a string", "an array", ...: what an answer's field is, for a bad_response detail. Pure.
std::string_view JsonTypeName(JsonType type);

/// The top-level fields of an answer object that some kind's success check looks at, as the
/// classifier's parser saw them: of a repeated key, the last one (as a JSON object keeps it).
/// Nothing else of the body is kept. A kind whose success depends on another field adds it here
/// and to the parser in classify.cc.
struct AnswerFields {
  std::optional<JsonType> ip_list = std::nullopt;  // "ip_list"'s type; nullopt when there is none
  /// "result": {"suggest": "..."}: the string, when "result" is an object whose "suggest" is a
  /// string; else nullopt.
  std::optional<std::string> result_suggest = std::nullopt;
};

/// The canary calls a probe can make (config's `probe:`). Each has one entry in ProbeKinds().
enum class ProbeKind { kMsgSecCheck, kMsgSecCheckV2, kApiDomainIp };

enum class HttpMethod { kGet, kPost };

/// "GET" or "POST". Pure.
std::string_view HttpMethodName(HttpMethod m);

/// What a probe call sends besides the token: the environment's canary settings. The views
/// must outlive the call they are passed to.
struct ProbeCall {
  ProbeKind kind = ProbeKind::kApiDomainIp;
  std::string_view content;
  int scene = 1;
  std::string_view openid;
};

/// Everything that differs between probe kinds: the request, how a success answer is checked,
/// and which environment fields the kind uses. Every part of the daemon consults this entry
/// rather than switching on the kind.
struct ProbeKindEntry {
  ProbeKind kind;
  std::string_view name;  // config's `probe:` value; the logs' wxcanary.probe.kind
  HttpMethod method;
  std::string_view path;  // e.g. "/cgi-bin/get_api_domain_ip"; the token goes in the query

  /// The JSON request body (kPost kinds; nullptr for kGet). Never throws on invalid UTF-8 in
  /// the content (it is replaced).
  std::string (*body)(const ProbeCall& call);

  /// errcode 87014 ("risky content") means the API accepted the token and judged the canary
  /// text: the token is alive, the answer is ok with content_flagged.
  bool risky_content_errcode;
  /// Checks an answer whose errcode is 0 or absent: "" when it is a success (setting
  /// *content_flagged when it carries a risky verdict), else why it is a bad response
  /// (never quoting the body).
  std::string (*check_success)(const AnswerFields& fields, bool* content_flagged);

  // Config rules.
  bool sends_content;        // `content` must not be empty; without it `content` is rejected
  bool takes_openid_scene;   // `openid` is required and `scene` used; else both are rejected
  size_t max_content_chars;  // UTF-8 characters the API accepts in `content`; 0 = no limit
};

/// Every probe kind, one entry each. Thread-safe (constant).
std::span<const ProbeKindEntry> ProbeKinds();

/// The entry of `kind` (every ProbeKind has one). Thread-safe.
const ProbeKindEntry& KindEntry(ProbeKind kind);

/// The entry named `name` (config's `probe:` value), or nullptr. Thread-safe.
const ProbeKindEntry* FindProbeKind(std::string_view name);

/// KindEntry(kind).name. Thread-safe.
std::string_view ProbeKindName(ProbeKind kind);

}  // namespace wxcanary::wechat
