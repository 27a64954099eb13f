#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace wxcanary {

/// The bounded set of probe outcomes; every one is exported from the start.
enum class Outcome {
  kOk,
  kTokenInvalid,    // 40001: superseded by a newer token, or never valid
  kTokenMalformed,  // 40014
  kTokenExpired,    // 42001
  kTokenMissing,    // no key, empty value, unparseable value
  kQuota,           // 45009, 45011
  kApiError,        // any other errcode (kept in ProbeResult::errcode)
  kTransportError,  // connect, TLS, timeout, non-200
  kBadResponse,     // not the JSON expected
  kRedisError,
};

inline constexpr std::array kAllOutcomes = {
    Outcome::kOk,           Outcome::kTokenInvalid,   Outcome::kTokenMalformed,
    Outcome::kTokenExpired, Outcome::kTokenMissing,   Outcome::kQuota,
    Outcome::kApiError,     Outcome::kTransportError, Outcome::kBadResponse,
    Outcome::kRedisError};

/// The label value, e.g. "token_invalid".
constexpr std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kTokenInvalid: return "token_invalid";
    case Outcome::kTokenMalformed: return "token_malformed";
    case Outcome::kTokenExpired: return "token_expired";
    case Outcome::kTokenMissing: return "token_missing";
    case Outcome::kQuota: return "quota";
    case Outcome::kApiError: return "api_error";
    case Outcome::kTransportError: return "transport_error";
    case Outcome::kBadResponse: return "bad_response";
    case Outcome::kRedisError: return "redis_error";
  }
  return "unknown";
}

/// True for the three answers that mean "this token is dead" (40001, 40014, 42001): the SDKs
/// (WxJava, wechatpy, EasyWeChat) all treat them alike, and so do conflict detection and healing.
constexpr bool IsTokenError(Outcome o) {
  return o == Outcome::kTokenInvalid || o == Outcome::kTokenMalformed ||
         o == Outcome::kTokenExpired;
}

}  // namespace wxcanary
