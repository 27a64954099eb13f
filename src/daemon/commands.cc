#include "daemon/commands.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <istream>
#include <ostream>
#include <sstream>

#include "common/clock.h"
#include "common/duration.h"
#include "common/outcome.h"
#include "common/quote.h"
#include "config/config.h"
#include "daemon/discover.h"
#include "heal/heal_store.h"
#include "probe/probe.h"
#include "probe/runner.h"
#include "source/redis_connection.h"
#include "wechat/client.h"

namespace wxcanary::daemon {
namespace {

// What a verdict means for the operator reading it at 3 a.m., and what to do next.
std::string Meaning(const ProbeResult& r) {
  switch (r.outcome) {
    case Outcome::kOk:
      return r.content_flagged
                 ? "the token works (the canary text was flagged, which only WeChat's content "
                   "check cares about)"
                 : "the token works: the app's calls with it succeed";
    case Outcome::kTokenInvalid:
      return "WeChat rejects this token (40001): a newer token was fetched for this AppId (by "
             "another environment or service sharing it) and the 5-minute overlap is over, or it "
             "was never valid. The app fails until the key is replaced: wxcanary evict";
    case Outcome::kTokenMalformed:
      return "WeChat says this is not a valid access token (40014): corrupted in the cache, or "
             "kept past its expires_in. Replace it: wxcanary evict";
    case Outcome::kTokenExpired:
      return "the token's life (expires_in, 7200 s) is over but the key still holds it (42001): "
             "the app's cache TTL outlives the token. Evict it (wxcanary evict) and cache tokens "
             "for less than expires_in";
    case Outcome::kTokenMissing:
      return "no usable token at this key: the app has not cached one, or keeps it under another "
             "key or format (check key, storage, json_path, hash_field)";
    case Outcome::kQuota:
      return "the API refused the call for quota (45009/45011): the token was not judged";
    case Outcome::kApiError:
      return "WeChat answered with another error (see errcode/errmsg): the token was not judged";
    case Outcome::kTransportError:
      return "no usable answer from the API (connect, TLS, timeout or HTTP status): the token was "
             "not judged";
    case Outcome::kBadResponse:
      return "the API answered with something other than the JSON expected: the token was not "
             "judged";
    case Outcome::kRedisError:
      return "Redis could not be read (see the error: auth, refused, timeout): the token was not "
             "judged";
  }
  return "";
}

std::string RedisLine(const config::Config& cfg, const config::Environment& env) {
  auto it = cfg.redis.find(env.redis);
  if (it == cfg.redis.end()) return env.redis + " (not configured)";
  const config::Redis& r = it->second;
  std::string s = env.redis + " " + r.Address() + " db " + std::to_string(r.db);
  s += " user " + (r.username.empty() ? std::string("default") : r.username);
  s += !r.password_value.empty() ? " (password set)" : " (no password)";
  return s;
}

std::string KeyLine(const config::Environment& env) {
  std::string s = env.key + " (" + std::string(config::StorageName(env.storage));
  if (env.storage == config::Storage::kHash) s += " field " + env.hash_field;
  if (!env.json_path.empty()) s += " json_path " + env.json_path;
  return s + ")";
}

std::string TtlText(int64_t ttl) {
  if (ttl == -2) return "no key";
  if (ttl == -1) return "no expiry";
  return std::to_string(ttl) + " s";
}

int64_t Millis(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A read that used up the probe's timeout sends no call (probe.cc says so in the detail).
bool CallSent(const ProbeResult& r) {
  return r.token_present && !(r.outcome == Outcome::kTransportError &&
                              r.detail.find("used up before the call") != std::string::npos);
}

void PrintTrail(const config::Config& cfg, const Target& t, const ProbeResult& r,
                std::ostream& out) {
  auto row = [&](const char* name, const std::string& value) {
    out << "  " << name << std::string(9 - std::string(name).size(), ' ') << value << "\n";
  };
  out << "probe " << t.app_id << "/" << t.app_env << "\n";
  row("redis", RedisLine(cfg, t.env));
  row("key", KeyLine(t.env));
  if (r.outcome == Outcome::kRedisError) {
    row("read", "failed: " + r.detail);
  } else {
    row("ttl", TtlText(r.ttl_seconds));
    row("token", r.token_present ? "fingerprint " + r.fingerprint : "none: " + r.detail);
  }
  if (r.token_present) {
    const wechat::ProbeKindEntry& kind = wechat::KindEntry(t.env.probe);
    row("call", std::string(wechat::HttpMethodName(kind.method)) + " " + cfg.wechat.base_url +
                    std::string(kind.path) + " (" + std::string(kind.name) + ")");
    if (!CallSent(r)) {
      row("http", "not sent: " + r.detail);
    } else {
      row("http", r.http_status != 0 ? std::to_string(r.http_status) : "no answer");
      if (r.errcode) row("errcode", std::to_string(*r.errcode));
      if (!r.errmsg.empty()) row("errmsg", r.errmsg);
      if (!r.rid.empty()) row("rid", r.rid);
      if (!r.detail.empty() && r.outcome != Outcome::kOk) row("detail", r.detail);
    }
  }
  row("took", std::to_string(Millis(r.duration)) + " ms");
  row("verdict", std::string(OutcomeName(r.outcome)) + ": " + Meaning(r));
}

struct Loaded {
  config::Config cfg;
  std::vector<Target> targets;
};

// "APP_ID/APP_ENV" -> the target, or nullptr with one line on `err`.
const Target* FindTarget(const Loaded& l, const std::string& spec, const std::string& config_file,
                         std::ostream& err) {
  auto slash = spec.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == spec.size()) {
    err << "wxcanary: --target: \"" << spec << "\" is not APP_ID/APP_ENV\n";
    return nullptr;
  }
  const std::string app = spec.substr(0, slash), env = spec.substr(slash + 1);
  for (const auto& t : l.targets)
    if (t.app_id == app && t.app_env == env) return &t;
  err << "wxcanary: --target: \"" << spec << "\" is not in config file \"" << config_file
      << "\" (wxcanary --config.file=" << config_file << " --config.check lists the targets)\n";
  return nullptr;
}

bool Load(const std::string& config_file, Loaded* l, std::ostream& err) {
  try {
    l->cfg = config::LoadFile(config_file);
  } catch (const config::ConfigError& e) {
    err << "wxcanary: config file \"" << config_file << "\": " << e.what() << "\n";
    return false;
  }
  l->targets = probe::Runner::TargetsOf(l->cfg);
  return true;
}

// One probe now, on fresh connections (the daemon's are not shared with it).
ProbeResult ProbeNow(const config::Config& cfg, const Target& t) {
  auto it = cfg.redis.find(t.env.redis);
  source::RedisConnection redis(it->second, RealClock::Instance());
  wechat::Client client(cfg.wechat);
  return probe::RunProbe(t, redis, client, RealClock::Instance());
}

void PrintTable(const std::vector<std::pair<const Target*, ProbeResult>>& rows, std::ostream& out) {
  std::vector<std::vector<std::string>> cells = {
      {"APP_ID", "APP_ENV", "OUTCOME", "ERRCODE", "HTTP", "TTL", "TOKEN", "MS", "RID"}};
  for (const auto& [t, r] : rows) {
    cells.push_back({t->app_id, t->app_env, std::string(OutcomeName(r.outcome)),
                     r.errcode ? std::to_string(*r.errcode) : "-",
                     r.http_status ? std::to_string(r.http_status) : "-",
                     r.outcome == Outcome::kRedisError ? "-" : TtlText(r.ttl_seconds),
                     r.fingerprint.empty() ? "-" : r.fingerprint,
                     std::to_string(Millis(r.duration)), r.rid.empty() ? "-" : r.rid});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

bool IsFingerprint(const std::string& s) {
  return s.size() == 8 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Parses with CLI11; false with the exit code in *code when it printed help or an error.
bool Parse(CLI::App& app, std::vector<std::string> args, std::ostream& out, std::ostream& err,
           int* code) {
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    *code = 0;
    return false;
  } catch (const CLI::ParseError& e) {
    err << app.get_name() << ": " << e.what() << " (see " << app.get_name() << " --help)\n";
    *code = 2;
    return false;
  }
  return true;
}

int ProbeCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "Runs one probe now and prints its trail; exit 0 when the token works, 1 when "
      "not, 2 on a usage or config error.",
      "wxcanary probe"};
  std::string config_file, target;
  bool all = false;
  app.add_option("--config.file", config_file, "YAML config file")->required();
  auto* t = app.add_option("--target", target, "APP_ID/APP_ENV to probe");
  auto* a = app.add_flag("--all", all, "Probe every target once and print a table");
  t->excludes(a);
  int code = 0;
  if (!Parse(app, args, out, err, &code)) return code;
  if (target.empty() && !all) {
    err << "wxcanary probe: give --target APP_ID/APP_ENV or --all\n";
    return 2;
  }
  Loaded l;
  if (!Load(config_file, &l, err)) return 2;
  if (!all) {
    const Target* tg = FindTarget(l, target, config_file, err);
    if (tg == nullptr) return 2;
    ProbeResult r = ProbeNow(l.cfg, *tg);
    PrintTrail(l.cfg, *tg, r, out);
    return r.outcome == Outcome::kOk ? 0 : 1;
  }
  std::vector<std::pair<const Target*, ProbeResult>> rows;
  size_t failing = 0;
  for (const auto& tg : l.targets) {
    rows.emplace_back(&tg, ProbeNow(l.cfg, tg));
    if (rows.back().second.outcome != Outcome::kOk) ++failing;
  }
  // Failing targets first: they are what the operator came for.
  std::stable_sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) {
    return (x.second.outcome != Outcome::kOk) > (y.second.outcome != Outcome::kOk);
  });
  PrintTable(rows, out);
  out << rows.size() << (rows.size() == 1 ? " target, " : " targets, ") << failing << " not ok\n";
  return failing == 0 ? 0 : 1;
}

int EvictCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                 std::ostream& err) {
  CLI::App app{
      "Deletes a target's cached token, only if the key still holds the token with the "
      "given fingerprint (default: the token failing now), as the self-heal does. "
      "Exit 0 deleted, 1 refused or not confirmed, 2 on a usage or config error.",
      "wxcanary evict"};
  std::string config_file, target, fingerprint;
  bool yes = false;
  app.add_option("--config.file", config_file, "YAML config file")->required();
  app.add_option("--target", target, "APP_ID/APP_ENV whose key to evict")->required();
  app.add_option("--fingerprint", fingerprint,
                 "8-hex fingerprint of the token to delete (default: the one failing now)");
  app.add_flag("--yes", yes, "Do not ask for confirmation");
  int code = 0;
  if (!Parse(app, args, out, err, &code)) return code;
  if (!fingerprint.empty() && !IsFingerprint(fingerprint)) {
    err << "wxcanary evict: --fingerprint: \"" << fingerprint
        << "\" is not 8 lowercase hex characters (as wxcanary probe prints)\n";
    return 2;
  }
  Loaded l;
  if (!Load(config_file, &l, err)) return 2;
  const Target* tg = FindTarget(l, target, config_file, err);
  if (tg == nullptr) return 2;

  ProbeResult r = ProbeNow(l.cfg, *tg);
  PrintTrail(l.cfg, *tg, r, out);
  if (!r.token_present) {
    out << "nothing to evict: the key holds no token (" << OutcomeName(r.outcome) << ")\n";
    return 1;
  }
  if (!fingerprint.empty() && r.fingerprint != fingerprint) {
    out << "refusing: the key now holds token " << r.fingerprint << ", not " << fingerprint
        << ": nothing deleted\n";
    return 1;
  }
  if (fingerprint.empty() && !IsTokenError(r.outcome)) {
    out << "refusing: token " << r.fingerprint << " is not failing (" << OutcomeName(r.outcome)
        << "): nothing deleted. To evict it anyway: --fingerprint " << r.fingerprint << "\n";
    return 1;
  }
  const std::string what = (tg->env.storage == config::Storage::kHash
                                ? "field " + tg->env.hash_field + " of key " + tg->env.key
                                : "key " + tg->env.key) +
                           " in redis " + RedisLine(l.cfg, tg->env);
  out << "will delete " << what << ", only if it still holds token " << r.fingerprint << "\n";
  if (!IsTokenError(r.outcome))
    out << "note: this token still works (" << OutcomeName(r.outcome)
        << "); the app will fetch a new one, which ends this one for every holder\n";
  if (!yes) {
    out << "delete? [y/N] " << std::flush;
    std::string answer;
    if (!std::getline(in, answer)) answer.clear();
    std::transform(answer.begin(), answer.end(), answer.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (answer != "y" && answer != "yes") {
      out << (in ? "" : "\n") << "not confirmed: nothing deleted\n";
      return 1;
    }
  }
  // The self-heal's own compare-and-delete (one Lua script: delete only if unchanged).
  heal::RedisHealStore store(l.cfg.redis, RealClock::Instance());
  std::string error;
  std::optional<int> deleted = store.CompareAndDelete(tg->env, r.raw_value, &error);
  if (!deleted) {
    out << "redis error: " << error << ": nothing deleted\n";
    return 1;
  }
  if (*deleted == 0) {
    out << "refusing: the key changed since it was read (it no longer holds token " << r.fingerprint
        << "): nothing deleted\n";
    return 1;
  }
  out << "deleted token " << r.fingerprint << " from " << what
      << "; the app fetches a new token on its next call. Check: wxcanary probe --config.file="
      << config_file << " --target " << target << "\n";
  return 0;
}

// A ConfigError about the redis entry discover builds from its flags, as the flag it came from:
// `redis.main.sentinels[0]: "x" is not host:port` -> `--redis.sentinels: "x" is not host:port`.
std::string AsFlagError(const std::string& message, bool cluster) {
  static const std::pair<std::string_view, std::string_view> kFlags[] = {
      {"address", "--redis.address"},
      {"cluster", "--redis.address"},
      {"sentinels", "--redis.sentinels"},
      {"master_name", "--redis.master-name"},
      {"db", "--redis.db"},
      {"username", "--redis.username"},
      {"password_file", "--redis.password-file"},
      {"sentinel_password_file", "--redis.sentinel-password-file"}};
  constexpr std::string_view kPrefix = "redis.main.";
  const size_t colon = message.find(": ");
  if (message.rfind(kPrefix, 0) != 0 || colon == std::string::npos) return message;
  const std::string key =
      message.substr(kPrefix.size(), message.find_first_of(".[:", kPrefix.size()) - kPrefix.size());
  for (const auto& [name, flag] : kFlags)
    if (key == name) {
      std::string rest = message.substr(colon + 2);
      if (cluster && key == "address") rest += " (with --redis.cluster: host:port,...)";
      return std::string(flag) + ": " + rest;
    }
  return message;
}

int DiscoverCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "Scans a Redis, read-only (SCAN, never KEYS; bounded by --max-keys and --timeout), "
      "for the keys where WeChat SDKs cache access tokens, and prints a wxcanary config "
      "for them (one environment per key, the sdk preset it matched, the TTL seen), then "
      "the keys it could not use and why. Never prints a token, secret or password. Exit "
      "0 when it ran, 1 when Redis cannot be read, 2 on a bad flag.",
      "wxcanary discover"};
  std::string address, sentinels, master_name, username, timeout = "10s";
  int db = 0;
  bool cluster = false;
  std::vector<std::string> secrets;
  DiscoverOptions o;
  app.add_option("--redis.address", address,
                 "host:port, unix:/path or redis://[user:password@]host[:port][/db] (as the "
                 "config's address); with --redis.cluster: seed nodes host:port,...");
  app.add_option("--redis.sentinels", sentinels,
                 "host:port,...: ask these Sentinels for the master (with --redis.master-name)");
  app.add_option("--redis.master-name", master_name, "The Sentinel master's name");
  app.add_flag("--redis.cluster", cluster, "The address is a Redis Cluster: SCAN every master");
  app.add_option("--redis.db", db, "Database number (0..15)");
  app.add_option("--redis.username", username, "Redis 6 ACL user");
  app.add_option("--redis.password-file", o.password_file, "File holding the Redis password");
  app.add_option("--redis.sentinel-password-file", o.sentinel_password_file,
                 "File holding the Sentinels' password");
  app.add_option("--count", o.count, "SCAN COUNT hint (default 100)")
      ->check(CLI::Range(1, 100'000));
  app.add_option("--max-keys", o.max_keys, "Look at no more keys than this (default 10000)")
      ->check(CLI::Range(1, 100'000'000));
  app.add_option("--timeout", timeout, "Wall-clock bound of the scan and reads (default 10s)");
  app.add_option("--secret", secrets,
                 "APPID=FILE: the app's secret, to recognise keys made from it (EasyWeChat, "
                 "PowerWeChat); repeatable")
      ->take_all();
  app.add_option("--wechat.base-url", o.wechat_base_url,
                 "wechat.base_url of the config printed (default: WeChat's own)");
  int code = 0;
  if (!Parse(app, args, out, err, &code)) return code;
  auto usage = [&](const std::string& line) {
    err << "wxcanary discover: " << line << "\n";
    return 2;
  };
  if (address.empty() && sentinels.empty())
    return usage("give --redis.address (or --redis.sentinels with --redis.master-name)");
  if (cluster && address.empty())
    return usage("--redis.cluster needs the seed nodes in --redis.address");
  auto duration = ParseDuration(timeout);
  if (!duration || duration->count() <= 0)
    return usage("--timeout: " + Quote(timeout) + " is not a duration (e.g. 10s, 1m)");
  o.timeout = *duration;
  if (!o.wechat_base_url.empty() && o.wechat_base_url.rfind("http://", 0) != 0 &&
      o.wechat_base_url.rfind("https://", 0) != 0)
    return usage("--wechat.base-url: " + Quote(o.wechat_base_url) +
                 " must start with http:// or https://");
  for (const auto& s : secrets) {
    const size_t eq = s.find('=');
    // Only the part before '=' is shown: a mistyped flag may hold the secret itself.
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      return usage("--secret: " +
                   (s.size() < 20 || eq != std::string::npos
                        ? Quote(s.substr(0, eq)) + (eq == std::string::npos ? "" : "=...")
                        : std::string("the value (not shown: it may be the secret itself)")) +
                   " is not APPID=FILE");
    const std::string file = s.substr(eq + 1);
    if (!std::ifstream(file)) return usage("--secret: cannot read " + Quote(file));
    o.secrets.emplace_back(s.substr(0, eq), file);
  }

  // The same parsing as the config's redis entry: one source of what an address may be.
  auto list = [](const std::string& csv) {
    std::string yaml = "[";
    for (size_t start = 0; start <= csv.size();) {
      size_t comma = csv.find(',', start);
      if (comma == std::string::npos) comma = csv.size();
      yaml += (start > 0 ? ", " : "") + Quote(csv.substr(start, comma - start));
      start = comma + 1;
    }
    return yaml + "]";
  };
  std::string entry = "{";
  if (!address.empty())
    entry += cluster ? "cluster: " + list(address) : "address: " + Quote(address);
  if (!sentinels.empty())
    entry += std::string(entry.size() > 1 ? ", " : "") + "sentinels: " + list(sentinels);
  if (!master_name.empty()) entry += ", master_name: " + Quote(master_name);
  if (app.count("--redis.db") > 0) entry += ", db: " + std::to_string(db);
  if (!username.empty()) entry += ", username: " + Quote(username);
  if (!o.password_file.empty()) entry += ", password_file: " + Quote(o.password_file);
  if (!o.sentinel_password_file.empty())
    entry += ", sentinel_password_file: " + Quote(o.sentinel_password_file);
  entry += "}";
  try {
    o.redis = config::LoadRedis("main", entry);
  } catch (const config::ConfigError& e) {
    return usage(AsFlagError(e.what(), cluster));
  }
  return Discover(o, RealClock::Instance(), out, err);
}

}  // namespace

bool IsCommand(const std::vector<std::string>& args) {
  return !args.empty() && (args[0] == "probe" || args[0] == "evict" || args[0] == "discover");
}

int RunCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
               std::ostream& err) {
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "probe") return ProbeCommand(rest, out, err);
  if (args[0] == "discover") return DiscoverCommand(rest, out, err);
  return EvictCommand(rest, in, out, err);
}

}  // namespace wxcanary::daemon
