#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace wxcanary::testing {

/// A loopback TCP port that was free a moment ago and that no other caller, in this process or
/// another test process, gets until this process exits (a lock file per port); taken from below
/// the kernel's ephemeral range, so no bind(0) or outgoing connection takes it meanwhile.
int FreePort();

/// Polls until something accepts TCP connections on 127.0.0.1:port. False on timeout.
bool WaitForPort(int port, std::chrono::milliseconds timeout = std::chrono::seconds{10});

/// A fresh directory under $TMPDIR removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A child process, stdout+stderr captured to a file. Killed (SIGKILL after SIGTERM grace) when
/// destroyed. Not thread-safe.
class Subprocess {
 public:
  /// argv[0] is the program (absolute path or looked up in PATH); env entries "K=V" are added.
  Subprocess(std::vector<std::string> argv, std::filesystem::path log_file,
             std::vector<std::string> env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running();
  /// Sends sig; does not wait.
  void Signal(int sig);
  /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status as from waitpid
  /// (use WIFEXITED etc.), or -1 if it was already reaped.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds{5});
  /// Waits for exit up to timeout. Returns the waitpid status or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  /// Everything the process wrote so far.
  [[nodiscard]] std::string Output() const;
  [[nodiscard]] const std::filesystem::path& log_file() const { return log_file_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::filesystem::path log_file_;
};

/// Path of a binary built by this project (wxcanary, wxsim), from $WXCANARY_BIN_DIR.
std::filesystem::path BuiltBinary(const std::string& name);

/// Runs `command` with /bin/sh and returns what it printed (stdout and stderr together).
/// Throws when the shell cannot be started.
std::string ShellOutput(const std::string& command);

/// The source tree: $WXCANARY_SOURCE_DIR, else the tree this test binary was built from.
std::filesystem::path SourceDir();

}  // namespace wxcanary::testing
