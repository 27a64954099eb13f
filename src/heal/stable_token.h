#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/secret.h"
#include "config/config.h"
#include "heal/healer.h"

namespace wxcanary::wechat {
class Client;
}

namespace wxcanary::heal {

/// The JSON body of a getStableAccessToken call. force_refresh is always false: a forced
/// refresh would invalidate the token every other environment of the AppId is using. Pure.
std::string StableTokenRequestBody(const std::string& app_id, const Secret& secret);

/// Reads a /cgi-bin/stable_token answer. nullopt with a one-line `error` (errcode, errmsg,
/// never the token) when there is no usable token. Pure; thread-safe.
std::optional<FetchedToken> ParseStableTokenResponse(std::string_view body, std::string* error);

/// TokenFetcher over POST /cgi-bin/stable_token (never /cgi-bin/token, never force_refresh)
/// for the apps whose secret is configured. One client behind a mutex: refreshes are rare.
/// Thread-safe.
class StableTokenFetcher final : public TokenFetcher {
 public:
  /// `secrets`: app_id -> its AppSecret; apps not in it get an error.
  StableTokenFetcher(config::WeChat wechat, std::map<std::string, Secret> secrets);
  ~StableTokenFetcher() override;
  StableTokenFetcher(const StableTokenFetcher&) = delete;
  StableTokenFetcher& operator=(const StableTokenFetcher&) = delete;

  std::optional<FetchedToken> Fetch(const std::string& app_id, std::string* error) override;

 private:
  const config::WeChat wechat_;
  const std::map<std::string, Secret> secrets_;
  std::mutex mu_;
  std::unique_ptr<wechat::Client> client_;  // created on first use
};

}  // namespace wxcanary::heal
