#pragma once

// Test-time key material for tests/security: nothing secret or long-lived is checked in.

#include <crypt.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace wxcanary::testing {

struct CertFiles {
  std::filesystem::path cert;
  std::filesystem::path key;
};

/// A self-signed P-256 certificate for 127.0.0.1 (as SAN, so hostname checks pass), made
/// with the openssl CLI in `dir`. Throws when openssl fails.
inline CertFiles MakeSelfSignedCert(const std::filesystem::path& dir, const std::string& name) {
  CertFiles f{dir / (name + ".crt"), dir / (name + ".key")};
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
      " -keyout '" +
      f.key.string() + "' -out '" + f.cert.string() + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed: " + cmd);
  return f;
}

/// A bcrypt ($2b$) hash of `password` made in-process with libxcrypt. Cost 4 keeps tests fast;
/// the daemon verifies any cost.
inline std::string BcryptHash(const std::string& password, int cost = 4) {
  auto data = std::make_unique<crypt_data>();
  const char* salt = crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0,
                                      data->setting, sizeof data->setting);
  if (salt == nullptr) throw std::runtime_error("crypt_gensalt_rn failed");
  std::string setting = salt;
  const char* hash = crypt_r(password.c_str(), setting.c_str(), data.get());
  if (hash == nullptr || hash[0] == '*') throw std::runtime_error("crypt_r failed");
  return hash;
}

}  // namespace wxcanary::testing
