#include "sim/sim_state.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "common/fingerprint.h"

namespace wxcanary::sim {
namespace {

using nlohmann::json;

constexpr std::string_view kTokenPath = "/cgi-bin/token";
constexpr std::string_view kStablePath = "/cgi-bin/stable_token";
constexpr std::string_view kMsgSecCheckPath = "/wxa/msg_sec_check";
constexpr std::string_view kDomainIpPath = "/cgi-bin/get_api_domain_ip";
constexpr std::string_view kCallbackIpPath = "/cgi-bin/getcallbackip";
constexpr std::string_view kQuotaGetPath = "/cgi-bin/openapi/quota/get";
constexpr std::string_view kRidGetPath = "/cgi-bin/openapi/rid/get";
constexpr std::array<std::string_view, 7> kKnownPaths = {
    kTokenPath,      kStablePath,   kMsgSecCheckPath, kDomainIpPath,
    kCallbackIpPath, kQuotaGetPath, kRidGetPath};

// The two strings the official documentation gives for testing msg_sec_check.
constexpr std::array<std::string_view, 2> kOfficialRiskyStrings = {
    "特3456书yuuo莞6543李zxcz蒜7782法fgnv级", "完2347全dfji试3726测asad感3847知qwez到"};

constexpr std::string_view kTokenPrefix = "86_";
constexpr size_t kTokenLength = 136;  // real tokens are ~130-160 opaque characters
constexpr std::string_view kTokenAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kV1ContentMaxBytes = 500 * 1024;
constexpr size_t kV2ContentMaxChars = 2500;
constexpr size_t kOpenIdLength = 28;
// rid/get answers for 7 days; the cap bounds memory under a flood of errors.
constexpr auto kRidRetention = std::chrono::hours{24 * 7};
constexpr size_t kMaxRidRecords = 200'000;
// Dead tokens are remembered for a day so they keep answering 40001/42001 rather than 40014.
constexpr auto kTokenRetention = std::chrono::hours{24};

// Invalid UTF-8 in client input must not make dump() throw.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t UnixSeconds(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
double UnixSecondsF(SystemTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}
// WeChat quotas reset at midnight Beijing time (UTC+8).
int64_t DayIndex(SystemTime t) {
  int64_t s = UnixSeconds(t) + 8 * 3600;
  return s >= 0 ? s / 86400 : (s - 86399) / 86400;
}
int64_t MinuteIndex(SystemTime t) {
  int64_t s = UnixSeconds(t);
  return s >= 0 ? s / 60 : (s - 59) / 60;
}

std::string_view KnownPath(std::string_view path) {
  for (auto p : kKnownPaths)
    if (p == path) return p;
  return "other";
}

std::string Param(const ApiRequest& req, const std::string& key) {
  auto it = req.query.find(key);
  return it == req.query.end() ? std::string() : it->second;
}

bool LooksLikeToken(std::string_view t) {
  if (t.size() != kTokenLength || t.substr(0, kTokenPrefix.size()) != kTokenPrefix) return false;
  return t.find_first_not_of(kTokenAlphabet, kTokenPrefix.size()) == std::string_view::npos;
}

bool IsOpenId(std::string_view s) {
  return s.size() == kOpenIdLength && s.find_first_not_of(kTokenAlphabet) == std::string_view::npos;
}

size_t Utf8Chars(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Returns the matched word, or nullopt; official strings first.
std::optional<std::pair<std::string, bool>> FindRisky(std::string_view content,
                                                      const std::vector<std::string>& words) {
  for (auto s : kOfficialRiskyStrings)
    if (content.find(s) != std::string_view::npos) return std::make_pair(std::string(s), true);
  for (const auto& w : words)
    if (!w.empty() && content.find(w) != std::string_view::npos) return std::make_pair(w, false);
  return std::nullopt;
}

const json* Field(const std::optional<json>& body, const char* key) {
  if (!body || !body->is_object()) return nullptr;
  auto it = body->find(key);
  return it == body->end() ? nullptr : &*it;
}

// Keeps tokens and secrets out of rid records (they are served back over HTTP).
std::string MaskedUrl(const ApiRequest& req) {
  std::string url = "https://api.weixin.qq.com" + req.path;
  char sep = '?';
  for (const auto& [k, v] : req.query) {
    std::string value = v;
    if (k == "access_token") value = "fp_" + Fingerprint(v);
    if (k == "secret") value = "***";
    url += sep + k + "=" + value;
    sep = '&';
  }
  return url;
}

std::string MaskedBody(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("secret")) return body;
  j["secret"] = "***";
  return Dump(j);
}

}  // namespace

std::map<std::string, Limit> SimOptions::DefaultLimits() {
  return {
      {std::string(kTokenPath), {0, 2000}},
      {std::string(kStablePath), {10'000, 500'000}},
      {std::string(kMsgSecCheckPath), {4000, 2'000'000}},
  };
}

std::string_view ErrMsg(int errcode) {
  switch (errcode) {
    case -1: return "system error";
    case 0: return "ok";
    case 40001: return "invalid credential, access_token is invalid or not latest";
    case 40002: return "invalid grant_type";
    case 40003: return "invalid openid";
    case 40013: return "invalid appid";
    case 40014: return "invalid access_token";
    case 40066: return "invalid url";
    case 40097: return "invalid args";
    case 40125: return "invalid appsecret";
    case 40129: return "invalid scene";
    case 40164: return "invalid ip 127.0.0.1, not in whitelist";
    case 40243: return "AppSecret已被冻结，请登录小程序平台解冻后再次调用。";
    case 41001: return "access_token missing";
    case 41002: return "appid missing";
    case 41004: return "appsecret missing";
    case 42001: return "access_token expired";
    case 43001: return "require GET method";
    case 43002: return "require POST method";
    case 43104: return "appid does not match openid";
    case 43302: return "invalid request method, use POST";
    case 44002: return "empty post data";
    case 45009: return "reach max api daily quota limit";
    case 45011: return "api minute-quota reach limit must slower retry next minute";
    case 47001: return "data format error";
    case 61010: return "code is expired, user access record is too old";
    case 76001: return "rid not found";
    case 76002: return "rid error";
    case 76021: return "cgi_path not found, please check";
    case 76022: return "could not query this cgi_path";
    case 87014: return "risky content";
    default: return "system error";
  }
}

bool IsRid(std::string_view rid) {
  if (rid.size() != 26 || rid[8] != '-' || rid[17] != '-') return false;
  for (size_t i = 0; i < rid.size(); ++i) {
    if (i == 8 || i == 17) continue;
    char c = rid[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

SimState::SimState(SimOptions options, Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      rng_(options_.seed != 0 ? options_.seed : std::random_device{}()) {}

void SimState::AddApp(const std::string& appid, const std::string& secret) {
  std::lock_guard lock(mu_);
  apps_[appid].secret = secret;
}

ApiResponse SimState::Handle(const ApiRequest& request) {
  // Parsed before taking the lock: the biggest body (500 KB) is the slowest step.
  std::optional<json> body;
  if (!request.body.empty()) {
    json j = json::parse(request.body, nullptr, false);
    if (!j.is_discarded()) body = std::move(j);
  }
  std::lock_guard lock(mu_);
  auto now = clock_.SystemNow();
  Prune(now);
  last_rid_.clear();
  std::string appid;
  ApiResponse resp = Dispatch(request, body, appid, now);
  Record(request, appid, resp, now);
  return resp;
}

ApiResponse SimState::InjectedError(const ApiRequest& request, int errcode) {
  std::lock_guard lock(mu_);
  auto now = clock_.SystemNow();
  Prune(now);
  last_rid_.clear();
  std::string appid;
  if (auto it = tokens_.find(Param(request, "access_token")); it != tokens_.end())
    appid = it->second.appid;
  else if (apps_.count(Param(request, "appid"))) appid = Param(request, "appid");
  ApiResponse resp = Error(errcode, now);
  Record(request, appid, resp, now);
  return resp;
}

ApiResponse SimState::Dispatch(const ApiRequest& req, const std::optional<json>& body,
                               std::string& appid, SystemTime now) {
  const std::string& p = req.path;
  if (p == kTokenPath) return Token(req, appid, now);
  if (p == kStablePath) return StableToken(req, body, appid, now);
  bool is_get = req.method == "GET" || req.method == "HEAD";
  if (p == kMsgSecCheckPath) {
    if (req.method != "POST") return Error(43302, now);
  } else if (p == kQuotaGetPath || p == kRidGetPath) {
    if (req.method != "POST") return Error(43002, now);
  } else if (p == kDomainIpPath || p == kCallbackIpPath) {
    if (!is_get) return Error(43001, now);
  } else {
    return Error(40066, now);
  }
  if (int e = CheckToken(req, appid, now); e != 0) return Error(e, now);
  App& app = apps_.at(appid);
  if (int e = ChargeLimit(app, p, now); e != 0) return Error(e, now);
  if (p == kMsgSecCheckPath) return MsgSecCheck(req, body, appid, now);
  if (p == kQuotaGetPath) return QuotaGet(body, appid, now);
  if (p == kRidGetPath) return RidGet(body, appid, now);
  json ips = p == kDomainIpPath ? json::array({"101.226.212.27", "101.226.212.28", "183.3.234.152"})
                                : json::array({"101.226.103.0/25", "101.226.62.0/26"});
  return {0, Dump(json{{"ip_list", ips}})};
}

ApiResponse SimState::Token(const ApiRequest& req, std::string& appid, SystemTime now) {
  if (req.method != "GET" && req.method != "HEAD") return Error(43001, now);
  if (Param(req, "grant_type") != "client_credential") return Error(40002, now);
  std::string id = Param(req, "appid");
  if (id.empty()) return Error(41002, now);
  auto it = apps_.find(id);
  if (it == apps_.end()) return Error(40013, now);
  appid = id;
  App& app = it->second;
  std::string secret = Param(req, "secret");
  if (secret.empty()) return Error(41004, now);
  if (secret != app.secret) return Error(40125, now);
  if (int e = ChargeLimit(app, std::string(kTokenPath), now); e != 0) {
    if (e == 45009)
      return Error(e, now,
                   "reach max api daily quota limit, could get access_token by "
                   "getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r");
    return Error(e, now);
  }
  std::string token = IssueToken(id, Source::kToken, now);
  ++app.tokens_issued;
  // The previous token keeps working for the grace period; anything older dies now.
  if (!app.token_previous.empty()) Invalidate(app.token_previous, now);
  if (!app.token_current.empty()) Invalidate(app.token_current, now + options_.grace);
  app.token_previous = std::move(app.token_current);
  app.token_current = token;
  return {0, Dump(json{{"access_token", token}, {"expires_in", options_.expires_in.count()}})};
}

ApiResponse SimState::StableToken(const ApiRequest& req, const std::optional<json>& body,
                                  std::string& appid, SystemTime now) {
  if (req.method != "POST") return Error(43002, now);
  if (!body || !body->is_object()) return Error(41002, now);
  const json* grant = Field(body, "grant_type");
  if (!grant || !grant->is_string() || *grant != "client_credential") return Error(40002, now);
  const json* id = Field(body, "appid");
  if (!id || !id->is_string() || id->get_ref<const std::string&>().empty())
    return Error(41002, now);
  auto it = apps_.find(id->get<std::string>());
  if (it == apps_.end()) return Error(40013, now);
  appid = it->first;
  App& app = it->second;
  const json* secret = Field(body, "secret");
  if (!secret || !secret->is_string() || secret->get_ref<const std::string&>().empty())
    return Error(41004, now);
  if (*secret != app.secret) return Error(40125, now);
  bool force = false;
  if (const json* f = Field(body, "force_refresh")) {
    if (!f->is_boolean()) return Error(40097, now);
    force = f->get<bool>();
  }
  if (int e = ChargeLimit(app, std::string(kStablePath), now); e != 0) return Error(e, now);

  bool current_live = !app.stable_current.empty() && TokenLive(app.stable_current, now);
  auto rotate = [&](SystemTime previous_dies, bool kill_previous) {
    std::string token = IssueToken(appid, Source::kStable, now);
    ++app.stable_issued;
    if (!app.stable_previous.empty()) Invalidate(app.stable_previous, now);
    if (kill_previous && !app.stable_current.empty()) Invalidate(app.stable_current, previous_dies);
    app.stable_previous = std::move(app.stable_current);
    app.stable_current = token;
  };
  if (force) {
    bool too_soon = app.last_force && now - *app.last_force < options_.force_refresh_spacing;
    if (!(too_soon && current_live)) {
      int64_t day = DayIndex(now);
      if (app.force_day != day) {
        app.force_day = day;
        app.force_count = 0;
      }
      if (app.force_count >= options_.force_refresh_per_day) return Error(45009, now);
      ++app.force_count;
      app.last_force = now;
      rotate(now + options_.force_refresh_overlap, true);
    }
  } else if (!current_live) {
    rotate(now, false);
  } else if (tokens_.at(app.stable_current).expires - now < options_.stable_rotate_window) {
    // Rotation in the last minutes: the old one simply lives out its lifetime (the overlap).
    rotate(now, false);
  }
  const TokenInfo& info = tokens_.at(app.stable_current);
  auto remaining = std::chrono::duration_cast<std::chrono::seconds>(info.expires - now).count();
  return {0, Dump(json{{"access_token", app.stable_current}, {"expires_in", remaining}})};
}

ApiResponse SimState::MsgSecCheck(const ApiRequest& /*req*/, const std::optional<json>& body,
                                  const std::string& /*appid*/, SystemTime now) {
  if (!body || !body->is_object()) return Error(47001, now);
  int version = 1;
  if (const json* v = Field(body, "version")) {
    if (!v->is_number_integer() || (*v != 1 && *v != 2)) return Error(47001, now);
    version = v->get<int>();
  }
  const json* content = Field(body, "content");
  if (!content) return Error(44002, now);
  if (!content->is_string()) return Error(47001, now);
  const auto& text = content->get_ref<const std::string&>();
  if (version == 1) {
    if (text.size() > kV1ContentMaxBytes) return Error(47001, now);
    if (FindRisky(text, options_.risky_words)) return Error(87014, now);
    return {0, Dump(json{{"errcode", 0}, {"errmsg", "ok"}})};
  }
  const json* openid = Field(body, "openid");
  const json* scene = Field(body, "scene");
  if (text.empty() || !openid || !scene) return Error(44002, now);
  if (!openid->is_string()) return Error(40003, now);
  const auto& oid = openid->get_ref<const std::string&>();
  if (oid.empty()) return Error(44002, now);
  if (!scene->is_number_integer() || *scene < 1 || *scene > 4) return Error(40129, now);
  if (!IsOpenId(oid)) return Error(40003, now);
  // Conventions so tests can reach the two openid-state errors deterministically.
  if (oid.rfind("oMIS", 0) == 0) return Error(43104, now);
  if (oid.rfind("oEXP", 0) == 0) return Error(61010, now);
  if (Utf8Chars(text) > kV2ContentMaxChars) return Error(47001, now);
  auto risky = FindRisky(text, options_.risky_words);
  std::string suggest = risky ? "risky" : "pass";
  int label = risky ? (risky->second ? 20006 : 21000) : 100;
  json detail = json::array();
  json d{{"strategy", "content_model"},
         {"errcode", 0},
         {"suggest", suggest},
         {"label", label},
         {"prob", risky ? 90 : 0}};
  if (risky) d["keyword"] = risky->first;
  detail.push_back(d);
  return {0, Dump(json{{"errcode", 0},
                       {"errmsg", "ok"},
                       {"result", {{"suggest", suggest}, {"label", label}}},
                       {"detail", detail},
                       {"trace_id", NewRid(now)}})};
}

ApiResponse SimState::QuotaGet(const std::optional<json>& body, const std::string& appid,
                               SystemTime now) {
  if (!body || !body->is_object()) return Error(47001, now);
  const json* cgi = Field(body, "cgi_path");
  if (!cgi || !cgi->is_string() || cgi->get_ref<const std::string&>().empty())
    return Error(44002, now);
  const auto& path = cgi->get_ref<const std::string&>();
  if (KnownPath(path) == "other") return Error(76021, now);
  auto lit = options_.limits.find(path);
  if (lit == options_.limits.end() || lit->second.per_day == 0) return Error(76022, now);
  const App& app = apps_.at(appid);
  int64_t used = 0;
  if (auto u = app.usage.find(path); u != app.usage.end() && u->second.day == DayIndex(now))
    used = u->second.day_count;
  int64_t limit = lit->second.per_day;
  return {0, Dump(json{{"errcode", 0},
                       {"errmsg", "ok"},
                       {"quota",
                        {{"daily_limit", limit},
                         {"used", used},
                         {"remain", std::max<int64_t>(0, limit - used)}}}})};
}

ApiResponse SimState::RidGet(const std::optional<json>& body, const std::string& appid,
                             SystemTime now) {
  if (!body || !body->is_object()) return Error(47001, now);
  const json* rid = Field(body, "rid");
  if (!rid || !rid->is_string() || rid->get_ref<const std::string&>().empty())
    return Error(44002, now);
  const auto& r = rid->get_ref<const std::string&>();
  if (!IsRid(r)) return Error(76002, now);
  auto it = rids_.find(r);
  // Calls that never reached an app (unknown token) are visible to every app: a test convenience.
  if (it == rids_.end() || (!it->second.appid.empty() && it->second.appid != appid))
    return Error(76001, now);
  const RidRecord& rec = it->second;
  return {0, Dump(json{{"errcode", 0},
                       {"errmsg", "ok"},
                       {"request",
                        {{"invoke_time", UnixSeconds(rec.invoke_time)},
                         {"cost_in_ms", rec.cost_ms},
                         {"request_url", rec.request_url},
                         {"request_body", rec.request_body},
                         {"response_body", rec.response_body},
                         {"client_ip", rec.client_ip}}}})};
}

ApiResponse SimState::Error(int errcode, SystemTime now, std::string_view errmsg) {
  last_rid_ = NewRid(now);
  std::string msg(errmsg.empty() ? ErrMsg(errcode) : errmsg);
  msg += " rid: " + last_rid_;
  return {errcode, Dump(json{{"errcode", errcode}, {"errmsg", msg}})};
}

int SimState::CheckToken(const ApiRequest& req, std::string& appid, SystemTime now) {
  std::string token = Param(req, "access_token");
  if (token.empty()) return 41001;
  auto it = tokens_.find(token);
  // Well-formed but unknown reads as "never valid" (40001); anything else is malformed (40014).
  if (it == tokens_.end()) return LooksLikeToken(token) ? 40001 : 40014;
  appid = it->second.appid;
  if (now >= it->second.expires) return options_.expired_errcode;
  if (it->second.invalid_from && now >= *it->second.invalid_from) return 40001;
  return 0;
}

int SimState::ChargeLimit(App& app, const std::string& path, SystemTime now) {
  Limit lim;
  if (auto it = options_.limits.find(path); it != options_.limits.end()) lim = it->second;
  Usage& u = app.usage[path];
  int64_t minute = MinuteIndex(now), day = DayIndex(now);
  if (u.minute != minute) {
    u.minute = minute;
    u.minute_count = 0;
  }
  if (u.day != day) {
    u.day = day;
    u.day_count = 0;
  }
  if (lim.per_minute > 0 && u.minute_count >= lim.per_minute) return 45011;
  if (lim.per_day > 0 && u.day_count >= lim.per_day) return 45009;
  ++u.minute_count;
  ++u.day_count;
  return 0;
}

std::string SimState::IssueToken(const std::string& appid, Source source, SystemTime now) {
  std::string token;
  do {
    token.assign(kTokenPrefix);
    while (token.size() < kTokenLength) {
      uint64_t bits = rng_();
      for (int i = 0; i < 10 && token.size() < kTokenLength; ++i, bits >>= 6)
        token += kTokenAlphabet[bits & 63];
    }
  } while (tokens_.count(token) != 0);
  TokenInfo info;
  info.appid = appid;
  info.source = source;
  info.issued = now;
  info.expires = now + options_.expires_in;
  tokens_.emplace(token, std::move(info));
  token_prune_.emplace_back(now + options_.expires_in + kTokenRetention, token);
  return token;
}

void SimState::Invalidate(const std::string& token, SystemTime at) {
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return;
  auto& from = it->second.invalid_from;
  if (!from || at < *from) from = at;
}

bool SimState::TokenLive(const std::string& token, SystemTime now) const {
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return false;
  return now < it->second.expires && (!it->second.invalid_from || now < *it->second.invalid_from);
}

std::string SimState::NewRid(SystemTime now) {
  uint64_t r = rng_();
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%08x-%08x-%08x", static_cast<uint32_t>(UnixSeconds(now)),
                static_cast<uint32_t>(r >> 32), static_cast<uint32_t>(r));
  return std::string(buf.data(), 26);
}

void SimState::Record(const ApiRequest& req, const std::string& appid, const ApiResponse& resp,
                      SystemTime now) {
  std::string path(KnownPath(req.path));
  ++calls_[path][resp.errcode];
  if (!appid.empty()) ++apps_.at(appid).calls[path][resp.errcode];
  if (resp.errcode == 0 || last_rid_.empty() || rids_.count(last_rid_)) return;
  RidRecord rec;
  rec.appid = appid;
  rec.invoke_time = now;
  rec.cost_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.SystemNow() - now).count();
  rec.request_url = MaskedUrl(req);
  rec.request_body = MaskedBody(req.body);
  rec.response_body = resp.body;
  rec.client_ip = req.client_ip;
  rids_.emplace(last_rid_, std::move(rec));
  rid_prune_.emplace_back(now + kRidRetention, last_rid_);
  while (rid_prune_.size() > kMaxRidRecords) {
    rids_.erase(rid_prune_.front().second);
    rid_prune_.pop_front();
  }
}

void SimState::Prune(SystemTime now) {
  while (!token_prune_.empty() && token_prune_.front().first <= now) {
    tokens_.erase(token_prune_.front().second);
    token_prune_.pop_front();
  }
  while (!rid_prune_.empty() && rid_prune_.front().first <= now) {
    rids_.erase(rid_prune_.front().second);
    rid_prune_.pop_front();
  }
}

nlohmann::json SimState::StateJson() {
  std::lock_guard lock(mu_);
  auto now = clock_.SystemNow();
  Prune(now);
  json apps = json::object();
  for (const auto& [id, app] : apps_) {
    json tokens = json::array();
    for (const std::string* t :
         {&app.token_current, &app.token_previous, &app.stable_current, &app.stable_previous}) {
      if (t->empty() || !TokenLive(*t, now)) continue;
      const TokenInfo& info = tokens_.at(*t);
      tokens.push_back(
          {{"fingerprint", Fingerprint(*t)},
           {"source", info.source == Source::kToken ? "token" : "stable"},
           {"current", t == &app.token_current || t == &app.stable_current},
           {"issued_at", UnixSecondsF(info.issued)},
           {"expires_at", UnixSecondsF(info.expires)},
           {"invalidated_at",
            info.invalid_from ? json(UnixSecondsF(*info.invalid_from)) : json(nullptr)}});
    }
    json usage = json::object();
    for (const auto& [path, u] : app.usage)
      usage[path] = {{"minute", u.minute == MinuteIndex(now) ? u.minute_count : 0},
                     {"day", u.day == DayIndex(now) ? u.day_count : 0}};
    json calls = json::object();
    for (const auto& [path, by_code] : app.calls)
      for (const auto& [code, n] : by_code) calls[path][std::to_string(code)] = n;
    apps[id] = {{"tokens", tokens},
                {"tokens_issued", app.tokens_issued},
                {"stable_tokens_issued", app.stable_issued},
                {"force_refreshes_today", app.force_day == DayIndex(now) ? app.force_count : 0},
                {"usage", usage},
                {"calls", calls}};
  }
  json calls = json::object();
  for (const auto& [path, by_code] : calls_)
    for (const auto& [code, n] : by_code) calls[path][std::to_string(code)] = n;
  return {{"sim_time", UnixSecondsF(now)},
          {"apps", apps},
          {"calls", calls},
          {"tokens_known", tokens_.size()},
          {"rids_recorded", rids_.size()}};
}

void SimState::Reset() {
  std::lock_guard lock(mu_);
  for (auto& [id, app] : apps_) {
    App fresh;
    fresh.secret = app.secret;
    app = std::move(fresh);
  }
  tokens_.clear();
  token_prune_.clear();
  rids_.clear();
  rid_prune_.clear();
  calls_.clear();
}

}  // namespace wxcanary::sim
