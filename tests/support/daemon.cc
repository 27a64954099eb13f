#include "support/daemon.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace wxcanary::testing {

Daemon::Daemon(const std::string& config_yaml, std::vector<std::string> extra_args,
               std::vector<std::string> env)
    : config_path_(dir_.path() / "wxcanary.yml"), port_(FreePort()) {
  std::ofstream(config_path_) << config_yaml;
  std::vector<std::string> argv = {BuiltBinary("wxcanary").string(),
                                   "--config.file=" + config_path_.string(),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                   "--log.format=json", "--log.level=debug"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<Subprocess>(argv, dir_.path() / "wxcanary.out", std::move(env));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{15};
  while (Get("/-/healthy").first != 200) {
    if (!proc_->running() || std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("wxcanary did not become healthy; output:\n" + proc_->Output());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

Daemon::~Daemon() { proc_->Stop(std::chrono::seconds{5}); }

std::string Daemon::metrics_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/metrics";
}

std::pair<int, std::string> Daemon::Get(const std::string& path) const {
  httplib::Client cli("127.0.0.1", port_);
  cli.set_connection_timeout(std::chrono::seconds{2});
  cli.set_read_timeout(std::chrono::seconds{5});
  auto res = cli.Get(path.c_str());
  if (!res) return {0, ""};
  return {res->status, res->body};
}

Scrape Daemon::ScrapeMetrics() const { return Scrape(Get("/metrics").second); }

std::vector<nlohmann::json> Daemon::LogEvents() const {
  std::vector<nlohmann::json> out;
  std::istringstream in(proc_->Output());
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

void Daemon::Reload(const std::string& config_yaml) {
  std::ofstream(config_path_, std::ios::trunc) << config_yaml;
  proc_->Signal(SIGHUP);
}

bool Daemon::WaitFor(const std::function<bool(const Scrape&)>& pred,
                     std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    bool ok = pred(ScrapeMetrics());
    if (ok || std::chrono::steady_clock::now() > deadline) return ok;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
}

int Daemon::Stop() { return proc_->Stop(std::chrono::seconds{5}); }

}  // namespace wxcanary::testing
