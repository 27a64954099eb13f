#include "telemetry/probe_metrics.h"

#include "telemetry/probe_log.h"

#include <prometheus/check_names.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>

#include "common/boxed.h"

namespace wxcanary::telemetry {

namespace {

constexpr size_t kOtherErrcode = kKnownErrcodes.size();

size_t ErrcodeSlot(int code) {
  for (size_t i = 0; i < kKnownErrcodes.size(); ++i)
    if (kKnownErrcodes[i] == code) return i;
  return kOtherErrcode;
}

double Seconds(SystemTime t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

// Probes take from a millisecond (local wxsim) to the 10 s timeout ceiling.
constexpr std::array<double, 13> kDurationBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,  0.5,    1,     2.5,  5,     10};

template <typename T>
prometheus::Family<T>& Build(prometheus::detail::Builder<T> builder, const std::string& name,
                             const std::string& help, prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Register(registry);
}

template <typename T>
double Load(const std::atomic<T>& v) {
  return static_cast<double>(v.load(std::memory_order_relaxed));
}

void Store(std::atomic<double>& v, double x) { v.store(x, std::memory_order_relaxed); }

}  // namespace

std::string ErrcodeLabel(int code) {
  return ErrcodeSlot(code) == kOtherErrcode ? std::string("other") : std::to_string(code);
}

// One target's values: ~0.5 KB, against ~25 label maps (two copies each) in prometheus-cpp.
struct ProbeMetrics::Series {
  std::string app_id;   // checked against an index from another config generation
  std::string app_env;  // (the rendered labels are the key of by_labels_)
  std::array<std::atomic<uint64_t>, kAllOutcomes.size()> outcomes{};
  std::array<std::atomic<uint64_t>, kKnownErrcodes.size() + 1> errcodes{};
  std::atomic<uint32_t> errcodes_seen{0};  // bit per slot: a code's series exists from first sight
  std::array<std::atomic<uint64_t>, kDurationBounds.size() + 1> duration{};
  std::atomic<double> duration_sum{0};
  std::atomic<double> last_success{0};
  std::atomic<double> last_run{0};
  std::atomic<double> interval{0};
  std::atomic<bool> token_known{false};  // Redis has answered once
  std::atomic<double> token_present{0};
  std::atomic<double> token_ttl{0};

  // The last probe's details, for Snapshot(). Written by the one worker probing this target,
  // read by the status page: a lock nobody else waits for. Strings keep their capacity, so an
  // ok probe after an ok probe allocates nothing here.
  mutable std::mutex last_mu;
  std::optional<Outcome> last_outcome;
  std::optional<int> last_errcode;
  std::string last_errmsg;
  // The last probe's rid and failure detail: empty for a healthy target, so on the heap from the
  // first that is not (~56 bytes less per target, issue 19). Kept once made: its strings keep
  // their capacity too.
  struct Extra {
    std::string rid;
    std::string detail;
  };
  Boxed<Extra> last_extra;
  std::string fingerprint;
  std::optional<SystemTime> failing_since;
};

ProbeMetrics::ProbeMetrics(Exposition& exposition, Clock& clock)
    : exposition_(exposition), clock_(clock) {
  exposition_.Add(*this);
}

ProbeMetrics::~ProbeMetrics() { exposition_.Remove(*this); }

prometheus::Labels ProbeMetrics::LabelsFor(const Target& target) {
  prometheus::Labels labels{{"app_id", target.app_id}, {"app_env", target.app_env}};
  for (const auto& [k, v] : target.env.labels) {
    // Config validates names; skipping here keeps a bad one from throwing inside a reload.
    if (!prometheus::CheckLabelName(k)) continue;
    labels.emplace(k, v);  // never overrides app_id / app_env
  }
  return labels;
}

void ProbeMetrics::Place(const Target& t, const SeriesMap& previous,
                         std::vector<std::shared_ptr<Series>>& by_index, SeriesMap& by_labels) {
  auto labels =
      t.env.labels.empty() ? RenderTargetLabels(t.app_id, t.app_env) : RenderLabels(LabelsFor(t));
  auto it = by_labels.find(labels);
  if (it == by_labels.end()) {
    // The same target across a reload keeps its series: counters keep counting.
    auto old = previous.find(labels);
    std::shared_ptr<Series> series;
    if (old != previous.end()) {
      series = old->second;
    } else {
      series = std::make_shared<Series>();
      series->app_id = t.app_id;
      series->app_env = t.app_env;
    }
    it = by_labels.emplace(std::move(labels), std::move(series)).first;
  }
  Store(it->second->interval, std::chrono::duration<double>(t.env.interval).count());
  if (t.index >= by_index.size()) by_index.resize(t.index + 1);
  by_index[t.index] = it->second;
}

void ProbeMetrics::SetTargets(const TargetList& targets) {
  std::unique_lock lock(mu_);
  std::vector<std::shared_ptr<Series>> by_index(targets.size());
  SeriesMap by_labels;
  for (const auto& t : targets) Place(t, by_labels_, by_index, by_labels);
  by_index_ = std::move(by_index);
  by_labels_ = std::move(by_labels);  // the targets not in it are gone, and so are their series
}

ProbeMetrics::Series* ProbeMetrics::Find(const Target& target) const {
  if (target.index >= by_index_.size()) return nullptr;
  Series* s = by_index_[target.index].get();
  // An index from another config generation must not land on someone else's series.
  if (s == nullptr || s->app_id != target.app_id || s->app_env != target.app_env) return nullptr;
  return s;
}

void ProbeMetrics::Record(const Target& target, const ProbeResult& result) {
  std::shared_lock lock(mu_);
  Series* s = Find(target);
  if (s == nullptr) {
    // Not announced through SetTargets: add it (slow path, once) rather than lose the probe.
    lock.unlock();
    {
      std::unique_lock write(mu_);
      if (Find(target) == nullptr) Place(target, by_labels_, by_index_, by_labels_);
    }
    lock.lock();
    s = Find(target);
    if (s == nullptr) return;
  }

  s->outcomes[static_cast<size_t>(result.outcome)].fetch_add(1, std::memory_order_relaxed);

  if (result.errcode) {
    const size_t slot = ErrcodeSlot(*result.errcode);
    s->errcodes[slot].fetch_add(1, std::memory_order_relaxed);
    // Set once per code: a plain load on every later probe, not a locked read-modify-write.
    const uint32_t bit = 1u << slot;
    if ((s->errcodes_seen.load(std::memory_order_relaxed) & bit) == 0)
      s->errcodes_seen.fetch_or(bit, std::memory_order_release);
  }

  const double seconds = std::chrono::duration<double>(result.duration).count();
  s->duration_sum.fetch_add(seconds, std::memory_order_relaxed);
  s->duration[BucketOf(kDurationBounds, seconds)].fetch_add(1, std::memory_order_relaxed);

  const SystemTime wall = clock_.SystemNow();
  const double now = Seconds(wall);
  {
    std::lock_guard last(s->last_mu);
    const bool ok = result.outcome == Outcome::kOk;
    if (ok) {
      s->failing_since.reset();
    } else if (!s->failing_since) {
      s->failing_since = wall;
    }
    s->last_outcome = result.outcome;
    s->last_errcode = result.errcode;
    if (ok) {
      s->last_errmsg = result.errmsg;
    } else {
      s->last_errmsg = ScrubProbeText(result.errmsg, result);
    }
    std::string detail = ok ? std::string() : ScrubProbeText(result.detail, result);
    if (!result.rid.empty() || !detail.empty() || s->last_extra) {
      if (!s->last_extra) s->last_extra = Series::Extra{};
      s->last_extra->rid = result.rid;
      if (ok) {
        s->last_extra->detail.clear();
      } else {
        s->last_extra->detail = std::move(detail);
      }
    }
    // Without an answer from Redis the token is the one seen last.
    if (result.outcome != Outcome::kRedisError)
      s->fingerprint = result.token_present ? result.fingerprint : std::string();
  }
  Store(s->last_run, now);
  if (result.outcome == Outcome::kOk) Store(s->last_success, now);

  // Without an answer from Redis we know nothing new about the key: keep the last values.
  if (result.outcome != Outcome::kRedisError) {
    Store(s->token_present, result.token_present ? 1 : 0);
    Store(s->token_ttl, static_cast<double>(result.ttl_seconds));
    s->token_known.store(true, std::memory_order_release);
  }
}

std::vector<ProbeMetrics::TargetSnapshot> ProbeMetrics::Snapshot() const {
  std::shared_lock lock(mu_);
  std::vector<TargetSnapshot> out;
  out.reserve(by_labels_.size());
  auto time_of = [](const std::atomic<double>& v) -> std::optional<SystemTime> {
    const double t = v.load(std::memory_order_relaxed);
    if (t <= 0) return std::nullopt;
    return SystemTime{
        std::chrono::duration_cast<SystemTime::duration>(std::chrono::duration<double>(t))};
  };
  for (const auto& [labels, s] : by_labels_) {
    TargetSnapshot t;
    t.app_id = s->app_id;
    t.app_env = s->app_env;
    for (const auto& n : s->outcomes) t.probes += n.load(std::memory_order_relaxed);
    t.token_known = s->token_known.load(std::memory_order_acquire);
    t.token_present = Load(s->token_present) != 0;
    t.ttl_seconds = static_cast<int64_t>(Load(s->token_ttl));
    t.last_run = time_of(s->last_run);
    t.last_success = time_of(s->last_success);
    {
      std::lock_guard last(s->last_mu);
      t.last_outcome = s->last_outcome;
      t.last_errcode = s->last_errcode;
      t.last_errmsg = s->last_errmsg;
      if (s->last_extra) {
        t.last_rid = s->last_extra->rid;
        t.last_detail = s->last_extra->detail;
      }
      t.fingerprint = s->fingerprint;
      t.failing_since = s->failing_since;
    }
    out.push_back(std::move(t));
  }
  return out;
}

void ProbeMetrics::AppendText(TextWriter& out) const {
  std::shared_lock lock(mu_);
  // A family's samples must be contiguous: one pass over the targets per family.
  auto each = [&](auto&& write) {
    for (const auto& [labels, s] : by_labels_) write(labels, *s);
  };

  out.Header("wxcanary_probes_total", "counter", "Probes by outcome.");
  each([&](const std::string& labels, const Series& s) {
    for (Outcome o : kAllOutcomes)
      out.Sample("wxcanary_probes_total", labels, {{"outcome", OutcomeName(o)}},
                 Load(s.outcomes[static_cast<size_t>(o)]));
  });

  out.Header("wxcanary_probe_errcode_total", "counter",
             "Probes by raw WeChat errcode (unknown codes fold into \"other\").");
  each([&](const std::string& labels, const Series& s) {
    const uint32_t seen = s.errcodes_seen.load(std::memory_order_acquire);
    for (size_t slot = 0; slot <= kOtherErrcode; ++slot) {
      if ((seen & (1u << slot)) == 0) continue;
      const std::string code =
          slot == kOtherErrcode ? std::string("other") : std::to_string(kKnownErrcodes[slot]);
      out.Sample("wxcanary_probe_errcode_total", labels, {{"errcode", code}},
                 Load(s.errcodes[slot]));
    }
  });

  out.Header("wxcanary_probe_duration_seconds", "histogram",
             "Probe duration: Redis read plus API call.");
  each([&](const std::string& labels, const Series& s) {
    std::array<uint64_t, kDurationBounds.size() + 1> counts;
    for (size_t i = 0; i < counts.size(); ++i)
      counts[i] = s.duration[i].load(std::memory_order_relaxed);
    out.Histogram("wxcanary_probe_duration_seconds", labels, kDurationBounds, counts,
                  Load(s.duration_sum));
  });

  auto gauge = [&](std::string_view name, std::string_view help, std::atomic<double> Series::*value,
                   bool only_when_token_known) {
    out.Header(name, "gauge", help);
    each([&](const std::string& labels, const Series& s) {
      if (only_when_token_known && !s.token_known.load(std::memory_order_acquire)) return;
      out.Sample(name, labels, Load(s.*value));
    });
  };
  gauge("wxcanary_probe_last_success_timestamp_seconds",
        "Unix time of the last ok probe (0: none yet).", &Series::last_success, false);
  gauge("wxcanary_probe_last_run_timestamp_seconds",
        "Unix time of the last probe, any outcome (0: none yet).", &Series::last_run, false);
  gauge("wxcanary_probe_interval_seconds", "Configured probe interval.", &Series::interval, false);
  gauge("wxcanary_token_present", "1 when Redis held a usable token at the last probe.",
        &Series::token_present, true);
  gauge("wxcanary_token_ttl_seconds",
        "Redis TTL of the token key at the last probe (-1 no expiry, -2 no key).",
        &Series::token_ttl, true);
}

DaemonMetrics::DaemonMetrics(prometheus::Registry& registry, Clock& clock, std::string_view version,
                             std::string_view revision)
    : clock_(clock),
      reload_ok_(Build(prometheus::BuildGauge(), "wxcanary_config_last_reload_successful",
                       "1 when the last config (re)load succeeded.", registry)
                     .Add({})),
      reload_ts_(Build(prometheus::BuildGauge(),
                       "wxcanary_config_last_reload_success_timestamp_seconds",
                       "Unix time of the last successful config (re)load.", registry)
                     .Add({})),
      redis_up_(Build(prometheus::BuildGauge(), "wxcanary_redis_up",
                      "1 when the last command on this Redis connection succeeded.", registry)) {
  Build(prometheus::BuildGauge(), "wxcanary_build_info",
        "Always 1; the labels carry the version and git revision.", registry)
      .Add({{"version", std::string(version)}, {"revision", std::string(revision)}})
      .Set(1);
}

void DaemonMetrics::ConfigLoaded(bool success) {
  reload_ok_.Set(success ? 1 : 0);
  if (success) reload_ts_.Set(Seconds(clock_.SystemNow()));
}

void DaemonMetrics::SetRedisUp(std::string_view name, bool up) {
  std::lock_guard lock(mu_);
  auto it = redis_.find(name);
  if (it == redis_.end()) {
    it = redis_.emplace(std::string(name), &redis_up_.Add({{"redis", std::string(name)}})).first;
  }
  it->second->Set(up ? 1 : 0);
}

void DaemonMetrics::RetainRedis(const std::vector<std::string>& names) {
  std::lock_guard lock(mu_);
  for (auto it = redis_.begin(); it != redis_.end();) {
    if (std::find(names.begin(), names.end(), it->first) == names.end()) {
      redis_up_.Remove(it->second);
      it = redis_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace wxcanary::telemetry
