#include "config/strict_yaml.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/quote.h"
#include "config/config.h"

namespace wxcanary::config {

namespace {

// A name as it may stand in a path: plain names as they are, anything else (a map key holding
// a newline, a NUL, a dot) quoted and escaped, so that an error stays one readable line.
std::string PathName(std::string_view key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isgraph(static_cast<unsigned char>(c)) && c != '"' && c != '[' && c != ']' &&
           c != '\\';
  });
  return plain ? std::string(key) : "[" + Quote(key) + "]";
}

}  // namespace

[[noreturn]] void Fail(std::string_view path, const std::string& problem) {
  std::string message = std::string(path.empty() ? kRootPath : path) + ": " + problem;
  // Belt and braces for the one-line promise: every value above is quoted where it is shown,
  // but a control character that slipped through must not split a log line.
  for (char& c : message)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  throw ConfigError(message);
}

std::string Child(std::string_view path, std::string_view key) {
  const std::string name = PathName(key);
  if (path.empty()) return name;
  return name.front() == '[' ? std::string(path) + name : std::string(path) + "." + name;
}

std::string Index(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

std::string KindName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a sequence";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

std::vector<YamlEntry> MapEntries(const YAML::Node& node, std::string_view path,
                                  const std::vector<std::string_view>* allowed) {
  if (!node.IsMap()) Fail(path, "expected a map, got " + KindName(node));
  std::vector<YamlEntry> out;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) Fail(path, "a key is " + KindName(kv.first) + ", expected a name");
    std::string key = kv.first.Scalar();
    if (allowed && std::find(allowed->begin(), allowed->end(), key) == allowed->end())
      Fail(path, "unknown key " + Quote(key));
    if (!seen.insert(key).second) Fail(path, "duplicate key " + Quote(key));
    out.push_back({key, kv.second});
  }
  return out;
}

std::vector<YamlEntry> CheckedMap(const YAML::Node& node, std::string_view path,
                                  std::initializer_list<std::string_view> allowed) {
  std::vector<std::string_view> keys(allowed);
  return MapEntries(node, path, &keys);
}

std::string Scalar(const YAML::Node& n, std::string_view path) {
  if (n.IsNull()) Fail(path, "missing value");
  if (!n.IsScalar()) Fail(path, "expected a scalar, got " + KindName(n));
  return n.Scalar();
}

std::string OneLine(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) {
      const std::string q = Quote(std::string_view(&c, 1));
      out += q.substr(1, q.size() - 2);
    } else {
      out += c;
    }
  }
  return out;
}

YAML::Node ParseYaml(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    // yaml-cpp's messages can quote the offending character raw (e.g. "unknown escape
    // character: " followed by a newline): OneLine keeps the error one line.
    throw ConfigError("yaml: line " + std::to_string(e.mark.line + 1) + ", column " +
                      std::to_string(e.mark.column + 1) + ": " + OneLine(e.msg));
  }
}

}  // namespace wxcanary::config
