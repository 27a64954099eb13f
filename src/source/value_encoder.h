#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "config/config.h"

namespace wxcanary::source {

/// What the keeper writes: the token, and when it stops working.
struct TokenToWrite {
  std::string_view token;
  SystemTime expires_at{};
  std::chrono::seconds expires_in{0};  // remaining life at the fetch, for an `expires_in` member
};

/// The inverse of DecodeValue: the bytes that put `in.token` into env's key so that the app (and
/// DecodeValue) reads it back. `previous` is what the key (or field) holds now, "" if nothing:
/// with encoding auto its form (JDK, PHP, a JSON string literal, plain) is kept, and a JSON or
/// PHP array document keeps its other members, with the token at json_path, the expiry at
/// expiry_path (as a number of Unix seconds or milliseconds, or an ISO 8601 string, as the
/// previous value had it; ISO 8601 when new) and an `expires_in` next to the token updated.
/// nullopt with a one-line `error` (never the token) when the layout cannot take it. Pure;
/// thread-safe.
std::optional<std::string> EncodeValue(const config::Environment& env, const TokenToWrite& in,
                                       std::string_view previous, std::string* error);

}  // namespace wxcanary::source
