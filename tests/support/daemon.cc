#include "support/daemon.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

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

double Scrape::Sum(const std::string& name, const std::map<std::string, std::string>& labels) const {
  double sum = 0;
  for (const auto& s : samples_)
    if (s.name == name && Matches(s.labels, labels)) sum += s.value;
  return sum;
}

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
