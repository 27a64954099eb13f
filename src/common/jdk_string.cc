#include "common/jdk_string.h"

#include <cstdint>

namespace wxcanary {
namespace {

constexpr std::string_view kStreamHeader("\xAC\xED\x00\x05", 4);
constexpr unsigned char kTcString = 0x74;
constexpr unsigned char kTcLongString = 0x7C;

void AppendBigEndian(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Modified UTF-8 is UTF-8 with U+0000 as C0 80 and code points above U+FFFF as two 3-byte
// surrogates. Invalid UTF-8 input bytes are passed through: keys come from YAML, which is valid.
std::string ToModifiedUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) {
      out += "\xC0\x80";
    } else if (c >= 0xF0 && i + 3 < s.size()) {
      uint32_t cp = ((c & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
                    ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) |
                    (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
      cp -= 0x10000;
      AppendUtf8(&out, 0xD800 + (cp >> 10));
      AppendUtf8(&out, 0xDC00 + (cp & 0x3FF));
      i += 3;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// Back to UTF-8; nullopt on a sequence modified UTF-8 cannot contain.
std::optional<std::string> FromModifiedUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto cont = [&](size_t i) {
    return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80;
  };
  auto unit3 = [&](size_t i) -> uint32_t {
    return ((static_cast<unsigned char>(s[i]) & 0x0Fu) << 12) |
           ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
  };
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return std::nullopt;  // Java never writes a raw NUL
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && cont(i + 1)) {
      uint32_t cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      AppendUtf8(&out, cp);
      i += 2;
    } else if ((c & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
      uint32_t cp = unit3(i);
      if (cp >= 0xD800 && cp < 0xDC00 && i + 5 < s.size() &&
          (static_cast<unsigned char>(s[i + 3]) & 0xF0) == 0xE0 && cont(i + 4) && cont(i + 5)) {
        uint32_t low = unit3(i + 3);
        if (low >= 0xDC00 && low < 0xE000) {
          AppendUtf8(&out, 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
          i += 6;
          continue;
        }
      }
      AppendUtf8(&out, cp);  // a lone surrogate: Java allows it; keep its 3-byte form
      i += 3;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace

bool LooksJdkSerialized(std::string_view bytes) { return bytes.substr(0, 4) == kStreamHeader; }

std::string JdkSerializeString(std::string_view utf8) {
  const std::string body = ToModifiedUtf8(utf8);
  std::string out(kStreamHeader);
  if (body.size() <= 0xFFFF) {
    out.push_back(static_cast<char>(kTcString));
    AppendBigEndian(&out, body.size(), 2);
  } else {
    out.push_back(static_cast<char>(kTcLongString));
    AppendBigEndian(&out, body.size(), 8);
  }
  return out + body;
}

std::optional<std::string> JdkDeserializeString(std::string_view bytes, JdkDecodeError* why) {
  JdkDecodeError scratch{};
  if (why == nullptr) why = &scratch;
  if (!LooksJdkSerialized(bytes)) {
    *why = JdkDecodeError::kNotJdk;
    return std::nullopt;
  }
  if (bytes.size() < 5) {
    *why = JdkDecodeError::kMalformed;
    return std::nullopt;
  }
  const auto tag = static_cast<unsigned char>(bytes[4]);
  if (tag != kTcString && tag != kTcLongString) {
    *why = JdkDecodeError::kNotAString;
    return std::nullopt;
  }
  const size_t width = tag == kTcString ? 2 : 8;
  if (bytes.size() < 5 + width) {
    *why = JdkDecodeError::kMalformed;
    return std::nullopt;
  }
  uint64_t len = 0;
  for (size_t i = 0; i < width; ++i) len = (len << 8) | static_cast<unsigned char>(bytes[5 + i]);
  const std::string_view body = bytes.substr(5 + width);
  // Exactly one object: a second one (or a cut) means this is not the single String we read.
  if (len != body.size()) {
    *why = JdkDecodeError::kMalformed;
    return std::nullopt;
  }
  auto text = FromModifiedUtf8(body);
  if (!text) *why = JdkDecodeError::kMalformed;
  return text;
}

}  // namespace wxcanary
