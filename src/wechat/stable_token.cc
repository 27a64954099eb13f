#include "wechat/stable_token.h"

#include <nlohmann/json.hpp>

namespace wxcanary::wechat {

std::string StableTokenRequestBody(const std::string& app_id, const Secret& secret,
                                   bool force_refresh) {
  nlohmann::json body = {{"grant_type", "client_credential"},
                         {"appid", app_id},
                         {"secret", secret.Reveal()},
                         {"force_refresh", force_refresh}};
  return body.dump();
}

std::optional<FetchedToken> ParseStableTokenResponse(std::string_view body, std::string* error,
                                                     FetchFailure* failure) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  FetchFailure unused;
  if (failure == nullptr) failure = &unused;
  failure->reason = "bad_response";
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    *error = "stable_token: answer is not a JSON object";
    return std::nullopt;
  }
  if (auto it = json.find("errcode");
      it != json.end() && it->is_number_integer() && it->get<int64_t>() != 0) {
    std::string message;
    std::string rid;
    if (auto m = json.find("errmsg"); m != json.end() && m->is_string()) {
      SplitRid(m->get<std::string>(), &message, &rid);
    }
    *error = "stable_token: errcode " + std::to_string(it->get<int64_t>()) + " " + message +
             (rid.empty() ? "" : " (rid " + rid + ")");
    failure->errcode = static_cast<int>(it->get<int64_t>());
    failure->reason = std::to_string(*failure->errcode);
    failure->rid = rid;
    return std::nullopt;
  }
  auto token = json.find("access_token");
  auto expires = json.find("expires_in");
  if (token == json.end() || !token->is_string() || token->get<std::string>().empty()) {
    *error = "stable_token: answer has no access_token";
    return std::nullopt;
  }
  if (expires == json.end() || !expires->is_number_integer() || expires->get<int64_t>() <= 0) {
    *error = "stable_token: answer has no positive expires_in";
    return std::nullopt;
  }
  FetchedToken out;
  out.token = Secret(token->get<std::string>());
  out.expires_in = std::chrono::seconds{expires->get<int64_t>()};
  return out;
}

std::optional<FetchedToken> ParseStableTokenAnswer(const HttpResponse& response, std::string* error,
                                                   FetchFailure* failure) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (!response.transport_ok) {
    *error = "stable_token: transport error: " + response.transport_error;
    if (failure != nullptr) failure->reason = "transport";
    return std::nullopt;
  }
  if (response.http_status != 200) {
    *error = "stable_token: HTTP status " + std::to_string(response.http_status);
    if (failure != nullptr) failure->reason = "http";
    return std::nullopt;
  }
  return ParseStableTokenResponse(response.body, error, failure);
}

}  // namespace wxcanary::wechat
