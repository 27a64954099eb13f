#include "support/wxsim.h"

#include <httplib.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace wxcanary::testing {

nlohmann::json WxSim::Reply::Json() const {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

WxSim::WxSim(std::vector<std::string> extra_args) {
  bool has_app = std::any_of(extra_args.begin(), extra_args.end(), [](const std::string& a) {
    return a == "--app" || a == "--apps-file" || a.rfind("--app=", 0) == 0 ||
           a.rfind("--apps-file=", 0) == 0;
  });
  tls_ = std::any_of(extra_args.begin(), extra_args.end(), [](const std::string& a) {
    return a == "--tls-cert" || a.rfind("--tls-cert=", 0) == 0;
  });
  auto port_file = dir_.path() / "port";
  std::vector<std::string> argv = {BuiltBinary("wxsim").string(), "--listen", "127.0.0.1:0",
                                   "--port-file", port_file.string()};
  if (!has_app) {
    argv.push_back("--app");
    argv.push_back(std::string(kAppId) + ":" + kSecret);
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<Subprocess>(argv, dir_.path() / "wxsim.log");

  // The port file appears (atomically, via rename) once the socket is bound.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (port_ == 0) {
    std::ifstream in(port_file);
    if (in >> port_ && port_ > 0) break;
    port_ = 0;
    if (!proc_->running())
      throw std::runtime_error("wxsim exited during startup: " + proc_->Output());
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("wxsim did not start within 10 s: " + proc_->Output());
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  if (!WaitForPort(port_)) throw std::runtime_error("wxsim does not accept: " + proc_->Output());
}

WxSim::~WxSim() {
  client_.reset();
  if (proc_) proc_->Stop(std::chrono::seconds{2});
}

std::string WxSim::base_url() const {
  return std::string(tls_ ? "https://" : "http://") + host_port();
}

httplib::Client& WxSim::client() {
  if (!client_) {
    client_ = std::make_unique<httplib::Client>(base_url());
    client_->enable_server_certificate_verification(false);
    client_->set_keep_alive(true);
    client_->set_connection_timeout(std::chrono::seconds{5});
    client_->set_read_timeout(std::chrono::seconds{10});
  }
  return *client_;
}

WxSim::Reply WxSim::Get(const std::string& path_and_query) {
  auto res = client().Get(path_and_query);
  if (!res) return {};
  return {res->status, res->body};
}

WxSim::Reply WxSim::Post(const std::string& path_and_query, const std::string& body,
                         const std::string& content_type) {
  auto res = client().Post(path_and_query, body, content_type);
  if (!res) return {};
  return {res->status, res->body};
}

void WxSim::Advance(double seconds) {
  Reply r = Post("/admin/advance?seconds=" + std::to_string(seconds), "", "text/plain");
  if (r.status != 200) throw std::runtime_error("wxsim advance failed: " + r.body);
}

nlohmann::json WxSim::State() {
  Reply r = Get("/admin/state");
  if (r.status != 200) throw std::runtime_error("wxsim state failed: " + r.body);
  return r.Json();
}

void WxSim::InjectFault(const nlohmann::json& fault) {
  Reply r = Post("/admin/fault", fault.dump());
  if (r.status != 200) throw std::runtime_error("wxsim fault rejected: " + r.body);
}

void WxSim::ClearFaults() {
  auto res = client().Delete("/admin/fault");
  if (!res || res->status != 200) throw std::runtime_error("wxsim clear faults failed");
}

void WxSim::Reset() {
  Reply r = Post("/admin/reset", "", "text/plain");
  if (r.status != 200) throw std::runtime_error("wxsim reset failed: " + r.body);
}

std::string WxSim::FetchToken(const std::string& appid, const std::string& secret) {
  httplib::Params params{{"grant_type", "client_credential"}, {"appid", appid}, {"secret", secret}};
  Reply r = Get(httplib::append_query_params("/cgi-bin/token", params));
  auto j = r.Json();
  if (r.status != 200 || !j.is_object() || !j.contains("access_token"))
    throw std::runtime_error("wxsim /cgi-bin/token failed: " + r.body);
  return j["access_token"].get<std::string>();
}

std::string WxSim::FetchStableToken(const std::string& appid, const std::string& secret,
                                    bool force_refresh) {
  nlohmann::json body{{"grant_type", "client_credential"},
                      {"appid", appid},
                      {"secret", secret},
                      {"force_refresh", force_refresh}};
  Reply r = Post("/cgi-bin/stable_token", body.dump());
  auto j = r.Json();
  if (r.status != 200 || !j.is_object() || !j.contains("access_token"))
    throw std::runtime_error("wxsim /cgi-bin/stable_token failed: " + r.body);
  return j["access_token"].get<std::string>();
}

}  // namespace wxcanary::testing
