#include "probe/shard.h"

#include <charconv>

#include "common/hash.h"

namespace wxcanary::probe {

uint64_t ShardHash(std::string_view app_id) {
  const uint64_t h = Fnv1a(app_id);
  // FNV-1a's low bits mix poorly for short keys differing in the last byte (wx...a1, wx...a2);
  // fold the high half in before the modulo so consecutive AppIds spread over the shards.
  return h ^ (h >> 32);
}

std::string Shard::ToString() const { return std::to_string(index) + "/" + std::to_string(count); }

bool Shard::Owns(std::string_view app_id) const {
  if (all()) return true;
  return ShardHash(app_id) % count == index;
}

std::optional<Shard> ParseShard(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size())
    return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<uint32_t> {
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  auto i = number(text.substr(0, slash));
  auto n = number(text.substr(slash + 1));
  if (!i || !n || *n < 1 || *n > 4096 || *i >= *n) return std::nullopt;
  return Shard{*i, *n};
}

config::Config SelectShard(const config::Config& config, const Shard& shard) {
  if (shard.all()) return config;
  config::Config out = config;
  out.apps.clear();
  for (const auto& app : config.apps)
    if (shard.Owns(app.app_id)) out.apps.push_back(app);
  return out;
}

}  // namespace wxcanary::probe
