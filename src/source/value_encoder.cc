#include "source/value_encoder.h"

#include <nlohmann/json.hpp>

#include "common/jdk_string.h"
#include "common/quote.h"
#include "common/rfc3339.h"
#include "source/value_decoder.h"

namespace wxcanary::source {
namespace {

using config::Encoding;
using Json = nlohmann::json;

// The form the written bytes take: env.encoding, or with auto the form `previous` has.
Encoding Wrapper(Encoding enc, std::string_view previous, bool document) {
  if (enc != Encoding::kAuto) return enc;
  if (LooksJdkSerialized(previous)) return Encoding::kJdk;
  // The decoder's own tests of the forms, so what is written is what it reads back.
  if (LooksPhpString(previous) || (document && LooksPhpArray(previous))) return Encoding::kPhp;
  if (!document && previous.size() >= 2 && previous.front() == '"' && previous.back() == '"')
    return Encoding::kJsonString;
  return Encoding::kPlain;
}

void PhpSerialize(const Json& v, std::string* out) {
  switch (v.type()) {
    case Json::value_t::null: *out += "N;"; break;
    case Json::value_t::boolean: *out += v.get<bool>() ? "b:1;" : "b:0;"; break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      *out += "i:" + std::to_string(v.get<int64_t>()) + ";";
      break;
    case Json::value_t::number_float: *out += "d:" + Json(v.get<double>()).dump() + ";"; break;
    case Json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      *out += "s:" + std::to_string(s.size()) + ":\"" + s + "\";";
      break;
    }
    case Json::value_t::object: {
      *out += "a:" + std::to_string(v.size()) + ":{";
      for (const auto& [key, member] : v.items()) {
        // PHP arrays keep integer keys as integers: the reader turned them into their text.
        const bool integer = !key.empty() && key.size() < 19 &&
                             key.find_first_not_of("0123456789") == std::string::npos &&
                             (key == "0" || key[0] != '0');
        if (integer) *out += "i:" + key + ";";
        else PhpSerialize(Json(key), out);
        PhpSerialize(member, out);
      }
      *out += "}";
      break;
    }
    default: PhpSerialize(Json(v.dump()), out); break;  // arrays never come out of PhpReader
  }
}

// The member at dotted `path`, made (with the objects leading to it) when absent. Null when a
// step is not an object.
Json* Slot(Json& doc, const std::string& path) {
  Json* cur = &doc;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string seg =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur->is_null()) *cur = Json::object();
    if (!cur->is_object()) return nullptr;
    cur = &(*cur)[seg];
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// The previous value as a JSON document to update (its other members are the app's), or an
// empty object when there is none of this layout.
Json Template(const config::Environment& env, std::string_view previous) {
  std::string error;
  if (previous.empty() || !DecodeValue(env, previous, &error)) return Json::object();
  std::string text(previous);
  if (LooksJdkSerialized(previous)) {
    JdkDecodeError why{};
    auto s = JdkDeserializeString(previous, &why);
    if (!s) return Json::object();
    text = std::move(*s);
  }
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() ? doc : Json::object();
}

}  // namespace

std::optional<std::string> EncodeValue(const config::Environment& env, const TokenToWrite& in,
                                       std::string_view previous, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (in.token.empty()) {
    *error = "encode: the token is empty";
    return std::nullopt;
  }
  const bool document = env.storage == config::Storage::kJson || !env.json_path.empty();
  const Encoding wrapper = Wrapper(env.encoding, previous, document);
  if (!document) {
    const std::string token(in.token);
    switch (wrapper) {
      case Encoding::kJdk: return JdkSerializeString(token);
      case Encoding::kPhp: {
        std::string out;
        PhpSerialize(Json(token), &out);
        return out;
      }
      case Encoding::kJsonString: return Json(token).dump();
      default: return token;
    }
  }

  // A PHP array is written fresh, as EasyWeChat 4 writes it (token and expires_in); a JSON
  // document keeps what the app stored beside the token.
  Json doc = wrapper == Encoding::kPhp ? Json::object() : Template(env, previous);
  const bool fresh = doc.empty();
  Json* token_slot = Slot(doc, env.json_path);
  if (token_slot == nullptr) {
    *error = "encode: json_path " + Quote(env.json_path) + " runs through a non-object member";
    return std::nullopt;
  }
  *token_slot = std::string(in.token);
  // An `expires_in` beside the token (PowerWeChat, EasyWeChat 4) tells the app the life left.
  const size_t last_dot = env.json_path.rfind('.');
  const std::string parent = last_dot == std::string::npos ? "" : env.json_path.substr(0, last_dot);
  Json& holder = parent.empty() ? doc : *Slot(doc, parent);
  const bool wants_expires_in = wrapper == Encoding::kPhp || (fresh && env.sdk == "powerwechat");
  if (auto it = holder.find("expires_in"); it != holder.end() && it->is_number())
    *it = in.expires_in.count();
  else if (fresh && wants_expires_in) holder["expires_in"] = in.expires_in.count();
  if (!env.expiry_path.empty()) {
    Json* at = Slot(doc, env.expiry_path);
    if (at == nullptr) {
      *error =
          "encode: expiry_path " + Quote(env.expiry_path) + " runs through a non-object member";
      return std::nullopt;
    }
    const int64_t secs =
        std::chrono::duration_cast<std::chrono::seconds>(in.expires_at.time_since_epoch()).count();
    if (at->is_number()) *at = at->get<double>() > 1e11 ? secs * 1000 : secs;
    else *at = FormatRfc3339(in.expires_at);
  }
  if (wrapper == Encoding::kPhp) {
    std::string out;
    PhpSerialize(doc, &out);
    return out;
  }
  std::string text = doc.dump();
  if (wrapper == Encoding::kJdk) return JdkSerializeString(text);
  return text;
}

}  // namespace wxcanary::source
