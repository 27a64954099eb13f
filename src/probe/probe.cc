#include "probe/probe.h"

#include <string>

namespace wxcanary::probe {

std::optional<std::chrono::milliseconds> AfterRead(const Target& target, source::TokenRead read,
                                                   std::chrono::nanoseconds elapsed_ns,
                                                   ProbeResult* r, FingerprintMemo* memo) {
  r->ttl_seconds = read.ttl_seconds;
  r->expires_at = read.expires_at;
  switch (read.status) {
    case source::TokenRead::Status::kRedisError:
      r->outcome = Outcome::kRedisError;
      r->detail = std::move(read.error);
      return std::nullopt;
    case source::TokenRead::Status::kMissing:
      r->outcome = Outcome::kTokenMissing;
      r->detail = read.error.empty() ? "no token at key" : std::move(read.error);  // the reason
      return std::nullopt;
    case source::TokenRead::Status::kUndecodable:
      r->outcome = Outcome::kTokenMissing;
      r->raw_value = std::move(read.raw_value);
      r->detail = std::move(read.error);
      return std::nullopt;
    case source::TokenRead::Status::kOk: break;
  }
  r->token_present = true;
  r->token = std::move(read.token);
  r->raw_value = std::move(read.raw_value);
  r->fingerprint = memo != nullptr ? memo->Of(r->token.Reveal()) : r->token.Fingerprint();

  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed_ns);
  const auto remaining = target.env.timeout - elapsed;
  if (remaining < kMinCallBudget) {
    // The read used (nearly) the whole budget: a stalled Redis or process. A call with no time
    // left could only fail as curl's "Connection timed out after 0 milliseconds", which blames
    // the API; say where the time went instead, and do not send it.
    r->outcome = Outcome::kTransportError;
    r->detail = "probe timeout " + std::to_string(target.env.timeout.count()) +
                " ms used up before the call: the Redis read took " +
                std::to_string(elapsed.count()) + " ms";
    return std::nullopt;
  }
  return remaining;
}

void AfterCall(const Target& target, const wechat::HttpResponse& response, ProbeResult* r) {
  wechat::Classification c = wechat::Classify(target.env.probe, response, r->token);
  if (response.transport_ok) r->http_status = response.http_status;
  r->outcome = c.outcome;
  r->errcode = c.errcode;
  r->errmsg = std::move(c.errmsg);
  r->rid = std::move(c.rid);
  r->content_flagged = c.content_flagged;
  r->detail = std::move(c.detail);
}

ProbeResult RunProbe(const Target& target, source::RedisConnection& redis, wechat::Client& client,
                     Clock& clock) {
  ProbeResult r;
  r.started = clock.SystemNow();
  const auto t0 = clock.MonotonicNow();
  auto budget = AfterRead(target, redis.Read(target.env), clock.MonotonicNow() - t0, &r);
  if (budget)
    AfterCall(target, client.Probe(config::ProbeCallOf(target.env), r.token, *budget), &r);
  r.duration = clock.MonotonicNow() - t0;
  return r;
}

}  // namespace wxcanary::probe
