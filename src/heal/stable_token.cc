#include "heal/stable_token.h"

#include "wechat/client.h"

namespace wxcanary::heal {

StableTokenFetcher::StableTokenFetcher(config::WeChat wechat, std::map<std::string, Secret> secrets)
    : wechat_(std::move(wechat)), secrets_(std::move(secrets)) {}

StableTokenFetcher::StableTokenFetcher(const config::Config& config)
    : StableTokenFetcher(config.wechat, config::AppSecrets(config)) {}

StableTokenFetcher::~StableTokenFetcher() = default;

void StableTokenFetcher::Apply(const config::Config& config) {
  auto secrets = config::AppSecrets(config);
  std::lock_guard lock(settings_mu_);
  wechat_ = config.wechat;
  secrets_ = std::move(secrets);
}

std::optional<FetchedToken> StableTokenFetcher::FetchToken(const std::string& app_id,
                                                           bool force_refresh, std::string* error,
                                                           wechat::FetchFailure* failure) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  config::WeChat wechat;
  Secret secret;
  {
    std::lock_guard lock(settings_mu_);
    wechat = wechat_;
    if (auto it = secrets_.find(app_id); it != secrets_.end()) secret = it->second;
  }
  if (secret.empty()) {
    *error = "stable_token: no secret configured for app " + app_id;
    if (failure != nullptr) failure->reason = "no_secret";
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  if (!client_ || client_wechat_ != wechat) {
    client_ = std::make_unique<wechat::Client>(wechat);
    client_wechat_ = wechat;
  }
  return wechat::ParseStableTokenAnswer(
      client_->PostJson("/cgi-bin/stable_token",
                        wechat::StableTokenRequestBody(app_id, secret, force_refresh),
                        wechat.timeout),
      error, failure);
}

}  // namespace wxcanary::heal
