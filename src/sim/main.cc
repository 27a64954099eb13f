// wxsim: a local simulator of the WeChat server API (see ../../README.md and
// /work/shared/wechat-api.md). Thin main: flags -> SimState + Server.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "sim/server.h"

namespace {

using wxcanary::sim::Limit;

// Splits "APPID:SECRET"; the secret is never echoed back in an error.
bool SplitApp(const std::string& spec, std::string& appid, std::string& secret,
              std::string& error) {
  auto colon = spec.find(':');
  if (colon == std::string::npos) {
    error = "expects APPID:SECRET, got '" + spec + "' (no ':')";
    return false;
  }
  appid = spec.substr(0, colon);
  secret = spec.substr(colon + 1);
  if (appid.empty()) error = "expects APPID:SECRET, got an empty APPID";
  else if (secret.empty()) error = "expects APPID:SECRET, got an empty SECRET for '" + appid + "'";
  return error.empty();
}

bool ParseLimit(const std::string& spec, std::map<std::string, Limit>& limits, bool minute,
                std::string& error) {
  auto eq = spec.rfind('=');
  std::string path = eq == std::string::npos ? "" : spec.substr(0, eq);
  std::string n = eq == std::string::npos ? "" : spec.substr(eq + 1);
  char* end = nullptr;
  long long v = std::strtoll(n.c_str(), &end, 10);
  if (path.empty() || path[0] != '/' || n.empty() || *end != '\0' || v < 0) {
    error = "expects PATH=N (e.g. /cgi-bin/stable_token=5), got '" + spec + "'";
    return false;
  }
  (minute ? limits[path].per_minute : limits[path].per_day) = v;
  return true;
}

int Fail(const std::string& message) {
  std::cerr << "wxsim: " << message << std::endl;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"wxsim: local simulator of the WeChat server API"};
  std::string listen = "127.0.0.1:0", port_file, apps_file, tls_cert, tls_key;
  std::vector<std::string> apps, risky_words, minute_limits, daily_limits;
  int64_t grace = 300, expires_in = 7200, token_quota = 2000, force_overlap = 0;
  double time_scale = 1.0;
  uint64_t seed = 0;
  int expired_errcode = 42001, threads = 32;
  cli.add_option("--listen", listen, "HOST:PORT, loopback only; port 0 picks a free one")
      ->capture_default_str();
  cli.add_option("--port-file", port_file, "write the bound port to this file");
  cli.add_option("--app", apps, "APPID:SECRET (repeatable)");
  cli.add_option("--apps-file", apps_file, "file with one APPID:SECRET per line")
      ->check(CLI::ExistingFile);
  cli.add_option("--grace", grace, "seconds the previous /cgi-bin/token token stays valid")
      ->check(CLI::Range(int64_t{0}, int64_t{86400}))
      ->capture_default_str();
  cli.add_option("--expires-in", expires_in, "token lifetime in seconds")
      ->check(CLI::Range(int64_t{1}, int64_t{864000}))
      ->capture_default_str();
  cli.add_option("--token-quota", token_quota, "daily /cgi-bin/token calls per AppId")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000}))
      ->capture_default_str();
  cli.add_option("--time-scale", time_scale, "sim seconds per real second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cli.add_option("--seed", seed, "token/rid generator seed (0: random)")->capture_default_str();
  cli.add_option("--risky-word", risky_words, "msg_sec_check flags content containing it");
  cli.add_option("--expired-errcode", expired_errcode, "answer for an expired token")
      ->check(CLI::IsMember({42001, 40014}))
      ->capture_default_str();
  cli.add_option("--force-refresh-overlap", force_overlap,
                 "seconds a stable token survives a force_refresh (0: dies at once)")
      ->check(CLI::Range(int64_t{0}, int64_t{7200}))
      ->capture_default_str();
  cli.add_option("--minute-limit", minute_limits, "PATH=N per-minute limit per AppId (0: none)");
  cli.add_option("--daily-limit", daily_limits, "PATH=N daily limit per AppId (0: none)");
  cli.add_option("--threads", threads, "HTTP worker threads")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cli.add_option("--tls-cert", tls_cert, "PEM certificate: serve HTTPS")->check(CLI::ExistingFile);
  cli.add_option("--tls-key", tls_key, "PEM private key for --tls-cert")->check(CLI::ExistingFile);
  CLI11_PARSE(cli, argc, argv);

  if (tls_cert.empty() != tls_key.empty())
    return Fail("--tls-cert and --tls-key go together, got only " +
                std::string(tls_cert.empty() ? "--tls-key" : "--tls-cert"));

  wxcanary::sim::ServerOptions server_options;
  server_options.threads = threads;
  server_options.tls_cert = tls_cert;
  server_options.tls_key = tls_key;
  {
    auto colon = listen.rfind(':');
    std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
    std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
    if (host == "localhost") host = "127.0.0.1";
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (host.rfind("127.", 0) != 0 || port.empty() || *end != '\0' || p < 0 || p > 65535)
      return Fail("--listen must be a loopback 127.x.x.x:PORT, got '" + listen + "'");
    server_options.host = host;
    server_options.port = static_cast<int>(p);
  }

  wxcanary::sim::SimOptions options;
  options.grace = std::chrono::seconds{grace};
  options.expires_in = std::chrono::seconds{expires_in};
  // A short test lifetime would otherwise rotate the stable token on every call.
  options.stable_rotate_window =
      std::min(options.stable_rotate_window, std::chrono::seconds{expires_in / 2});
  options.expired_errcode = expired_errcode;
  options.force_refresh_overlap = std::chrono::seconds{force_overlap};
  options.risky_words = risky_words;
  options.seed = seed;
  options.limits["/cgi-bin/token"].per_day = token_quota;
  std::string error;
  for (const auto& l : minute_limits)
    if (!ParseLimit(l, options.limits, true, error)) return Fail("--minute-limit " + error);
  for (const auto& l : daily_limits)
    if (!ParseLimit(l, options.limits, false, error)) return Fail("--daily-limit " + error);

  std::vector<std::pair<std::string, std::string>> app_list;
  for (const auto& spec : apps) {
    std::string id, secret;
    if (!SplitApp(spec, id, secret, error)) return Fail("--app " + error);
    app_list.emplace_back(id, secret);
  }
  if (!apps_file.empty()) {
    std::ifstream in(apps_file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      std::string id, secret;
      if (!SplitApp(line, id, secret, error))
        return Fail("--apps-file " + apps_file + " line " + std::to_string(n) + " " + error);
      app_list.emplace_back(id, secret);
    }
  }
  if (app_list.empty()) return Fail("no apps: give --app APPID:SECRET or --apps-file PATH");

  // Block the stop signals before any thread starts so only the waiter below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a reset peer must not kill the simulator

  try {
    wxcanary::sim::SimClock clock(wxcanary::RealClock::Instance(), time_scale);
    wxcanary::sim::SimState state(options, clock);
    for (const auto& [id, secret] : app_list) state.AddApp(id, secret);
    wxcanary::sim::FaultTable faults;
    wxcanary::sim::Server server(state, clock, faults, server_options);
    int port = server.Bind();
    std::cout << "wxsim listening on " << server_options.host << ":" << port
              << (tls_cert.empty() ? "" : " (https)") << " with " << app_list.size() << " app(s)"
              << std::endl;
    // After the banner: whoever waits for the file can rely on the banner being out.
    if (!port_file.empty()) {
      // Written then renamed, so a reader never sees a half-written port.
      std::string tmp = port_file + ".tmp";
      std::ofstream(tmp) << port << "\n";
      std::filesystem::rename(tmp, port_file);
    }
    std::thread waiter([&server, stop_signals] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      // Exit from here: httplib's Run() joins its workers, which sit in idle keep-alive
      // connections for up to their timeout, so a SIGTERM would take seconds. Nothing to save.
      server.Stop();
      std::cout.flush();
      std::_Exit(0);
    });
    bool ok = server.Run();
    std::cout.flush();
    std::_Exit(ok ? 0 : 1);
  } catch (const std::exception& e) {
    return Fail(e.what());
  }
}
