#include "support/sdk_values.h"

#include <hiredis/hiredis.h>

#include <stdexcept>
#include <vector>

namespace wxcanary::testing {

std::string PhpString(const std::string& s) {
  return "s:" + std::to_string(s.size()) + ":\"" + s + "\";";
}

std::string EasyWeChat4Value(const std::string& token) {
  return "a:2:{s:12:\"access_token\";" + PhpString(token) + "s:10:\"expires_in\";i:7200;}";
}

std::string PowerWeChatValue(const std::string& token) {
  return R"({"access_token":")" + token + R"(","expires_in":7200})";
}

std::string SenparcBag(const std::string& token, const std::string& app_id,
                       const std::string& secret, std::time_t expires) {
  return R"({"Name":"","AppId":")" + app_id + R"(","AppSecret":")" + secret +
         R"(","AccessTokenExpireTime":")" + BeijingTime(expires) +
         R"(","AccessTokenResult":{"access_token":")" + token +
         R"(","expires_in":7200,"errcode":0,"errmsg":""}})";
}

std::string JsonStringValue(const std::string& token) { return "\"" + token + "\""; }

std::string KryoValue(const std::string& token) {
  std::string kryo = "\x03" + token;
  kryo.back() = static_cast<char>(kryo.back() | 0x80);
  return kryo;
}

std::string BeijingTime(std::time_t t) {
  std::time_t local = t + 8 * 3600;
  std::tm tm{};
  gmtime_r(&local, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.1234567+08:00", &tm);
  return buf;
}

void AppRedis::Free::operator()(redisContext* c) const { redisFree(c); }

namespace {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

// One command, binary-safe; throws on an I/O error or an error reply.
void Run(redisContext* ctx, const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  std::unique_ptr<redisReply, ReplyFree> r(static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
  if (!r) throw std::runtime_error("app redis: " + argv[0] + ": " + ctx->errstr);
  if (r->type == REDIS_REPLY_ERROR)
    throw std::runtime_error("app redis: " + argv[0] + ": " + std::string(r->str, r->len));
}

}  // namespace

AppRedis::AppRedis(int port, const std::string& password) : ctx_(redisConnect("127.0.0.1", port)) {
  if (!ctx_ || ctx_->err) throw std::runtime_error("app redis: cannot connect");
  if (!password.empty()) Run(ctx_.get(), {"AUTH", password});
}

AppRedis::~AppRedis() = default;

void AppRedis::Set(const std::string& key, const std::string& value, int ttl_seconds) {
  if (ttl_seconds > 0) Run(ctx_.get(), {"SET", key, value, "EX", std::to_string(ttl_seconds)});
  else Run(ctx_.get(), {"SET", key, value});
}

void AppRedis::HSet(const std::string& key, const std::string& field, const std::string& value) {
  Run(ctx_.get(), {"HSET", key, field, value});
}

long long AppRedis::Exists(const std::string& key) {
  std::vector<const char*> ptrs = {"EXISTS", key.data()};
  std::vector<size_t> lens = {6, key.size()};
  std::unique_ptr<redisReply, ReplyFree> r(
      static_cast<redisReply*>(redisCommandArgv(ctx_.get(), 2, ptrs.data(), lens.data())));
  return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

}  // namespace wxcanary::testing
