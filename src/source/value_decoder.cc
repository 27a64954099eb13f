#include "source/value_decoder.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/jdk_string.h"
#include "common/quote.h"
#include "common/utf8.h"

namespace wxcanary::source {
namespace {

using Json = nlohmann::json;
using config::Encoding;

std::string TypeWithArticle(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    default: return std::string("a ") + j.type_name();
  }
}

bool IsSpaceOrControl(unsigned char c) { return c <= 0x20 || c == 0x7f; }

// Where the first byte <= 0x20 or 0x7f is, or v.size(). Eight bytes at a time (this runs on
// every probe's token): the "has a byte less than n" and "has a zero byte" bit tricks tell
// whether a word holds such a byte (exactly, for the "whether"; not which one), and the bytes
// from that word on are then checked one by one for its offset.
size_t FirstSpaceOrControl(std::string_view v) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, v.data() + i, 8);
    const uint64_t below = (w - kOnes * 0x21) & ~w & kHigh;
    const uint64_t del = w ^ (kOnes * 0x7f);
    if ((below | ((del - kOnes) & ~del & kHigh)) != 0) break;
  }
  for (; i < v.size(); ++i)
    if (IsSpaceOrControl(static_cast<unsigned char>(v[i]))) return i;
  return v.size();
}

// Tokens are opaque printable strings; anything else in a plain value is a serialization bug
// (a trailing newline, a Java object dump) that would make every probe fail confusingly.
bool CheckOpaque(std::string_view v, std::string_view what, std::string* error) {
  if (v.empty()) {
    *error = std::string(what) + " is empty";
    return false;
  }
  if (const size_t i = FirstSpaceOrControl(v); i < v.size()) {
    *error = std::string(what) + " contains whitespace or a control character at byte " +
             std::to_string(i) + " (tokens are opaque printable strings)";
    return false;
  }
  return true;
}

// Names a serialization wxcanary does not decode, from its leading bytes; "" when the bytes look
// like text. The message says what the app can change; it never quotes the bytes.
std::string UndecodableFormat(std::string_view raw) {
  auto byte = [&](size_t i) {
    return i < raw.size() ? static_cast<unsigned char>(raw[i]) : 0x100u;
  };
  if (LooksJdkSerialized(raw))
    return "value is a JDK-serialized object that is not a String: wxcanary reads a serialized "
           "String only (store the token itself, e.g. with StringRedisTemplate)";
  // igbinary starts with its format version as a 4-byte big-endian 1 or 2.
  if (byte(0) == 0 && byte(1) == 0 && byte(2) == 0 && (byte(3) == 1 || byte(3) == 2))
    return "value looks igbinary-encoded (PHP's igbinary extension is loaded): have the cache "
           "use serialize() (Symfony DefaultMarshaller with useIgbinary: false)";
  // Kryo's writeClassAndObject: varint class id + 2, and String is Kryo's class id 1; an ASCII
  // string follows with the high bit set on its last char, or a flagged length.
  if (byte(0) == 0x03 && (byte(1) >= 0x80 ? byte(1) != 0x100u : byte(1) >= 0x21 && byte(1) < 0x7F))
    return "value looks Redisson/Kryo-encoded (Redisson's default codec): configure StringCodec "
           "on the RedissonClient the app uses, or store the token with a String serializer";
  if (byte(0) < 0x20 && byte(0) != '\t' && byte(0) != '\n' && byte(0) != '\r')
    return "value is binary, not text (" + std::to_string(raw.size()) +
           " bytes of an unknown serialization, e.g. FST or Kryo): store the token as a string";
  if (!IsValidUtf8(raw))
    return "value is binary, not UTF-8 text (" + std::to_string(raw.size()) +
           " bytes of an unknown serialization): store the token as a string";
  return "";
}

// ---- PHP serialize() ----------------------------------------------------------------------

// The subset of unserialize() a cached token needs: N, b, i, d, s and nested arrays (as JSON
// objects keyed by the PHP keys). Objects and references are refused: wxcanary never runs
// their constructors' meaning, and no SDK caches a token as one.
class PhpReader {
 public:
  explicit PhpReader(std::string_view in) : in_(in) {}

  std::optional<Json> Document(std::string* error) {
    auto v = Value(0);
    if (v && pos_ != in_.size()) {
      problem_ = "trailing bytes after the value";
      v.reset();
    }
    if (!v) *error = "value is not valid PHP serialize() output (" + problem_ + ")";
    return v;
  }

 private:
  static constexpr int kMaxDepth = 16;

  bool Eat(char c) {
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    problem_ = "expected '" + std::string(1, c) + "' at byte " + std::to_string(pos_);
    return false;
  }

  // Text up to (not including) `end`, which is consumed.
  std::optional<std::string_view> Until(char end) {
    size_t at = in_.find(end, pos_);
    if (at == std::string_view::npos) {
      problem_ = "cut short";
      return std::nullopt;
    }
    std::string_view out = in_.substr(pos_, at - pos_);
    pos_ = at + 1;
    return out;
  }

  std::optional<int64_t> Integer(char end) {
    auto text = Until(end);
    if (!text) return std::nullopt;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (text->empty() || ec != std::errc{} || p != text->data() + text->size()) {
      problem_ = "bad integer before byte " + std::to_string(pos_);
      return std::nullopt;
    }
    return v;
  }

  std::optional<Json> String() {
    auto len = Integer(':');
    if (!len) return std::nullopt;
    if (!Eat('"')) return std::nullopt;
    if (*len < 0 || static_cast<uint64_t>(*len) > in_.size() - pos_) {
      problem_ = "string length " + std::to_string(*len) + " runs past the end";
      return std::nullopt;
    }
    std::string s(in_.substr(pos_, static_cast<size_t>(*len)));
    pos_ += static_cast<size_t>(*len);
    if (!Eat('"') || !Eat(';')) return std::nullopt;
    return Json(std::move(s));
  }

  std::optional<Json> Value(int depth) {
    if (pos_ + 1 >= in_.size()) {
      problem_ = "cut short";
      return std::nullopt;
    }
    const size_t type_at = pos_;
    const char type = in_[pos_];
    if (type == 'N') {
      ++pos_;
      if (!Eat(';')) return std::nullopt;
      return Json(nullptr);
    }
    pos_ += 1;
    if (!Eat(':')) return std::nullopt;
    switch (type) {
      case 's': return String();
      case 'i': {
        auto v = Integer(';');
        if (!v) return std::nullopt;
        return Json(*v);
      }
      case 'b': {
        auto v = Integer(';');
        if (!v || (*v != 0 && *v != 1)) {
          if (v) problem_ = "bad boolean";
          return std::nullopt;
        }
        return Json(*v == 1);
      }
      case 'd': {
        auto text = Until(';');
        if (!text) return std::nullopt;
        double d = 0;
        auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), d);
        if (text->empty() || ec != std::errc{} || p != text->data() + text->size() ||
            !std::isfinite(d)) {
          problem_ = "bad float";
          return std::nullopt;
        }
        return Json(d);
      }
      case 'a': {
        if (depth >= kMaxDepth) {
          problem_ = "arrays nested deeper than " + std::to_string(kMaxDepth);
          return std::nullopt;
        }
        auto n = Integer(':');
        if (!n) return std::nullopt;
        if (!Eat('{')) return std::nullopt;
        // Each entry takes at least 8 bytes ("i:0;N;"): a count the input cannot hold is a lie.
        if (*n < 0 || static_cast<uint64_t>(*n) > in_.size() - pos_) {
          problem_ = "array count " + std::to_string(*n) + " runs past the end";
          return std::nullopt;
        }
        Json obj = Json::object();
        for (int64_t i = 0; i < *n; ++i) {
          auto key = Value(depth + 1);
          if (!key) return std::nullopt;
          if (!key->is_string() && !key->is_number_integer()) {
            problem_ = "array key is not a string or integer";
            return std::nullopt;
          }
          std::string name =
              key->is_string() ? key->get<std::string>() : std::to_string(key->get<int64_t>());
          auto value = Value(depth + 1);
          if (!value) return std::nullopt;
          obj[name] = std::move(*value);
        }
        if (!Eat('}')) return std::nullopt;
        return obj;
      }
      case 'O':
      case 'C': problem_ = "a PHP object, not a string or array"; return std::nullopt;
      default:
        // Not quoted: it is a byte of the value, perhaps a control character.
        problem_ = "unknown type at byte " + std::to_string(type_at);
        return std::nullopt;
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::string problem_ = "empty";
};

}  // namespace

// `s:N:"...";` with N matching exactly: unambiguous, since a bare token never has this shape.
bool LooksPhpString(std::string_view raw) {
  if (raw.size() < 6 || raw.substr(0, 2) != "s:" || raw.substr(raw.size() - 2) != "\";")
    return false;
  size_t colon = raw.find(':', 2);
  if (colon == std::string_view::npos || colon + 1 >= raw.size() || raw[colon + 1] != '"')
    return false;
  size_t len = 0;
  auto [p, ec] = std::from_chars(raw.data() + 2, raw.data() + colon, len);
  return ec == std::errc{} && p == raw.data() + colon && colon + 2 + len + 2 == raw.size();
}

bool LooksPhpArray(std::string_view raw) {
  return raw.size() >= 6 && raw.substr(0, 2) == "a:" && raw.back() == '}';
}

namespace {

// ---- JSON ---------------------------------------------------------------------------------

// Some serializers (Jackson's GenericJackson2JsonRedisSerializer, wechatpy) store a string as
// its JSON literal.
std::optional<std::string> Unquote(std::string_view raw, std::string* error) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::string(raw);
  Json j = Json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_string()) {
    *error = "value looks JSON-quoted but is not a valid JSON string";
    return std::nullopt;
  }
  return j.get<std::string>();
}

// A copy of a JSON text with every number that overflows a double (1e400) replaced by 0: the
// parser rejects the whole document for one, and such a number is never the token we read.
std::string WithoutHugeNumbers(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  bool in_string = false;
  for (size_t i = 0; i < raw.size();) {
    const char c = raw[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < raw.size()) out.push_back(raw[++i]);
      else if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (c == '"') in_string = true;
    if (c != '-' && (c < '0' || c > '9')) {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < raw.size() && std::strchr("0123456789+-.eE", raw[end]) != nullptr) ++end;
    const std::string number(raw.substr(i, end - i));
    const double value = std::strtod(number.c_str(), nullptr);
    out += std::isfinite(value) ? number : "0";
    i = end;
  }
  return out;
}

std::optional<Json> ParseJson(std::string_view raw, bool has_path, std::string* error) {
  Json doc;
  try {
    doc = Json::parse(raw);
  } catch (const Json::parse_error& e) {
    *error = "value is not JSON (parse error at byte " + std::to_string(e.byte) + ")";
    return std::nullopt;
  } catch (const Json::out_of_range&) {
    // A number too large for a double somewhere in the document: read the rest anyway.
    doc = Json::parse(WithoutHugeNumbers(raw), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      *error = "value is not usable JSON (a number out of range)";
      return std::nullopt;
    }
  } catch (const Json::exception& e) {
    *error = "value is not usable JSON (error " + std::to_string(e.id) + ")";
    return std::nullopt;
  }
  // A JSON document double-encoded as a JSON string: decode once more.
  if (doc.is_string() && has_path) {
    Json inner = Json::parse(doc.get<std::string>(), nullptr, false);
    if (!inner.is_discarded()) doc = std::move(inner);
  }
  return doc;
}

// The node at a dotted path (object members, array indexes); null when absent.
const Json* Find(const Json& doc, const std::string& path) {
  const Json* cur = &doc;
  size_t start = 0;
  while (!path.empty() && start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string seg =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const Json* next = nullptr;
    if (cur->is_object()) {
      auto it = cur->find(seg);
      if (it != cur->end()) next = &*it;
    } else if (cur->is_array() && !seg.empty() && seg.size() < 10 &&
               std::all_of(seg.begin(), seg.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      size_t idx = std::stoul(seg);
      if (idx < cur->size()) next = &(*cur)[idx];
    }
    if (next == nullptr) return nullptr;
    cur = next;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

std::optional<std::string> TokenAt(const Json& doc, const std::string& path, std::string* error) {
  const Json* at = Find(doc, path);
  if (at == nullptr) {
    *error = "json_path " + Quote(path) + " not found";
    return std::nullopt;
  }
  if (!at->is_string()) {
    *error = "json_path " + Quote(path) + " is " + TypeWithArticle(*at) + ", not a string";
    return std::nullopt;
  }
  std::string token = at->get<std::string>();
  if (!CheckOpaque(token, "json_path " + Quote(path), error)) return std::nullopt;
  return token;
}

bool ExpiryAt(const Json& doc, const std::string& path, std::optional<SystemTime>* out,
              std::string* error) {
  const Json* at = Find(doc, path);
  if (at == nullptr) {
    *error = "expiry_path " + Quote(path) + " not found";
    return false;
  }
  std::optional<SystemTime> t;
  if (at->is_number()) t = ParseExpiry(std::to_string(at->get<double>()));
  else if (at->is_string()) t = ParseExpiry(at->get<std::string>());
  if (!t) {
    *error = "expiry_path " + Quote(path) + " is " + TypeWithArticle(*at) +
             " that is not a time (Unix seconds or an ISO 8601 date-time)";
    return false;
  }
  *out = t;
  return true;
}

// ---- dates --------------------------------------------------------------------------------

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<SystemTime> ParseIso8601(std::string_view s) {
  auto num = [&](size_t at, size_t n, int* out) {
    if (at + n > s.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, &y) || s.size() < 19 || s[4] != '-' || !num(5, 2, &mo) || s[7] != '-' ||
      !num(8, 2, &d) || (s[10] != 'T' && s[10] != ' ') || !num(11, 2, &h) || s[13] != ':' ||
      !num(14, 2, &mi) || s[16] != ':' || !num(17, 2, &sec))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  size_t i = 19;
  std::chrono::nanoseconds frac{0};
  if (i < s.size() && s[i] == '.') {
    ++i;
    int64_t scale = 100'000'000;
    size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      frac += std::chrono::nanoseconds((s[i] - '0') * scale);
      scale /= 10;
      ++i;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  int offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!num(i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' || !num(i + 4, 2, &om))
      return std::nullopt;
    offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
    i += 6;
  }
  if (i != s.size()) return std::nullopt;
  const int64_t secs =
      DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
      mi * 60 + sec - int64_t{offset_min} * 60;
  return SystemTime{} +
         std::chrono::duration_cast<SystemTime::duration>(std::chrono::seconds(secs) + frac);
}

}  // namespace

std::optional<SystemTime> ParseExpiry(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.find('-', 1) != std::string_view::npos || text.find('T') != std::string_view::npos)
    return ParseIso8601(text);
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || !std::isfinite(v) || v <= 0 ||
      v > 1e14)
    return std::nullopt;
  if (v > 1e11) v /= 1000;  // milliseconds (a seconds value this large is past the year 5000)
  return SystemTime{} +
         std::chrono::duration_cast<SystemTime::duration>(std::chrono::duration<double>(v));
}

std::optional<DecodedValue> DecodeValue(const config::Environment& env, std::string_view raw,
                                        std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  error->clear();
  if (raw.empty()) {
    *error = "value is empty";
    return std::nullopt;
  }
  if (raw.size() > kMaxValueBytes) {
    *error = "value is " + std::to_string(raw.size()) + " bytes, over the " +
             std::to_string(kMaxValueBytes) + "-byte limit";
    return std::nullopt;
  }
  // json_path on a string or hash value means the value is a JSON (or PHP array) document.
  const bool document = env.storage == config::Storage::kJson || !env.json_path.empty();

  // Step 1: unwrap the bytes into a string (`text`) or, for a PHP array, a document.
  std::string text;
  std::optional<Json> doc;
  bool quoted_ok = false;  // a JSON-quoted string may still be unquoted (auto)
  const Encoding enc = env.encoding;
  if ((enc == Encoding::kAuto || enc == Encoding::kJdk) && LooksJdkSerialized(raw)) {
    JdkDecodeError why{};
    auto s = JdkDeserializeString(raw, &why);
    if (!s) {
      *error = why == JdkDecodeError::kNotAString
                   ? UndecodableFormat(raw)
                   : "value is a cut-short or malformed JDK-serialized String";
      return std::nullopt;
    }
    text = std::move(*s);
  } else if (enc == Encoding::kJdk) {
    std::string seen = UndecodableFormat(raw);
    *error = "value is not JDK-serialized (encoding jdk expects bytes AC ED 00 05 74)" +
             (seen.empty() ? std::string() : "; " + seen);
    return std::nullopt;
  } else if (enc == Encoding::kPhp || (enc == Encoding::kAuto && LooksPhpString(raw)) ||
             (enc == Encoding::kAuto && document && LooksPhpArray(raw))) {
    auto php = PhpReader(raw).Document(error);
    if (!php) {
      if (std::string seen = UndecodableFormat(raw); !seen.empty()) *error = seen;
      return std::nullopt;
    }
    if (php->is_string()) {
      text = php->get<std::string>();
    } else if (php->is_object()) {
      if (!document) {
        *error =
            "value is a PHP array: set json_path to the member holding the token "
            "(e.g. access_token)";
        return std::nullopt;
      }
      doc = std::move(*php);
    } else {
      *error = "value is PHP-serialized " + TypeWithArticle(*php) + ", not a string or array";
      return std::nullopt;
    }
  } else {
    if (std::string seen = UndecodableFormat(raw); !seen.empty()) {
      *error = seen;
      return std::nullopt;
    }
    if (enc == Encoding::kJsonString && !document) {
      if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') {
        *error = "value is not a JSON string literal (encoding json_string expects \"...\")";
        return std::nullopt;
      }
    }
    text = std::string(raw);
    quoted_ok = enc != Encoding::kPlain;
  }

  // Step 2: the token inside.
  DecodedValue out;
  if (document) {
    if (!doc) {
      doc = ParseJson(text, !env.json_path.empty(), error);
      if (!doc) return std::nullopt;
    }
    auto token = TokenAt(*doc, env.json_path, error);
    if (!token) return std::nullopt;
    out.token = std::move(*token);
    if (!env.expiry_path.empty() && !ExpiryAt(*doc, env.expiry_path, &out.expires_at, error))
      return std::nullopt;
    return out;
  }
  if (quoted_ok) {
    auto unquoted = Unquote(text, error);
    if (!unquoted) return std::nullopt;
    text = std::move(*unquoted);
  }
  if (!CheckOpaque(text, "value", error)) return std::nullopt;
  out.token = std::move(text);
  return out;
}

std::optional<std::string> DecodeToken(const config::Environment& env, std::string_view raw,
                                       std::string* error) {
  auto v = DecodeValue(env, raw, error);
  if (!v) return std::nullopt;
  return std::move(v->token);
}

}  // namespace wxcanary::source
