#pragma once

#include <memory>
#include <string>

#include "sim/faults.h"
#include "sim/sim_clock.h"
#include "sim/sim_state.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace wxcanary::sim {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                   // 0: any free port (Bind() returns it)
  int threads = 32;               // keep-alive connections each hold one while open
  std::string tls_cert, tls_key;  // both set: HTTPS
};

/// wxsim's HTTP(S) front: the WeChat API paths go to SimState (after FaultTable), /admin/* drives
/// the simulator. Bind/Run/Stop are meant for one owner thread; Stop() may come from any thread.
class Server {
 public:
  /// state, clock and faults must outlive the server. Throws std::runtime_error if TLS files
  /// cannot be loaded.
  Server(SimState& state, SimClock& clock, FaultTable& faults, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds the listening socket and returns the port. Throws std::runtime_error naming the
  /// address when it cannot bind.
  int Bind();
  /// Serves until Stop(). False if the server failed.
  bool Run();
  void Stop();

 private:
  void HandleApi(const httplib::Request& req, httplib::Response& res);
  void HandleAdmin(const httplib::Request& req, httplib::Response& res);

  SimState& state_;
  SimClock& clock_;
  FaultTable& faults_;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  int listen_fd_ = -1;  // the listening socket, owned by http_
};

/// Makes the peer see a TCP reset on the connection that carried req (no HTTP answer at all).
/// Finds the socket by its local/remote ports. Returns false if it was not found.
bool AbortConnection(const httplib::Request& req);

}  // namespace wxcanary::sim
