// The probe kinds, one entry each. Adding a kind touches this file (and its enumerator in
// probe_kinds.h) and tests/wechat/probe_kinds_test.cc: the config, the client, the classifier,
// the probe and the `probe` command all read the entry.

#include "wechat/probe_kinds.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace wxcanary::wechat {
namespace {

using Json = nlohmann::json;

// dump() with `replace` so stray invalid UTF-8 in configured content cannot throw.
std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string MsgSecCheckBody(const ProbeCall& call) { return Dump({{"content", call.content}}); }

std::string MsgSecCheckV2Body(const ProbeCall& call) {
  return Dump(
      {{"content", call.content}, {"version", 2}, {"scene", call.scene}, {"openid", call.openid}});
}

std::string AnySuccess(const Json& /*root*/, bool* /*content_flagged*/) { return ""; }

// v2 reports risky content as success with a verdict, not as 87014.
std::string V2Success(const Json& root, bool* content_flagged) {
  auto result = root.find("result");
  if (result != root.end() && result->is_object()) {
    auto suggest = result->find("suggest");
    if (suggest != result->end() && suggest->is_string()) {
      const auto& s = suggest->get_ref<const std::string&>();
      *content_flagged = s == "risky" || s == "review";
    }
  }
  return "";
}

std::string IpListSuccess(const Json& root, bool* /*content_flagged*/) {
  auto it = root.find("ip_list");
  if (it == root.end()) return "ip_list is missing";
  if (!it->is_array())
    return "ip_list is " + std::string(JsonTypeName(*it)) + ", expected an array";
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

std::string_view JsonTypeName(const nlohmann::json& j) {
  if (j.is_string()) return "a string";
  if (j.is_number_float()) return "a float";
  if (j.is_number()) return "a number";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  if (j.is_array()) return "an array";
  if (j.is_object()) return "an object";
  return "binary data";
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
