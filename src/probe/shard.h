#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace wxcanary::probe {

/// One instance's slice of the targets (--shard=I/N): the apps whose app_id hashes to `index`
/// modulo `count`, so every environment of an AppId lands on the same instance (conflict
/// detection compares them side by side). Plain value; pure functions, thread-safe.
struct Shard {
  uint32_t index = 0;  // 0-based, < count
  uint32_t count = 1;  // 1: everything

  [[nodiscard]] bool all() const { return count <= 1; }
  /// "I/N" as given on the command line.
  [[nodiscard]] std::string ToString() const;
  /// True when `app_id` belongs to this shard. Stable across processes, builds and hosts
  /// (FNV-1a, not std::hash), so N instances started anywhere agree on the split.
  [[nodiscard]] bool Owns(std::string_view app_id) const;
};

/// Parses "I/N" (0 <= I < N, 1 <= N <= 4096). nullopt when malformed.
std::optional<Shard> ParseShard(std::string_view text);

/// FNV-1a 64 of `app_id`, the hash Owns() reduces modulo the shard count.
uint64_t ShardHash(std::string_view app_id);

/// `config` with only the apps this shard owns (the rest of the config unchanged). May leave
/// no apps at all: a shard whose slice is empty runs idle rather than failing.
config::Config SelectShard(const config::Config& config, const Shard& shard);

}  // namespace wxcanary::probe
