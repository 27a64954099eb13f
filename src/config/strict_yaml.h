#pragma once

#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace wxcanary::config {

// The strict reading of YAML that every wxcanary file gets (the config and the web config):
// duplicate keys are errors (yaml-cpp would silently keep one), unknown keys are errors, and
// every failure is one line "path: problem" (a control character in a key or value cannot split
// it). The helpers throw ConfigError (config/config.h).

/// The path shown for the document itself.
inline constexpr std::string_view kRootPath = "(root)";

/// Throws ConfigError("path: problem"), control characters replaced by '?'.
[[noreturn]] void Fail(std::string_view path, const std::string& problem);

/// Parses `text`. A syntax error throws ConfigError("yaml: line L, column C: ...").
YAML::Node ParseYaml(const std::string& text);

/// `s` with control characters escaped as in Quote(), so that it stays one line.
std::string OneLine(std::string_view s);

/// "path.key" (or "path[\"odd key\"]" for a key that is not a plain name), and "path[i]".
std::string Child(std::string_view path, std::string_view key);
std::string Index(std::string_view path, size_t i);

/// "a map", "a sequence", "a scalar" or "nothing", for "expected X, got Y".
std::string KindName(const YAML::Node& n);

/// One map entry, in document order.
struct YamlEntry {
  std::string key;
  YAML::Node value;
};

/// The entries of a map, keys checked: scalar, unique and (when `allowed` is given) known.
std::vector<YamlEntry> MapEntries(const YAML::Node& node, std::string_view path,
                                  const std::vector<std::string_view>* allowed = nullptr);
std::vector<YamlEntry> CheckedMap(const YAML::Node& node, std::string_view path,
                                  std::initializer_list<std::string_view> allowed);

/// A scalar's text; fails on null ("missing value") and on maps and sequences.
std::string Scalar(const YAML::Node& n, std::string_view path);

/// "a, b or c".
template <typename Range>
std::string JoinOr(const Range& names) {
  std::vector<std::string> v(std::begin(names), std::end(names));
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += (i + 1 == v.size()) ? " or " : ", ";
    out += v[i];
  }
  return out;
}

}  // namespace wxcanary::config
