#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace wxcanary::testing {

namespace {

// The ports FreePort hands out: the 12,000 below the kernel's ephemeral range (Linux default
// 32768-60999), which neither bind(0) nor an outgoing connection ever takes.
std::pair<int, int> PortRange() {
  int low = 32768;
  if (std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range"); f) f >> low;
  const int last = std::max(low - 1, 13000);
  return {last - 11999, last};
}

bool CanBind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  // Under `ctest -j` many test processes pick ports at once, and a port released by bind(0)
  // can be handed to another of them before our server binds it. So each port comes with a
  // lock file held (flock, per open file) until this process exits: no two test processes,
  // and no two calls in one, get the same port; and the range is outside the ephemeral one.
  static std::mutex mu;
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string d = std::string(base && *base ? base : "/tmp") + "/wxcanary-test-ports";
    // Shared by every user's test runs, like /tmp itself (mkdir's mode is cut by the umask).
    if (::mkdir(d.c_str(), 01777) == 0) ::chmod(d.c_str(), 01777);
    // One another user left without write access for us: ours apart.
    if (::access(d.c_str(), W_OK) != 0) {
      d += "-" + std::to_string(::getuid());
      ::mkdir(d.c_str(), 0700);
    }
    return d;
  }();
  const auto [first, last] = PortRange();
  const int span = last - first + 1;
  std::lock_guard lock(mu);
  static int next = static_cast<int>(std::random_device{}() % static_cast<unsigned>(span));
  for (int tries = 0; tries < span; ++tries) {
    const int port = first + (next++ % span);
    const std::string path = dir + "/" + std::to_string(port);
    const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (fd < 0) continue;  // another user's lock file: that port is theirs
    ::fchmod(fd, 0666);    // (when we made it) so that other users can lock it too
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && CanBind(port)) return port;  // fd stays open
    ::close(fd);
  }
  throw std::runtime_error("FreePort: no free port in " + std::to_string(first) + "-" +
                           std::to_string(last));
}

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return false;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base ? base : "/tmp") + "/wxcanary-test-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Subprocess::Subprocess(std::vector<std::string> argv, std::filesystem::path log_file,
                       std::vector<std::string> env)
    : log_file_(std::move(log_file)) {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::setpgid(0, 0);
    for (auto& e : env) ::putenv(e.data());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
}

Subprocess::~Subprocess() { Stop(std::chrono::seconds{2}); }

bool Subprocess::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    pid_ = -1;
    return false;
  }
  return true;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return status_;
}

int Subprocess::Stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  Signal(SIGTERM);
  if (Wait(grace) == -1 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status_ = st;
    pid_ = -1;
  }
  return status_;
}

std::string Subprocess::Output() const {
  std::ifstream in(log_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path BuiltBinary(const std::string& name) {
  const char* dir = std::getenv("WXCANARY_BIN_DIR");
  if (!dir) throw std::runtime_error("WXCANARY_BIN_DIR is not set (run through ctest)");
  std::filesystem::path p = std::filesystem::path(dir) / name;
  if (std::filesystem::exists(p)) return p;
  return std::filesystem::path(dir) / "sim" / name;
}

std::string ShellOutput(const std::string& command) {
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (f == nullptr) throw std::runtime_error("popen failed: " + command);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

std::filesystem::path SourceDir() {
  // ctest sets it; the built-in default serves test discovery (gtest_discover_tests runs the
  // binary without the tests' environment) and a binary run by hand from this tree.
  const char* dir = std::getenv("WXCANARY_SOURCE_DIR");
  return dir != nullptr ? dir : WXCANARY_DEFAULT_SOURCE_DIR;
}

}  // namespace wxcanary::testing
