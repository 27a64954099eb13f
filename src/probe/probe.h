#pragma once

#include "common/clock.h"
#include "probe/result_sink.h"
#include "source/redis_connection.h"
#include "wechat/client.h"

namespace wxcanary::probe {

/// Less time than this left after the Redis read: the call is not sent (it could not finish).
inline constexpr std::chrono::milliseconds kMinCallBudget{10};

/// One canary probe of `target`: read the token and its TTL from Redis (fresh every time: the
/// daemon never caches a token), send the configured call with it, classify the answer.
/// Never throws; every failure becomes an outcome. The whole probe is bounded by
/// target.env.timeout. Thread-compatible: callers give each thread its own connection/client.
ProbeResult RunProbe(const Target& target, source::RedisConnection& redis, wechat::Client& client,
                     Clock& clock);

}  // namespace wxcanary::probe
