#pragma once

// Test doubles for healing: an in-memory HealStore and a scripted TokenFetcher.

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "heal/heal_store.h"
#include "heal/healer.h"
#include "support/scrape.h"
#include "telemetry/exposition.h"

namespace wxcanary::heal::testing {

/// Redis in a map: keys (or "key/field" for hash storage) to raw values, locks with expiry
/// on the given clock. Error injection per operation. Thread-safe.
class FakeHealStore final : public HealStore {
 public:
  explicit FakeHealStore(Clock& clock) : clock_(clock) {}

  struct Write {
    std::string key;
    std::string value;
    std::chrono::seconds ttl;
  };

  std::optional<int> CompareAndDelete(const config::Environment& env, const Secret& expected,
                                      std::string* error) override {
    std::lock_guard lock(mu_);
    ++cad_calls_;
    if (fail_cad_) {
      *error = "injected redis error";
      return std::nullopt;
    }
    auto it = values_.find(Slot(env));
    if (it == values_.end() || it->second != expected.Reveal()) return 0;
    values_.erase(it);
    return 1;
  }

  std::optional<int> CompareAndSet(const config::Environment& env, const Secret& expected,
                                   const Secret& value, std::chrono::seconds ttl,
                                   std::string* error) override {
    std::lock_guard lock(mu_);
    if (fail_cas_) {
      *error = "injected redis error";
      return std::nullopt;
    }
    auto it = values_.find(Slot(env));
    const bool matches = expected.empty() ? it == values_.end()
                                          : it != values_.end() && it->second == expected.Reveal();
    if (!matches) return 0;
    values_[Slot(env)] = value.Reveal();
    writes_.push_back({Slot(env), value.Reveal(), ttl});
    return 1;
  }

  std::optional<bool> TryLock(const config::Environment& env, const std::string& owner,
                              std::chrono::milliseconds ttl, std::string* error) override {
    std::lock_guard lock(mu_);
    ++lock_calls_;
    if (fail_lock_) {
      *error = "injected redis error";
      return std::nullopt;
    }
    const auto now = clock_.MonotonicNow();
    auto it = locks_.find(HealLockKey(env));
    if (it != locks_.end() && it->second.second > now) return false;
    locks_[HealLockKey(env)] = {owner, now + ttl};
    return true;
  }

  void Unlock(const config::Environment& env, const std::string& owner) override {
    std::lock_guard lock(mu_);
    auto it = locks_.find(HealLockKey(env));
    if (it != locks_.end() && it->second.first == owner) locks_.erase(it);
  }

  // Test-side controls and observations.
  void Put(const config::Environment& env, std::string raw) {
    std::lock_guard lock(mu_);
    values_[Slot(env)] = std::move(raw);
  }
  std::optional<std::string> Get(const config::Environment& env) {
    std::lock_guard lock(mu_);
    auto it = values_.find(Slot(env));
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  void HoldLock(const config::Environment& env, const std::string& owner,
                std::chrono::milliseconds ttl) {
    std::lock_guard lock(mu_);
    locks_[HealLockKey(env)] = {owner, clock_.MonotonicNow() + ttl};
  }
  std::optional<std::string> LockOwner(const config::Environment& env) {
    std::lock_guard lock(mu_);
    auto it = locks_.find(HealLockKey(env));
    if (it == locks_.end() || it->second.second <= clock_.MonotonicNow()) return std::nullopt;
    return it->second.first;
  }
  void FailCompareAndDelete(bool f) {
    std::lock_guard lock(mu_);
    fail_cad_ = f;
  }
  void FailCompareAndSet(bool f) {
    std::lock_guard lock(mu_);
    fail_cas_ = f;
  }
  void FailLock(bool f) {
    std::lock_guard lock(mu_);
    fail_lock_ = f;
  }
  int cad_calls() {
    std::lock_guard lock(mu_);
    return cad_calls_;
  }
  int lock_calls() {
    std::lock_guard lock(mu_);
    return lock_calls_;
  }
  std::vector<Write> writes() {
    std::lock_guard lock(mu_);
    return writes_;
  }

 private:
  static std::string Slot(const config::Environment& env) {
    return env.storage == config::Storage::kHash ? env.key + "/" + env.hash_field : env.key;
  }

  Clock& clock_;
  std::mutex mu_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::pair<std::string, MonotonicTime>> locks_;
  std::vector<Write> writes_;
  bool fail_cad_ = false;
  bool fail_cas_ = false;
  bool fail_lock_ = false;
  int cad_calls_ = 0;
  int lock_calls_ = 0;
};

/// Answers every Fetch with the same scripted token, or an error. Thread-safe.
class FakeFetcher final : public TokenFetcher {
 public:
  FakeFetcher(std::string token, std::chrono::seconds expires_in)
      : token_(std::move(token)), expires_in_(expires_in) {}
  std::optional<FetchedToken> FetchToken(const std::string& app_id, bool /*force_refresh*/,
                                         std::string* error,
                                         wechat::FetchFailure* /*failure*/) override {
    std::lock_guard lock(mu_);
    apps_.push_back(app_id);
    if (fail_) {
      *error = "stable_token: errcode 40125 invalid appsecret";
      return std::nullopt;
    }
    return FetchedToken{Secret(token_), expires_in_};
  }
  void Fail(bool f) {
    std::lock_guard lock(mu_);
    fail_ = f;
  }
  std::vector<std::string> apps() {
    std::lock_guard lock(mu_);
    return apps_;
  }

 private:
  std::mutex mu_;
  std::string token_;
  std::chrono::seconds expires_in_;
  bool fail_ = false;
  std::vector<std::string> apps_;
};

/// Value of one series of `exposition` whose labels include `labels`, or nullopt when none
/// does. For histograms, the sample count (and `sum` gets the sample sum).
inline std::optional<double> MetricValue(const telemetry::Exposition& exposition,
                                         const std::string& name,
                                         const std::map<std::string, std::string>& labels,
                                         double* sum = nullptr) {
  const wxcanary::testing::Scrape scrape(exposition.Serialize());
  if (auto count = scrape.Value(name + "_count", labels)) {
    if (sum != nullptr) *sum = scrape.Value(name + "_sum", labels).value_or(-1);
    return count;
  }
  return scrape.Value(name, labels);
}

/// Sum of the counters of a family whose labels include all of `subset`: one scrape for a
/// whole table of series.
inline double CounterSum(const telemetry::Exposition& exposition, const std::string& name,
                         const std::map<std::string, std::string>& subset) {
  return wxcanary::testing::Scrape(exposition.Serialize()).Sum(name, subset);
}

/// Number of series of a family (a histogram counts once).
inline size_t SeriesCount(const telemetry::Exposition& exposition, const std::string& name) {
  const wxcanary::testing::Scrape scrape(exposition.Serialize());
  return scrape.Count(name) + scrape.Count(name + "_count");
}

}  // namespace wxcanary::heal::testing
