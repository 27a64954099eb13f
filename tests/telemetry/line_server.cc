#include "telemetry/line_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <stdexcept>

namespace wxcanary::testing {

LineServer::LineServer(Options options) : options_(options), stalled_(options.stalled) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (options_.rcvbuf > 0) {
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &options_.rcvbuf, sizeof options_.rcvbuf);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(options_.port));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("LineServer: bind/listen failed on port " +
                             std::to_string(options_.port));
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
}

LineServer::~LineServer() { Stop(); }

void LineServer::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> LineServer::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::vector<std::string> LineServer::fragments() const {
  std::lock_guard lock(mu_);
  return fragments_;
}

void LineServer::Run() {
  std::map<int, std::string> conns;  // fd -> partial line
  while (!stop_.load()) {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    if (!stalled_.load())
      for (auto& [fd, buf] : conns) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        conns.emplace(fd, std::string{});
        accepted_.fetch_add(1);
      }
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
      auto& partial = conns[fds[i].fd];
      if (n <= 0) {
        if (!partial.empty()) {
          std::lock_guard lock(mu_);
          fragments_.push_back(partial);
        }
        ::close(fds[i].fd);
        conns.erase(fds[i].fd);
        continue;
      }
      partial.append(buf, static_cast<size_t>(n));
      std::lock_guard lock(mu_);
      for (size_t nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
        lines_.push_back(partial.substr(0, nl));
        partial.erase(0, nl + 1);
      }
    }
  }
  for (auto& [fd, buf] : conns) ::close(fd);
  ::close(listen_fd_);
}

}  // namespace wxcanary::testing
