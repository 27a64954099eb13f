#include "heal/stable_token.h"

#include "wechat/client.h"

namespace wxcanary::heal {

StableTokenFetcher::StableTokenFetcher(config::WeChat wechat,
                                       std::map<std::string, Secret> secrets)
    : wechat_(std::move(wechat)), secrets_(std::move(secrets)) {}

StableTokenFetcher::~StableTokenFetcher() = default;

std::optional<FetchedToken> StableTokenFetcher::Fetch(const std::string& app_id,
                                                      std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  auto secret = secrets_.find(app_id);
  if (secret == secrets_.end() || secret->second.empty()) {
    *error = "stable_token: no secret configured for app " + app_id;
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  if (!client_) client_ = std::make_unique<wechat::Client>(wechat_);
  return wechat::ParseStableTokenAnswer(
      client_->PostJson("/cgi-bin/stable_token",
                        wechat::StableTokenRequestBody(app_id, secret->second), wechat_.timeout),
      error);
}

}  // namespace wxcanary::heal
