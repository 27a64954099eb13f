#pragma once

#include <ctime>
#include <memory>
#include <string>

struct redisContext;

namespace wxcanary::testing {

// The bytes WeChat SDKs store for a token, as in README's preset table (JDK bytes come from
// JdkSerializeString, which tests/common/jdk_string_test.cc holds to what Java writes).

/// PHP serialize() of a string: `s:N:"...";` (EasyWeChat 6).
std::string PhpString(const std::string& s);
/// EasyWeChat 4/5: a PHP array with access_token and expires_in.
std::string EasyWeChat4Value(const std::string& token);
/// PowerWeChat: JSON {"access_token":...,"expires_in":7200}.
std::string PowerWeChatValue(const std::string& token);
/// Senparc's AccessTokenBag as Newtonsoft writes it, AppSecret included, expiring at `expires`.
std::string SenparcBag(const std::string& token, const std::string& app_id,
                       const std::string& secret, std::time_t expires);
/// A JSON string literal (wechatpy, Spring's GenericJackson2JsonRedisSerializer).
std::string JsonStringValue(const std::string& token);
/// Kryo's writeClassAndObject of an ASCII String (Redisson's default codec): class id 1 + 2,
/// the last char | 0x80.
std::string KryoValue(const std::string& token);
/// An ISO 8601 time with a +08:00 offset, as Newtonsoft writes a DateTimeOffset in Beijing.
std::string BeijingTime(std::time_t t);

/// The application's side of a Redis: binary-safe writes of the bytes an SDK stores.
/// Not thread-safe.
class AppRedis {
 public:
  /// Throws std::runtime_error when it cannot connect (or AUTH with a non-empty password).
  explicit AppRedis(int port, const std::string& password = "");
  ~AppRedis();
  AppRedis(const AppRedis&) = delete;
  AppRedis& operator=(const AppRedis&) = delete;

  /// SET key value [EX ttl_seconds when > 0]. Throws on an error reply.
  void Set(const std::string& key, const std::string& value, int ttl_seconds = 0);
  /// HSET key field value. Throws on an error reply.
  void HSet(const std::string& key, const std::string& field, const std::string& value);
  /// EXISTS key (-1 on error).
  long long Exists(const std::string& key);

 private:
  struct Free {
    void operator()(redisContext* c) const;
  };
  std::unique_ptr<redisContext, Free> ctx_;
};

}  // namespace wxcanary::testing
