#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace wxcanary {

/// Parses a Prometheus-style duration ("500ms", "30s", "5m", "1h", "1h30m", "2d").
/// Returns nullopt on anything else, including negative values and a bare number. Thread-safe.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

/// Formats back in the same style ("1m30s", "250ms", "0s").
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace wxcanary
