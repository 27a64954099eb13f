#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/fingerprint.h"

namespace wxcanary {

/// Holds a token or password. It has no stream operator and no implicit conversion, so it cannot
/// reach a log line or a label by accident; Reveal() marks the few places that send it on.
/// Not synchronized: treat like a std::string.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  [[nodiscard]] const std::string& Reveal() const { return value_; }
  [[nodiscard]] bool empty() const { return value_.empty(); }
  [[nodiscard]] std::string Fingerprint() const { return wxcanary::Fingerprint(value_); }
  bool operator==(const Secret& other) const = default;

 private:
  std::string value_;
};

}  // namespace wxcanary
