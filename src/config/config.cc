#include "config/config.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "common/quote.h"
#include "common/duration.h"
#include "common/fingerprint.h"
#include "common/jdk_string.h"
#include "config/strict_yaml.h"

namespace wxcanary::config {

namespace {

// Named defaults live in config.h (member initializers); these are the limits validation
// enforces, kept together so the error messages and the checks cannot drift apart.
constexpr int kMaxWorkers = 256;
constexpr int kMaxRedisDb = 15;
constexpr milliseconds kMinQuotaPollInterval{600'000};  // quota/get itself is rate-limited
constexpr milliseconds kTokenLifetime{7'200'000};       // expires_in of every access_token

// Keys an environment may set and `defaults:` may provide for all of them.
constexpr std::string_view kInheritableKeys[] = {
    "storage",      "json_path", "hash_field", "probe",        "content",
    "openid",       "scene",     "interval",   "timeout",      "heal",
    "heal_refresh", "sdk",       "encoding",   "key_encoding", "expiry_path",
    "expiry_key",   "keep",      "owner",      "keep_dry_run",
};
constexpr std::string_view kEnvOnlyKeys[] = {"name", "redis", "key", "labels"};

int64_t Int(const YAML::Node& n, std::string_view path, int64_t lo, int64_t hi) {
  std::string text = Scalar(n, path);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    Fail(path, Quote(text) + " is not an integer");
  if (v < lo || v > hi)
    Fail(path, text + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  return v;
}

bool Bool(const YAML::Node& n, std::string_view path) {
  std::string text = Scalar(n, path);
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  Fail(path, Quote(text) + " is not a boolean (true or false)");
}

milliseconds Duration(const YAML::Node& n, std::string_view path) {
  std::string text = Scalar(n, path);
  auto d = ParseDuration(text);
  if (!d) Fail(path, Quote(text) + " is not a duration (e.g. 500ms, 30s, 5m, 1h30m)");
  return *d;
}

milliseconds PositiveDuration(const YAML::Node& n, std::string_view path) {
  milliseconds d = Duration(n, path);
  if (d <= milliseconds::zero()) Fail(path, Quote(Scalar(n, path)) + " must be greater than 0");
  return d;
}

// Integer bytes, or an integer with KiB, MiB or GiB.
int64_t Size(const YAML::Node& n, std::string_view path) {
  std::string text = Scalar(n, path);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string_view unit = std::string_view(text).substr(digits);
  int64_t scale = 0;
  if (unit.empty()) scale = 1;
  else if (unit == "KiB") scale = int64_t{1} << 10;
  else if (unit == "MiB") scale = int64_t{1} << 20;
  else if (unit == "GiB") scale = int64_t{1} << 30;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, v);
  if (digits == 0 || scale == 0 || ec != std::errc{} || end != text.data() + digits ||
      v > (int64_t{1} << 40) / scale)
    Fail(path, Quote(text) + " is not a size (bytes, or a number with KiB, MiB or GiB)");
  if (v == 0) Fail(path, Quote(text) + " must be greater than 0");
  return v * scale;
}

template <typename E, size_t N>
E Enum(const YAML::Node& n, std::string_view path,
       const std::pair<std::string_view, E> (&table)[N]) {
  std::string text = Scalar(n, path);
  for (const auto& [name, value] : table)
    if (name == text) return value;
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.first);
  Fail(path, "unknown value " + Quote(text) + " (expected " + JoinOr(names) + ")");
}

constexpr std::pair<std::string_view, Storage> kStorages[] = {
    {"string", Storage::kString}, {"json", Storage::kJson}, {"hash", Storage::kHash}};
constexpr std::pair<std::string_view, Encoding> kEncodings[] = {
    {"auto", Encoding::kAuto},
    {"plain", Encoding::kPlain},
    {"json_string", Encoding::kJsonString},
    {"jdk", Encoding::kJdk},
    {"php", Encoding::kPhp}};
constexpr std::pair<std::string_view, KeyEncoding> kKeyEncodings[] = {
    {"plain", KeyEncoding::kPlain}, {"jdk", KeyEncoding::kJdk}};
constexpr std::pair<std::string_view, HealMode> kHealModes[] = {
    {"off", HealMode::kOff}, {"dry_run", HealMode::kDryRun}, {"evict", HealMode::kEvict}};
constexpr std::pair<std::string_view, KeepMode> kKeepModes[] = {{"off", KeepMode::kOff},
                                                                {"stable", KeepMode::kStable}};
// A stable token rotates in its last 5 minutes: only then can the keeper fetch the next one.
constexpr milliseconds kStableRotateWindow{300'000};
constexpr std::pair<std::string_view, LogSink::Kind> kSinkKinds[] = {
    {"stdout", LogSink::Kind::kStdout},
    {"file", LogSink::Kind::kFile},
    {"tcp", LogSink::Kind::kTcp}};

// The kinds and their names are the table's (src/wechat/probe_kinds.cc).
ProbeKind ProbeKindValue(const YAML::Node& n, std::string_view path) {
  const std::string text = Scalar(n, path);
  if (const wechat::ProbeKindEntry* k = wechat::FindProbeKind(text)) return k->kind;
  std::vector<std::string> names;
  for (const auto& k : wechat::ProbeKinds()) names.emplace_back(k.name);
  Fail(path, "unknown value " + Quote(text) + " (expected " + JoinOr(names) + ")");
}

bool IsNameChar(char c, bool first) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return alpha || (!first && c >= '0' && c <= '9');
}

// App ids and environment names end up in Redis keys and label values: keep them plain.
void CheckIdentifier(std::string_view value, std::string_view path) {
  if (value.empty()) Fail(path, "must not be empty");
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) Fail(path, Quote(value) + " may contain only letters, digits, '_', '-' and '.'");
  }
}

// "host:port" or "[v6]:port". False on anything else.
bool ParseHostPort(std::string_view text, std::string* host, int* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = text.substr(0, colon);
  std::string_view p = text.substr(colon + 1);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return false;  // an unbracketed IPv6 address is ambiguous
  }
  for (char c : h)
    if (c == ' ' || c == '/' || c == '[' || c == ']') return false;
  int v = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v < 1 || v > 65535)
    return false;
  *host = std::string(h);
  *port = v;
  return true;
}

std::filesystem::path Resolve(const std::filesystem::path& base_dir, const std::string& p) {
  std::filesystem::path path(p);
  return path.is_absolute() ? path : base_dir / path;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// The whole file, or nullopt with `error` set to the reason (strerror text). Secrets, CA
// bundles and configs are small; the cap stops a mistaken path (a device, a log) early.
std::optional<std::string> ReadSmallFile(const std::filesystem::path& path, std::string* error) {
  constexpr size_t kMaxBytes = 16 * 1024 * 1024;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  std::string data;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    data.append(buf, n);
    if (data.size() > kMaxBytes) {
      *error = "larger than 16 MiB";
      return std::nullopt;
    }
  }
  if (std::ferror(f.get())) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  return data;
}

// As ReadSmallFile; the error names the file as the user wrote it (`shown`).
std::string ReadFileOrFail(const std::filesystem::path& path, std::string_view shown,
                           std::string_view key_path) {
  std::string error;
  auto data = ReadSmallFile(path, &error);
  if (!data) Fail(key_path, "cannot read " + Quote(shown) + ": " + error);
  return std::move(*data);
}

// Reads a secret from where `ref` points. `key_path` names the key that set it (e.g.
// "redis.prod.password_file"); errors name the file or variable, never the content.
Secret ResolveSecret(const SecretRef& ref, std::string_view key_path,
                     const std::filesystem::path& base_dir) {
  std::string value;
  switch (ref.kind) {
    case SecretRef::Kind::kNone: return Secret{};
    case SecretRef::Kind::kEnv: {
      const char* v = std::getenv(ref.name.c_str());
      if (!v) Fail(key_path, "environment variable " + Quote(ref.name) + " is not set");
      value = v;
      if (value.empty()) Fail(key_path, "environment variable " + Quote(ref.name) + " is empty");
      return Secret(std::move(value));
    }
    case SecretRef::Kind::kFile:
      value = ReadFileOrFail(Resolve(base_dir, ref.name), ref.name, key_path);
      break;
    case SecretRef::Kind::kCredential: {
      // systemd LoadCredential=: the unit's credentials appear as files in this directory.
      const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
      if (!dir || !*dir)
        // Typically `--config.check` run by hand: say how to supply the directory.
        Fail(key_path, "credential " + Quote(ref.name) +
                           " needs $CREDENTIALS_DIRECTORY, which is not set (systemd sets it from "
                           "LoadCredential=; to check by hand: CREDENTIALS_DIRECTORY=DIR wxcanary "
                           "--config.check, DIR holding one file per credential name)");
      value = ReadFileOrFail(std::filesystem::path(dir) / ref.name,
                             std::string(dir) + "/" + ref.name, key_path);
      break;
    }
  }
  // Editors and `echo` add a trailing newline that is never part of the secret.
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.empty()) Fail(key_path, Quote(ref.name) + " is empty");
  return Secret(std::move(value));
}

// `<prefix>_file`, `<prefix>_env`, `<prefix>_credential`: at most one. Returns the key used.
std::string DecodeSecretRef(const YAML::Node& node, std::string_view path, std::string_view prefix,
                            SecretRef* ref) {
  static constexpr std::pair<std::string_view, SecretRef::Kind> kinds[] = {
      {"_file", SecretRef::Kind::kFile},
      {"_env", SecretRef::Kind::kEnv},
      {"_credential", SecretRef::Kind::kCredential}};
  std::string used;
  for (const auto& [suffix, kind] : kinds) {
    std::string key = std::string(prefix) + std::string(suffix);
    if (!node[key]) continue;
    if (!used.empty()) Fail(path, used + " and " + key + " are both set (use one)");
    std::string value = Scalar(node[key], Child(path, key));
    if (value.empty()) Fail(Child(path, key), "must not be empty");
    if (kind == SecretRef::Kind::kCredential &&
        (value.find('/') != std::string::npos || value == "." || value == ".."))
      Fail(Child(path, key), Quote(value) + " is not a credential name");
    ref->kind = kind;
    ref->name = value;
    used = key;
  }
  return used;
}

// ---------------------------------------------------------------------------------------------

void DecodeWeChat(const YAML::Node& node, const std::filesystem::path& base_dir, WeChat* out) {
  const std::string path = "wechat";
  for (const auto& [key, value] : CheckedMap(node, path, {"base_url", "ca_file", "timeout"})) {
    std::string p = Child(path, key);
    if (key == "base_url") {
      std::string url = Scalar(value, p);
      std::string_view rest;
      if (url.rfind("https://", 0) == 0) rest = std::string_view(url).substr(8);
      else if (url.rfind("http://", 0) == 0) rest = std::string_view(url).substr(7);
      else Fail(p, Quote(url) + " must start with http:// or https://");
      if (rest.empty() || rest.front() == '/') Fail(p, Quote(url) + " has no host");
      // Request paths are appended as "/cgi-bin/...".
      while (url.back() == '/') url.pop_back();
      out->base_url = url;
    } else if (key == "ca_file") {
      std::string file = Scalar(value, p);
      auto resolved = Resolve(base_dir, file);
      ReadFileOrFail(resolved, file, p);
      out->ca_file = resolved.string();
    } else if (key == "timeout") {
      out->timeout = PositiveDuration(value, p);
    }
  }
}

// A list of host:port (sentinels, cluster seeds) at `lp`.
std::vector<std::pair<std::string, int>> HostPortList(const YAML::Node& list,
                                                      const std::string& lp) {
  if (!list.IsSequence() || list.size() == 0) Fail(lp, "expected a non-empty list of host:port");
  std::vector<std::pair<std::string, int>> out;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string text = Scalar(list[i], Index(lp, i));
    std::pair<std::string, int> hp;
    if (!ParseHostPort(text, &hp.first, &hp.second))
      Fail(Index(lp, i), Quote(text) + " is not host:port");
    out.push_back(std::move(hp));
  }
  return out;
}

// sentinels: [host:port, ...], master_name, sentinel_password_*: a Sentinel-managed master.
void DecodeSentinel(const YAML::Node& node, const std::string& path,
                    const std::filesystem::path& base_dir, Redis* r) {
  const YAML::Node list = node["sentinels"];
  if (node["master_name"]) r->master_name = Scalar(node["master_name"], Child(path, "master_name"));
  if (!list) {
    if (node["master_name"]) Fail(Child(path, "master_name"), "needs sentinels");
    for (const char* k :
         {"sentinel_password_file", "sentinel_password_env", "sentinel_password_credential"})
      if (node[k]) Fail(Child(path, k), "needs sentinels");
    return;
  }
  const std::string lp = Child(path, "sentinels");
  if (!list.IsSequence() || list.size() == 0) Fail(lp, "expected a non-empty list of host:port");
  if (node["address"]) Fail(lp, "and address both set: a Sentinel names the master");
  r->sentinels = HostPortList(list, lp);
  if (r->master_name.empty()) Fail(Child(path, "master_name"), "required with sentinels");
  std::string used = DecodeSecretRef(node, path, "sentinel_password", &r->sentinel_password);
  if (!used.empty())
    r->sentinel_password_value = ResolveSecret(r->sentinel_password, Child(path, used), base_dir);
}

// cluster: [host:port, ...]: seed nodes of a Redis Cluster.
void DecodeCluster(const YAML::Node& node, const std::string& path, Redis* r) {
  const YAML::Node list = node["cluster"];
  if (!list) return;
  const std::string lp = Child(path, "cluster");
  if (!list.IsSequence() || list.size() == 0) Fail(lp, "expected a non-empty list of host:port");
  if (node["address"])
    Fail(lp, "and address both set: the cluster's nodes are found from the seeds");
  if (node["sentinels"]) Fail(lp, "and sentinels both set (use one)");
  if (r->db != 0)
    Fail(Child(path, "db"), std::to_string(r->db) + " with cluster: a Redis Cluster has only db 0");
  r->cluster = HostPortList(list, lp);
}

// The userinfo of a redis:// URL, or an address written as user:pass@host, shown without the
// password: "user:***@" (or "***@" when it has no ':').
std::string RedactedAddress(std::string_view text) {
  const size_t scheme = text.find("://");
  const size_t from = scheme == std::string_view::npos ? 0 : scheme + 3;
  const size_t at = text.rfind('@');
  if (at == std::string_view::npos || at < from) return std::string(text);
  std::string_view userinfo = text.substr(from, at - from);
  const size_t colon = userinfo.find(':');
  std::string shown =
      colon == std::string_view::npos ? "***" : std::string(userinfo.substr(0, colon)) + ":***";
  return std::string(text.substr(0, from)) + shown + std::string(text.substr(at));
}

// %XX escapes of a URL's user or password. False on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int v = 0;
    auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
    if (ec != std::errc{} || end != in.data() + i + 3) return false;
    out->push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

// What a redis:// URL set, so the keys it overlaps can be refused.
struct UrlParts {
  bool user = false;
  bool password = false;
  bool db = false;
};

// redis://[[user]:password@]host[:port][/db]. Errors show the URL with the password as ***.
UrlParts DecodeRedisUrl(const std::string& text, const std::string& p, Redis* r) {
  const std::string shown = Quote(RedactedAddress(text));
  if (text.rfind("rediss://", 0) == 0)
    Fail(p, shown +
                ": TLS to Redis is not supported (Debian 12's hiredis 0.14 has no TLS); "
                "run a local stunnel client and point address at it (README, Limits)");
  UrlParts parts;
  std::string_view rest = std::string_view(text).substr(8);  // after "redis://"
  const auto bad = [&](const std::string& why) {
    Fail(p, shown + " is not redis://[user:password@]host[:port][/db]: " + why);
  };
  if (rest.find_first_of("?#") != std::string_view::npos)
    bad("query and fragment are not supported");
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    std::string user;
    std::string password;
    if (!PercentDecode(userinfo.substr(0, colon), &user)) bad("bad %-escape in the user");
    if (colon != std::string_view::npos && !PercentDecode(userinfo.substr(colon + 1), &password))
      bad("bad %-escape in the password");
    if (!user.empty()) {
      r->username = user;
      parts.user = true;
    }
    if (!password.empty()) {
      r->password_value = Secret(std::move(password));
      parts.password = true;
    }
  }
  std::string_view hostport = rest;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      int v = -1;
      auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), v);
      if (ec != std::errc{} || end != db.data() + db.size() || v < 0 || v > kMaxRedisDb)
        bad("db must be 0.." + std::to_string(kMaxRedisDb));
      r->db = v;
      parts.db = true;
    }
  }
  if (hostport.empty()) bad("no host");
  // A bare host (or [v6]) takes the default port.
  const bool has_port = hostport.back() != ']' &&
                        hostport.find(':', hostport.front() == '[' ? hostport.find(']') : 0) !=
                            std::string_view::npos;
  const std::string hp = has_port ? std::string(hostport) : std::string(hostport) + ":6379";
  if (!ParseHostPort(hp, &r->host, &r->port)) bad("bad host or port");
  return parts;
}

void DecodeRedis(const std::string& name, const YAML::Node& node, const std::string& path,
                 const std::filesystem::path& base_dir, Redis* r) {
  r->name = name;
  auto entries = CheckedMap(
      node, path,
      {"address", "db", "username", "password_file", "password_env", "password_credential",
       "connect_timeout", "read_timeout", "sentinels", "master_name", "sentinel_password_file",
       "sentinel_password_env", "sentinel_password_credential", "cluster"});
  UrlParts url;
  for (const auto& [key, value] : entries) {
    std::string p = Child(path, key);
    if (key == "address") {
      std::string text = Scalar(value, p);
      if (text.rfind("redis://", 0) == 0 || text.rfind("rediss://", 0) == 0) {
        url = DecodeRedisUrl(text, p, r);
      } else if (text.rfind("unix:", 0) == 0) {
        std::string socket = text.substr(5);
        if (socket.empty() || socket.front() != '/')
          Fail(p, Quote(text) + " is not host:port, unix:/path or a redis:// URL");
        r->unix_socket = socket;
        r->host.clear();
        r->port = 0;
      } else if (!ParseHostPort(text, &r->host, &r->port)) {
        // Quoted without the password should the user have written user:pass@host:port.
        Fail(p, Quote(RedactedAddress(text)) + " is not host:port, unix:/path or a redis:// URL");
      }
    }
  }
  for (const auto& [key, value] : entries) {
    std::string p = Child(path, key);
    if (key == "db") {
      if (url.db) Fail(p, "and a db in the redis:// address both set (use one)");
      r->db = static_cast<int>(Int(value, p, 0, kMaxRedisDb));
    } else if (key == "username") {
      if (url.user) Fail(p, "and a user in the redis:// address both set (use one)");
      r->username = Scalar(value, p);
    } else if (key == "connect_timeout") {
      r->connect_timeout = PositiveDuration(value, p);
    } else if (key == "read_timeout") {
      r->read_timeout = PositiveDuration(value, p);
    }
  }
  std::string used = DecodeSecretRef(node, path, "password", &r->password);
  if (!used.empty() && url.password)
    Fail(Child(path, used), "and a password in the redis:// address both set (use one)");
  if (!used.empty()) r->password_value = ResolveSecret(r->password, Child(path, used), base_dir);
  DecodeSentinel(node, path, base_dir, r);
  DecodeCluster(node, path, r);
}

void DecodeConflict(const YAML::Node& node, Conflict* c) {
  const std::string path = "conflict";
  for (const auto& [key, value] :
       CheckedMap(node, path, {"window", "daily_quota", "quota_poll_interval"})) {
    std::string p = Child(path, key);
    if (key == "window") {
      c->window = PositiveDuration(value, p);
    } else if (key == "daily_quota") {
      c->daily_quota = static_cast<int>(Int(value, p, 1, 1'000'000'000));
    } else if (key == "quota_poll_interval") {
      milliseconds d = Duration(value, p);
      if (d < kMinQuotaPollInterval)
        Fail(p, Quote(Scalar(value, p)) + " is shorter than the minimum \"" +
                    FormatDuration(kMinQuotaPollInterval) + "\"");
      c->quota_poll_interval = d;
    }
  }
}

void DecodeHeal(const YAML::Node& node, Heal* h) {
  const std::string path = "heal";
  for (const auto& [key, value] :
       CheckedMap(node, path,
                  {"confirmations", "cooldown", "budget_per_hour", "lock_ttl", "refresh_margin"})) {
    std::string p = Child(path, key);
    if (key == "confirmations") {
      h->confirmations = static_cast<int>(Int(value, p, 1, 100));
    } else if (key == "cooldown") {
      h->cooldown = Duration(value, p);
    } else if (key == "budget_per_hour") {
      h->budget_per_hour = static_cast<int>(Int(value, p, 0, 100'000));
    } else if (key == "lock_ttl") {
      h->lock_ttl = PositiveDuration(value, p);
    } else if (key == "refresh_margin") {
      milliseconds d = Duration(value, p);
      if (d >= kTokenLifetime)
        Fail(p, Quote(Scalar(value, p)) + " is not shorter than the token lifetime \"" +
                    FormatDuration(kTokenLifetime) + "\"");
      h->refresh_margin = d;
    }
  }
}

void DecodeKeeper(const YAML::Node& node, Keeper* k) {
  const std::string path = "keeper";
  for (const auto& [key, value] :
       CheckedMap(node, path, {"interval", "margin", "lease_ttl", "force_refresh_on_dead"})) {
    std::string p = Child(path, key);
    if (key == "interval") k->interval = Duration(value, p);
    else if (key == "margin") k->margin = Duration(value, p);
    else if (key == "lease_ttl") k->lease_ttl = PositiveDuration(value, p);
    else if (key == "force_refresh_on_dead") k->force_refresh_on_dead = Bool(value, p);
  }
  // The next token can be fetched only in the old one's last 300 s; the key written with the old
  // one must outlive the first tick in that window, or it runs empty and the apps fetch their own.
  if (k->margin + k->interval >= kStableRotateWindow)
    Fail(Child(path, "margin"),
         Quote(FormatDuration(k->margin)) + " plus interval " + Quote(FormatDuration(k->interval)) +
             " is not shorter than the " + FormatDuration(kStableRotateWindow) +
             " in which a stable token rotates");
  // Every replica fetches once per interval: WeChat allows 10,000 a minute per AppId.
  if (k->interval < milliseconds{1000})
    Fail(Child(path, "interval"),
         Quote(FormatDuration(k->interval)) + " is shorter than the minimum \"1s\"");
  // The key must expire before the token it holds does, clocks being what they are.
  if (k->margin < milliseconds{10'000})
    Fail(Child(path, "margin"),
         Quote(FormatDuration(k->margin)) + " is shorter than the minimum \"10s\"");
  if (k->lease_ttl < milliseconds{300})
    Fail(Child(path, "lease_ttl"),
         Quote(FormatDuration(k->lease_ttl)) + " is shorter than the minimum \"300ms\"");
}

void DecodeLogging(const YAML::Node& node, Logging* l) {
  const std::string path = "logging";
  for (const auto& [key, value] : CheckedMap(node, path, {"sinks"})) {
    std::string sp = Child(path, key);
    if (value.IsNull()) continue;
    if (!value.IsSequence()) Fail(sp, "expected a sequence, got " + KindName(value));
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node s = value[i];
      std::string p = Index(sp, i);
      if (!s.IsMap()) Fail(p, "expected a map, got " + KindName(s));
      if (!s["type"]) Fail(p, "missing required key \"type\"");
      LogSink sink;
      sink.kind = Enum(s["type"], Child(p, "type"), kSinkKinds);
      switch (sink.kind) {
        case LogSink::Kind::kStdout: CheckedMap(s, p, {"type"}); break;
        case LogSink::Kind::kFile:
          for (const auto& [k, v] : CheckedMap(s, p, {"type", "path", "max_size", "max_files"})) {
            if (k == "path") sink.path = Scalar(v, Child(p, k));
            else if (k == "max_size") sink.max_size_bytes = Size(v, Child(p, k));
            else if (k == "max_files")
              sink.max_files = static_cast<int>(Int(v, Child(p, k), 1, 1000));
          }
          if (sink.path.empty()) Fail(Child(p, "path"), "required for type file");
          break;
        case LogSink::Kind::kTcp: {
          bool has_address = false;
          for (const auto& [k, v] : CheckedMap(s, p, {"type", "address", "queue_size"})) {
            if (k == "address") {
              std::string text = Scalar(v, Child(p, k));
              if (!ParseHostPort(text, &sink.host, &sink.port))
                Fail(Child(p, k), Quote(text) + " is not host:port");
              has_address = true;
            } else if (k == "queue_size") {
              sink.queue_size = static_cast<int>(Int(v, Child(p, k), 1, 10'000'000));
            }
          }
          if (!has_address) Fail(Child(p, "address"), "required for type tcp");
          break;
        }
      }
      l->sinks.push_back(std::move(sink));
    }
  }
}

bool IsDottedPath(std::string_view s);

const SdkPreset* FindPreset(std::string_view name) {
  for (const auto& preset : SdkPresets())
    if (preset.name == name) return &preset;
  return nullptr;
}

// The keys of an environment that say where and how the SDK stores the token.
void ApplySdkKey(const std::string& key, const YAML::Node& value, const std::string& p,
                 Environment* env) {
  if (key == "sdk") {
    env->sdk = Scalar(value, p);
    if (FindPreset(env->sdk) == nullptr) {
      std::vector<std::string> names;
      for (const auto& preset : SdkPresets()) names.emplace_back(preset.name);
      Fail(p, "unknown sdk " + Quote(env->sdk) + " (expected " + JoinOr(names) + ")");
    }
  } else if (key == "encoding") {
    env->encoding = Enum(value, p, kEncodings);
  } else if (key == "key_encoding") {
    env->key_encoding = Enum(value, p, kKeyEncodings);
  } else if (key == "expiry_path") {
    env->expiry_path = Scalar(value, p);
  } else if (key == "expiry_key") {
    env->expiry_key_template = Scalar(value, p);
  }
}

// Fills what env.sdk's preset sets and the config does not (`set_keys`: the keys the
// environment or `defaults:` gave). An SDK whose format cannot be read fails here.
void ApplyPreset(const std::set<std::string>& set_keys, const std::string& path, Environment* env) {
  if (env->sdk.empty()) return;
  const SdkPreset& preset = *FindPreset(env->sdk);
  if (!preset.unsupported.empty())
    Fail(Child(path, "sdk"),
         Quote(env->sdk) + " cannot be read: " + std::string(preset.unsupported));
  auto unset = [&](const char* k) { return set_keys.count(k) == 0; };
  if (unset("key")) env->key_template = std::string(preset.key_template);
  if (unset("encoding")) env->encoding = preset.encoding;
  if (unset("key_encoding")) env->key_encoding = preset.key_encoding;
  if (unset("storage")) env->storage = preset.storage;
  if (unset("json_path")) env->json_path = std::string(preset.json_path);
  if (unset("expiry_path")) env->expiry_path = std::string(preset.expiry_path);
  if (unset("expiry_key")) env->expiry_key_template = std::string(preset.expiry_key_template);
}

std::string Md5Hex(std::string_view data) {
  // MD5 is what the SDKs hash their cache keys with; it identifies a key, it protects nothing.
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_md5(), nullptr) != 1)
    throw ConfigError("key: libcrypto cannot compute MD5");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : std::string_view(reinterpret_cast<const char*>(digest.data()), len)) {
    hex += kHex[b >> 4];
    hex += kHex[b & 0xF];
  }
  return hex;
}

// What a key template can refer to. `secret` is empty when the app has none.
struct KeyInputs {
  const std::string& app_id;
  const std::string& app_env;
  const Secret& secret;
  bool has_secret;
};

constexpr std::string_view kPlaceholderHelp =
    "(expected {app_id}, {app_env}, {secret} or {md5(...)} of app_id, app_env, secret and "
    "credentials_json joined with +)";

// One name inside a template; sets *used_secret when it reads the app secret.
std::string KeyTerm(std::string_view name, const KeyInputs& in, const std::string& tmpl,
                    const std::string& path, bool* used_secret) {
  auto secret = [&]() -> const std::string& {
    if (!in.has_secret)
      Fail(path, Quote(tmpl) +
                     " uses the app secret: set secret_file, secret_env or "
                     "secret_credential on the apps entry");
    *used_secret = true;
    return in.secret.Reveal();
  };
  if (name == "app_id") return in.app_id;
  if (name == "app_env") return in.app_env;
  if (name == "secret") return secret();
  // EasyWeChat 4 hashes PHP's json_encode() of the token request's credentials.
  if (name == "credentials_json")
    return R"({"grant_type":"client_credential","appid":")" + in.app_id + R"(","secret":")" +
           secret() + R"("})";
  Fail(path, "unknown placeholder " + Quote("{" + std::string(name) + "}") + " in " + Quote(tmpl) +
                 " " + std::string(kPlaceholderHelp));
}

// Expands a key template; any other brace is a typo that would silently watch the wrong key.
std::string ExpandKeyTemplate(const std::string& tmpl, const KeyInputs& in, const std::string& path,
                              bool* used_secret) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] == '{') {
      size_t close = tmpl.find('}', i);
      if (close == std::string::npos) Fail(path, "unclosed \"{\" in " + Quote(tmpl));
      std::string_view name = std::string_view(tmpl).substr(i + 1, close - i - 1);
      if (name.rfind("md5(", 0) == 0 && name.size() > 5 && name.back() == ')') {
        std::string_view args = name.substr(4, name.size() - 5);
        std::string joined;
        for (size_t start = 0; start <= args.size();) {
          size_t plus = args.find('+', start);
          if (plus == std::string_view::npos) plus = args.size();
          joined += KeyTerm(args.substr(start, plus - start), in, tmpl, path, used_secret);
          start = plus + 1;
        }
        out += Md5Hex(joined);
      } else {
        out += KeyTerm(name, in, tmpl, path, used_secret);
      }
      i = close + 1;
    } else if (tmpl[i] == '}') {
      Fail(path, "unmatched \"}\" in " + Quote(tmpl));
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

// Sets env->key (the shown form), redis_key and expiry_key from the templates.
void ResolveKeys(const App& app, const std::string& path, Environment* env) {
  const KeyInputs in{app.app_id, env->name, app.secret_value, app.secret.set()};
  bool used_secret = false;
  std::string key = ExpandKeyTemplate(env->key_template, in, Child(path, "key"), &used_secret);
  if (key.empty()) Fail(Child(path, "key"), "must not be empty");
  env->key_from_secret = used_secret;
  std::string bytes = env->key_encoding == KeyEncoding::kJdk ? JdkSerializeString(key) : key;
  if (used_secret) {
    env->key = "[secret-derived key " + Fingerprint(key) + "]";
    env->redis_key = Secret(std::move(bytes));
  } else {
    env->key = key;
    if (bytes != key) env->redis_key = Secret(std::move(bytes));
  }
  if (!env->expiry_key_template.empty()) {
    bool expiry_secret = false;
    std::string ek =
        ExpandKeyTemplate(env->expiry_key_template, in, Child(path, "expiry_key"), &expiry_secret);
    if (expiry_secret)
      Fail(Child(path, "expiry_key"), "must not use the app secret (it is shown in logs)");
    env->expiry_key = env->key_encoding == KeyEncoding::kJdk ? JdkSerializeString(ek) : ek;
  }
}

// The checks on where the token and its expiry are read from, after the preset is applied.
void ValidateDecoding(const std::string& path, const Environment& env) {
  const bool document = env.storage == Storage::kJson || !env.json_path.empty();
  if (!env.expiry_path.empty() && !IsDottedPath(env.expiry_path))
    Fail(Child(path, "expiry_path"),
         Quote(env.expiry_path) + " is not a dotted path (e.g. AccessTokenExpireTime)");
  if (!env.expiry_path.empty() && !document)
    Fail(Child(path, "expiry_path"), "needs a JSON or PHP array value (set json_path)");
  if (!env.expiry_path.empty() && !env.expiry_key_template.empty())
    Fail(Child(path, "expiry_key"), "and expiry_path both set: the expiry comes from one place");
  // Spring would JDK-serialize the hash field too; nobody has asked for that layout yet.
  if (env.storage == Storage::kHash && env.key_encoding == KeyEncoding::kJdk)
    Fail(Child(path, "key_encoding"), "jdk is not supported with storage hash");
  if (env.heal_refresh && env.encoding != Encoding::kAuto && env.encoding != Encoding::kPlain)
    Fail(Child(path, "heal_refresh"), "true writes a plain token, which an app reading encoding " +
                                          Quote(std::string(EncodingName(env.encoding))) +
                                          " cannot read (use heal: evict alone)");
}

// Applies one inheritable key (see kInheritableKeys) to `env`.
void ApplyEnvKey(const std::string& key, const YAML::Node& value, const std::string& p,
                 Environment* env) {
  if (key == "storage") env->storage = Enum(value, p, kStorages);
  else if (key == "json_path") env->json_path = Scalar(value, p);
  else if (key == "hash_field") env->hash_field = Scalar(value, p);
  else if (key == "probe") env->probe = ProbeKindValue(value, p);
  else if (key == "content") env->content = Scalar(value, p);
  else if (key == "openid") env->openid = Scalar(value, p);
  else if (key == "scene") env->scene = static_cast<int>(Int(value, p, 1, 4));
  else if (key == "interval") env->interval = Duration(value, p);
  else if (key == "timeout") env->timeout = Duration(value, p);
  else if (key == "heal") env->heal = Enum(value, p, kHealModes);
  else if (key == "heal_refresh") env->heal_refresh = Bool(value, p);
  else if (key == "keep") env->keep = Enum(value, p, kKeepModes);
  else if (key == "owner") env->owner = Bool(value, p);
  else if (key == "keep_dry_run") env->keep_dry_run = Bool(value, p);
  else ApplySdkKey(key, value, p, env);
}

// `set_keys` receives the keys given, so that an sdk preset fills only the others.
Environment DecodeDefaults(const YAML::Node& node, std::set<std::string>* set_keys) {
  Environment env;
  if (!node || node.IsNull()) return env;
  std::vector<std::string_view> allowed(std::begin(kInheritableKeys), std::end(kInheritableKeys));
  for (const auto& [key, value] : MapEntries(node, "defaults", &allowed)) {
    ApplyEnvKey(key, value, Child("defaults", key), &env);
    set_keys->insert(key);
  }
  return env;
}

bool IsDottedPath(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  if (s.find("..") != std::string_view::npos) return false;
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == ' ' || static_cast<unsigned char>(c) < 0x20; });
}

size_t Utf8Chars(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void DecodeLabels(const YAML::Node& node, const std::string& path,
                  std::map<std::string, std::string>* labels) {
  if (node.IsNull()) return;
  static constexpr std::string_view kReserved[] = {"app_id", "app_env", "outcome", "errcode", "le"};
  for (const auto& [name, value] : MapEntries(node, path, nullptr)) {
    bool valid = !name.empty() && IsNameChar(name[0], true) &&
                 std::all_of(name.begin(), name.end(), [](char c) { return IsNameChar(c, false); });
    if (!valid) Fail(path, "label name " + Quote(name) + " is not [a-zA-Z_][a-zA-Z0-9_]*");
    if (name.rfind("__", 0) == 0)
      Fail(path, "label name " + Quote(name) + " starts with \"__\" (reserved)");
    if (std::find(std::begin(kReserved), std::end(kReserved), name) != std::end(kReserved))
      Fail(path, "label name " + Quote(name) + " is reserved by wxcanary");
    (*labels)[name] = Scalar(value, Child(path, name));
  }
}

Environment DecodeEnvironment(const YAML::Node& node, const std::string& path,
                              const Environment& defaults, std::set<std::string> set_keys,
                              const App& app, const std::map<std::string, Redis>& redis) {
  std::vector<std::string_view> allowed(std::begin(kInheritableKeys), std::end(kInheritableKeys));
  allowed.insert(allowed.end(), std::begin(kEnvOnlyKeys), std::end(kEnvOnlyKeys));
  Environment env = defaults;
  const bool inherits_json_path = set_keys.count("json_path") && !node["json_path"];
  auto entries = MapEntries(node, path, &allowed);
  for (std::string_view required : {"name", "redis"})
    if (!node[std::string(required)]) Fail(path, "missing required key " + Quote(required));

  for (const auto& [key, value] : entries) {
    std::string p = Child(path, key);
    if (key == "name") {
      env.name = Scalar(value, p);
      CheckIdentifier(env.name, p);
    } else if (key == "redis") {
      env.redis = Scalar(value, p);
    } else if (key == "key") {
      env.key_template = Scalar(value, p);
    } else if (key == "labels") {
      DecodeLabels(value, p, &env.labels);
    } else {
      ApplyEnvKey(key, value, p, &env);
    }
    set_keys.insert(key);
  }
  ApplyPreset(set_keys, path, &env);
  // defaults.json_path reaches only the environments where json_path applies (storage json or
  // hash, or a PHP array), as an own json_path would: a storage string environment would
  // otherwise parse its plain token as JSON and every probe would be token_missing.
  if (inherits_json_path && env.storage == Storage::kString && env.encoding != Encoding::kPhp)
    env.json_path.clear();
  if (env.key_template.empty())
    Fail(path, env.sdk.empty() ? std::string("missing required key \"key\"")
                               : "missing required key \"key\" (sdk " + Quote(env.sdk) +
                                     " leaves the key to the app)");

  // Validate the merged result (own keys over defaults), in the order a reader checks them.
  if (!redis.count(env.redis)) {
    std::vector<std::string> names;
    for (const auto& [name, r] : redis) names.push_back(Quote(name));
    Fail(Child(path, "redis"),
         "unknown redis " + Quote(env.redis) +
             (names.empty() ? " (no redis: section)" : " (defined: " + JoinOr(names) + ")"));
  }
  ResolveKeys(app, path, &env);

  if (env.timeout <= milliseconds::zero())
    Fail(Child(path, "timeout"), Quote(FormatDuration(env.timeout)) + " must be greater than 0");
  if (env.interval < env.timeout)
    Fail(Child(path, "interval"), Quote(FormatDuration(env.interval)) +
                                      " is shorter than timeout " +
                                      Quote(FormatDuration(env.timeout)));

  const std::string storage(StorageName(env.storage));
  if (env.storage == Storage::kJson && env.json_path.empty())
    Fail(Child(path, "json_path"), "required for storage json");
  if (env.storage == Storage::kHash && env.hash_field.empty())
    Fail(Child(path, "hash_field"), "required for storage hash");
  if (node["json_path"] && env.storage == Storage::kString && env.encoding != Encoding::kPhp)
    Fail(Child(path, "json_path"), "only applies to storage json or hash (storage is \"string\")");
  if (node["hash_field"] && env.storage != Storage::kHash)
    Fail(Child(path, "hash_field"),
         "only applies to storage hash (storage is " + Quote(storage) + ")");
  if (!env.json_path.empty() && !IsDottedPath(env.json_path))
    Fail(Child(path, "json_path"),
         Quote(env.json_path) + " is not a dotted path (e.g. data.access_token)");
  ValidateDecoding(path, env);

  // The kind's rules come from its table entry (src/wechat/probe_kinds.cc).
  const wechat::ProbeKindEntry& kind = wechat::KindEntry(env.probe);
  const std::string probe(kind.name);
  if (kind.takes_openid_scene && env.openid.empty())
    Fail(Child(path, "openid"), "required for probe " + probe);
  if (!kind.takes_openid_scene) {
    std::vector<std::string> takers;
    for (const auto& k : wechat::ProbeKinds())
      if (k.takes_openid_scene) takers.emplace_back(k.name);
    for (const char* k : {"openid", "scene"})
      if (node[k])
        Fail(Child(path, k),
             "only applies to probe " + JoinOr(takers) + " (probe is " + Quote(probe) + ")");
  }
  if (!kind.sends_content && node["content"])
    Fail(Child(path, "content"), "does not apply to probe " + probe + " (it sends no content)");
  if (kind.sends_content && env.content.empty())
    Fail(Child(path, "content"), "must not be empty for probe " + probe);
  if (kind.max_content_chars > 0 && Utf8Chars(env.content) > kind.max_content_chars)
    Fail(Child(path, "content"), "is longer than " + std::to_string(kind.max_content_chars) +
                                     " characters (the " + probe + " limit)");

  if (env.heal_refresh && !app.secret.set())
    Fail(
        Child(path, "heal_refresh"),
        "true needs the app's secret (secret_file, secret_env or secret_credential on apps entry)");
  if (env.heal_refresh && env.heal == HealMode::kOff)
    Fail(Child(path, "heal_refresh"), "true needs heal: evict or dry_run (heal is \"off\")");
  // wechatpy keeps the expiry in a companion key, which a keeper write would leave stale: the
  // app would fetch its own token at the old time.
  if (env.keep == KeepMode::kStable && !env.expiry_key_template.empty())
    Fail(Child(path, "keep"), "stable cannot keep an expiry_key (" +
                                  Quote(env.expiry_key_template) +
                                  ") up to date: the app would refetch at the old expiry");
  if (env.keep == KeepMode::kStable && !app.secret.set())
    Fail(Child(path, "keep"),
         "stable needs the app's secret (secret_file, secret_env or secret_credential on apps "
         "entry)");
  return env;
}

Config Decode(const YAML::Node& root, const std::filesystem::path& base_dir) {
  Config cfg;
  if (!root || root.IsNull()) Fail("", "the config is empty");
  auto top = CheckedMap(
      root, "",
      {"wechat", "workers", "defaults", "redis", "apps", "conflict", "heal", "keeper", "logging"});
  // Sections in dependency order (redis before apps), whatever order the file uses.
  if (root["wechat"] && !root["wechat"].IsNull())
    DecodeWeChat(root["wechat"], base_dir, &cfg.wechat);
  if (root["workers"])
    cfg.workers = static_cast<int>(Int(root["workers"], "workers", 1, kMaxWorkers));
  if (root["redis"] && !root["redis"].IsNull()) {
    for (const auto& [name, value] : MapEntries(root["redis"], "redis", nullptr)) {
      std::string p = Child("redis", name);
      if (name.empty()) Fail("redis", "a connection name is empty");
      Redis r;
      DecodeRedis(name, value, p, base_dir, &r);
      cfg.redis.emplace(name, std::move(r));
    }
  }
  if (root["conflict"] && !root["conflict"].IsNull())
    DecodeConflict(root["conflict"], &cfg.conflict);
  if (root["heal"] && !root["heal"].IsNull()) DecodeHeal(root["heal"], &cfg.heal);
  if (root["keeper"] && !root["keeper"].IsNull()) DecodeKeeper(root["keeper"], &cfg.keeper);
  if (root["logging"] && !root["logging"].IsNull()) DecodeLogging(root["logging"], &cfg.logging);
  std::set<std::string> default_keys;
  const Environment defaults = DecodeDefaults(root["defaults"], &default_keys);

  const YAML::Node apps = root["apps"];
  if (!apps || apps.IsNull() || (apps.IsSequence() && apps.size() == 0))
    Fail("apps", "must list at least one app");
  if (!apps.IsSequence()) Fail("apps", "expected a sequence, got " + KindName(apps));
  std::map<std::string, size_t> app_index;
  for (size_t i = 0; i < apps.size(); ++i) {
    const YAML::Node a = apps[i];
    std::string p = Index("apps", i);
    CheckedMap(a, p, {"app_id", "secret_file", "secret_env", "secret_credential", "environments"});
    if (!a["app_id"]) Fail(p, "missing required key \"app_id\"");
    App app;
    app.app_id = Scalar(a["app_id"], Child(p, "app_id"));
    CheckIdentifier(app.app_id, Child(p, "app_id"));
    if (auto [it, inserted] = app_index.emplace(app.app_id, i); !inserted)
      Fail(Child(p, "app_id"), Quote(app.app_id) + " duplicates apps[" +
                                   std::to_string(it->second) +
                                   "] (list each app once, with several environments)");
    std::string used = DecodeSecretRef(a, p, "secret", &app.secret);
    if (!used.empty()) app.secret_value = ResolveSecret(app.secret, Child(p, used), base_dir);

    const YAML::Node envs = a["environments"];
    std::string ep = Child(p, "environments");
    if (!envs || envs.IsNull() || (envs.IsSequence() && envs.size() == 0))
      Fail(ep, "must list at least one environment");
    if (!envs.IsSequence()) Fail(ep, "expected a sequence, got " + KindName(envs));
    std::map<std::string, size_t> env_index;
    for (size_t j = 0; j < envs.size(); ++j) {
      std::string jp = Index(ep, j);
      Environment env = DecodeEnvironment(envs[j], jp, defaults, default_keys, app, cfg.redis);
      if (auto [it, inserted] = env_index.emplace(env.name, j); !inserted)
        Fail(Child(jp, "name"), Quote(env.name) + " duplicates " + Index(ep, it->second) +
                                    " of app " + Quote(app.app_id));
      app.environments.push_back(std::move(env));
    }
    cfg.apps.push_back(std::move(app));
  }
  if (cfg.TargetCount() == 0) Fail("apps", "no targets to monitor");
  return cfg;
}

}  // namespace

std::string_view StorageName(Storage s) {
  for (const auto& [name, value] : kStorages)
    if (value == s) return name;
  return "unknown";
}

std::string_view HealModeName(HealMode m) {
  for (const auto& [name, value] : kHealModes)
    if (value == m) return name;
  return "unknown";
}

std::string_view KeepModeName(KeepMode m) {
  for (const auto& [name, value] : kKeepModes)
    if (value == m) return name;
  return "unknown";
}

std::string_view EncodingName(Encoding e) {
  for (const auto& [name, value] : kEncodings)
    if (value == e) return name;
  return "unknown";
}

std::string_view KeyEncodingName(KeyEncoding e) {
  for (const auto& [name, value] : kKeyEncodings)
    if (value == e) return name;
  return "unknown";
}

const std::vector<SdkPreset>& SdkPresets() {
  // Facts from each SDK's own source (see README, "Which sdk preset"); every field can be
  // overridden by the environment. {secret} keys are shown only as a fingerprint.
  static const std::vector<SdkPreset> kPresets = [] {
    std::vector<SdkPreset> v;
    auto add = [&v](SdkPreset p) { v.push_back(p); };
    add({.name = "wxjava",
         .key_template = "wx:access_token:{app_id}",
         .encoding = Encoding::kPlain});
    add({.name = "wxjava-ma",
         .key_template = "wa:access_token:{app_id}",
         .encoding = Encoding::kPlain});
    add({.name = "silenceper",
         .key_template = "gowechat_officialaccount__access_token_{app_id}",
         .encoding = Encoding::kPlain});
    add({.name = "silenceper-stable",
         .key_template = "gowechat_officialaccount__stable_access_token_{app_id}",
         .encoding = Encoding::kPlain});
    add({.name = "silenceper-ma",
         .key_template = "gowechat_miniprogram__access_token_{app_id}",
         .encoding = Encoding::kPlain});
    add({.name = "easywechat6",
         .key_template = "official_account.access_token.{app_id}.{secret}.0",
         .encoding = Encoding::kPhp});
    add({.name = "easywechat6-mini",
         .key_template = "mini_app.access_token.{app_id}.{secret}.0",
         .encoding = Encoding::kPhp});
    add({.name = "easywechat4",
         .key_template = "easywechat.kernel.access_token.{md5(credentials_json)}",
         .encoding = Encoding::kPhp,
         .json_path = "access_token"});
    add({.name = "powerwechat",
         .key_template = "powerwechat.access_token.{md5(app_id+secret)}",
         .storage = Storage::kJson,
         .json_path = "access_token"});
    add({.name = "senparc",
         .key_template =
             "Senparc:DefaultCache:Container:Senparc.Weixin.MP.Containers.AccessTokenBag:{app_id}",
         .storage = Storage::kJson,
         .json_path = "AccessTokenResult.access_token",
         .expiry_path = "AccessTokenExpireTime"});
    add({.name = "wechatpy",
         .key_template = "wechatpy:{app_id}_access_token",
         .encoding = Encoding::kJsonString,
         .expiry_key_template = "wechatpy:{app_id}_access_token_expires_at"});
    add({.name = "spring-jdk", .encoding = Encoding::kJdk, .key_encoding = KeyEncoding::kJdk});
    add({.name = "spring-json", .encoding = Encoding::kJsonString});
    add({.name = "wxjava-redisson",
         .key_template = "wx:access_token:{app_id}",
         .unsupported = "Redisson's default codec (Kryo5) is binary: configure StringCodec on the "
                        "RedissonClient WxJava uses, then use sdk: wxjava"});
    add({.name = "jfinal-weixin",
         .key_template = "jfinal_weixin:{app_id}",
         .unsupported = "jfinal-weixin stores FST-serialized objects: configure its Redis cache "
                        "with a String serializer, or keep the token under a plain key"});
    return v;
  }();
  return kPresets;
}

std::string Redis::Address() const {
  if (!sentinels.empty()) return "sentinel:" + master_name;
  if (!cluster.empty()) {
    std::string out = "cluster:";
    for (size_t i = 0; i < cluster.size(); ++i) {
      const auto& [h, p] = cluster[i];
      out += (i > 0 ? "," : "") + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
             std::to_string(p);
    }
    return out;
  }
  if (!unix_socket.empty()) return "unix:" + unix_socket;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

size_t Config::TargetCount() const {
  size_t n = 0;
  for (const auto& app : apps) n += app.environments.size();
  return n;
}

Config LoadString(const std::string& yaml, const std::filesystem::path& base_dir) {
  const YAML::Node root = ParseYaml(yaml);
  try {
    return Decode(root, base_dir);
  } catch (const YAML::Exception& e) {
    // Decode checks node types before converting, so this is a yaml-cpp surprise: still one line.
    throw ConfigError("yaml: " + OneLine(e.msg));
  }
}

Redis LoadRedis(const std::string& name, const std::string& yaml,
                const std::filesystem::path& base_dir) {
  YAML::Node node;
  try {
    node = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw ConfigError("yaml: " + OneLine(e.msg));
  }
  Redis r;
  try {
    DecodeRedis(name, node, Child("redis", name), base_dir, &r);
  } catch (const YAML::Exception& e) {
    throw ConfigError("yaml: " + OneLine(e.msg));
  }
  return r;
}

Config LoadFile(const std::filesystem::path& path) {
  // The caller names the file in front of every error, so this one names only the problem.
  std::string error;
  auto text = ReadSmallFile(path, &error);
  if (!text) throw ConfigError("cannot read: " + error);
  std::filesystem::path base = path.parent_path();
  Config cfg = LoadString(*text, base.empty() ? std::filesystem::path(".") : base);
  cfg.source = path;
  return cfg;
}

// " sdk=... encoding=... key_encoding=jdk expiry=...": how the value is decoded, for
// --config.check; nothing for a plain key read the default way.
static std::string DescribeDecoding(const Environment& env) {
  std::string out;
  if (env.sdk.empty() && env.encoding == Encoding::kAuto &&
      env.key_encoding == KeyEncoding::kPlain && env.expiry_path.empty() &&
      env.expiry_key_template.empty())
    return out;
  if (!env.sdk.empty()) out += " sdk=" + env.sdk;
  out += " encoding=" + std::string(EncodingName(env.encoding));
  if (env.key_encoding != KeyEncoding::kPlain)
    out += " key_encoding=" + std::string(KeyEncodingName(env.key_encoding));
  if (!env.expiry_path.empty()) out += " expiry=value(" + env.expiry_path + ")";
  else if (!env.expiry_key_template.empty())
    out += " expiry=key(" +
           (env.key_encoding == KeyEncoding::kJdk ? std::string(env.expiry_key_template)
                                                  : env.expiry_key) +
           ")";
  else out += " expiry=ttl";
  return out;
}

std::string Describe(const Config& config) {
  std::ostringstream out;
  out << "wxcanary: " << config.TargetCount() << " targets in " << config.apps.size() << " apps, "
      << config.redis.size() << " redis connections, " << config.workers << " workers, wechat "
      << config.wechat.base_url << "\n";
  for (const auto& app : config.apps) {
    for (const auto& env : app.environments) {
      out << app.app_id << "/" << env.name << "  redis=" << env.redis;
      if (auto it = config.redis.find(env.redis); it != config.redis.end()) {
        out << "(" << it->second.Address();
        if (it->second.db != 0) out << ",db=" << it->second.db;
        out << ")";
      }
      out << " key=" << env.key << " storage=" << StorageName(env.storage);
      if (env.storage == Storage::kHash) {
        out << "(" << env.hash_field;
        if (!env.json_path.empty()) out << "," << env.json_path;
        out << ")";
      } else if (env.storage == Storage::kJson || !env.json_path.empty()) {
        out << "(" << env.json_path << ")";
      }
      out << DescribeDecoding(env);
      out << " probe=" << ProbeKindName(env.probe);
      if (wechat::KindEntry(env.probe).takes_openid_scene) out << "(scene=" << env.scene << ")";
      out << " interval=" << FormatDuration(env.interval)
          << " timeout=" << FormatDuration(env.timeout) << " heal=" << HealModeName(env.heal);
      if (env.heal_refresh) out << "+refresh";
      if (env.keep != KeepMode::kOff) {
        out << " keep=" << KeepModeName(env.keep);
        if (env.owner) out << "+owner";
        if (env.keep_dry_run) out << "+dry_run";
      }
      if (!env.labels.empty()) {
        out << " labels={";
        bool first = true;
        for (const auto& [k, v] : env.labels) {
          out << (first ? "" : ",") << k << "=" << v;
          first = false;
        }
        out << "}";
      }
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace wxcanary::config
