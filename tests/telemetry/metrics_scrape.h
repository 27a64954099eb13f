#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "telemetry/probe_metrics.h"

namespace wxcanary::testing {

/// The sample lines (no # HELP/# TYPE) of a scrape whose metric name is `name` exactly.
inline std::vector<std::string> SampleLines(const std::string& scrape, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind(name, 0) == 0 && (line.size() > name.size()) &&
        (line[name.size()] == '{' || line[name.size()] == ' '))
      out.push_back(line);
  }
  return out;
}

}  // namespace wxcanary::testing
