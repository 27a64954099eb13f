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

/// Why a fetch gave no token, for counters and logs: `reason` is WeChat's errcode as text
/// ("40125"), or "transport", "http", "bad_response" when there is none; `rid` when WeChat gave
/// one.
struct FetchFailure {
  std::string reason;
  std::optional<int> errcode;
  std::string rid;
};

/// The JSON body of a getStableAccessToken call. force_refresh is false unless asked: a forced
/// refresh invalidates the token every other environment of the AppId is using (only the keeper
/// asks, for a token the probes confirmed dead). Pure.
std::string StableTokenRequestBody(const std::string& app_id, const Secret& secret,
                                   bool force_refresh = false);

/// Reads a /cgi-bin/stable_token answer body. nullopt with a one-line `error` (errcode, errmsg,
/// never the token) and, when given, `failure` when there is no usable token. Pure; thread-safe.
std::optional<FetchedToken> ParseStableTokenResponse(std::string_view body, std::string* error,
                                                     FetchFailure* failure = nullptr);

/// The same for a whole HTTP exchange: a transport error or a status other than 200 is an
/// error too. Pure; thread-safe.
std::optional<FetchedToken> ParseStableTokenAnswer(const HttpResponse& response, std::string* error,
                                                   FetchFailure* failure = nullptr);

}  // namespace wxcanary::wechat
