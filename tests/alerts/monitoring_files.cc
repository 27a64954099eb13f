#include "alerts/monitoring_files.h"

#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace wxcanary::testing {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void CollectQueries(const nlohmann::json& panels, std::vector<DashboardQuery>& out) {
  for (const auto& panel : panels) {
    if (panel.contains("panels")) CollectQueries(panel["panels"], out);
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel["targets"]) {
      out.push_back(
          {panel.value("title", ""), target.value("refId", ""), target.value("expr", "")});
    }
  }
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

}  // namespace

std::vector<DashboardQuery> LoadDashboardQueries(const std::filesystem::path& dashboard_json) {
  auto dashboard = nlohmann::json::parse(ReadFile(dashboard_json));
  std::vector<DashboardQuery> out;
  CollectQueries(dashboard.at("panels"), out);
  return out;
}

std::string ExpandGrafanaVariables(const std::string& expr, const std::string& range) {
  std::string s = expr;
  // Longest names first: $__rate_interval contains $__interval's prefix.
  for (const char* v : {"${__rate_interval}", "$__rate_interval", "${__interval}", "$__interval",
                        "${__range}", "$__range"}) {
    s = ReplaceAll(s, v, range);
  }
  for (const char* v : {"${app_id}", "$app_id", "${app_env}", "$app_env"}) {
    s = ReplaceAll(s, v, ".+");
  }
  return s;
}

std::vector<Rule> LoadRules(const std::filesystem::path& rules_yaml) {
  YAML::Node root = YAML::LoadFile(rules_yaml.string());
  std::vector<Rule> out;
  for (const auto& group : root["groups"]) {
    for (const auto& node : group["rules"]) {
      Rule r;
      r.group = group["name"].as<std::string>();
      r.alert = static_cast<bool>(node["alert"]);
      r.name = node[r.alert ? "alert" : "record"].as<std::string>();
      r.expr = node["expr"].as<std::string>();
      if (node["for"]) r.for_duration = node["for"].as<std::string>();
      for (const auto& kv : node["labels"]) {
        r.labels[kv.first.as<std::string>()] = kv.second.as<std::string>();
      }
      for (const auto& kv : node["annotations"]) {
        r.annotations[kv.first.as<std::string>()] = kv.second.as<std::string>();
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::string RewriteFor(const std::string& rules_yaml, const std::string& for_duration) {
  YAML::Node root = YAML::Load(rules_yaml);
  for (auto group : root["groups"]) {
    for (auto rule : group["rules"]) {
      if (rule["alert"]) rule["for"] = for_duration;
    }
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> SelectedMetrics(const std::string& expr) {
  // Quoted strings hold label values and regexes, never selectors.
  static const std::regex kQuoted(R"("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')");
  const std::string bare = std::regex_replace(expr, kQuoted, "\"\"");
  static const std::regex kName(
      R"((?:^|[^a-zA-Z0-9_:])((?:[a-zA-Z_][a-zA-Z0-9_]*:)+[a-zA-Z0-9_:]*wxcanary[a-zA-Z0-9_:]*|wxcanary_[a-zA-Z0-9_]+|up(?=\s*\{)))");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto it = std::sregex_iterator(bare.begin(), bare.end(), kName);
       it != std::sregex_iterator(); ++it) {
    std::string name = (*it)[1];
    if (seen.insert(name).second) out.push_back(name);
  }
  return out;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output) {
  std::string cmd;
  for (const auto& a : argv) {
    // Single-quote every word: paths may hold spaces, nothing here holds a quote.
    cmd += "'" + a + "' ";
  }
  cmd += "2>&1";
  struct PipeCloser {
    void operator()(FILE* f) const {
      if (f != nullptr) ::pclose(f);
    }
  };
  // Owned until the end, where pclose() is called by hand because its status is the result.
  std::unique_ptr<FILE, PipeCloser> pipe(::popen(cmd.c_str(), "r"));
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  size_t n = 0;
  std::string text;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0) text.append(buf.data(), n);
  int status = ::pclose(pipe.release());
  if (output != nullptr) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace wxcanary::testing
