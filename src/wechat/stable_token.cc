#include "wechat/stable_token.h"

#include <nlohmann/json.hpp>

namespace wxcanary::wechat {

std::string StableTokenRequestBody(const std::string& app_id, const Secret& secret) {
  nlohmann::json body = {{"grant_type", "client_credential"},
                         {"appid", app_id},
                         {"secret", secret.Reveal()},
                         {"force_refresh", false}};
  return body.dump();
}

std::optional<FetchedToken> ParseStableTokenResponse(std::string_view body, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
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

std::optional<FetchedToken> ParseStableTokenAnswer(const HttpResponse& response,
                                                   std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (!response.transport_ok) {
    *error = "stable_token: transport error: " + response.transport_error;
    return std::nullopt;
  }
  if (response.http_status != 200) {
    *error = "stable_token: HTTP status " + std::to_string(response.http_status);
    return std::nullopt;
  }
  return ParseStableTokenResponse(response.body, error);
}

}  // namespace wxcanary::wechat
