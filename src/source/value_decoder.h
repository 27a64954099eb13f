#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "config/config.h"

namespace wxcanary::source {

/// Largest stored value DecodeToken accepts; real tokens are <= 512 chars.
inline constexpr size_t kMaxValueBytes = 64 * 1024;

/// A token decoded from a stored value, and the expiry the value itself carries (Senparc's
/// AccessTokenExpireTime, at env.expiry_path), if any.
struct DecodedValue {
  std::string token;
  std::optional<SystemTime> expires_at;
};

/// Extracts the token from a stored value in two steps. First env.encoding unwraps the bytes:
/// plain text, a JSON string literal, a JDK-serialized String (Spring's RedisTemplate default),
/// a PHP serialize() string or array (EasyWeChat); kAuto takes whichever of the string forms the
/// bytes unambiguously are. Then, for storage json or a json_path, the string at the dotted
/// path inside the JSON (or PHP array) document; otherwise the string itself is the token.
/// Returns nullopt with a one-line `error` that never contains the value: the reason, or, for
/// bytes in a format wxcanary cannot decode (Redisson/Kryo, igbinary, a JDK object that is not
/// a String, other binary), which format it looks like and what to change in the app.
/// Pure; thread-safe.
std::optional<DecodedValue> DecodeValue(const config::Environment& env, std::string_view raw,
                                        std::string* error);

/// DecodeValue's token alone.
std::optional<std::string> DecodeToken(const config::Environment& env, std::string_view raw,
                                       std::string* error);

/// Whether raw bytes are a PHP serialize() string (`s:N:"...";`, N matching exactly) or array
/// (`a:N:{...}`): the forms encoding auto recognises. Pure.
bool LooksPhpString(std::string_view raw);
bool LooksPhpArray(std::string_view raw);

/// An expiry time as SDKs store it: Unix seconds (or milliseconds past 1e11) as a number or
/// numeric text, or an ISO 8601 date-time with a Z or +hh:mm offset (.NET's DateTimeOffset,
/// any number of fraction digits). nullopt when it is none of these. Pure; thread-safe.
std::optional<SystemTime> ParseExpiry(std::string_view text);

}  // namespace wxcanary::source
