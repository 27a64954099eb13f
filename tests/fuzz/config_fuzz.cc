// Fuzzes config::LoadString: any YAML either loads or throws ConfigError with one line; no other
// exception, crash or hang. Secret references are to files/env that do not exist, which is fine:
// the loader must reject them cleanly too.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "config/config.h"
#include "fuzz/fuzz_util.h"

using wxcanary::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Deeply nested YAML is a parser stress test of yaml-cpp, not of our code; stay at realistic
  // sizes.
  if (size > 16 * 1024) return 0;
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = wxcanary::config::LoadString(yaml, "/nonexistent-fuzz-dir");
    const std::string summary = wxcanary::config::Describe(config);
    Check(!summary.empty(), "a loaded config describes itself");
  } catch (const wxcanary::config::ConfigError& e) {
    const std::string what = e.what();
    Check(!what.empty(), "ConfigError says why");
    if (what.find('\n') != std::string::npos) {
      std::fprintf(stderr, "message: %s\n", what.c_str());
      wxcanary::fuzz::Fail("ConfigError is one line");
    }
  }
  return 0;
}
