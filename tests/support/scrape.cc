#include "support/scrape.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

namespace wxcanary::testing {
namespace {

// Parses `{a="x",b="y"}` starting at text[i] == '{'; advances i past '}'.
std::map<std::string, std::string> ParseLabels(const std::string& text, size_t& i) {
  std::map<std::string, std::string> labels;
  ++i;
  while (i < text.size() && text[i] != '}') {
    size_t eq = text.find('=', i);
    std::string key = text.substr(i, eq - i);
    i = eq + 2;  // skip ="
    std::string value;
    while (i < text.size() && text[i] != '"') {
      if (text[i] == '\\' && i + 1 < text.size()) {
        char n = text[i + 1];
        value += n == 'n' ? '\n' : n;
        i += 2;
      } else {
        value += text[i++];
      }
    }
    ++i;  // closing quote
    labels[key] = value;
    if (i < text.size() && text[i] == ',') ++i;
  }
  ++i;
  return labels;
}

}  // namespace

Scrape::Scrape(std::string text) : text_(std::move(text)) {
  std::istringstream in(text_);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    Sample s;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') s.labels = ParseLabels(line, i);
    while (i < line.size() && line[i] == ' ') ++i;
    std::string value = line.substr(i, line.find(' ', i) - i);
    try {
      s.value = value == "+Inf" ? INFINITY : value == "-Inf" ? -INFINITY : std::stod(value);
    } catch (...) {
      continue;
    }
    samples_.push_back(std::move(s));
  }
}

static bool Matches(const std::map<std::string, std::string>& have,
                    const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

std::optional<double> Scrape::Value(const std::string& name,
                                    const std::map<std::string, std::string>& labels) const {
  std::optional<double> found;
  for (const auto& s : samples_) {
    if (s.name != name || !Matches(s.labels, labels)) continue;
    if (found) {
      ADD_FAILURE() << "more than one sample of " << name << " matches the labels";
      return found;
    }
    found = s.value;
  }
  return found;
}

double Scrape::Sum(const std::string& name,
                   const std::map<std::string, std::string>& labels) const {
  double sum = 0;
  for (const auto& s : samples_)
    if (s.name == name && Matches(s.labels, labels)) sum += s.value;
  return sum;
}

size_t Scrape::Count(const std::string& name,
                     const std::map<std::string, std::string>& labels) const {
  size_t n = 0;
  for (const auto& s : samples_)
    if (s.name == name && Matches(s.labels, labels)) ++n;
  return n;
}

}  // namespace wxcanary::testing
