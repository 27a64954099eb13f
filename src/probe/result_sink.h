#pragma once

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/outcome.h"
#include "common/secret.h"
#include "config/config.h"

namespace wxcanary {

/// One (app_id, app_env) pair being watched. Immutable once the scheduler owns it.
struct Target {
  std::string app_id;
  std::string app_env;
  config::Environment env;  // copy: a reload swaps whole target sets
  size_t index = 0;         // unique within a target set; the runner keeps it across reloads
};

/// What one probe of one target found. Tokens appear only as the Secret/fingerprint.
struct ProbeResult {
  Outcome outcome = Outcome::kOk;
  SystemTime started{};
  std::chrono::nanoseconds duration{0};

  // From Redis.
  bool token_present = false;
  Secret token;              // the token sent to the API (never logged)
  Secret raw_value;          // the stored value it was decoded from (for compare-and-delete)
  std::string fingerprint;   // Fingerprint(token), "" when absent
  int64_t ttl_seconds = -2;  // Redis TTL: -2 no key, -1 no expiry
  /// When the token expires by what the app stored with it (env.expiry_path / expiry_key);
  /// nullopt when not configured. Tells a 40014 of old age from one of a conflict.
  std::optional<SystemTime> expires_at;

  // From the API.
  long http_status = 0;        // 0 when no HTTP answer arrived (or no call was sent)
  std::optional<int> errcode;  // absent when the call did not return WeChat JSON
  std::string errmsg;          // rid and any token removed
  std::string rid;             // parsed out of errmsg, "" when none
  bool content_flagged =
      false;  // 87014 / v2 suggest=risky: the token worked, the canary text didn't

  std::string detail;  // free-form context for failures (curl error, Redis error, parse error)
};

/// The target set a reload hands to every sink: references to targets the caller keeps alive
/// (and unchanged) for the call, in order. The runner gives its own targets this way instead of a
/// copy of each (~600 bytes a target, twice the set during a reload, issue 19); a whole
/// std::vector<Target> converts to one.
class TargetList {
 public:
  class Iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = Target;
    using difference_type = std::ptrdiff_t;
    using pointer = const Target*;
    using reference = const Target&;
    Iterator() = default;
    explicit Iterator(const Target* const* p) : p_(p) {}
    reference operator*() const { return **p_; }
    pointer operator->() const { return *p_; }
    Iterator& operator++() {
      ++p_;
      return *this;
    }
    Iterator operator++(int) { return Iterator(p_++); }
    Iterator& operator--() {
      --p_;
      return *this;
    }
    Iterator operator--(int) { return Iterator(p_--); }
    Iterator& operator+=(difference_type n) {
      p_ += n;
      return *this;
    }
    Iterator& operator-=(difference_type n) {
      p_ -= n;
      return *this;
    }
    Iterator operator+(difference_type n) const { return Iterator(p_ + n); }
    friend Iterator operator+(difference_type n, Iterator it) { return it + n; }
    Iterator operator-(difference_type n) const { return Iterator(p_ - n); }
    difference_type operator-(const Iterator& o) const { return p_ - o.p_; }
    reference operator[](difference_type n) const { return *p_[n]; }
    auto operator<=>(const Iterator&) const = default;

   private:
    const Target* const* p_ = nullptr;
  };

  TargetList() = default;
  // Implicit: a whole vector is a target set (tests, and sinks used on their own).
  TargetList(const std::vector<Target>& targets) {  // NOLINT(google-explicit-constructor)
    targets_.reserve(targets.size());
    for (const auto& t : targets) targets_.push_back(&t);
  }
  // Implicit: SetTargets({a, b}) (tests); the list lives until the end of the call's statement.
  TargetList(std::initializer_list<Target> targets) {  // NOLINT(google-explicit-constructor)
    targets_.reserve(targets.size());
    for (const auto& t : targets) targets_.push_back(&t);
  }
  explicit TargetList(std::vector<const Target*> targets) : targets_(std::move(targets)) {}

  [[nodiscard]] size_t size() const { return targets_.size(); }
  [[nodiscard]] bool empty() const { return targets_.empty(); }
  const Target& operator[](size_t i) const { return *targets_[i]; }
  [[nodiscard]] Iterator begin() const { return Iterator(targets_.data()); }
  [[nodiscard]] Iterator end() const { return Iterator(targets_.data() + targets_.size()); }

 private:
  std::vector<const Target*> targets_;
};

/// Receives every probe outcome exactly once, from the runner. Metrics, logs, the conflict
/// tracker and the healer each implement it. Record() is called from worker threads,
/// concurrently for different targets and never concurrently for the same target. SetTargets()
/// may run while Record() runs for targets a reload kept (their index does not change); a target
/// it drops gets no Record() once SetTargets() has begun.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  /// Called at start and after every reload, before any Record() for the new set. Targets
  /// absent from the new set are gone; per-target state for them should be dropped.
  virtual void SetTargets(const TargetList& targets) { (void)targets; }
  virtual void Record(const Target& target, const ProbeResult& result) = 0;
};

}  // namespace wxcanary
