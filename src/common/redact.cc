#include "common/redact.h"

#include <algorithm>
#include <array>

namespace wxcanary {
namespace {

// RFC 3986 unreserved characters: the ones percent-encoding leaves as they are. A table: every
// probe checks its token (~150 bytes) once per request.
constexpr auto kUnreserved = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_' || c == '.' || c == '~';
  return t;
}();

bool IsUnreserved(unsigned char c) { return kUnreserved[c]; }

}  // namespace

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t pos = s->find(from); pos != std::string::npos; pos = s->find(from, pos + to.size())) {
    s->replace(pos, from.size(), to);
  }
}

bool NeedsPercentEncoding(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char ch) { return !IsUnreserved(static_cast<unsigned char>(ch)); });
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string Redact(std::string text, const Secret& secret, std::string_view shown) {
  const std::string_view raw = secret.Reveal();
  // Shorter than the secret (every ok answer's "ok"): holds neither form, which are at least
  // as long. No scan of the secret, no copies.
  if (raw.empty() || text.size() < raw.size()) return text;
  const std::string encoded = NeedsPercentEncoding(raw) ? PercentEncode(raw) : std::string();
  if (text.find(raw) == std::string::npos &&
      (encoded.empty() || text.find(encoded) == std::string::npos)) {
    return text;
  }
  const std::string replacement =
      shown.empty() ? "<" + secret.Fingerprint() + ">" : std::string(shown);
  ReplaceAll(&text, raw, replacement);
  if (!encoded.empty()) ReplaceAll(&text, encoded, replacement);
  return text;
}

}  // namespace wxcanary
