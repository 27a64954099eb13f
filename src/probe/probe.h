#pragma once

#include <chrono>
#include <optional>

#include "common/clock.h"
#include "common/fingerprint.h"
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

/// The probe's steps apart from how their I/O is done, shared by RunProbe (blocking) and the
/// runner's event loop. AfterRead fills `r` from the Redis read (`elapsed` since the probe
/// began) and returns the time left for the call, or nullopt when the probe ends there: no
/// token, or too little of the timeout left. `memo`, when given, is the target's own: the
/// token's fingerprint is computed only when the token changed since its last probe.
std::optional<std::chrono::milliseconds> AfterRead(const Target& target, source::TokenRead read,
                                                   std::chrono::nanoseconds elapsed, ProbeResult* r,
                                                   FingerprintMemo* memo = nullptr);
/// Classifies the call's answer into `r` (which holds the token AfterRead found). Pure.
void AfterCall(const Target& target, const wechat::HttpResponse& response, ProbeResult* r);

}  // namespace wxcanary::probe
