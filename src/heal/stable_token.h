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
#include "wechat/stable_token.h"

namespace wxcanary::wechat {
class Client;
}

namespace wxcanary::heal {

// The request and answer of /cgi-bin/stable_token are shared with the quota reader.
using wechat::ParseStableTokenResponse;
using wechat::StableTokenRequestBody;

/// TokenFetcher over POST /cgi-bin/stable_token (never /cgi-bin/token; force_refresh only when
/// the caller asks) for the apps whose secret is configured. One client behind a mutex: refreshes
/// are rare. Thread-safe.
class StableTokenFetcher final : public TokenFetcher {
 public:
  /// `secrets`: app_id -> its AppSecret; apps not in it get an error.
  StableTokenFetcher(config::WeChat wechat, std::map<std::string, Secret> secrets);
  /// The WeChat settings and the secrets of `config`'s apps (AppSecrets).
  explicit StableTokenFetcher(const config::Config& config);
  ~StableTokenFetcher() override;
  StableTokenFetcher(const StableTokenFetcher&) = delete;
  StableTokenFetcher& operator=(const StableTokenFetcher&) = delete;

  /// Takes a reloaded config's WeChat settings and app secrets for the fetches from now on; a
  /// fetch in progress finishes with the old ones.
  void Apply(const config::Config& config);

  std::optional<FetchedToken> FetchToken(const std::string& app_id, bool force_refresh,
                                         std::string* error,
                                         wechat::FetchFailure* failure) override;

 private:
  std::mutex settings_mu_;  // guards wechat_ and secrets_
  config::WeChat wechat_;
  std::map<std::string, Secret> secrets_;
  std::mutex mu_;                           // one fetch at a time over client_
  std::unique_ptr<wechat::Client> client_;  // created on first use and after wechat_ changes
  config::WeChat client_wechat_;            // what client_ was made with; guarded by mu_
};

}  // namespace wxcanary::heal
