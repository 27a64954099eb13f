#include "systemd/notify_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace wxcanary::testing {

bool NotifySocket::Message::Has(std::string_view assignment) const {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line == assignment) return true;
  return false;
}

std::optional<std::string> NotifySocket::Message::Get(std::string_view var) const {
  std::istringstream in(text);
  std::string line;
  std::string prefix = std::string(var) + "=";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  return std::nullopt;
}

NotifySocket::NotifySocket(std::function<void(const Message&)> hook)
    : path_(dir_.path() / "notify"), hook_(std::move(hook)) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.string().size() >= sizeof addr.sun_path)
    throw std::runtime_error("notify socket path too long: " + path_.string());
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  // The cast is what the sockets API asks for.
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error("bind " + path_.string() + ": " + std::strerror(errno));
  }
  // systemd identifies the sender by its credentials; so do we (the daemon's pid).
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  reader_ = std::thread([this] { ReadLoop(); });
}

NotifySocket::~NotifySocket() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  reader_.join();
  ::close(fd_);
}

void NotifySocket::ReadLoop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) continue;
    Message m{std::chrono::steady_clock::now(), -1, std::string(buf, static_cast<size_t>(n))};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        m.pid = cred.pid;
      }
    }
    if (hook_) hook_(m);
    {
      std::lock_guard lock(mu_);
      messages_.push_back(std::move(m));
    }
    cv_.notify_all();
  }
}

std::vector<NotifySocket::Message> NotifySocket::Messages() const {
  std::lock_guard lock(mu_);
  return messages_;
}

std::optional<size_t> NotifySocket::WaitFor(std::string_view assignment, size_t from,
                                            std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::optional<size_t> found;
  cv_.wait_for(lock, timeout, [&] {
    for (size_t i = from; i < messages_.size(); ++i) {
      if (messages_[i].Has(assignment)) {
        found = i;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::vector<NotifySocket::Message> NotifySocket::Between(std::string_view assignment,
                                                         TimePoint begin, TimePoint end) const {
  std::lock_guard lock(mu_);
  std::vector<Message> out;
  for (const auto& m : messages_)
    if (m.at >= begin && m.at < end && m.Has(assignment)) out.push_back(m);
  return out;
}

}  // namespace wxcanary::testing
