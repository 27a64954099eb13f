#include "daemon/discover.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>

#include "common/duration.h"
#include "common/fingerprint.h"
#include "common/jdk_string.h"
#include "common/quote.h"
#include "common/utf8.h"
#include "source/redis_connection.h"
#include "source/value_decoder.h"

namespace wxcanary::daemon {
namespace {

constexpr std::string_view kRedisName = "main";
constexpr size_t kMaxMatchedKeyBytes = 512;  // longer names are no SDK's
constexpr size_t kMaxListedOthers = 20;
// Where a JSON (or PHP array) value of no known SDK keeps the token, tried in order.
constexpr std::string_view kJsonPaths[] = {"access_token", "accessToken", "token",
                                           "data.access_token"};
// Hash fields that hold the token when the AppId is in the key's name.
constexpr std::string_view kTokenFields[] = {"access_token", "accessToken", "token"};

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// An AppId: "wx" + 16 lowercase hex.
bool IsAppId(std::string_view s) {
  return s.size() == 18 && s.substr(0, 2) == "wx" &&
         std::all_of(s.begin() + 2, s.end(), IsLowerHex);
}

// The AppIds in a key's name, each not part of a longer word, first seen first.
std::vector<std::string> AppIdsIn(std::string_view s) {
  std::vector<std::string> out;
  for (size_t at = s.find("wx"); at != std::string_view::npos; at = s.find("wx", at + 1)) {
    if (at > 0 && IsAlnum(s[at - 1])) continue;
    if (at + 18 > s.size() || !IsAppId(s.substr(at, 18))) continue;
    if (at + 18 < s.size() && IsAlnum(s[at + 18])) continue;
    std::string id(s.substr(at, 18));
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

// A key's name as a comment may show it: quoted, and with its bytes past ASCII as \xNN unless
// they are UTF-8 (YAML, comments included, is UTF-8).
std::string Shown(std::string_view key) {
  std::string q = Quote(key);
  if (IsValidUtf8(key)) return q;
  std::string out;
  for (char c : q) {
    if (static_cast<unsigned char>(c) < 0x80) {
      out += c;
      continue;
    }
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
    out += buf;
  }
  return out;
}

// What a WeChat access token looks like: some 130-160 characters of [A-Za-z0-9_-]; the bound
// is loose, but it keeps a user name or a counter under an AppId-named key from counting.
bool TokenShaped(std::string_view t) {
  return t.size() >= 32 && t.size() <= 2048 &&
         std::all_of(t.begin(), t.end(), [](char c) { return IsAlnum(c) || c == '_' || c == '-'; });
}

// `text` with every `app_id` in it as "{app_id}"; nullopt when it holds a brace, which a key
// template cannot (a Cluster hash tag).
std::optional<std::string> Templatize(std::string_view text, const std::string& app_id) {
  if (text.find_first_of("{}") != std::string_view::npos) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (!app_id.empty() && text.substr(i, app_id.size()) == app_id) {
      out += "{app_id}";
      i += app_id.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

// A key template of a preset as a regular expression: group 1 the namespace prefix ("" or
// text ending in ':', as Symfony's cache adds), group 2 the AppId where the template has one.
struct Pattern {
  enum class Kind { kKey, kExpiryKey, kHashKey };
  const config::SdkPreset* preset = nullptr;
  Kind kind = Kind::kKey;
  std::string tmpl;  // kHashKey: the template without its trailing ":{app_id}"
  std::regex re;
  bool has_app_id = false;
  bool secret = false;  // the key holds the app secret, or a hash of it
};

Pattern MakePattern(const config::SdkPreset& preset, Pattern::Kind kind, std::string tmpl) {
  Pattern p;
  p.preset = &preset;
  p.kind = kind;
  p.tmpl = std::move(tmpl);
  std::string re = "(|.*:)";
  for (size_t i = 0; i < p.tmpl.size();) {
    const char c = p.tmpl[i];
    if (c != '{') {
      if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) re += '\\';
      re += c;
      ++i;
      continue;
    }
    const size_t close = p.tmpl.find('}', i);
    const std::string_view name = std::string_view(p.tmpl).substr(i + 1, close - i - 1);
    if (name == "app_id") {
      re += p.has_app_id ? "[A-Za-z0-9_-]+" : "([A-Za-z0-9_-]+)";
      p.has_app_id = true;
    } else if (name == "secret") {
      re += "[A-Za-z0-9]+";
      p.secret = true;
    } else if (name.rfind("md5(", 0) == 0) {
      re += "[0-9a-f]{32}";
      p.secret = p.secret || name.find("secret") != std::string_view::npos ||
                 name.find("credentials_json") != std::string_view::npos;
    } else {
      re += "[A-Za-z0-9_.-]+";  // {app_env}
    }
    i = close + 1;
  }
  p.re = std::regex(re, std::regex::ECMAScript | std::regex::optimize);
  return p;
}

// Every key template the presets know (one source of truth: config::SdkPresets()).
const std::vector<Pattern>& Patterns() {
  static const std::vector<Pattern> kPatterns = [] {
    std::vector<Pattern> v;
    for (const auto& preset : config::SdkPresets()) {
      if (preset.key_template.empty()) continue;
      const std::string tmpl(preset.key_template);
      v.push_back(MakePattern(preset, Pattern::Kind::kKey, tmpl));
      if (!preset.expiry_key_template.empty())
        v.push_back(MakePattern(preset, Pattern::Kind::kExpiryKey,
                                std::string(preset.expiry_key_template)));
      // The hash layout (Senparc's): the key without its AppId, one field per AppId.
      constexpr std::string_view kTail = ":{app_id}";
      if (tmpl.size() > kTail.size() &&
          tmpl.compare(tmpl.size() - kTail.size(), kTail.size(), kTail) == 0)
        v.push_back(MakePattern(preset, Pattern::Kind::kHashKey,
                                tmpl.substr(0, tmpl.size() - kTail.size())));
    }
    return v;
  }();
  return kPatterns;
}

// One way a key may be configured: the flow-map entries of its environment, checked by loading
// them as the daemon would and decoding the stored value with the result.
struct Candidate {
  std::string app_id;
  std::string name;    // environment name: the preset, or the layout
  std::string fields;  // ", sdk: ..., key: ..." after name and redis
  std::string secret_file;
};

std::string SdkFields(const config::SdkPreset& preset, const std::string& prefix,
                      const std::string& tmpl) {
  std::string f = ", sdk: " + std::string(preset.name);
  if (!prefix.empty()) f += ", key: " + Quote(prefix + tmpl);
  return f;
}

// The environment `c` describes, loaded as the daemon would. nullopt with `error` set.
std::optional<config::Environment> LoadCandidate(const Candidate& c, std::string* error) {
  std::string yaml = "redis: {" + std::string(kRedisName) +
                     ": {address: \"127.0.0.1:6379\"}}\n"
                     "apps:\n  - app_id: " +
                     Quote(c.app_id) + "\n";
  if (!c.secret_file.empty()) yaml += "    secret_file: " + Quote(c.secret_file) + "\n";
  yaml +=
      "    environments:\n      - {name: x, redis: " + std::string(kRedisName) + c.fields + "}\n";
  try {
    config::Config cfg = config::LoadString(yaml);
    return cfg.apps.at(0).environments.at(0);
  } catch (const config::ConfigError& e) {
    *error = e.what();
    return std::nullopt;
  }
}

// What one key turned out to be.
struct Verdict {
  enum class Kind { kFound, kUnusable, kCompanion, kOther };
  Kind kind = Kind::kOther;
  std::string shown;  // the key as it may be printed: quoted, or a fingerprint
  std::string why;    // kUnusable
  // kFound: one environment per AppId the key serves (a hash may hold several), each with the
  // TTL comment.
  std::vector<std::pair<Candidate, std::string>> found;
};

std::string TtlComment(int64_t ttl, const std::optional<SystemTime>& expires_at) {
  if (ttl >= 0) return "TTL " + std::to_string(ttl) + " s";
  if (!expires_at) return "no TTL";
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(
      *expires_at - std::chrono::system_clock::now());
  return "no TTL; the value says it expires in " +
         std::to_string(std::max<int64_t>(0, left.count())) + " s";
}

// For each AppId, the first candidate whose environment reads a token-shaped value from this key.
Verdict Check(const std::vector<Candidate>& cands, const std::string& key,
              const source::RedisConnection::KeyDump& dump, Verdict v) {
  std::string first_error;
  std::set<std::string> done;
  for (const auto& c : cands) {
    if (done.count(c.app_id)) continue;
    std::string error;
    auto env = LoadCandidate(c, &error);
    if (env && config::RedisKey(*env) != key)
      error = c.secret_file.empty() ? "key is not the one sdk " + c.name + " makes of " + c.app_id
                                    : "secret-derived key (sdk " + c.name +
                                          "): no --secret given makes it: pass --secret APPID=FILE";
    const Secret* raw = nullptr;
    if (env && error.empty()) {
      if (env->storage == config::Storage::kHash) {
        for (const auto& [field, value] : dump.fields)
          if (field == env->hash_field) raw = &value;
        if (raw == nullptr) error = "hash field " + Quote(env->hash_field) + " does not exist";
      } else if (dump.type == "string") {
        raw = &dump.value;
      } else {
        error = "a " + dump.type + ", not a string";
      }
    }
    if (raw != nullptr) {
      auto decoded = source::DecodeValue(*env, raw->Reveal(), &error);
      if (decoded && TokenShaped(decoded->token)) {
        v.found.emplace_back(c, TtlComment(dump.ttl_seconds, decoded->expires_at));
        done.insert(c.app_id);
        continue;
      }
      if (decoded)
        error = "value (" + std::to_string(decoded->token.size()) +
                " characters decoded) does not look like an access token";
    }
    if (first_error.empty()) first_error = error;
  }
  if (!v.found.empty()) {
    v.kind = Verdict::Kind::kFound;
    return v;
  }
  v.kind = Verdict::Kind::kUnusable;
  v.why = first_error;
  return v;
}

// The generic layouts of a key named after an AppId (or a hash with AppId fields).
std::vector<Candidate> GenericCandidates(const std::string& text,
                                         const source::RedisConnection::KeyDump& dump,
                                         std::string* why) {
  std::vector<Candidate> out;
  const std::vector<std::string> ids = AppIdsIn(text);
  auto with_paths = [&](const std::string& app, const std::string& name, const std::string& base) {
    out.push_back({app, name, base, ""});
    for (std::string_view p : kJsonPaths)
      out.push_back({app, name,
                     base + (base.find("storage:") == std::string::npos ? ", storage: json" : "") +
                         ", json_path: " + std::string(p),
                     ""});
  };
  if (dump.type == "string" && !ids.empty()) {
    auto tmpl = Templatize(text, ids.front());
    if (!tmpl) {
      *why = "the key's name holds a brace (a Cluster hash tag?), which a key template cannot";
      return {};
    }
    with_paths(ids.front(), "generic", ", key: " + Quote(*tmpl));
  } else if (dump.type == "hash") {
    std::vector<std::string> fields;
    for (const auto& [field, value] : dump.fields) fields.push_back(field);
    std::sort(fields.begin(), fields.end());
    for (const auto& f : fields) {
      const bool token_field =
          std::find(std::begin(kTokenFields), std::end(kTokenFields), f) != std::end(kTokenFields);
      if (IsAppId(f)) {
        if (text.find_first_of("{}") != std::string::npos) continue;
        with_paths(f, "hash", ", key: " + Quote(text) + ", storage: hash, hash_field: " + Quote(f));
      } else if (token_field && !ids.empty()) {
        auto tmpl = Templatize(text, ids.front());
        if (!tmpl) continue;
        with_paths(ids.front(), "hash",
                   ", key: " + Quote(*tmpl) + ", storage: hash, hash_field: " + Quote(f));
      }
    }
    if (out.empty() && !ids.empty())
      *why = "hash without a token field (" + std::to_string(dump.fields.size()) +
             (dump.fields.size() == 1 ? " field" : " fields") +
             ", none named access_token or token, none an AppId)";
  } else if (!ids.empty()) {
    *why = "a " + dump.type + ", not a string or hash";
  }
  return out;
}

// Reads `key` (bytes as stored) and tells what it is. Never reads a key whose name matched a
// secret-derived template without the secret that makes it.
Verdict Classify(const std::string& key, source::RedisConnection& conn,
                 const std::vector<std::pair<std::string, std::string>>& secrets) {
  Verdict v;
  std::string text = key;
  const bool jdk = LooksJdkSerialized(key);
  if (jdk) {
    JdkDecodeError why{};
    auto s = JdkDeserializeString(key, &why);
    if (!s) {
      v.kind = Verdict::Kind::kUnusable;
      v.shown = "[JDK-serialized key " + Fingerprint(key) + "]";
      v.why = "a JDK-serialized key that is not a String";
      return v;
    }
    text = *s;
  }
  v.shown = Shown(text) + (jdk ? " (JDK-serialized)" : "");

  const Pattern* pat = nullptr;
  std::smatch m;
  if (!jdk && text.size() <= kMaxMatchedKeyBytes)
    for (const auto& p : Patterns())
      if (std::regex_match(text, m, p.re)) {
        pat = &p;
        break;
      }
  const std::string prefix = pat ? m[1].str() : std::string();
  const std::string app = pat && pat->has_app_id ? m[2].str() : std::string();
  if (pat && pat->kind == Pattern::Kind::kExpiryKey) {
    v.kind = Verdict::Kind::kCompanion;
    return v;
  }
  std::vector<Candidate> cands;
  std::string note;  // appended to the reason when nothing fits
  if (pat && pat->secret) {
    // The key is a secret: shown only as a fingerprint, as --config.check shows it.
    v.shown = "[secret-derived key " + Fingerprint(text) + "]";
    const std::string name(pat->preset->name);
    for (const auto& [sapp, sfile] : secrets)
      if (app.empty() || sapp == app)
        cands.push_back({sapp, name, SdkFields(*pat->preset, prefix, pat->tmpl), sfile});
    if (cands.empty()) {
      v.kind = Verdict::Kind::kUnusable;
      v.why = "secret-derived key (sdk " + name + (app.empty() ? "" : ", app " + app) +
              "): pass --secret " + (app.empty() ? "APPID" : app) + "=FILE";
      return v;
    }
  }

  std::string error;
  auto dump = conn.Dump(key, kDiscoverMaxHashFields, &error);
  if (!dump) {
    v.kind = Verdict::Kind::kUnusable;
    v.why = "cannot be read: " + error;
    return v;
  }
  const bool string = dump->type == "string", hash = dump->type == "hash";
  if (string && dump->value.empty() && dump->size > 0) {
    v.kind = Verdict::Kind::kUnusable;
    v.why = "value is " + std::to_string(dump->size) + " bytes, over the " +
            std::to_string(source::kMaxValueBytes) + "-byte limit of a token value";
    return v;
  }
  if (hash && dump->size > static_cast<int64_t>(kDiscoverMaxHashFields)) {
    v.kind = Verdict::Kind::kUnusable;
    v.why = "hash of " + std::to_string(dump->size) + " fields, more than the " +
            std::to_string(kDiscoverMaxHashFields) + " discover reads";
    return v;
  }

  if (pat && !pat->secret) {
    const config::SdkPreset& preset = *pat->preset;
    const std::string name(preset.name);
    if (pat->kind == Pattern::Kind::kHashKey) {
      if (hash)
        for (const auto& [field, value] : dump->fields)
          if (IsAppId(field))
            cands.push_back({field, name,
                             ", sdk: " + name + ", key: " + Quote(prefix + pat->tmpl) +
                                 ", storage: hash, hash_field: " + Quote(field),
                             ""});
      if (cands.empty()) pat = nullptr;  // just a name alike: judged as any other key
    } else if (!preset.unsupported.empty()) {
      // The SDK's default format cannot be read, but the app may store a string after all.
      cands.push_back(
          {app, "generic", ", key: " + Quote(prefix + std::string(preset.key_template)), ""});
      note = " (sdk " + name + ": " + std::string(preset.unsupported) + ")";
    } else {
      cands.push_back({app, name, SdkFields(preset, prefix, pat->tmpl), ""});
    }
  }
  if (jdk) {
    const std::vector<std::string> ids = AppIdsIn(text);
    auto tmpl = ids.empty() ? std::nullopt : Templatize(text, ids.front());
    if (!tmpl) {
      v.kind = Verdict::Kind::kUnusable;
      v.why = ids.empty() ? "a JDK-serialized key (Spring's RedisTemplate) without an AppId in its "
                            "name: configure it by hand with sdk: spring-jdk"
                          : "the key's name holds a brace, which a key template cannot";
      return v;
    }
    cands.push_back({ids.front(), "spring-jdk", ", sdk: spring-jdk, key: " + Quote(*tmpl), ""});
  } else if (!pat) {
    std::string why;
    cands = GenericCandidates(text, *dump, &why);
    if (cands.empty()) {
      v.kind = why.empty() ? Verdict::Kind::kOther : Verdict::Kind::kUnusable;
      v.why = why;
      return v;
    }
  }
  v = Check(cands, key, *dump, v);
  if (v.kind == Verdict::Kind::kUnusable) v.why += note;
  return v;
}

std::string HostPort(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

std::string HostPortList(const std::vector<std::pair<std::string, int>>& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i)
    out += (i > 0 ? ", " : "") + Quote(HostPort(list[i].first, list[i].second));
  return out + "]";
}

std::string AbsolutePath(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

// The redis entry for the output: the parsed connection written back, so that a password
// given in a redis:// URL is never printed (a password_file is referred to by its path).
std::string RedisEntry(const DiscoverOptions& o) {
  const config::Redis& r = o.redis;
  std::string out = "  " + std::string(kRedisName) + ":\n";
  if (!r.sentinels.empty()) {
    out += "    sentinels: " + HostPortList(r.sentinels) + "\n";
    out += "    master_name: " + Quote(r.master_name) + "\n";
  } else if (!r.cluster.empty()) {
    out += "    cluster: " + HostPortList(r.cluster) + "\n";
  } else {
    out += "    address: " + Quote(r.Address()) + "\n";
  }
  if (r.db != 0) out += "    db: " + std::to_string(r.db) + "\n";
  if (!r.username.empty()) out += "    username: " + Quote(r.username) + "\n";
  if (!o.password_file.empty()) {
    out += "    password_file: " + Quote(AbsolutePath(o.password_file)) + "\n";
  } else if (!r.password_value.empty()) {
    out +=
        "    # the password of the redis:// address is not printed: put it in a file (mode "
        "0600) and add password_file: FILE\n";
  }
  if (!o.sentinel_password_file.empty())
    out += "    sentinel_password_file: " + Quote(AbsolutePath(o.sentinel_password_file)) + "\n";
  return out;
}

std::string UniqueName(const std::string& hint, std::set<std::string>* used) {
  std::string name = hint;
  for (int n = 2; !used->insert(name).second; ++n) name = hint + "-" + std::to_string(n);
  return name;
}

}  // namespace

int Discover(const DiscoverOptions& o, Clock& clock, std::ostream& out, std::ostream& err) {
  const auto start = clock.MonotonicNow();
  const auto deadline = start + o.timeout;
  source::RedisConnection conn(o.redis, clock);
  const std::string where = "wxcanary discover: redis " + o.redis.Address();

  std::string error;
  const std::vector<std::string> nodes = conn.ScanNodes(&error);
  if (nodes.empty()) {
    err << where << ": " << error << "\n";
    return 1;
  }
  // SCAN every node (never KEYS), each key once, within the bounds.
  std::set<std::string> keys;
  bool more = false, timed_out = false;
  for (size_t n = 0; n < nodes.size() && !more && !timed_out; ++n) {
    std::string cursor = "0";
    do {
      if (clock.MonotonicNow() >= deadline) {
        timed_out = true;
        break;
      }
      auto page = conn.Scan(nodes[n], cursor, o.count, &error);
      if (!page) {
        err << where << ": " << error << "\n";
        return 1;
      }
      for (const auto& k : page->keys) {
        if (keys.size() >= static_cast<size_t>(o.max_keys) && !keys.count(k)) {
          more = true;
          break;
        }
        keys.insert(k);
      }
      cursor = page->cursor;
      if (keys.size() >= static_cast<size_t>(o.max_keys) && (cursor != "0" || n + 1 < nodes.size()))
        more = true;
    } while (cursor != "0" && !more);
  }

  // app_id -> its environments (flow-map lines), in key order.
  std::map<std::string, std::vector<std::string>> apps;
  std::map<std::string, std::set<std::string>> names;
  std::map<std::string, std::string> secret_files;
  std::vector<Verdict> unusable;
  std::vector<std::string> others;
  size_t read = 0, companions = 0;
  for (const auto& key : keys) {
    if (clock.MonotonicNow() >= deadline) {
      timed_out = true;
      break;
    }
    ++read;
    Verdict v = Classify(key, conn, o.secrets);
    switch (v.kind) {
      case Verdict::Kind::kFound:
        for (const auto& [c, ttl] : v.found) {
          const std::string name = UniqueName(c.name, &names[c.app_id]);
          apps[c.app_id].push_back("      - {name: " + name + ", redis: " +
                                   std::string(kRedisName) + c.fields + "}  # " + ttl);
        }
        break;
      case Verdict::Kind::kUnusable: unusable.push_back(std::move(v)); break;
      case Verdict::Kind::kCompanion: ++companions; break;
      case Verdict::Kind::kOther: others.push_back(v.shown); break;
    }
  }
  for (const auto& [app, file] : o.secrets)
    if (apps.count(app)) secret_files[app] = AbsolutePath(file);

  size_t targets = 0;
  for (const auto& [app, envs] : apps) targets += envs.size();
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.MonotonicNow() - start);
  std::ostringstream y;
  y << "# wxcanary discover: redis " << o.redis.Address();
  if (o.redis.db != 0) y << " db " << o.redis.db;
  y << ": " << keys.size() << (keys.size() == 1 ? " key" : " keys") << " scanned on "
    << nodes.size() << (nodes.size() == 1 ? " node" : " nodes") << " (SCAN COUNT " << o.count
    << "), " << read << " read, in " << took.count() << " ms: " << targets
    << (targets == 1 ? " target" : " targets") << ", " << unusable.size() << " keys not usable, "
    << others.size() << " other keys\n";
  if (more)
    y << "# stopped at --max-keys=" << o.max_keys
      << ": more keys remain unscanned (raise --max-keys to see them)\n";
  if (timed_out)
    y << "# stopped at --timeout=" << FormatDuration(o.timeout) << " after reading " << read
      << " of " << keys.size() << " keys (raise --timeout to see the rest)\n";
  if (targets == 0) {
    y << "# no token keys found: nothing to monitor here (yet)\n";
  } else {
    y << "# check: wxcanary --config.check --config.file=FILE; try: wxcanary probe --all "
         "--config.file=FILE\n";
    if (!o.wechat_base_url.empty())
      y << "wechat:\n  base_url: " << Quote(o.wechat_base_url) << "\n";
    y << "redis:\n" << RedisEntry(o) << "apps:\n";
    for (const auto& [app, envs] : apps) {
      y << "  - app_id: " << Quote(app) << "\n";
      if (auto it = secret_files.find(app); it != secret_files.end())
        y << "    secret_file: " << Quote(it->second) << "\n";
      y << "    environments:\n";
      for (const auto& e : envs) y << e << "\n";
    }
  }
  if (companions > 0)
    y << "# " << companions << (companions == 1 ? " key is" : " keys are")
      << " an SDK's companion expiry key, read with its token key\n";
  if (!unusable.empty()) {
    y << "# keys it could not use:\n";
    for (const auto& v : unusable) y << "#   " << v.shown << ": " << v.why << "\n";
  }
  if (!others.empty()) {
    y << "# other keys (no SDK layout, no AppId in the name)"
      << (others.size() > kMaxListedOthers ? ", the first " + std::to_string(kMaxListedOthers) : "")
      << ":\n";
    for (size_t i = 0; i < others.size() && i < kMaxListedOthers; ++i)
      y << "#   " << others[i] << "\n";
  }
  std::string text = y.str();
  // Every line of a comment stays one line (a key name with a newline is quoted above; this is
  // the belt to those braces).
  if (targets > 0) {
    try {
      config::LoadString(text);
    } catch (const config::ConfigError& e) {
      out << text;
      err << "wxcanary discover: the config printed does not load (a bug): " << e.what() << "\n";
      return 1;
    }
  }
  out << text;
  return 0;
}

}  // namespace wxcanary::daemon
