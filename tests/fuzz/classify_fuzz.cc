// Fuzzes the WeChat answer classifier and the errmsg/rid splitter: whatever the body holds,
// Classify returns, its strings are valid UTF-8 and never contain the token.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/outcome.h"
#include "common/secret.h"
#include "fuzz/fuzz_util.h"
#include "wechat/classify.h"

namespace {

using wxcanary::fuzz::Check;
using wxcanary::fuzz::ValidUtf8;

// Looks like a real token so bodies that echo it exercise the scrubbing.
const wxcanary::Secret& Token() {
  static const wxcanary::Secret token("86_FuzzTokenAbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
  return token;
}

void CheckNoToken(std::string_view s, const char* what) {
  Check(s.find(Token().Reveal()) == std::string_view::npos, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // Byte 0: probe kind and transport; byte 1: HTTP status class; the rest is the body.
  const uint8_t b0 = data[0];
  const uint8_t b1 = data[1];
  std::string body(reinterpret_cast<const char*>(data + 2), size - 2);

  // Some inputs carry the token inside the body where a real errmsg would echo it.
  if ((b0 & 0x40) != 0 && body.size() > 4) body.insert(body.size() / 2, Token().Reveal());

  static constexpr wxcanary::wechat::ProbeKind kKinds[] = {
      wxcanary::wechat::ProbeKind::kApiDomainIp, wxcanary::wechat::ProbeKind::kMsgSecCheck,
      wxcanary::wechat::ProbeKind::kMsgSecCheckV2};
  static constexpr long kStatuses[] = {200, 200, 200, 200, 204, 301, 400, 403,
                                       404, 429, 500, 502, 503, 504, 0,   999};

  wxcanary::wechat::HttpResponse response;
  response.transport_ok = (b0 & 0x80) == 0;
  response.http_status = kStatuses[b1 & 0x0F];
  if (response.transport_ok) {
    response.body = body;
  } else {
    // curl's messages are ASCII; keep them so, the UTF-8 promise is about bodies.
    for (char ch : body) response.transport_error += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  }

  const auto c = wxcanary::wechat::Classify(kKinds[(b0 & 0x3F) % 3], response, Token());
  Check(ValidUtf8(c.errmsg), "errmsg is valid UTF-8");
  Check(ValidUtf8(c.rid), "rid is valid UTF-8");
  Check(ValidUtf8(c.detail), "detail is valid UTF-8");
  CheckNoToken(c.errmsg, "token scrubbed from errmsg");
  CheckNoToken(c.rid, "token scrubbed from rid");
  CheckNoToken(c.detail, "token scrubbed from detail");
  Check(!wxcanary::OutcomeName(c.outcome).empty(), "outcome has a name");
  if (c.outcome == wxcanary::Outcome::kOk) {
    Check(response.transport_ok, "ok only with a transport answer");
  }

  std::string message;
  std::string rid;
  wxcanary::wechat::SplitRid(body, &message, &rid);
  Check(message.size() <= body.size(), "SplitRid message no longer than input");
  Check(rid.size() <= body.size(), "SplitRid rid no longer than input");
  Check(body.compare(0, message.size(), message) == 0, "SplitRid message is a prefix of the input");
  return 0;
}
