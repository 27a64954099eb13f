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
#include <yaml-cpp/yaml.h>

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

nlohmann::json Dashboard() {
  return nlohmann::json::parse(Slurp(Repo("dashboards/wxcanary.json")));
}

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
        "wxcanary_probe_errcode_total",           // token errors by code
        "wxcanary_app_distinct_tokens",           // apps in conflict, distinct tokens
        "wxcanary_token_age_seconds", "wxcanary_token_ttl_seconds",
        "wxcanary_token_refreshes_total", "wxcanary_heals_total",
        "wxcanary_probe_duration_seconds_bucket", "wxcanary_token_invalidations_total",
        "wxcanary_app_token_quota_projected_ratio"}) {
    EXPECT_NE(all.find(needle), std::string::npos) << needle;
  }
  bool heatmap = false;
  for (const auto& p : AllPanels(Dashboard().at("panels"))) heatmap |= p.at("type") == "heatmap";
  EXPECT_TRUE(heatmap) << "probe latency heatmap";
}

nlohmann::json PanelTitled(const std::string& title) {
  for (const auto& p : AllPanels(Dashboard().at("panels")))
    if (p.value("title", "") == title) return p;
  ADD_FAILURE() << "no panel titled " << title;
  return nlohmann::json::object();
}

// (value, color) of a panel's threshold steps; the base step's value is null -> -inf.
std::vector<std::pair<double, std::string>> Steps(const nlohmann::json& panel) {
  std::vector<std::pair<double, std::string>> out;
  const auto& t = panel["fieldConfig"]["defaults"]["thresholds"];
  for (const auto& s : t.value("steps", nlohmann::json::array()))
    out.emplace_back(s["value"].is_null() ? -1e300 : s["value"].get<double>(),
                     s["color"].get<std::string>());
  return out;
}

TEST(Dashboard, failing_targets_are_red_from_one_and_a_redis_down_is_red) {
  using Steps_t = std::vector<std::pair<double, std::string>>;
  EXPECT_EQ(Steps(PanelTitled("Targets failing")), (Steps_t{{-1e300, "green"}, {1, "red"}}));
  EXPECT_EQ(Steps(PanelTitled("Redis up")), (Steps_t{{-1e300, "red"}, {1, "green"}}));
  for (const char* title : {"Targets failing", "Redis up"}) {
    const auto p = PanelTitled(title);
    EXPECT_EQ(p["fieldConfig"]["defaults"]["color"].value("mode", ""), "thresholds") << title;
    EXPECT_EQ(p["options"].value("colorMode", ""), "background") << title;
  }
}

TEST(Dashboard, has_a_failing_now_table_of_instant_queries) {
  const auto p = PanelTitled("Failing now");
  EXPECT_EQ(p.value("type", ""), "table");
  ASSERT_FALSE(p.value("targets", nlohmann::json::array()).empty());
  for (const auto& t : p["targets"]) {
    EXPECT_TRUE(t.value("instant", false)) << t;
    EXPECT_EQ(t.value("format", ""), "table") << t;
    // Only failing targets: every query is limited to them.
    EXPECT_NE(t.value("expr", "").find("app_id_app_env:wxcanary_probe_failed_intervals:max"),
              std::string::npos)
        << t;
  }
  EXPECT_EQ(Steps(p).back(), (std::pair<double, std::string>{1, "red"}));
}

// Without the recording rules these panels stay empty: their description must say why.
TEST(Dashboard, panels_that_need_the_recording_rules_say_so) {
  int needing = 0;
  for (const auto& p : AllPanels(Dashboard().at("panels"))) {
    bool recorded = false;
    for (const auto& t : p.value("targets", nlohmann::json::array()))
      for (const auto& m : SelectedMetrics(t.value("expr", "")))
        recorded |= m.find(':') != std::string::npos;
    const bool says =
        p.value("description", "").find("Needs the recording rules") != std::string::npos;
    EXPECT_EQ(says, recorded) << p.value("title", "");
    needing += recorded;
  }
  EXPECT_GE(needing, 4);
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
  EXPECT_EQ(
      SelectedMetrics(R"(sum by (app_id) (rate(wxcanary_probes_total{outcome="wxcanary_x"}[5m]))
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
      EXPECT_NE(r.annotations.at("description").find("$labels.app_env"), std::string::npos)
          << r.name;
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

// Teams in China get paged in WeCom: page and ticket go there too, and say when it is over.
TEST(Alertmanager, pages_and_tickets_also_reach_wecom_with_resolved_notices) {
  const YAML::Node config = YAML::LoadFile(Repo("alerts/alertmanager.example.yml").string());
  std::set<std::string> with_wecom;
  for (const auto& receiver : config["receivers"]) {
    const std::string name = receiver["name"].as<std::string>();
    if (!receiver["wechat_configs"]) continue;
    with_wecom.insert(name);
    EXPECT_TRUE(receiver["webhook_configs"]) << name << ": WeCom next to the webhook, not instead";
    for (const auto& w : receiver["wechat_configs"]) {
      EXPECT_TRUE(w["send_resolved"] && w["send_resolved"].as<bool>()) << name;
      for (const char* field : {"api_url", "corp_id", "api_secret", "agent_id", "message"})
        EXPECT_FALSE(w[field].as<std::string>("").empty()) << name << " lacks " << field;
      EXPECT_FALSE(w["to_user"].as<std::string>("").empty() &&
                   w["to_party"].as<std::string>("").empty() &&
                   w["to_tag"].as<std::string>("").empty())
          << name << " sends to nobody";
      EXPECT_NE(w["message"].as<std::string>("").find(".Annotations.runbook_url"),
                std::string::npos)
          << name << ": the on-call person needs the runbook link";
    }
  }
  EXPECT_EQ(with_wecom, (std::set<std::string>{"wxcanary-page", "wxcanary-ticket"}));
}

// amtool check-config (a ctest of its own) reads the WeCom fields strictly: a misspelt one fails.
TEST(Alertmanager, amtool_rejects_a_misspelt_wecom_field) {
  std::string text = Slurp(Repo("alerts/alertmanager.example.yml"));
  TempDir dir;
  std::ofstream(dir.path() / "good.yml") << text;
  const size_t at = text.find("to_party:");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::string("to_party:").size(), "to_partys:");
  std::ofstream(dir.path() / "bad.yml") << text;
  std::string out;
  EXPECT_EQ(RunCommand({"amtool", "check-config", (dir.path() / "good.yml").string()}, &out), 0)
      << out;
  EXPECT_NE(RunCommand({"amtool", "check-config", (dir.path() / "bad.yml").string()}, &out), 0)
      << out;
  EXPECT_NE(out.find("to_partys"), std::string::npos) << out;
}

}  // namespace
}  // namespace wxcanary::testing
