// The answer classifier: turns whatever came back from the API into the bounded outcome set.
// Everything here treats the body as hostile: it never throws, never echoes the body into
// `detail`, and never lets the token or invalid UTF-8 out.

#include <algorithm>
#include <climits>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/redact.h"
#include "common/utf8.h"
#include "wechat/classify.h"

namespace wxcanary::wechat {
namespace {

using Json = nlohmann::json;

// The API's answers nest two levels deep; this leaves plenty of room while refusing a
// "[[[[...]]]]" bomb at its 65th bracket.
constexpr int kMaxNesting = 64;

// The detail when the body could not be classified for a reason that is not its syntax (a
// number too big for a double; out of memory).
constexpr char kUnprocessable[] = "body could not be processed";

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

// What the classifier reads of an answer. The whole body is parsed (so a syntax error anywhere
// is still found), but only these are kept.
struct Answer {
  enum class Error { kNone, kSyntax, kTooDeep, kOther };
  Error error = Error::kNone;
  size_t syntax_error_byte = 0;  // the parse_error's byte, as Json::parse reported it

  std::optional<JsonType> root;  // the top-level value's type
  // Top-level fields. Of a repeated key the last one counts, as in a JSON object.
  std::optional<JsonType> errcode;
  bool errcode_unsigned = false;  // for a kInteger errcode: read as unsigned (not negative)
  uint64_t errcode_unsigned_value = 0;
  int64_t errcode_signed_value = 0;
  std::optional<JsonType> errmsg;
  std::string errmsg_text;  // when errmsg is a kString
  AnswerFields fields;      // what the kinds' success checks look at
};

// nlohmann's SAX parse of a body into an Answer: nothing but the fields above is stored (no
// document is built, skipped strings are not copied), and the parse is not recursive. The
// events and errors are the ones Json::parse builds its document from, so the verdict (and the
// syntax error's byte) is the same. It stops at a container nested deeper than kMaxNesting.
class AnswerReader final : public nlohmann::json_sax<Json> {
 public:
  explicit AnswerReader(Answer* answer) : a_(*answer) {}

  bool null() override {
    Value(JsonType::kNull);
    return true;
  }
  bool boolean(bool /*val*/) override {
    Value(JsonType::kBoolean);
    return true;
  }
  bool number_integer(number_integer_t val) override {
    Value(JsonType::kInteger);
    if (TopLevelField() == Field::kErrcode) {
      a_.errcode_unsigned = false;
      a_.errcode_signed_value = val;
    }
    return true;
  }
  bool number_unsigned(number_unsigned_t val) override {
    Value(JsonType::kInteger);
    if (TopLevelField() == Field::kErrcode) {
      a_.errcode_unsigned = true;
      a_.errcode_unsigned_value = val;
    }
    return true;
  }
  bool number_float(number_float_t /*val*/, const string_t& /*text*/) override {
    Value(JsonType::kFloat);
    return true;
  }
  bool string(string_t& val) override {
    Value(JsonType::kString);
    if (TopLevelField() == Field::kErrmsg) {
      a_.errmsg_text = val;
    } else if (InSuggest()) {
      a_.fields.result_suggest = val;
    }
    return true;
  }
  bool binary(binary_t& /*val*/) override { return true; }  // not in JSON text

  bool start_object(size_t /*elements*/) override {
    Value(JsonType::kObject);
    if (TopLevelField() == Field::kResult) in_result_ = true;
    return Enter();
  }
  bool key(string_t& val) override {
    if (depth_ == 1 && a_.root == JsonType::kObject) {
      field_ = FieldNamed(val);
    } else if (depth_ == 2 && in_result_) {
      suggest_key_ = val == "suggest";
    }
    return true;
  }
  bool end_object() override { return End(); }
  bool start_array(size_t /*elements*/) override {
    Value(JsonType::kArray);
    return Enter();
  }
  bool end_array() override { return End(); }

  bool parse_error(size_t /*position*/, const std::string& /*last_token*/,
                   const Json::exception& ex) override {
    // Json::parse threw this: a parse_error for a syntax error; an out_of_range for a number
    // too big for a double, which reached Classify's catch-all.
    if (const auto* syntax = dynamic_cast<const Json::parse_error*>(&ex)) {
      a_.error = Answer::Error::kSyntax;
      a_.syntax_error_byte = syntax->byte;
    } else {
      a_.error = Answer::Error::kOther;
    }
    return false;
  }

 private:
  enum class Field { kOther, kErrcode, kErrmsg, kIpList, kResult };

  static Field FieldNamed(std::string_view key) {
    if (key == "errcode") return Field::kErrcode;
    if (key == "errmsg") return Field::kErrmsg;
    if (key == "ip_list") return Field::kIpList;
    if (key == "result") return Field::kResult;
    return Field::kOther;
  }

  // The top-level field the value now starting belongs to (kOther when it is not one we read,
  // or the value is not a top-level field's).
  Field TopLevelField() const {
    return depth_ == 1 && a_.root == JsonType::kObject ? field_ : Field::kOther;
  }
  // The value now starting is result.suggest (result being the top-level object's).
  bool InSuggest() const { return depth_ == 2 && in_result_ && suggest_key_; }

  // Records the type of a value as it starts; a later value of the same key replaces it.
  void Value(JsonType type) {
    if (depth_ == 0) {
      a_.root = type;
      return;
    }
    switch (TopLevelField()) {
      case Field::kErrcode: a_.errcode = type; break;
      case Field::kErrmsg: a_.errmsg = type; break;
      case Field::kIpList: a_.fields.ip_list = type; break;
      case Field::kResult: a_.fields.result_suggest.reset(); break;
      case Field::kOther:
        if (InSuggest()) a_.fields.result_suggest.reset();
        break;
    }
  }

  // Stops the parse at the first container deeper than kMaxNesting.
  bool Enter() {
    if (++depth_ > kMaxNesting) {
      a_.error = Answer::Error::kTooDeep;
      return false;
    }
    return true;
  }

  bool End() {
    if (--depth_ == 1) in_result_ = false;
    return true;
  }

  Answer& a_;
  int depth_ = 0;                // containers open
  Field field_ = Field::kOther;  // the top-level key last read
  bool in_result_ = false;       // inside the top-level "result" object
  bool suggest_key_ = false;     // the key last read inside it is "suggest"
};

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

  std::string repaired;
  std::string_view body = raw_body;
  if (!IsValidUtf8(body)) {
    repaired = RepairUtf8(body);
    body = repaired;
  }

  Answer answer;
  AnswerReader reader(&answer);
  if (!Json::sax_parse(body, &reader) || !answer.root) {
    // Too deep is reported first, whatever else is wrong with the body. The scan runs only
    // here: a body that parsed has no bracket deeper than the reader allowed (repairing UTF-8
    // replaces only non-ASCII bytes, so the scan sees its strings where the parser did), and
    // the reader stops at the first one deeper, so the scan finds that bracket.
    if (const size_t at = FindExcessiveNesting(raw_body); at != std::string_view::npos) {
      return Bad("JSON nested deeper than " + std::to_string(kMaxNesting) + " levels at byte " +
                 std::to_string(at));
    }
    if (answer.error == Answer::Error::kSyntax) {
      // Only the position goes out: the error's text quotes the body's bytes.
      return Bad("body is not JSON: syntax error at byte " +
                 std::to_string(answer.syntax_error_byte));
    }
    return Bad(kUnprocessable);
  }
  if (*answer.root != JsonType::kObject) {
    return Bad("body is " + std::string(JsonTypeName(*answer.root)) + ", expected a JSON object");
  }

  Classification c;
  if (answer.errmsg == JsonType::kString) {
    std::string text = std::move(answer.errmsg_text);
    ReplaceControlChars(&text);
    SplitRid(text, &c.errmsg, &c.rid);
    c.errmsg = Redact(std::move(c.errmsg), token);
    c.rid = Redact(std::move(c.rid), token);
    TruncateUtf8(&c.errmsg, kMaxErrmsgBytes);
  }

  int code = 0;
  if (answer.errcode) {
    if (*answer.errcode == JsonType::kInteger && answer.errcode_unsigned) {
      const uint64_t v = answer.errcode_unsigned_value;
      if (v > static_cast<uint64_t>(INT_MAX)) {
        c.outcome = Outcome::kBadResponse;
        c.detail = "errcode " + std::to_string(v) + " is out of range";
        return c;
      }
      code = static_cast<int>(v);
    } else if (*answer.errcode == JsonType::kInteger) {
      const int64_t v = answer.errcode_signed_value;
      if (v < INT_MIN || v > INT_MAX) {
        c.outcome = Outcome::kBadResponse;
        c.detail = "errcode " + std::to_string(v) + " is out of range";
        return c;
      }
      code = static_cast<int>(v);
    } else {
      c.outcome = Outcome::kBadResponse;
      c.detail =
          "errcode is " + std::string(JsonTypeName(*answer.errcode)) + ", expected an integer";
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

  if (std::string why = entry.check_success(answer.fields, &c.content_flagged); !why.empty()) {
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
    return Bad(kUnprocessable);
  }
}

}  // namespace wxcanary::wechat
