#pragma once

// Reads the monitoring artefacts (alerts/wxcanary.rules.yml, dashboards/wxcanary.json) so the
// lint tests and the end-to-end test check exactly what ships.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace wxcanary::testing {

/// One PromQL query of one dashboard panel, as written (Grafana variables unexpanded).
struct DashboardQuery {
  std::string panel;   // panel title
  std::string ref_id;  // "A", "B", ...
  std::string expr;
};

/// One recording or alerting rule.
struct Rule {
  std::string group;
  std::string name;  // the alert name or the recorded metric name
  bool alert = false;
  std::string expr;
  std::string for_duration;  // "" when absent
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

/// Every target of every panel (rows' nested panels included). Throws std::runtime_error on
/// unreadable JSON. Pure apart from reading the file.
std::vector<DashboardQuery> LoadDashboardQueries(const std::filesystem::path& dashboard_json);

/// Replaces the Grafana variables this project's dashboards use ($__rate_interval,
/// $__interval, $__range, $app_id, ${app_id}, $app_env, ${app_env}) with values Prometheus
/// accepts: the durations become `range`, the label variables match everything. Pure.
std::string ExpandGrafanaVariables(const std::string& expr, const std::string& range = "1m");

/// Every rule of a Prometheus rules file, in file order. Throws on YAML errors.
std::vector<Rule> LoadRules(const std::filesystem::path& rules_yaml);

/// The same rules file with every alert's `for:` set to `for_duration` (the end-to-end test
/// cannot wait for production hold times). Pure.
std::string RewriteFor(const std::string& rules_yaml, const std::string& for_duration);

/// Metric names an expression selects: wxcanary_* metrics, recorded series (a:b:c) and `up`,
/// in order of first appearance, without duplicates; names inside quoted strings are ignored.
std::vector<std::string> SelectedMetrics(const std::string& expr);

/// Runs a command (argv[0] looked up in PATH) and returns its exit code; output goes to
/// `output` (stdout and stderr interleaved).
int RunCommand(const std::vector<std::string>& argv, std::string* output);

}  // namespace wxcanary::testing
