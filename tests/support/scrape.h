#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wxcanary::testing {

/// Prometheus text exposition, parsed just enough for assertions.
class Scrape {
 public:
  explicit Scrape(std::string text);
  /// Value of the sample `name` whose labels include all of `labels`; nullopt when absent,
  /// and an error (via ADD_FAILURE) when more than one sample matches.
  [[nodiscard]] std::optional<double> Value(
      const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  /// Sum over every sample of `name` whose labels include `labels`.
  [[nodiscard]] double Sum(const std::string& name,
                           const std::map<std::string, std::string>& labels = {}) const;
  /// Number of samples of `name` whose labels include `labels`.
  [[nodiscard]] size_t Count(const std::string& name,
                             const std::map<std::string, std::string>& labels = {}) const;
  [[nodiscard]] const std::string& text() const { return text_; }

 private:
  struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value;
  };
  std::string text_;
  std::vector<Sample> samples_;
};

}  // namespace wxcanary::testing
