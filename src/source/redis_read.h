#pragma once

#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "source/redis_connection.h"

struct redisReply;

namespace wxcanary::source {

// One token read, apart from how its commands travel: what to send and what the answers mean.
// RedisConnection (blocking, with Sentinel and Cluster routing) and AsyncRedis (the probe
// engine's event loop) both read through these, so the two say the same thing about one key.

/// The wait before a reconnect after a failed connect: 100 ms, doubling to 5 s.
inline constexpr std::chrono::milliseconds kFirstBackoff{100};
inline constexpr std::chrono::milliseconds kMaxBackoff{5000};

/// One reply's scalar part, copied out of hiredis (an async reply is freed when its callback
/// returns).
struct ReplyPart {
  int type = 0;     // REDIS_REPLY_*
  std::string str;  // a string, status or error reply
  long long integer = 0;
};
/// Copies `r` (null: a part of type 0, which no interpretation takes for an answer).
ReplyPart PartOf(const redisReply* r);

/// Why `env` cannot be read at all ("storage hash needs hash_field ..."), or "".
std::string ReadPrecondition(const config::Environment& env);
/// "GET <key>" / "HGET <key>": how a read's errors name it (env.key's shown form, never the
/// secret-derived key).
std::string ReadLabel(const config::Environment& env);
/// argv as hiredis takes it: binary-safe (keys may be JDK-serialized bytes). Views into `argv`.
struct Argv {
  explicit Argv(const std::vector<std::string>& argv) {
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
};

/// One command of a read, as views into `env` and string literals (no allocation): at most 3
/// arguments.
struct ReadCommand {
  std::array<std::string_view, 3> argv{};
  size_t argc = 0;
};
/// The value, its TTL and, when `with_companion`, env.expiry_key: one pipelined round trip.
/// `*count` of them are set. The views live as long as `env`.
std::array<ReadCommand, 3> ReadCommandViews(const config::Environment& env, bool with_companion,
                                            size_t* count);
/// `cmd` in Redis' protocol (RESP: "*<argc>\r\n" then "$<len>\r\n<arg>\r\n" per argument), as
/// hiredis' redisAsyncFormattedCommand takes it, into `out` (replaced, its capacity reused).
void FormatResp(const ReadCommand& cmd, std::string* out);
/// ReadCommandViews as owned strings, for a caller that keeps them.
std::vector<std::vector<std::string>> ReadCommands(const config::Environment& env,
                                                   bool with_companion);
/// True when the value's reply says the key holds another type: the reader asks TYPE (one more
/// round trip) to say which, and passes the answer to InterpretRead.
bool IsWrongType(const ReplyPart& value);

/// What the replies to ReadCommands say. `found_type` is TYPE's answer after a WRONGTYPE ("" when
/// unknown); `expiry` is null without env.expiry_key. `*server_up` is set false for the error
/// replies that mean the server cannot serve data now (LOADING, MASTERDOWN, NOAUTH, ...), true
/// otherwise: any other answer means the server is up and one key is wrong.
TokenRead InterpretRead(const config::Environment& env, const config::Redis& cfg,
                        const ReplyPart& value, const ReplyPart& ttl, const ReplyPart* expiry,
                        const std::string& found_type, SystemTime now, bool* server_up);

/// `message` on one line with the Redis and Sentinel passwords masked: every Redis error line
/// goes through it.
std::string ScrubRedisMessage(const config::Redis& cfg, std::string message);

}  // namespace wxcanary::source
