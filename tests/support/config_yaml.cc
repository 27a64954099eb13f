#include "support/config_yaml.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace wxcanary::testing {
namespace {

void Set(ConfigYaml::Fields* fields, const std::string& key, const std::string& value) {
  auto it =
      std::find_if(fields->begin(), fields->end(), [&](const auto& f) { return f.first == key; });
  if (it != fields->end()) {
    it->second = value;
  } else {
    fields->emplace_back(key, value);
  }
}

ConfigYaml::Fields Merged(ConfigYaml::Fields base, const ConfigYaml::Fields& over) {
  for (const auto& [k, v] : over) Set(&base, k, v);
  return base;
}

// As it is when YAML reads it back unchanged; else a double-quoted (JSON) string.
std::string Value(const std::string& v) {
  if (!v.empty() && (v.front() == '{' || v.front() == '[')) return v;
  const bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
           c == '-';
  });
  return plain ? v : nlohmann::json(v).dump();
}

std::string Block(const ConfigYaml::Fields& fields, const std::string& indent) {
  std::string out;
  for (const auto& [k, v] : fields) out += indent + k + ": " + Value(v) + "\n";
  return out;
}

}  // namespace

ConfigYaml::ConfigYaml(std::string base_url)
    : wechat_{{"base_url", std::move(base_url)}, {"timeout", "2s"}},
      defaults_{{"interval", "500ms"}, {"timeout", "400ms"}} {}

ConfigYaml& ConfigYaml::WeChat(const std::string& key, const std::string& value) {
  Set(&wechat_, key, value);
  return *this;
}

ConfigYaml& ConfigYaml::Workers(int n) {
  workers_ = n;
  return *this;
}

ConfigYaml& ConfigYaml::Default(const std::string& key, const std::string& value) {
  Set(&defaults_, key, value);
  return *this;
}

ConfigYaml& ConfigYaml::Redis(const std::string& name, const std::string& address,
                              const Fields& fields) {
  redis_.emplace_back(
      name, Merged({{"address", address}, {"connect_timeout", "300ms"}, {"read_timeout", "300ms"}},
                   fields));
  return *this;
}

ConfigYaml& ConfigYaml::App(const std::string& app_id, const Fields& fields) {
  apps_.push_back({app_id, fields, {}});
  return *this;
}

ConfigYaml& ConfigYaml::Env(const std::string& name, const std::string& redis,
                            const Fields& fields) {
  if (apps_.empty()) throw std::logic_error("ConfigYaml: Env() before App()");
  apps_.back().envs.push_back(
      Merged({{"name", name}, {"redis", redis}, {"key", "ACCESS_TOKEN_CACHE:{app_id}"}}, fields));
  return *this;
}

ConfigYaml& ConfigYaml::Section(const std::string& yaml) {
  sections_ += yaml;
  if (!sections_.empty() && sections_.back() != '\n') sections_ += '\n';
  return *this;
}

std::string ConfigYaml::str() const {
  std::string y = "wechat:\n" + Block(wechat_, "  ");
  y += "workers: " + std::to_string(workers_) + "\n";
  if (!defaults_.empty()) y += "defaults:\n" + Block(defaults_, "  ");
  y += "redis:\n";
  for (const auto& [name, fields] : redis_) y += "  " + name + ":\n" + Block(fields, "    ");
  y += "apps:\n";
  for (const auto& app : apps_) {
    y += "  - app_id: " + Value(app.app_id) + "\n" + Block(app.fields, "    ");
    y += "    environments:\n";
    for (const auto& env : app.envs) {
      std::string line;
      for (const auto& [k, v] : env) line += (line.empty() ? "" : ", ") + k + ": " + Value(v);
      y += "      - {" + line + "}\n";
    }
  }
  return y + sections_;
}

}  // namespace wxcanary::testing
