#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/outcome.h"
#include "common/secret.h"
#include "wechat/probe_kinds.h"

namespace wxcanary::wechat {

// What the API answered and what it means: the pure half of the WeChat client (classify.cc),
// used by the probe, the quota poller and the stable_token fetcher.

/// Answers larger than this are refused: the API's JSON answers are a few hundred bytes, so
/// anything bigger is a broken proxy or a hostile peer, not WeChat.
inline constexpr size_t kMaxResponseBytes = size_t{1} << 20;

/// errmsg is cut (at a UTF-8 boundary) to this many bytes so a chatty answer cannot bloat logs.
inline constexpr size_t kMaxErrmsgBytes = 512;

/// An HTTP answer, or why there was none. Curl errors and HTTP statuses never share a field.
struct HttpResponse {
  bool transport_ok = false;
  std::string transport_error;  // curl's message when !transport_ok (no URL query in it)
  long http_status = 0;
  std::string body;
};

/// A WeChat answer classified into the bounded outcome set.
struct Classification {
  Outcome outcome = Outcome::kOk;
  std::optional<int> errcode;
  std::string errmsg;  // rid removed; any occurrence of the token replaced by its fingerprint
  std::string rid;     // "xxxxxxxx-xxxxxxxx-xxxxxxxx" or the old "hint: [...]" content
  bool content_flagged = false;
  std::string detail;  // why bad_response / transport_error
};

/// Splits " rid: ..." (or " hint: [...]") off the end of an errmsg; trailing whitespace is
/// dropped. `rid` gets "xxxxxxxx-xxxxxxxx-xxxxxxxx" or the text inside the hint's brackets, or
/// "" when there is none. Pure; thread-safe.
void SplitRid(std::string_view errmsg, std::string* message, std::string* rid);

/// Classifies an answer to a probe of `kind`. `token` is only used to scrub the errmsg and
/// detail. Never throws, whatever the body holds (huge, deeply nested, invalid UTF-8: the
/// returned strings are always valid UTF-8). Pure; thread-safe.
/// The kind's entry (ProbeKinds()) supplies the success check and whether 87014 means alive.
Classification Classify(ProbeKind kind, const HttpResponse& response, const Secret& token);

}  // namespace wxcanary::wechat
