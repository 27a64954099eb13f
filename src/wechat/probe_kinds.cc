// The probe kinds, one entry each. Adding a kind touches this file (and its enumerator in
// probe_kinds.h) and tests/wechat/probe_kinds_test.cc: the config, the client, the classifier,
// the probe and the `probe` command all read the entry.

#include "wechat/probe_kinds.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace wxcanary::wechat {
namespace {

// dump() with `replace` so stray invalid UTF-8 in configured content cannot throw.
std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string MsgSecCheckBody(const ProbeCall& call) { return Dump({{"content", call.content}}); }

std::string MsgSecCheckV2Body(const ProbeCall& call) {
  return Dump(
      {{"content", call.content}, {"version", 2}, {"scene", call.scene}, {"openid", call.openid}});
}

std::string AnySuccess(const AnswerFields& /*fields*/, bool* /*content_flagged*/) { return ""; }

// v2 reports risky content as success with a verdict, not as 87014.
std::string V2Success(const AnswerFields& fields, bool* content_flagged) {
  if (fields.result_suggest) {
    const std::string& s = *fields.result_suggest;
    *content_flagged = s == "risky" || s == "review";
  }
  return "";
}

std::string IpListSuccess(const AnswerFields& fields, bool* /*content_flagged*/) {
  if (!fields.ip_list) return "ip_list is missing";
  if (*fields.ip_list != JsonType::kArray)
    return "ip_list is " + std::string(JsonTypeName(*fields.ip_list)) + ", expected an array";
  return "";
}

constexpr ProbeKindEntry kKinds[] = {
    {.kind = ProbeKind::kMsgSecCheck,
     .name = "msg_sec_check",
     .method = HttpMethod::kPost,
     .path = "/wxa/msg_sec_check",
     .body = &MsgSecCheckBody,
     .risky_content_errcode = true,
     .check_success = &AnySuccess,
     .sends_content = true,
     .takes_openid_scene = false,
     .max_content_chars = 0},
    {.kind = ProbeKind::kMsgSecCheckV2,
     .name = "msg_sec_check_v2",
     .method = HttpMethod::kPost,
     .path = "/wxa/msg_sec_check",
     .body = &MsgSecCheckV2Body,
     .risky_content_errcode = true,
     .check_success = &V2Success,
     .sends_content = true,
     .takes_openid_scene = true,
     .max_content_chars = 2500},
    {.kind = ProbeKind::kApiDomainIp,
     .name = "api_domain_ip",
     .method = HttpMethod::kGet,
     .path = "/cgi-bin/get_api_domain_ip",
     .body = nullptr,
     .risky_content_errcode = false,
     .check_success = &IpListSuccess,
     .sends_content = false,
     .takes_openid_scene = false,
     .max_content_chars = 0},
};

}  // namespace

std::string_view JsonTypeName(JsonType type) {
  switch (type) {
    case JsonType::kNull: return "null";
    case JsonType::kBoolean: return "a boolean";
    case JsonType::kInteger: return "a number";
    case JsonType::kFloat: return "a float";
    case JsonType::kString: return "a string";
    case JsonType::kArray: return "an array";
    case JsonType::kObject: return "an object";
  }
  return "a value";  // unreachable: every enumerator is named above
}

std::string_view HttpMethodName(HttpMethod m) { return m == HttpMethod::kGet ? "GET" : "POST"; }

std::span<const ProbeKindEntry> ProbeKinds() { return kKinds; }

const ProbeKindEntry& KindEntry(ProbeKind kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k;
  return kKinds[0];  // unreachable: every enumerator has an entry (probe_kinds_test checks)
}

const ProbeKindEntry* FindProbeKind(std::string_view name) {
  const auto* it = std::find_if(std::begin(kKinds), std::end(kKinds),
                                [&](const ProbeKindEntry& k) { return k.name == name; });
  return it == std::end(kKinds) ? nullptr : it;
}

std::string_view ProbeKindName(ProbeKind kind) { return KindEntry(kind).name; }

}  // namespace wxcanary::wechat
