#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>

namespace wxcanary::daemon {

/// A web config that cannot be used. what() is one line naming the key and the offending value
/// (never a password hash), e.g. `tls_server_config: unknown key "client_auth_typ"`.
class WebConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The subset of the Prometheus exporter-toolkit web config wxcanary serves (see
/// docs/security.md). Empty = plain HTTP without auth, as without --web.config.file.
struct WebConfig {
  std::string cert_file;    // tls_server_config.cert_file (absolute after loading)
  std::string key_file;     // tls_server_config.key_file
  std::string min_version;  // "" (OpenSSL default, TLS 1.2 here), "TLS12" or "TLS13"
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash

  [[nodiscard]] bool tls() const { return !cert_file.empty(); }
  [[nodiscard]] bool auth() const { return !basic_auth_users.empty(); }
};

/// Reads and validates an exporter-toolkit web config file; relative paths resolve against the
/// file's directory, and the certificate/key files must exist. Throws WebConfigError.
/// Thread-safe (no shared state).
WebConfig LoadWebConfig(const std::filesystem::path& path);

/// As LoadWebConfig, from text.
WebConfig ParseWebConfig(const std::string& yaml, const std::filesystem::path& base_dir = ".");

/// Checks HTTP basic credentials against bcrypt hashes (libcrypt's crypt_r: $2a$, $2b$, $2y$).
/// Successful verifications are cached, keyed by SHA-256 of user, hash and password, because
/// bcrypt costs tens of milliseconds per call by design and Prometheus scrapes every few seconds.
/// Thread-safe.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);

  /// True when `authorization` is an HTTP "Basic <base64(user:password)>" header value naming
  /// a configured user with the right password.
  bool CheckHeader(std::string_view authorization);
  /// True when `password` matches `user`'s hash. Unknown users cost one bcrypt run too, so
  /// timing does not tell which user names exist.
  bool Verify(const std::string& user, const std::string& password);

  /// bcrypt runs so far (cache misses), for tests of the cache.
  [[nodiscard]] size_t bcrypt_runs() const;

 private:
  std::map<std::string, std::string> users_;
  mutable std::mutex mu_;
  std::unordered_set<std::string> verified_;  // cache keys of successful verifications
  size_t bcrypt_runs_ = 0;
};

/// Decodes standard base64 (with or without padding); nullopt on any invalid character. Pure.
std::optional<std::string> DecodeBase64(std::string_view in);

}  // namespace wxcanary::daemon
