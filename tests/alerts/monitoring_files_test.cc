// Lints the shipped monitoring artefacts: the Grafana dashboard, the rules' conventions, the
// runbook and the promtool tests' coverage. promtool/amtool themselves run as plain ctest
// tests (see CMakeLists.txt).
#include "alerts/monitoring_files.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "support/process.h"

namespace wxcanary::testing {
namespace {

std::filesystem::path Repo(const std::string& rel) { return SourceDir() / rel; }

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json Dashboard() { return nlohmann::json::parse(Slurp(Repo("dashboards/wxcanary.json"))); }

std::vector<nlohmann::json> AllPanels(const nlohmann::json& panels) {
  std::vector<nlohmann::json> out;
  for (const auto& p : panels) {
    out.push_back(p);
    if (p.contains("panels")) {
      auto nested = AllPanels(p["panels"]);
      out.insert(out.end(), nested.begin(), nested.end());
    }
  }
  return out;
}

// Writes `exprs` as recording rules and asks promtool whether they parse.
int PromtoolCheck(const std::vector<std::string>& exprs, std::string* output) {
  TempDir dir;
  auto file = dir.path() / "queries.yml";
  std::ofstream out(file);
  out << "groups:\n  - name: queries\n    rules:\n";
  for (size_t i = 0; i < exprs.size(); ++i) {
    std::string quoted = std::regex_replace(exprs[i], std::regex("'"), "''");
    out << "      - record: query:q" << i << "\n        expr: '" << quoted << "'\n";
  }
  out.close();
  return RunCommand({"promtool", "check", "rules", file.string()}, output);
}

TEST(Dashboard, is_a_grafana_10_dashboard_with_a_datasource_variable) {
  auto d = Dashboard();
  EXPECT_EQ(d.at("schemaVersion"), 39);
  EXPECT_EQ(d.at("uid"), "wxcanary-overview");
  std::map<std::string, nlohmann::json> vars;
  for (const auto& v : d.at("templating").at("list")) vars[v.at("name")] = v;
  ASSERT_TRUE(vars.count("datasource"));
  EXPECT_EQ(vars["datasource"].at("type"), "datasource");
  EXPECT_EQ(vars["datasource"].at("query"), "prometheus");
  for (const char* name : {"app_id", "app_env"}) {
    ASSERT_TRUE(vars.count(name)) << name;
    EXPECT_EQ(vars[name].at("type"), "query") << name;
    EXPECT_EQ(vars[name].at("datasource").at("uid"), "${datasource}") << name;
    EXPECT_TRUE(vars[name].at("multi").get<bool>()) << name;
    EXPECT_TRUE(vars[name].at("includeAll").get<bool>()) << name;
  }
}

TEST(Dashboard, every_panel_queries_the_datasource_variable_with_an_expr) {
  auto panels = AllPanels(Dashboard().at("panels"));
  std::set<int> ids;
  int with_targets = 0;
  for (const auto& p : panels) {
    std::string title = p.value("title", "?");
    EXPECT_TRUE(ids.insert(p.at("id").get<int>()).second) << "duplicate panel id in " << title;
    EXPECT_TRUE(p.contains("gridPos")) << title;
    if (p.at("type") == "row") continue;
    ++with_targets;
    EXPECT_EQ(p.at("datasource").at("uid"), "${datasource}") << title;
    ASSERT_TRUE(p.contains("targets") && !p["targets"].empty()) << title << " has no targets";
    for (const auto& t : p["targets"]) {
      EXPECT_FALSE(t.value("expr", "").empty()) << title << " target " << t.value("refId", "");
      EXPECT_EQ(t.at("datasource").at("uid"), "${datasource}") << title;
    }
  }
  EXPECT_GE(with_targets, 15);
}

TEST(Dashboard, shows_what_the_issue_asks_for) {
  std::string all;
  for (const auto& q : LoadDashboardQueries(Repo("dashboards/wxcanary.json"))) all += q.expr + "\n";
  for (const char* needle :
       {"wxcanary_probes_total{outcome=\"ok\"}",  // fleet success ratio
        "wxcanary_probe_errcode_total",            // token errors by code
        "wxcanary_app_distinct_tokens",            // apps in conflict, distinct tokens
        "wxcanary_token_age_seconds", "wxcanary_token_ttl_seconds", "wxcanary_token_refreshes_total",
        "wxcanary_heals_total", "wxcanary_probe_duration_seconds_bucket",
        "wxcanary_token_invalidations_total", "wxcanary_app_token_quota_projected_ratio"}) {
    EXPECT_NE(all.find(needle), std::string::npos) << needle;
  }
  bool heatmap = false;
  for (const auto& p : AllPanels(Dashboard().at("panels"))) heatmap |= p.at("type") == "heatmap";
  EXPECT_TRUE(heatmap) << "probe latency heatmap";
}

TEST(Dashboard, every_query_is_valid_promql) {
  std::vector<std::string> exprs;
  for (const auto& q : LoadDashboardQueries(Repo("dashboards/wxcanary.json"))) {
    exprs.push_back(ExpandGrafanaVariables(q.expr));
    EXPECT_EQ(exprs.back().find('$'), std::string::npos) << "unexpanded variable: " << q.expr;
  }
  std::string out;
  EXPECT_EQ(PromtoolCheck(exprs, &out), 0) << out;
}

TEST(Dashboard, the_promql_check_rejects_a_broken_query) {
  std::string out;
  EXPECT_NE(PromtoolCheck({"sum by (app_id (wxcanary_probes_total)"}, &out), 0) << out;
}

TEST(GrafanaVariables, expand_to_ranges_and_match_all_regexes) {
  struct Case {
    std::string in, out;
  };
  for (const auto& c : std::vector<Case>{
           {"rate(x[$__rate_interval])", "rate(x[1m])"},
           {"rate(x[$__interval]) + rate(y[${__range}])", "rate(x[1m]) + rate(y[1m])"},
           {R"(x{app_id=~"$app_id",app_env=~"${app_env}"})", R"(x{app_id=~".+",app_env=~".+"})"},
       }) {
    EXPECT_EQ(ExpandGrafanaVariables(c.in), c.out) << c.in;
  }
}

TEST(SelectedMetrics, finds_wxcanary_metrics_recorded_series_and_up_but_not_strings) {
  EXPECT_EQ(SelectedMetrics(R"(sum by (app_id) (rate(wxcanary_probes_total{outcome="wxcanary_x"}[5m]))
      / app_id_app_env:wxcanary_probe_success:ratio_rate5m or up{job=~".*wxcanary.*"} == 0
      or absent(wxcanary_probes_total))"),
            (std::vector<std::string>{"wxcanary_probes_total",
                                      "app_id_app_env:wxcanary_probe_success:ratio_rate5m", "up"}));
}

TEST(RewriteFor, sets_every_alerts_for_and_keeps_expressions) {
  auto original = LoadRules(Repo("alerts/wxcanary.rules.yml"));
  TempDir dir;
  auto file = dir.path() / "short.yml";
  std::ofstream(file) << RewriteFor(Slurp(Repo("alerts/wxcanary.rules.yml")), "5s");
  auto rewritten = LoadRules(file);
  ASSERT_EQ(rewritten.size(), original.size());
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(rewritten[i].expr, original[i].expr) << original[i].name;
    EXPECT_EQ(rewritten[i].annotations, original[i].annotations) << original[i].name;
    EXPECT_EQ(rewritten[i].for_duration, original[i].alert ? "5s" : "") << original[i].name;
  }
  std::string out;
  EXPECT_EQ(RunCommand({"promtool", "check", "rules", file.string()}, &out), 0) << out;
}

TEST(Rules, every_alert_follows_the_naming_severity_and_annotation_conventions) {
  static const std::regex kName("WxCanary([A-Z][a-z0-9]*)+");
  static const std::set<std::string> kSeverities = {"critical", "warning", "info"};
  int alerts = 0;
  for (const auto& r : LoadRules(Repo("alerts/wxcanary.rules.yml"))) {
    if (!r.alert) {
      EXPECT_TRUE(std::regex_match(r.name, std::regex("[a-z_]+:wxcanary_[a-z0-9_]+:[a-z0-9_]+")))
          << "recording rule name level:metric:operation: " << r.name;
      continue;
    }
    ++alerts;
    EXPECT_TRUE(std::regex_match(r.name, kName)) << r.name;
    EXPECT_TRUE(kSeverities.count(r.labels.count("severity") ? r.labels.at("severity") : ""))
        << r.name;
    for (const char* a : {"summary", "description", "runbook_url"}) {
      EXPECT_TRUE(r.annotations.count(a)) << r.name << " lacks " << a;
    }
    std::string lower = r.name;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_TRUE(r.annotations.at("runbook_url").ends_with("alerts/runbook.md#" + lower)) << r.name;
    // Per-target alerts name the target in what the on-call person reads first.
    if (r.expr.find("app_env") != std::string::npos && r.name != "WxCanaryProbesNotRunning") {
      EXPECT_NE(r.annotations.at("description").find("$labels.app_env"), std::string::npos) << r.name;
    }
    EXPECT_NE(r.annotations.at("description").find("$value"), std::string::npos) << r.name;
  }
  EXPECT_GE(alerts, 11);
}

TEST(Rules, every_alert_has_a_runbook_section) {
  std::set<std::string> anchors;
  std::istringstream runbook(Slurp(Repo("alerts/runbook.md")));
  for (std::string line; std::getline(runbook, line);) {
    if (!line.starts_with("## ")) continue;
    std::string anchor;
    for (char ch : line.substr(3)) {
      if (std::isalnum(static_cast<unsigned char>(ch))) {
        anchor += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
    }
    anchors.insert(anchor);
  }
  for (const auto& r : LoadRules(Repo("alerts/wxcanary.rules.yml"))) {
    if (!r.alert) continue;
    std::string url = r.annotations.at("runbook_url");
    EXPECT_TRUE(anchors.count(url.substr(url.find('#') + 1))) << r.name << " -> " << url;
  }
}

TEST(Rules, every_alert_has_a_promtool_test_that_fires_it_and_one_that_does_not) {
  std::set<std::string> fires, stays_quiet;
  for (const auto& entry : std::filesystem::directory_iterator(Repo("alerts/tests"))) {
    if (entry.path().extension() != ".yml") continue;
    std::istringstream in(Slurp(entry.path()));
    // Cheap structural scan: "alertname: X" followed by "exp_alerts: []" or a list.
    std::string line, current;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, std::regex(R"(^\s*alertname:\s*(\S+))"))) current = m[1];
      if (std::regex_search(line, m, std::regex(R"(^\s*exp_alerts:\s*(\[\])?\s*$)"))) {
        (m[1].matched ? stays_quiet : fires).insert(current);
      }
    }
  }
  for (const auto& r : LoadRules(Repo("alerts/wxcanary.rules.yml"))) {
    if (!r.alert) continue;
    EXPECT_TRUE(fires.count(r.name)) << r.name << " never fires in alerts/tests";
    EXPECT_TRUE(stays_quiet.count(r.name)) << r.name << " has no must-not-fire case";
  }
}

}  // namespace
}  // namespace wxcanary::testing
