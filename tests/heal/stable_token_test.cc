#include "heal/stable_token.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace wxcanary::heal {
namespace {

TEST(StableToken, request_never_forces_a_refresh) {
  auto body = nlohmann::json::parse(StableTokenRequestBody("wx0001", Secret("s3cret")));
  EXPECT_EQ(body["grant_type"], "client_credential");
  EXPECT_EQ(body["appid"], "wx0001");
  EXPECT_EQ(body["secret"], "s3cret");
  EXPECT_EQ(body["force_refresh"], false);
}

TEST(StableToken, parses_a_token_and_its_lifetime) {
  std::string error;
  auto t = ParseStableTokenResponse(R"({"access_token":"ABC","expires_in":7000})", &error);
  ASSERT_TRUE(t.has_value()) << error;
  EXPECT_EQ(t->token.Reveal(), "ABC");
  EXPECT_EQ(t->expires_in, std::chrono::seconds{7000});
}

TEST(StableToken, rejects_answers_without_a_usable_token) {
  struct Case {
    const char* body;
    const char* error;
  };
  for (
      auto c : {
          Case{
              R"({"errcode":45011,"errmsg":"api minute-quota reach limit rid: 6578a1b2-11111111-22222222"})",
              "stable_token: errcode 45011 api minute-quota reach limit (rid "
              "6578a1b2-11111111-22222222)"},
          Case{R"({"errcode":40125,"errmsg":"invalid appsecret"})",
               "stable_token: errcode 40125 invalid appsecret"},
          Case{"not json", "stable_token: answer is not a JSON object"},
          Case{R"({"expires_in":7200})", "stable_token: answer has no access_token"},
          Case{R"({"access_token":"","expires_in":7200})",
               "stable_token: answer has no access_token"},
          Case{R"({"access_token":"ABC"})", "stable_token: answer has no positive expires_in"},
          Case{R"({"access_token":"ABC","expires_in":"7200"})",
               "stable_token: answer has no positive expires_in"},
      }) {
    SCOPED_TRACE(c.body);
    std::string error;
    EXPECT_FALSE(ParseStableTokenResponse(c.body, &error).has_value());
    EXPECT_EQ(error, c.error);
    EXPECT_EQ(error.find("ABC"), std::string::npos);
  }
}

TEST(StableToken, errcode_zero_with_a_token_is_success) {
  auto t =
      ParseStableTokenResponse(R"({"errcode":0,"access_token":"ABC","expires_in":300})", nullptr);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->expires_in, std::chrono::seconds{300});
}

TEST(StableToken, fetcher_refuses_apps_without_a_secret_before_any_network) {
  config::WeChat wechat;
  wechat.base_url = "http://127.0.0.1:1";  // never reached
  StableTokenFetcher fetcher(wechat, {{"wx0001", Secret("s")}});
  std::string error;
  EXPECT_FALSE(fetcher.Fetch("wx0002", &error).has_value());
  EXPECT_EQ(error, "stable_token: no secret configured for app wx0002");
}

}  // namespace
}  // namespace wxcanary::heal
