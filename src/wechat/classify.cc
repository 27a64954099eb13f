// The answer classifier: turns whatever came back from the API into the bounded outcome set.
// Everything here treats the body as hostile: it never throws, never echoes the body into
// `detail`, and never lets the token or invalid UTF-8 out.

#include <algorithm>
#include <climits>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/redact.h"
#include "common/utf8.h"
#include "wechat/classify.h"

namespace wxcanary::wechat {
namespace {

using Json = nlohmann::json;

// The API's answers nest two levels deep; this leaves plenty of room while keeping a
// "[[[[...]]]]" bomb from building a deep DOM (whose teardown would recurse).
constexpr int kMaxNesting = 64;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// "xxxxxxxx-xxxxxxxx-xxxxxxxx", three groups of 8 lowercase hex digits.
bool IsRid(std::string_view s) {
  if (s.size() != 26) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 17) {
      if (s[i] != '-') return false;
    } else if (!IsLowerHex(s[i])) {
      return false;
    }
  }
  return true;
}

// The old hints look like "hint: [Ud7ZKa0410vr31]"; accept a conservative token alphabet so a
// bracketed phrase that happens to end a message is not mistaken for one.
bool IsHint(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_' || c == '.' || c == '+' || c == '/' || c == '=';
    if (!ok) return false;
  }
  return true;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Strips `marker` (e.g. "rid: ") from the end of `head` when it starts the string or follows
// whitespace; returns false (and leaves head alone) otherwise.
bool StripMarker(std::string_view* head, std::string_view marker) {
  if (!head->ends_with(marker)) return false;
  std::string_view rest = head->substr(0, head->size() - marker.size());
  if (!rest.empty() && !IsSpace(rest.back())) return false;
  *head = rest;
  return true;
}

// Byte offset at which brackets nest deeper than kMaxNesting (outside strings), or npos.
size_t FindExcessiveNesting(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxNesting) return i;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

// Cuts to at most max bytes without splitting a UTF-8 sequence (the input is valid UTF-8).
void TruncateUtf8(std::string* s, size_t max) {
  if (s->size() <= max) return;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) --cut;
  s->resize(cut);
}

// Control characters would break text-format log lines and terminals; JSON escaping alone
// is not enough for the human-readable sink.
void ReplaceControlChars(std::string* s) {
  for (char& c : *s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) c = ' ';
  }
}

Classification Bad(std::string detail) {
  Classification c;
  c.outcome = Outcome::kBadResponse;
  c.detail = std::move(detail);
  return c;
}

Outcome OutcomeForErrcode(int code) {
  switch (code) {
    case 0: return Outcome::kOk;
    case 40001: return Outcome::kTokenInvalid;
    case 40014: return Outcome::kTokenMalformed;
    case 42001: return Outcome::kTokenExpired;
    case 45009:
    case 45011: return Outcome::kQuota;
    default: return Outcome::kApiError;
  }
}

Classification ClassifyBody(ProbeKind kind, std::string_view raw_body, const Secret& token) {
  if (raw_body.size() > kMaxResponseBytes) {
    return Bad("body of " + std::to_string(raw_body.size()) + " bytes exceeds the " +
               std::to_string(kMaxResponseBytes) + "-byte limit");
  }
  if (TrimRight(raw_body).empty()) return Bad("empty body, expected a JSON object");
  if (const size_t at = FindExcessiveNesting(raw_body); at != std::string_view::npos) {
    return Bad("JSON nested deeper than " + std::to_string(kMaxNesting) + " levels at byte " +
               std::to_string(at));
  }

  std::string repaired;
  std::string_view body = raw_body;
  if (!IsValidUtf8(body)) {
    repaired = RepairUtf8(body);
    body = repaired;
  }

  Json root;
  try {
    root = Json::parse(body);
  } catch (const Json::parse_error& e) {
    // e.what() quotes the bytes it choked on: those are the body's, so only the position goes out.
    return Bad("body is not JSON: syntax error at byte " + std::to_string(e.byte));
  }
  if (!root.is_object()) {
    return Bad("body is " + std::string(JsonTypeName(root)) + ", expected a JSON object");
  }

  Classification c;
  if (auto it = root.find("errmsg"); it != root.end() && it->is_string()) {
    std::string text = it->get<std::string>();
    ReplaceControlChars(&text);
    SplitRid(text, &c.errmsg, &c.rid);
    c.errmsg = Redact(std::move(c.errmsg), token);
    c.rid = Redact(std::move(c.rid), token);
    TruncateUtf8(&c.errmsg, kMaxErrmsgBytes);
  }

  int code = 0;
  if (auto it = root.find("errcode"); it != root.end()) {
    if (it->is_number_unsigned()) {
      const auto v = it->get<uint64_t>();
      if (v > static_cast<uint64_t>(INT_MAX)) {
        c.outcome = Outcome::kBadResponse;
        c.detail = "errcode " + std::to_string(v) + " is out of range";
        return c;
      }
      code = static_cast<int>(v);
    } else if (it->is_number_integer()) {
      const auto v = it->get<int64_t>();
      if (v < INT_MIN || v > INT_MAX) {
        c.outcome = Outcome::kBadResponse;
        c.detail = "errcode " + std::to_string(v) + " is out of range";
        return c;
      }
      code = static_cast<int>(v);
    } else {
      c.outcome = Outcome::kBadResponse;
      c.detail = "errcode is " + std::string(JsonTypeName(*it)) + ", expected an integer";
      return c;
    }
    c.errcode = code;
  }

  const ProbeKindEntry& entry = KindEntry(kind);
  if (code == 87014 && entry.risky_content_errcode) {
    // The canary text itself was judged risky: the API accepted the token, so it is alive.
    c.outcome = Outcome::kOk;
    c.content_flagged = true;
    return c;
  }
  c.outcome = OutcomeForErrcode(code);
  if (c.outcome != Outcome::kOk) return c;

  if (std::string why = entry.check_success(root, &c.content_flagged); !why.empty()) {
    c.outcome = Outcome::kBadResponse;
    c.detail = std::move(why);
    return c;
  }
  if (!c.errcode) c.errcode = 0;  // a missing errcode means success
  return c;
}

}  // namespace

void SplitRid(std::string_view errmsg, std::string* message, std::string* rid) {
  std::string_view head = TrimRight(errmsg);
  std::string found;
  if (head.size() >= 26 && IsRid(head.substr(head.size() - 26))) {
    std::string_view rest = head.substr(0, head.size() - 26);
    if (StripMarker(&rest, "rid: ")) {
      found = std::string(head.substr(head.size() - 26));
      head = rest;
    }
  } else if (head.ends_with(']')) {
    const size_t open = head.rfind('[');
    if (open != std::string_view::npos) {
      const std::string_view inner = head.substr(open + 1, head.size() - open - 2);
      std::string_view rest = head.substr(0, open);
      if (IsHint(inner) && StripMarker(&rest, "hint: ")) {
        found = std::string(inner);
        head = rest;
      }
    }
  }
  head = TrimRight(head);
  if (message) *message = std::string(head);
  if (rid) *rid = std::move(found);
}

Classification Classify(ProbeKind kind, const HttpResponse& response, const Secret& token) {
  if (!response.transport_ok) {
    Classification c;
    c.outcome = Outcome::kTransportError;
    c.detail = response.transport_error.empty() ? std::string("transport failure")
                                                : Redact(response.transport_error, token);
    if (!IsValidUtf8(c.detail)) c.detail = RepairUtf8(c.detail);
    return c;
  }
  if (response.http_status != 200) {
    Classification c;
    c.outcome = Outcome::kTransportError;
    c.detail = "HTTP " + std::to_string(response.http_status);
    return c;
  }
  try {
    return ClassifyBody(kind, response.body, token);
  } catch (const std::exception&) {
    // Nothing above should throw; if something does (e.g. out of memory), the answer is
    // still just a bad one, and the daemon carries on. what() might quote the body: not used.
    return Bad("body could not be processed");
  }
}

}  // namespace wxcanary::wechat
