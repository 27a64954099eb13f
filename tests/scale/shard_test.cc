// --shard=I/N: N instances together probe every target exactly once, and every environment
// of one AppId lands on the same instance.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "daemon/options.h"
#include "probe/runner.h"
#include "probe/shard.h"
#include "support/process.h"

namespace wxcanary::probe {
namespace {

config::Config ManyApps(int apps, int envs_per_app) {
  config::Config cfg;
  cfg.redis["r"] = config::Redis{};
  for (int a = 0; a < apps; ++a) {
    config::App app;
    // Consecutive ids differing only in the last characters: the case a weak hash splits worst.
    char id[32];
    std::snprintf(id, sizeof id, "wx%016x", a);
    app.app_id = id;
    for (int e = 0; e < envs_per_app; ++e) {
      config::Environment env;
      env.name = "env" + std::to_string(e);
      env.redis = "r";
      env.key = "k:" + app.app_id + ":" + env.name;
      app.environments.push_back(env);
    }
    cfg.apps.push_back(app);
  }
  return cfg;
}

TEST(Shard, n_shards_cover_every_target_exactly_once_and_keep_an_app_together) {
  const config::Config cfg = ManyApps(1000, 3);
  for (uint32_t n : {1u, 2u, 3u, 7u, 16u}) {
    SCOPED_TRACE("N=" + std::to_string(n));
    std::map<std::pair<std::string, std::string>, int> seen;
    std::map<std::string, std::set<uint32_t>> shards_of_app;
    std::vector<size_t> sizes;
    for (uint32_t i = 0; i < n; ++i) {
      auto targets = Runner::TargetsOf(SelectShard(cfg, Shard{i, n}));
      sizes.push_back(targets.size());
      for (size_t k = 0; k < targets.size(); ++k) {
        EXPECT_EQ(targets[k].index, k);  // dense within the instance
        ++seen[{targets[k].app_id, targets[k].app_env}];
        shards_of_app[targets[k].app_id].insert(i);
      }
    }
    EXPECT_EQ(seen.size(), 3000u);
    for (const auto& [target, count] : seen)
      EXPECT_EQ(count, 1) << target.first << "/" << target.second;
    for (const auto& [app, shards] : shards_of_app) EXPECT_EQ(shards.size(), 1u) << app;
    // Balanced enough to be worth sharding: every slice within 25% of the mean.
    const double mean = 3000.0 / n;
    for (size_t s : sizes) {
      EXPECT_GT(static_cast<double>(s), mean * 0.75);
      EXPECT_LT(static_cast<double>(s), mean * 1.25);
    }
  }
}

TEST(Shard, assignment_is_a_stable_function_of_the_app_id) {
  // Pinned values: changing the hash would move apps between running instances.
  EXPECT_EQ(ShardHash(""), 1469598103934665603ULL ^ (1469598103934665603ULL >> 32));
  const Shard s{1, 4};
  EXPECT_EQ(s.Owns("wx1234567890abcdef"), ShardHash("wx1234567890abcdef") % 4 == 1);
  EXPECT_EQ(SelectShard(ManyApps(10, 2), Shard{}).TargetCount(), 20u);
}

TEST(Shard, parses_i_of_n) {
  struct Case {
    const char* text;
    std::optional<std::pair<uint32_t, uint32_t>> want;
  };
  const Case cases[] = {
      {"0/1", std::pair{0u, 1u}}, {"2/3", std::pair{2u, 3u}}, {"0/4096", std::pair{0u, 4096u}},
      {"3/3", std::nullopt},      {"0/0", std::nullopt},      {"1", std::nullopt},
      {"/2", std::nullopt},       {"1/", std::nullopt},       {"-1/2", std::nullopt},
      {"a/2", std::nullopt},      {"1/2x", std::nullopt},     {"0/4097", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto got = ParseShard(c.text);
    ASSERT_EQ(got.has_value(), c.want.has_value());
    if (got) {
      EXPECT_EQ(got->index, c.want->first);
      EXPECT_EQ(got->count, c.want->second);
      EXPECT_EQ(got->ToString(), c.text);
    }
  }
}

TEST(Shard, flag_is_parsed_and_a_bad_value_is_named_in_one_line) {
  auto ok = daemon::ParseOptions({"--config.file=x.yml", "--shard=2/5"});
  ASSERT_TRUE(ok.options);
  EXPECT_EQ(ok.options->shard.index, 2u);
  EXPECT_EQ(ok.options->shard.count, 5u);
  auto none = daemon::ParseOptions({"--config.file=x.yml"});
  ASSERT_TRUE(none.options);
  EXPECT_TRUE(none.options->shard.all());
  auto bad = daemon::ParseOptions({"--config.file=x.yml", "--shard=5/5"});
  EXPECT_FALSE(bad.options);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.output, "wxcanary: --shard: \"5/5\" is not I/N with 0 <= I < N <= 4096\n");
}

TEST(Shard, config_check_shows_the_slice_and_lists_only_its_targets) {
  testing::TempDir dir;
  std::string yaml = "redis:\n  r: {address: 127.0.0.1:1}\napps:\n";
  for (int a = 0; a < 20; ++a)
    yaml += "  - app_id: wxapp" + std::to_string(a) +
            "\n    environments:\n      - {name: prod, redis: r, key: k}\n"
            "      - {name: test, redis: r, key: k2}\n";
  auto path = dir.path() / "c.yml";
  { std::ofstream(path) << yaml; }
  size_t listed = 0;
  for (uint32_t i = 0; i < 3; ++i) {
    auto log = dir.path() / ("out" + std::to_string(i));
    testing::Subprocess p(
        {testing::BuiltBinary("wxcanary").string(), "--config.file=" + path.string(),
         "--config.check", "--shard=" + std::to_string(i) + "/3"},
        log);
    ASSERT_EQ(p.Wait(std::chrono::seconds{20}), 0) << p.Output();
    const std::string out = p.Output();
    size_t mine = 0;
    for (int a = 0; a < 20; ++a)
      if (Shard{i, 3}.Owns("wxapp" + std::to_string(a))) mine += 2;
    EXPECT_NE(out.find("wxcanary: shard " + std::to_string(i) + "/3: " + std::to_string(mine) +
                       " of 40 targets\n"),
              std::string::npos)
        << out;
    size_t lines = 0;
    for (size_t pos = out.find("  redis="); pos != std::string::npos;
         pos = out.find("  redis=", pos + 1))
      ++lines;
    EXPECT_EQ(lines, mine) << out;
    listed += lines;
  }
  EXPECT_EQ(listed, 40u);
}

}  // namespace
}  // namespace wxcanary::probe
