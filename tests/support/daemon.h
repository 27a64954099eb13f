#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/scrape.h"

namespace wxcanary::testing {

/// The wxcanary binary running with a config written by the test, its metrics on a free
/// loopback port, stdout (the JSON log) captured. Stopped when destroyed. Not thread-safe.
class Daemon {
 public:
  /// Writes `config_yaml` to a temp file and starts the daemon; waits until /-/healthy answers.
  explicit Daemon(const std::string& config_yaml, std::vector<std::string> extra_args = {},
                  std::vector<std::string> env = {});
  ~Daemon();

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string metrics_url() const;
  [[nodiscard]] const std::filesystem::path& config_path() const { return config_path_; }
  Subprocess& process() { return *proc_; }

  /// GET /metrics, parsed.
  [[nodiscard]] Scrape ScrapeMetrics() const;
  /// Raw GET of a path on the metrics port: (status, body); status 0 when unreachable.
  [[nodiscard]] std::pair<int, std::string> Get(const std::string& path) const;
  /// Every stdout line so far that parses as a JSON object.
  [[nodiscard]] std::vector<nlohmann::json> LogEvents() const;
  /// The captured stdout+stderr.
  [[nodiscard]] std::string Output() const { return proc_->Output(); }

  /// Rewrites the config file and sends SIGHUP.
  void Reload(const std::string& config_yaml);

  /// Polls `pred` on fresh scrapes until true or `timeout`; returns the last scrape's verdict.
  bool WaitFor(const std::function<bool(const Scrape&)>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds{15}) const;

  /// SIGTERM and wait; returns the waitpid status.
  int Stop();

 private:
  TempDir dir_;
  std::filesystem::path config_path_;
  int port_;
  std::unique_ptr<Subprocess> proc_;
};

}  // namespace wxcanary::testing
