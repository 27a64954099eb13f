#include "telemetry/exposition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cmath>
#include <limits>

namespace wxcanary::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Written(const std::function<void(TextWriter&)>& write) {
  std::string out;
  TextWriter writer(out);
  write(writer);
  return out;
}

TEST(RenderLabels, sorts_by_name_and_escapes_backslash_quote_and_newline) {
  EXPECT_EQ(RenderLabels({}), "");
  EXPECT_EQ(RenderLabels({{"app_id", "wx1"}, {"app_env", "prod"}}),
            R"(app_env="prod",app_id="wx1")");
  EXPECT_EQ(RenderLabels({{"team", "a\\b\"c\nd"}}), R"(team="a\\b\"c\nd")");
}

TEST(RenderLabels, a_targets_labels_render_as_the_map_would_have_them_and_exactly_sized) {
  EXPECT_EQ(RenderTargetLabels("wx1", "prod"),
            RenderLabels({{"app_id", "wx1"}, {"app_env", "prod"}}));
  EXPECT_EQ(RenderTargetLabels("a\\b\"c\nd", "e\"f"),
            RenderLabels({{"app_id", "a\\b\"c\nd"}, {"app_env", "e\"f"}}));
  const std::string long_id(40, 'x');
  const std::string labels = RenderTargetLabels(long_id, "production\\");
  EXPECT_EQ(labels, RenderLabels({{"app_id", long_id}, {"app_env", "production\\"}}));
  EXPECT_EQ(labels.capacity(), labels.size());  // kept per target: nothing allocated in vain
}

struct InsertCase {
  std::string name;
  prometheus::Labels labels;
  std::string label;
  std::string expected;
};

class LabelInsertion : public ::testing::TestWithParam<InsertCase> {};

TEST_P(LabelInsertion, puts_the_extra_label_where_a_sorted_label_map_would) {
  const auto& c = GetParam();
  prometheus::Labels all = c.labels;
  all.emplace(c.label, "v");
  // The reference: the whole set rendered from a map, i.e. prometheus-cpp's order.
  ASSERT_EQ(c.expected, "m{" + RenderLabels(all) + "} 1\n");
  EXPECT_EQ(Written([&](TextWriter& w) {
              w.Sample("m", RenderLabels(c.labels), {{c.label, "v"}}, 1);
            }),
            c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    TextWriter, LabelInsertion,
    ::testing::Values(InsertCase{"no_labels",
                                 {},
                                 "outcome",
                                 R"(m{outcome="v"} 1)"
                                 "\n"},
                      InsertCase{"last",
                                 {{"app_env", "prod"}, {"app_id", "wx1"}},
                                 "outcome",
                                 R"(m{app_env="prod",app_id="wx1",outcome="v"} 1)"
                                 "\n"},
                      InsertCase{"first",
                                 {{"app_env", "prod"}},
                                 "a",
                                 R"(m{a="v",app_env="prod"} 1)"
                                 "\n"},
                      InsertCase{"middle",
                                 {{"app_id", "wx1"}, {"team", "pay"}},
                                 "outcome",
                                 R"(m{app_id="wx1",outcome="v",team="pay"} 1)"
                                 "\n"},
                      // A value holding what looks like more labels must not fool the scan.
                      InsertCase{"escaped_value",
                                 {{"a", R"(x",z="y)"}, {"c", "1"}},
                                 "b",
                                 R"(m{a="x\",z=\"y",b="v",c="1"} 1)"
                                 "\n"},
                      InsertCase{"value_ending_in_backslash",
                                 {{"a", "x\\"}, {"c", "1"}},
                                 "b",
                                 R"(m{a="x\\",b="v",c="1"} 1)"
                                 "\n"}),
    [](const ::testing::TestParamInfo<InsertCase>& p) { return p.param.name; });

TEST(TextWriter, merges_several_extra_labels_in_name_order) {
  const std::string labels = RenderLabels({{"app_env", "prod"}, {"app_id", "wx1"}});
  EXPECT_EQ(Written([&](TextWriter& w) {
              w.Sample("h", labels, {{"action", "evict"}, {"result", "done"}}, 2);
            }),
            R"(h{action="evict",app_env="prod",app_id="wx1",result="done"} 2)"
            "\n");
  EXPECT_EQ(Written([&](TextWriter& w) {
              w.Sample("h", "", {{"a", "1"}, {"b", "q\""}}, 0);
            }),
            R"(h{a="1",b="q\""} 0)"
            "\n");
}

struct ValueCase {
  double value;
  std::string text;
};

TEST(TextWriter, writes_integral_values_as_integers_and_the_rest_exactly) {
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& c : std::vector<ValueCase>{{0, "0"},
                                              {-2, "-2"},
                                              {1e6, "1000000"},
                                              {1700000030, "1700000030"},
                                              {7.003, "7.003"},
                                              {0.1 + 0.2, "0.30000000000000004"},
                                              {1764493752.125, "1764493752.125"},
                                              {1e20, "1e+20"},
                                              {inf, "+Inf"},
                                              {-inf, "-Inf"},
                                              {std::nan(""), "NaN"}}) {
    EXPECT_EQ(Written([&](TextWriter& w) { w.Sample("m", "", c.value); }), "m " + c.text + "\n")
        << c.text;
  }
}

TEST(TextWriter, writes_help_escaped_and_type) {
  EXPECT_EQ(Written([](TextWriter& w) { w.Header("m_total", "counter", "a\\b\nc \"q\""); }),
            "# HELP m_total a\\\\b\\nc \"q\"\n# TYPE m_total counter\n");
}

TEST(TextWriter, writes_cumulative_buckets_with_le_last_and_count_equal_to_inf) {
  const std::vector<double> bounds = {0.001, 0.25, 10};
  const std::vector<uint64_t> counts = {1, 0, 2, 3};
  EXPECT_EQ(Written([&](TextWriter& w) { w.Histogram("d", R"(z="1")", bounds, counts, 42.5); }),
            "d_bucket{z=\"1\",le=\"0.001\"} 1\n"
            "d_bucket{z=\"1\",le=\"0.25\"} 1\n"
            "d_bucket{z=\"1\",le=\"10\"} 3\n"
            "d_bucket{z=\"1\",le=\"+Inf\"} 6\n"
            "d_sum{z=\"1\"} 42.5\n"
            "d_count{z=\"1\"} 6\n");
  EXPECT_EQ(Written([&](TextWriter& w) { w.Histogram("d", "", bounds, counts, 0); }).substr(0, 22),
            "d_bucket{le=\"0.001\"} 1");
}

class FixedFamily final : public TextCollectable {
 public:
  void AppendText(TextWriter& out) const override {
    out.Header("wx_fixed", "gauge", "A fixed family.");
    out.Sample("wx_fixed", R"(k="v")", 3);
  }
};

TEST(Exposition, serves_the_registry_then_every_collectable_until_it_is_removed) {
  Exposition exposition;
  prometheus::BuildCounter()
      .Name("wx_registry_total")
      .Help("h")
      .Register(exposition.registry())
      .Add({})
      .Increment(2);
  FixedFamily fixed;
  exposition.Add(fixed);
  const std::string text = exposition.Serialize();
  const auto registry_at = text.find("wx_registry_total 2");
  const auto fixed_at = text.find("wx_fixed{k=\"v\"} 3\n");
  ASSERT_NE(registry_at, std::string::npos) << text;
  ASSERT_NE(fixed_at, std::string::npos) << text;
  EXPECT_LT(registry_at, fixed_at);

  exposition.Remove(fixed);
  EXPECT_THAT(exposition.Serialize(), Not(HasSubstr("wx_fixed")));
  EXPECT_THAT(exposition.Serialize(), HasSubstr("wx_registry_total 2"));
}

class ManyLines final : public TextCollectable {
 public:
  void AppendText(TextWriter& out) const override {
    out.Header("wx_many", "gauge", "Enough lines for several chunks.");
    for (int i = 0; i < 20'000; ++i)
      out.Sample("wx_many", RenderLabels({{"i", std::to_string(i)}}), {{"k", "v"}}, i);
  }
};

TEST(Exposition, serves_large_text_in_line_aligned_chunks_that_join_to_the_whole) {
  Exposition exposition;
  ManyLines many;
  exposition.Add(many);
  const auto chunks = exposition.SerializeChunks();
  ASSERT_GE(chunks.size(), 3u);
  std::string joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    ASSERT_FALSE(chunks[i].empty()) << i;
    EXPECT_EQ(chunks[i].back(), '\n') << i;
    // The writer rolls over once a chunk reaches the size, at the next line end.
    if (i + 1 < chunks.size()) {
      EXPECT_GE(chunks[i].size(), TextWriter::kChunkBytes) << i;
      EXPECT_LT(chunks[i].size(), TextWriter::kChunkBytes + 100) << i;
    }
    joined += chunks[i];
  }
  EXPECT_EQ(joined, exposition.Serialize());
  EXPECT_NE(joined.find("wx_many{i=\"19999\",k=\"v\"} 19999\n"), std::string::npos);
}

}  // namespace
}  // namespace wxcanary::telemetry
