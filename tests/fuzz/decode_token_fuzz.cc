// Fuzzes source::DecodeToken over every storage layout (string, JSON with a path, hash field
// with and without JSON) and SDK encoding (PHP, JDK, JSON string, plain): it never throws, accepted
// tokens are non-empty printable text, and a rejection's message never quotes the value.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "fuzz/fuzz_util.h"
#include "source/redis_connection.h"

namespace {

using wxcanary::config::Encoding;
using wxcanary::config::Storage;
using wxcanary::fuzz::Check;

struct Layout {
  Storage storage;
  const char* json_path;
  const char* hash_field;
  Encoding encoding = Encoding::kAuto;
};

// The layouts the README names: plain string (the incident), WxJava/EasyWeChat JSON,
// nested JSON, a hash field holding the token or a JSON value.
constexpr Layout kLayouts[] = {
    {Storage::kString, "", ""},
    {Storage::kJson, "access_token", ""},
    {Storage::kJson, "data.token", ""},
    {Storage::kJson, "a.b.c.d", ""},
    {Storage::kHash, "", "access_token"},
    {Storage::kHash, "access_token", "value"},
    {Storage::kHash, "data.token", "value"},
    {Storage::kJson, "0", ""},
    // The SDK encodings: PHP serialize() (string, array), JDK String, JSON literal.
    {Storage::kString, "", "", Encoding::kPhp},
    {Storage::kString, "access_token", "", Encoding::kPhp},
    {Storage::kString, "", "", Encoding::kJdk},
    {Storage::kString, "access_token", "", Encoding::kJdk},
    {Storage::kString, "", "", Encoding::kJsonString},
    {Storage::kString, "", "", Encoding::kPlain},
};

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Layout& layout = kLayouts[data[0] % std::size(kLayouts)];
  wxcanary::config::Environment env;
  env.name = "fuzz";
  env.key = "ACCESS_TOKEN_CACHE:wxfuzz";
  env.storage = layout.storage;
  env.json_path = layout.json_path;
  env.hash_field = layout.hash_field;
  env.encoding = layout.encoding;

  const std::string_view raw(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string error;
  const auto token = wxcanary::source::DecodeToken(env, raw, &error);
  if (token) {
    Check(!token->empty(), "accepted token is not empty");
    Check(token->size() <= raw.size(), "token is no longer than the stored value");
    for (char ch : *token) {
      const auto u = static_cast<unsigned char>(ch);
      Check(u > 0x20 && u != 0x7f, "token holds no whitespace or control characters");
    }
  } else {
    Check(!error.empty(), "rejection says why");
    Check(error.find('\n') == std::string::npos, "rejection is one line");
    // No token-looking run of the value (20+ chars of the token alphabet) is echoed back. Runs
    // of prose would match the message's own words, so only the token alphabet counts.
    size_t start = 0;
    for (size_t i = 0; i <= raw.size(); ++i) {
      if (i < raw.size() && IsTokenChar(raw[i])) continue;
      if (i - start >= 20) {
        Check(error.find(raw.substr(start, i - start)) == std::string::npos,
              "error never quotes the value");
      }
      start = i + 1;
    }
  }
  return 0;
}
