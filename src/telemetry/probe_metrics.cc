#include "telemetry/probe_metrics.h"

#include <prometheus/check_names.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

namespace wxcanary::telemetry {

namespace {

constexpr size_t kOtherErrcode = kKnownErrcodes.size();

size_t ErrcodeSlot(int code) {
  for (size_t i = 0; i < kKnownErrcodes.size(); ++i)
    if (kKnownErrcodes[i] == code) return i;
  return kOtherErrcode;
}

double Seconds(SystemTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Probes take from a millisecond (local wxsim) to the 10 s timeout ceiling.
const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}

template <typename T>
prometheus::Family<T>& Build(prometheus::detail::Builder<T> builder, const std::string& name,
                             const std::string& help, prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Register(registry);
}

}  // namespace

std::string ErrcodeLabel(int code) {
  return ErrcodeSlot(code) == kOtherErrcode ? std::string("other") : std::to_string(code);
}

struct ProbeMetrics::Series {
  prometheus::Labels labels;
  std::array<prometheus::Counter*, kAllOutcomes.size()> outcomes{};
  // Created on first sight of the code; Record() is never concurrent for one target, the
  // atomics only make a racing scrape-free read by a later generation well-defined.
  std::array<std::atomic<prometheus::Counter*>, kKnownErrcodes.size() + 1> errcodes{};
  prometheus::Histogram* duration = nullptr;
  prometheus::Gauge* last_success = nullptr;
  prometheus::Gauge* last_run = nullptr;
  prometheus::Gauge* interval = nullptr;
  std::atomic<prometheus::Gauge*> token_present{nullptr};
  std::atomic<prometheus::Gauge*> token_ttl{nullptr};
};

ProbeMetrics::ProbeMetrics(prometheus::Registry& registry, Clock& clock)
    : clock_(clock),
      probes_(Build(prometheus::BuildCounter(), "wxcanary_probes_total",
                    "Probes by outcome.", registry)),
      errcodes_(Build(prometheus::BuildCounter(), "wxcanary_probe_errcode_total",
                      "Probes by raw WeChat errcode (unknown codes fold into \"other\").",
                      registry)),
      duration_(Build(prometheus::BuildHistogram(), "wxcanary_probe_duration_seconds",
                      "Probe duration: Redis read plus API call.", registry)),
      last_success_(Build(prometheus::BuildGauge(),
                          "wxcanary_probe_last_success_timestamp_seconds",
                          "Unix time of the last ok probe (0: none yet).", registry)),
      last_run_(Build(prometheus::BuildGauge(), "wxcanary_probe_last_run_timestamp_seconds",
                      "Unix time of the last probe, any outcome (0: none yet).", registry)),
      interval_(Build(prometheus::BuildGauge(), "wxcanary_probe_interval_seconds",
                      "Configured probe interval.", registry)),
      token_present_(Build(prometheus::BuildGauge(), "wxcanary_token_present",
                           "1 when Redis held a usable token at the last probe.", registry)),
      token_ttl_(Build(prometheus::BuildGauge(), "wxcanary_token_ttl_seconds",
                       "Redis TTL of the token key at the last probe (-1 no expiry, -2 no key).",
                       registry)) {}

ProbeMetrics::~ProbeMetrics() = default;

prometheus::Labels ProbeMetrics::LabelsFor(const Target& target) {
  prometheus::Labels labels{{"app_id", target.app_id}, {"app_env", target.app_env}};
  for (const auto& [k, v] : target.env.labels) {
    // Config validates names; skipping here keeps a bad one from throwing inside a reload.
    if (!prometheus::CheckLabelName(k)) continue;
    labels.emplace(k, v);  // never overrides app_id / app_env
  }
  return labels;
}

std::shared_ptr<ProbeMetrics::Series> ProbeMetrics::CreateSeries(const prometheus::Labels& labels) {
  auto s = std::make_shared<Series>();
  s->labels = labels;
  for (Outcome o : kAllOutcomes) {
    auto with = labels;
    with["outcome"] = std::string(OutcomeName(o));
    s->outcomes[static_cast<size_t>(o)] = &probes_.Add(with);
  }
  s->duration = &duration_.Add(labels, DurationBuckets());
  s->last_success = &last_success_.Add(labels);
  s->last_run = &last_run_.Add(labels);
  s->interval = &interval_.Add(labels);
  return s;
}

void ProbeMetrics::RemoveSeries(Series& s) {
  for (auto* c : s.outcomes) probes_.Remove(c);
  for (auto& slot : s.errcodes)
    if (auto* c = slot.load()) errcodes_.Remove(c);
  duration_.Remove(s.duration);
  last_success_.Remove(s.last_success);
  last_run_.Remove(s.last_run);
  interval_.Remove(s.interval);
  if (auto* g = s.token_present.load()) token_present_.Remove(g);
  if (auto* g = s.token_ttl.load()) token_ttl_.Remove(g);
}

void ProbeMetrics::SetTargets(const std::vector<Target>& targets) {
  std::unique_lock lock(mu_);
  std::vector<std::shared_ptr<Series>> by_index(targets.size());
  std::map<prometheus::Labels, std::shared_ptr<Series>> by_labels;
  for (const auto& t : targets) {
    auto labels = LabelsFor(t);
    std::shared_ptr<Series> s;
    if (auto it = by_labels.find(labels); it != by_labels.end()) {
      s = it->second;
    } else if (auto old = by_labels_.find(labels); old != by_labels_.end()) {
      s = old->second;  // same target across a reload: counters keep counting
    } else {
      s = CreateSeries(labels);
    }
    s->interval->Set(std::chrono::duration<double>(t.env.interval).count());
    by_labels[labels] = s;
    if (t.index >= by_index.size()) by_index.resize(t.index + 1);
    by_index[t.index] = s;
  }
  for (auto& [labels, s] : by_labels_)
    if (!by_labels.contains(labels)) RemoveSeries(*s);
  by_index_ = std::move(by_index);
  by_labels_ = std::move(by_labels);
}

ProbeMetrics::Series* ProbeMetrics::Find(const Target& target) const {
  if (target.index >= by_index_.size()) return nullptr;
  Series* s = by_index_[target.index].get();
  if (s == nullptr) return nullptr;
  // An index from another config generation must not land on someone else's series.
  auto id = s->labels.find("app_id");
  auto env = s->labels.find("app_env");
  if (id->second != target.app_id || env->second != target.app_env) return nullptr;
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
      if (Find(target) == nullptr) {
        auto labels = LabelsFor(target);
        auto it = by_labels_.find(labels);
        auto series = it != by_labels_.end() ? it->second : CreateSeries(labels);
        series->interval->Set(std::chrono::duration<double>(target.env.interval).count());
        by_labels_[labels] = series;
        if (target.index >= by_index_.size()) by_index_.resize(target.index + 1);
        by_index_[target.index] = series;
      }
    }
    lock.lock();
    s = Find(target);
    if (s == nullptr) return;
  }

  s->outcomes[static_cast<size_t>(result.outcome)]->Increment();

  if (result.errcode) {
    size_t slot = ErrcodeSlot(*result.errcode);
    prometheus::Counter* c = s->errcodes[slot].load(std::memory_order_acquire);
    if (c == nullptr) {
      auto with = s->labels;
      with["errcode"] = ErrcodeLabel(*result.errcode);
      c = &errcodes_.Add(with);
      s->errcodes[slot].store(c, std::memory_order_release);
    }
    c->Increment();
  }

  s->duration->Observe(std::chrono::duration<double>(result.duration).count());
  const double now = Seconds(clock_.SystemNow());
  s->last_run->Set(now);
  if (result.outcome == Outcome::kOk) s->last_success->Set(now);

  // Without an answer from Redis we know nothing new about the key: keep the last values.
  if (result.outcome != Outcome::kRedisError) {
    prometheus::Gauge* present = s->token_present.load(std::memory_order_acquire);
    if (present == nullptr) {
      present = &token_present_.Add(s->labels);
      s->token_present.store(present, std::memory_order_release);
    }
    present->Set(result.token_present ? 1 : 0);
    prometheus::Gauge* ttl = s->token_ttl.load(std::memory_order_acquire);
    if (ttl == nullptr) {
      ttl = &token_ttl_.Add(s->labels);
      s->token_ttl.store(ttl, std::memory_order_release);
    }
    ttl->Set(static_cast<double>(result.ttl_seconds));
  }
}

DaemonMetrics::DaemonMetrics(prometheus::Registry& registry, Clock& clock,
                             std::string_view version, std::string_view revision)
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

std::string Serialize(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace wxcanary::telemetry
