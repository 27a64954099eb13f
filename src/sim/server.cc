#include "sim/server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace wxcanary::sim {
namespace {

using nlohmann::json;

constexpr const char* kJsonType = "application/json; encoding=utf-8";
constexpr size_t kMaxPayload = 8 * 1024 * 1024;  // v1 content is up to 500 KB

int PortOf(const sockaddr_storage& sa) {
  if (sa.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&sa)->sin_port);
  if (sa.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&sa)->sin6_port);
  return -1;
}

void AdminJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), kJsonType);
}

void AdminError(httplib::Response& res, int status, const std::string& message) {
  AdminJson(res, status, json{{"error", message}});
}

ApiRequest ToApiRequest(const httplib::Request& req) {
  ApiRequest api;
  api.method = req.method;
  api.path = req.path;
  for (const auto& [k, v] : req.params) api.query.emplace(k, v);
  api.body = req.body;
  api.client_ip = req.remote_addr;
  return api;
}

}  // namespace

bool AbortConnection(const httplib::Request& req) {
  // httplib 0.11 gives handlers no socket handle, so find ours by its address pair.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = std::atoi(entry.path().filename().c_str());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t llen = sizeof local, plen = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0) continue;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) continue;
    if (PortOf(local) != req.local_port || PortOf(peer) != req.remote_port) continue;
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    // connect(AF_UNSPEC) on a connected TCP socket disconnects it with a RST (Linux); httplib's
    // later write then fails and it closes the descriptor it still owns.
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    ::connect(fd, &unspec, sizeof unspec);
    return true;
  }
  return false;
}

Server::Server(SimState& state, SimClock& clock, FaultTable& faults, ServerOptions options)
    : state_(state), clock_(clock), faults_(faults), options_(std::move(options)) {
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    auto ssl =
        std::make_unique<httplib::SSLServer>(options_.tls_cert.c_str(), options_.tls_key.c_str());
    if (!ssl->is_valid())
      throw std::runtime_error("cannot load --tls-cert '" + options_.tls_cert + "' / --tls-key '" +
                               options_.tls_key + "'");
    http_ = std::move(ssl);
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  size_t threads = static_cast<size_t>(std::max(1, options_.threads));
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_keep_alive_max_count(100'000);
  http_->set_keep_alive_timeout(5);
  http_->set_payload_max_length(kMaxPayload);
  http_->set_tcp_nodelay(true);
  // cpp-httplib 0.11 listens with a backlog of 5 (compiled into Debian's libcpp-httplib), so a
  // client opening more connections at once than the accept thread drains saw SYNs dropped and
  // a 1 s retransmit (a probe's "Connection timed out" on loopback). Remember the socket; Bind()
  // raises its backlog.
  http_->set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = sock;
  });

  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    try {
      if (req.path.rfind("/admin/", 0) == 0) {
        HandleAdmin(req, res);
      } else {
        HandleApi(req, res);
      }
    } catch (const std::exception&) {
      // Never let a bad request take a worker down; answer like the platform's busy signal.
      res.status = 200;
      res.set_content(R"({"errcode":-1,"errmsg":"system error"})", kJsonType);
    }
  };
  const std::string any = ".*";
  http_->Get(any, handler);
  http_->Post(any, handler);
  http_->Put(any, handler);
  http_->Patch(any, handler);
  http_->Delete(any, handler);
  http_->Options(any, handler);
  // Requests httplib itself rejects (bad request line, unknown method, oversize body) still get a
  // WeChat-shaped body.
  httplib::Server::HandlerWithResponse on_error = [this](const httplib::Request& req,
                                                         httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiResponse err = state_.InjectedError(ToApiRequest(req), -1);
    res.set_content(err.body, kJsonType);
    return httplib::Server::HandlerResponse::Handled;
  };
  http_->set_error_handler(std::move(on_error));
}

Server::~Server() = default;

int Server::Bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port < 0) port = -1;
  } else if (!http_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port <= 0)
    throw std::runtime_error("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port));
  // Linux lets listen() on a listening socket change its backlog (capped at somaxconn).
  if (listen_fd_ >= 0 && ::listen(listen_fd_, SOMAXCONN) != 0)
    throw std::runtime_error("cannot raise the listen backlog on " + options_.host + ":" +
                             std::to_string(port));
  return port;
}

bool Server::Run() { return http_->listen_after_bind(); }

void Server::Stop() { http_->stop(); }

void Server::HandleApi(const httplib::Request& req, httplib::Response& res) {
  ApiRequest api = ToApiRequest(req);
  std::optional<Fault> fault = faults_.Take(req.path);
  if (fault) {
    if (fault->latency_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{fault->latency_ms});
    if (fault->reset) {
      AbortConnection(req);
      res.status = 500;
      res.set_content("connection reset", "text/plain");
      return;
    }
    if (fault->http_status != 0) {
      res.status = fault->http_status;
      res.set_content("<html><head><title>" + std::to_string(fault->http_status) +
                          "</title></head><body>wxsim injected fault</body></html>",
                      "text/html");
      return;
    }
    if (fault->errcode) {
      res.set_content(state_.InjectedError(api, *fault->errcode).body, kJsonType);
      return;
    }
    if (fault->body == Fault::Body::kGarbage) {
      res.set_content("<html><body>502 Bad Gateway</body></html>\x01\xff{not json", kJsonType);
      return;
    }
  }
  ApiResponse resp = state_.Handle(api);
  if (fault && fault->body == Fault::Body::kTruncated) resp.body.resize(resp.body.size() / 2);
  res.set_content(resp.body, kJsonType);
}

void Server::HandleAdmin(const httplib::Request& req, httplib::Response& res) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  if (p == "/admin/advance" && m == "POST") {
    std::string raw = req.get_param_value("seconds");
    char* end = nullptr;
    double s = std::strtod(raw.c_str(), &end);
    if (raw.empty() || end != raw.c_str() + raw.size() || !std::isfinite(s) || s < 0 || s > 1e10)
      return AdminError(res, 400, "advance: \"seconds\" must be a number >= 0, got '" + raw + "'");
    clock_.Advance(std::chrono::nanoseconds{static_cast<int64_t>(s * 1e9)});
    auto now = clock_.SystemNow();
    return AdminJson(
        res, 200,
        json{{"ok", true},
             {"sim_time", std::chrono::duration<double>(now.time_since_epoch()).count()}});
  }
  if (p == "/admin/state" && m == "GET") {
    json state = state_.StateJson();
    state["time_scale"] = clock_.time_scale();
    state["offset_seconds"] = std::chrono::duration<double>(clock_.offset()).count();
    state["faults"] = faults_.ToJson();
    return AdminJson(res, 200, state);
  }
  if (p == "/admin/fault" && m == "POST") {
    json body = json::parse(req.body, nullptr, false);
    auto parsed = ParseFault(body.is_discarded() ? json() : body);
    if (auto* err = std::get_if<std::string>(&parsed)) return AdminError(res, 400, *err);
    Fault f = std::get<Fault>(std::move(parsed));
    json shown = FaultToJson(f);
    faults_.Set(std::move(f));
    return AdminJson(res, 200, json{{"ok", true}, {"fault", shown}});
  }
  if (p == "/admin/fault" && m == "DELETE") {
    faults_.Clear();
    return AdminJson(res, 200, json{{"ok", true}});
  }
  if (p == "/admin/reset" && m == "POST") {
    state_.Reset();
    faults_.Clear();
    return AdminJson(res, 200, json{{"ok", true}});
  }
  if (p == "/admin/health" && m == "GET") return AdminJson(res, 200, json{{"ok", true}});
  AdminError(res, 404, "unknown admin endpoint: " + m + " " + p);
}

}  // namespace wxcanary::sim
