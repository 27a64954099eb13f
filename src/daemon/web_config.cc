#include "daemon/web_config.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "common/fingerprint.h"
#include "common/quote.h"
#include "config/config.h"
#include "config/strict_yaml.h"

namespace wxcanary::daemon {
namespace {

// exporter-toolkit keys wxcanary recognises but does not implement: rejected with a pointer to
// the docs instead of "unknown key", and never silently ignored (a user who asks for client
// certificates must not get a server that accepts anyone).
const std::set<std::string> kUnsupportedTlsKeys = {
    "client_auth_type",   "client_ca_file", "cipher_suites",
    "curve_preferences",  "max_version",    "prefer_server_cipher_suites",
    "client_allowed_sans"};
const std::set<std::string> kUnsupportedTopKeys = {"http_server_config"};

// bcrypt hashes the first 72 bytes of a password and ignores the rest.
constexpr size_t kBcryptMaxPassword = 72;

// Compared against when the user is unknown, so a miss costs one bcrypt run like a hit.
constexpr const char* kDummyHash = "$2b$10$CjpvM0kCXVHheo8eeDEnf.CttEQRNV3mZ.9evJEdnJkO31DiKrJQa";

// Successful verifications kept; beyond this the cache starts over (a bound, not an LRU:
// real deployments have a handful of scrapers).
constexpr size_t kMaxCached = 1024;

using config::Fail;
using config::MapEntries;
using config::Scalar;

std::string ResolveFile(const std::string& value, const std::string& path,
                        const std::filesystem::path& base_dir) {
  if (value.empty()) Fail(path, "must not be empty");
  std::filesystem::path p(value);
  if (p.is_relative()) p = base_dir / p;
  std::ifstream in(p);
  if (!in) Fail(path, "cannot read file " + Quote(p.string()));
  return p.string();
}

void ParseTls(const YAML::Node& node, const std::filesystem::path& base_dir, WebConfig* out) {
  const std::string path = "tls_server_config";
  for (const auto& [key, value] : MapEntries(node, path)) {
    const std::string p = config::Child(path, key);
    if (key == "cert_file") {
      out->cert_file = ResolveFile(Scalar(value, p), p, base_dir);
    } else if (key == "key_file") {
      out->key_file = ResolveFile(Scalar(value, p), p, base_dir);
    } else if (key == "min_version") {
      std::string v = Scalar(value, p);
      if (v != "TLS12" && v != "TLS13")
        Fail(p, Quote(v) + " is not supported (expected TLS12 or TLS13)");
      out->min_version = v;
    } else if (kUnsupportedTlsKeys.count(key)) {
      Fail(path, "key " + Quote(key) + " is not supported by wxcanary (see docs/security.md)");
    } else {
      Fail(path, "unknown key " + Quote(key));
    }
  }
  if (out->cert_file.empty()) Fail(path + ".cert_file", "is required for TLS");
  if (out->key_file.empty()) Fail(path + ".key_file", "is required for TLS");
}

bool IsBcrypt(const std::string& hash) {
  // $2?$NN$ + 53 chars of salt and digest.
  return hash.size() == 60 &&
         (hash.compare(0, 4, "$2a$") == 0 || hash.compare(0, 4, "$2b$") == 0 ||
          hash.compare(0, 4, "$2y$") == 0) &&
         hash[6] == '$';
}

void ParseUsers(const YAML::Node& node, WebConfig* out) {
  const std::string path = "basic_auth_users";
  if (node.IsNull()) return;
  for (const auto& [user, value] : MapEntries(node, path)) {
    const std::string p = config::Child(path, user);
    if (user.empty()) Fail(path, "a user name is empty");
    if (user.find(':') != std::string::npos)
      Fail(path, "user name " + Quote(user) + " contains ':', which basic auth cannot carry");
    std::string hash = Scalar(value, p);
    // The hash itself stays out of the message: it is offline-crackable material.
    if (!IsBcrypt(hash)) Fail(p, "is not a bcrypt hash (expected $2a$, $2b$ or $2y$, 60 chars)");
    out->basic_auth_users[user] = hash;
  }
}

// crypt_r's state is 32 KiB: too big for a server thread's stack frame.
std::string Crypt(const std::string& password, const std::string& setting) {
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_r(password.c_str(), setting.c_str(), data.get());
  // libxcrypt returns "*0"/"*1" (never the input) on failure: treated as a mismatch.
  return h == nullptr || h[0] == '*' ? std::string() : std::string(h);
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

WebConfig ParseWebConfig(const std::string& yaml, const std::filesystem::path& base_dir) {
  // The config file's strict reading (config/strict_yaml.h), its errors as WebConfigError.
  try {
    const YAML::Node root = config::ParseYaml(yaml);
    WebConfig out;
    if (root.IsNull()) return out;  // an empty file: plain HTTP, as exporter-toolkit does
    for (const auto& [key, value] : MapEntries(root, config::kRootPath)) {
      if (key == "tls_server_config") {
        if (!value.IsNull()) ParseTls(value, base_dir, &out);
      } else if (key == "basic_auth_users") {
        ParseUsers(value, &out);
      } else if (kUnsupportedTopKeys.count(key)) {
        Fail(config::kRootPath,
             "key " + Quote(key) + " is not supported by wxcanary (see docs/security.md)");
      } else {
        Fail(config::kRootPath, "unknown key " + Quote(key));
      }
    }
    return out;
  } catch (const config::ConfigError& e) {
    throw WebConfigError(e.what());
  }
}

WebConfig LoadWebConfig(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw WebConfigError("cannot read file " + Quote(path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return ParseWebConfig(text.str(),
                        path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
}

std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

bool BasicAuth::CheckHeader(std::string_view authorization) {
  constexpr std::string_view kScheme = "Basic ";
  if (authorization.size() <= kScheme.size()) return false;
  // The scheme name is case-insensitive (RFC 7617).
  for (size_t i = 0; i + 1 < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i])))
      return false;
  if (authorization[kScheme.size() - 1] != ' ') return false;
  auto decoded = DecodeBase64(authorization.substr(kScheme.size()));
  if (!decoded) return false;
  auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  return Verify(decoded->substr(0, colon), decoded->substr(colon + 1));
}

bool BasicAuth::Verify(const std::string& user, const std::string& password) {
  // crypt_r reads C strings and bcrypt only the first 72 bytes: "right\0anything" and
  // "<right 72 bytes>anything" would verify as the right password. Neither can be one.
  if (user.find('\0') != std::string::npos || password.find('\0') != std::string::npos ||
      password.size() > kBcryptMaxPassword) {
    return false;
  }
  auto it = users_.find(user);
  const bool known = it != users_.end();
  const std::string& hash = known ? it->second : std::string(kDummyHash);
  // NUL-separated so ("ab","c") and ("a","bc") cannot collide.
  std::string key = Sha256Hex(user + '\0' + hash + '\0' + password);
  {
    std::lock_guard lock(mu_);
    if (known && verified_.count(key)) return true;
    ++bcrypt_runs_;
  }
  // Outside the lock: one slow verification must not serialise every scrape.
  bool ok = ConstantTimeEquals(Crypt(password, hash), hash) && known;
  if (ok) {
    std::lock_guard lock(mu_);
    if (verified_.size() >= kMaxCached) verified_.clear();
    verified_.insert(key);
  }
  return ok;
}

size_t BasicAuth::bcrypt_runs() const {
  std::lock_guard lock(mu_);
  return bcrypt_runs_;
}

}  // namespace wxcanary::daemon
