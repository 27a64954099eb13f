#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/secret.h"
#include "wechat/client.h"

namespace wxcanary::wechat {

/// A token from getStableAccessToken, and how long WeChat says it lives.
struct FetchedToken {
  Secret token;
  std::chrono::seconds expires_in{0};
};

/// The JSON body of a getStableAccessToken call. force_refresh is always false: a forced
/// refresh would invalidate the token every other environment of the AppId is using. Pure.
std::string StableTokenRequestBody(const std::string& app_id, const Secret& secret);

/// Reads a /cgi-bin/stable_token answer body. nullopt with a one-line `error` (errcode, errmsg,
/// never the token) when there is no usable token. Pure; thread-safe.
std::optional<FetchedToken> ParseStableTokenResponse(std::string_view body, std::string* error);

/// The same for a whole HTTP exchange: a transport error or a status other than 200 is an
/// error too. Pure; thread-safe.
std::optional<FetchedToken> ParseStableTokenAnswer(const HttpResponse& response,
                                                   std::string* error);

}  // namespace wxcanary::wechat
