#include "source/redis_read.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "common/quote.h"
#include "common/redact.h"
#include "source/value_decoder.h"

namespace wxcanary::source {
namespace {

// Reads env.expiry_key's reply into out->expires_at. False with out's status and error set when
// it holds something that is not a time.
bool CompanionExpiry(const config::Environment& env, const config::Redis& cfg,
                     const ReplyPart& reply, TokenRead* out) {
  // No companion value: the app has not written one (yet); the key's own TTL stands.
  if (reply.type == REDIS_REPLY_NIL) return true;
  std::string text = reply.type == REDIS_REPLY_STRING ? reply.str : std::string();
  // wechatpy writes it through its JSON serializer: a number, perhaps a quoted one.
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"')
    text = text.substr(1, text.size() - 2);
  auto at = ParseExpiry(text);
  if (!at) {
    out->status = reply.type == REDIS_REPLY_ERROR ? TokenRead::Status::kRedisError
                                                  : TokenRead::Status::kUndecodable;
    out->error =
        reply.type == REDIS_REPLY_ERROR
            ? ScrubRedisMessage(cfg, "GET expiry_key " + env.expiry_key_template + ": " + reply.str)
            : "expiry_key " + Quote(env.expiry_key_template) +
                  " does not hold a time (Unix seconds or an ISO 8601 date-time)";
    return false;
  }
  out->expires_at = at;
  return true;
}

}  // namespace

ReplyPart PartOf(const redisReply* r) {
  ReplyPart p;
  if (r == nullptr) return p;
  p.type = r->type;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR)
    p.str.assign(r->str, r->len);
  if (r->type == REDIS_REPLY_INTEGER) p.integer = r->integer;
  return p;
}

std::string ScrubRedisMessage(const config::Redis& cfg, std::string message) {
  std::replace_if(
      message.begin(), message.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  // Belt and braces: servers don't echo passwords, but a proxy in between might. A password
  // shows as a fixed mark: its fingerprint would help a dictionary attack.
  message = Redact(std::move(message), cfg.password_value, "<redacted>");
  message = Redact(std::move(message), cfg.sentinel_password_value, "<redacted>");
  return message;
}

std::string ReadPrecondition(const config::Environment& env) {
  if (env.storage == config::Storage::kHash && env.hash_field.empty())
    return "storage hash needs hash_field (key " + env.key + ")";
  return "";
}

std::string ReadLabel(const config::Environment& env) {
  return (env.storage == config::Storage::kHash ? "HGET " : "GET ") + env.key;
}

std::array<ReadCommand, 3> ReadCommandViews(const config::Environment& env, bool with_companion,
                                            size_t* count) {
  // `key` is what goes to Redis; messages name env.key, its shown form (a fingerprint when
  // secret-derived).
  const std::string& key = config::RedisKey(env);
  std::array<ReadCommand, 3> cmds{};
  cmds[0] = env.storage == config::Storage::kHash ? ReadCommand{{"HGET", key, env.hash_field}, 3}
                                                  : ReadCommand{{"GET", key, {}}, 2};
  cmds[1] = ReadCommand{{"TTL", key, {}}, 2};
  *count = 2;
  if (with_companion && !env.expiry_key.empty())
    cmds[(*count)++] = ReadCommand{{"GET", env.expiry_key, {}}, 2};
  return cmds;
}

void FormatResp(const ReadCommand& cmd, std::string* out) {
  const auto append_number = [out](char type, size_t n) {
    std::array<char, 24> digits{};
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), n).ptr;
    out->push_back(type);
    out->append(digits.data(), end);
    out->append("\r\n");
  };
  out->clear();
  append_number('*', cmd.argc);
  for (size_t i = 0; i < cmd.argc; ++i) {
    append_number('$', cmd.argv[i].size());
    out->append(cmd.argv[i]);
    out->append("\r\n");
  }
}

std::vector<std::vector<std::string>> ReadCommands(const config::Environment& env,
                                                   bool with_companion) {
  size_t count = 0;
  const auto views = ReadCommandViews(env, with_companion, &count);
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(count);
  for (size_t i = 0; i < count; ++i)
    cmds.emplace_back(views[i].argv.begin(), views[i].argv.begin() + views[i].argc);
  return cmds;
}

bool IsWrongType(const ReplyPart& value) {
  return value.type == REDIS_REPLY_ERROR && value.str.rfind("WRONGTYPE", 0) == 0;
}

TokenRead InterpretRead(const config::Environment& env, const config::Redis& cfg,
                        const ReplyPart& value, const ReplyPart& ttl, const ReplyPart* expiry,
                        const std::string& found_type, SystemTime now, bool* server_up) {
  TokenRead out;
  const bool hash = env.storage == config::Storage::kHash;
  const std::string cmd = ReadLabel(env);
  // The server answered, so it is up: an error reply is about the key (WRONGTYPE, an ACL's
  // NOPERM), except the few that say the server cannot serve data at all right now, or not to
  // us (NOAUTH: the config lacks the password the server wants).
  *server_up = true;
  if (value.type == REDIS_REPLY_ERROR) {
    if (IsWrongType(value)) {
      // The target's problem, not Redis': name what is there and what the config expects.
      out.status = TokenRead::Status::kUndecodable;
      out.error = ScrubRedisMessage(
          cfg, "key " + env.key + " holds a " + (found_type.empty() ? "another type" : found_type) +
                   ", not the " + (hash ? "hash" : "string") + " that storage " +
                   std::string(config::StorageName(env.storage)) + " reads");
      return out;
    }
    for (const char* unavailable :
         {"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOAUTH"}) {
      if (value.str.rfind(unavailable, 0) == 0) *server_up = false;
    }
    out.status = TokenRead::Status::kRedisError;
    out.error = ScrubRedisMessage(cfg, cmd + ": " + value.str);
    return out;
  }
  if (ttl.type != REDIS_REPLY_INTEGER) {
    out.status = TokenRead::Status::kRedisError;
    out.error = ScrubRedisMessage(
        cfg, "TTL " + env.key + ": " +
                 (ttl.type == REDIS_REPLY_ERROR ? ttl.str : std::string("unexpected reply type")));
    return out;
  }
  out.ttl_seconds = ttl.integer;
  out.redis_ttl_seconds = ttl.integer;
  if (value.type == REDIS_REPLY_NIL) {
    out.status = TokenRead::Status::kMissing;
    out.error = hash && out.ttl_seconds != -2
                    ? "hash field " + Quote(env.hash_field) + " does not exist"
                    : "key does not exist";
    return out;
  }
  if (value.type != REDIS_REPLY_STRING) {
    out.status = TokenRead::Status::kRedisError;
    out.error = cmd + ": unexpected reply type " + std::to_string(value.type);
    return out;
  }
  if (value.str.empty()) {
    out.status = TokenRead::Status::kMissing;
    out.error = "value is empty";
    return out;
  }
  out.raw_value = Secret(value.str);
  auto decoded = DecodeValue(env, out.raw_value.Reveal(), &out.error);
  if (!decoded) {
    out.status = TokenRead::Status::kUndecodable;
    return out;
  }
  out.expires_at = decoded->expires_at;
  if (expiry != nullptr && !CompanionExpiry(env, cfg, *expiry, &out)) return out;
  if (out.ttl_seconds == -1 && out.expires_at) {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(*out.expires_at - now);
    out.ttl_seconds = std::max<int64_t>(0, left.count());
  }
  out.status = TokenRead::Status::kOk;
  out.token = Secret(std::move(decoded->token));
  return out;
}

}  // namespace wxcanary::source
