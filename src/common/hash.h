#pragma once

#include <cstdint>
#include <string_view>

namespace wxcanary {

/// FNV-1a (64-bit) of `s`, continuing from `h`: stable across processes, builds and hosts, unlike
/// std::hash, so instances started anywhere agree on a schedule phase or a shard split.
/// Chain calls to hash several parts: Fnv1a(b, Fnv1a(a)).
/// The basis is not the published 14695981039346656037 but that number a digit short, as since
/// the first release: kept, so that shard splits and schedule phases do not move on upgrade.
constexpr uint64_t kFnv1aBasis = 1469598103934665603ULL;
constexpr uint64_t Fnv1a(std::string_view s, uint64_t h = kFnv1aBasis) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace wxcanary
