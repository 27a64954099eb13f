#include "daemon/status_page.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_map>

#include "common/duration.h"
#include "heal/healer.h"
#include "keeper/keeper.h"
#include "telemetry/probe_metrics.h"
#include "common/rfc3339.h"
#include "tracking/token_tracker.h"

namespace wxcanary::daemon {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

bool FailingNow(const TargetStatus& t) { return t.last_outcome && *t.last_outcome != Outcome::kOk; }

bool Matches(const TargetStatus& t, const StatusQuery& q) {
  return (q.app_id.empty() || t.app_id.find(q.app_id) != std::string::npos) &&
         (q.app_env.empty() || t.app_env.find(q.app_env) != std::string::npos);
}

struct Counts {
  size_t targets = 0;
  size_t failing = 0;
  size_t in_conflict = 0;
};

Counts CountAll(const std::vector<TargetStatus>& targets) {
  Counts c;
  c.targets = targets.size();
  for (const auto& t : targets) {
    c.failing += FailingNow(t) ? 1 : 0;
    c.in_conflict += t.in_conflict() ? 1 : 0;
  }
  return c;
}

std::vector<const TargetStatus*> Matching(const std::vector<TargetStatus>& targets,
                                          const StatusQuery& q) {
  std::vector<const TargetStatus*> out;
  out.reserve(targets.size());
  for (const auto& t : targets)
    if (Matches(t, q)) out.push_back(&t);
  return out;
}

void Escape(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// "?app_id=...&page=2" for links that keep the filter; "?" when nothing is set.
std::string QueryString(const StatusQuery& q, size_t page, bool refresh) {
  std::string s = "?";
  auto add = [&](std::string_view k, const std::string& v) {
    if (s.size() > 1) s += '&';
    s += k;
    s += '=';
    s += UrlEncode(v);
  };
  if (!q.app_id.empty()) add("app_id", q.app_id);
  if (!q.app_env.empty()) add("app_env", q.app_env);
  if (page > 1) add("page", std::to_string(page));
  if (!refresh) add("refresh", "off");
  return s;
}

// "2026-12-01 23:55:01Z".
std::string Clock(SystemTime t) {
  std::string s = FormatRfc3339(t);  // 2026-12-01T23:55:01.123Z
  if (s.size() >= 19) s = s.substr(0, 10) + " " + s.substr(11, 8) + "Z";
  return s;
}

std::string Ago(SystemTime t, SystemTime now) {
  auto d = duration_cast<seconds>(now - t);
  if (d.count() < 0) d = seconds{0};
  return FormatDuration(duration_cast<milliseconds>(d)) + " ago";
}

std::string Seconds(double s) {
  if (s <= 0) return "0s";
  return FormatDuration(milliseconds{static_cast<int64_t>(std::llround(s)) * 1000});
}

std::string When(SystemTime t, SystemTime now) {
  return Clock(t) + " <span class=dim>(" + Ago(t, now) + ")</span>";
}

nlohmann::json OptionalTime(const std::optional<SystemTime>& t) {
  return t ? nlohmann::json(FormatRfc3339(*t)) : nlohmann::json(nullptr);
}

std::string TtlText(const TargetStatus& t) {
  if (!t.token_known) return "&mdash;";
  if (t.ttl_seconds == -2) return "no key";
  if (t.ttl_seconds == -1) return "<span class=warn>no expiry</span>";
  return std::to_string(t.ttl_seconds) + " s";
}

constexpr const char* kStyle = R"(
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
h1{font-size:1.4em;margin:0 0 .4em}
a{color:#0b5cad}
.counts span{display:inline-block;padding:.3em .8em;margin-right:.5em;border-radius:4px;background:#eef1f4;font-weight:600}
.counts .bad{background:#fde2e1;color:#9b1c1c}
.counts .warn{background:#fff1cc;color:#7a4d00}
.counts .good{background:#dcf5e3;color:#17612e}
form{margin:.8em 0}
input{font:inherit;padding:.15em .3em;width:14em}
table{border-collapse:collapse;width:100%;margin-top:.6em}
th,td{border-bottom:1px solid #dde1e6;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600;white-space:nowrap}
tr.failing td:first-child{border-left:4px solid #d1242f}
tr.never_succeeded td:first-child{border-left:4px solid #bf8700}
tr.ok td:first-child{border-left:4px solid #2da44e}
.state{font-weight:600;white-space:nowrap}
.state.failing{color:#b3261e}.state.never_succeeded{color:#8a6100}.state.ok{color:#17612e}
code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;background:#f1f3f5;padding:0 .2em;border-radius:3px}
.dim{color:#66707a}.warn{color:#8a6100;font-weight:600}.bad{color:#b3261e;font-weight:600}
.nav{margin:.5em 0}
)";

void RenderRow(std::string& out, const TargetStatus& t, SystemTime now) {
  const auto state = t.state();
  const std::string_view name = StateName(state);
  out += "<tr class=\"";
  out += name;
  out += "\" data-app-id=\"";
  Escape(out, t.app_id);
  out += "\" data-app-env=\"";
  Escape(out, t.app_env);
  out += "\" data-state=\"";
  out += name;
  out += "\">";

  // target
  out += "<td><code>";
  Escape(out, t.app_id);
  out += "</code><br><b>";
  Escape(out, t.app_env);
  out += "</b></td>";

  // state
  out += "<td><span class=\"state ";
  out += name;
  out += "\">";
  if (state == TargetStatus::State::kOk) {
    out += "ok</span>";
  } else if (state == TargetStatus::State::kFailing) {
    out += "failing</span><br>since ";
    out += t.failing_since ? When(*t.failing_since, now) : std::string("?");
  } else {
    out += "never succeeded</span>";
    if (!t.last_outcome) out += "<br><span class=dim>not probed yet</span>";
  }
  out += "</td>";

  // last outcome
  out += "<td class=outcome>";
  if (t.last_outcome) {
    out += FailingNow(t) ? "<span class=bad>" : "<span>";
    out += OutcomeName(*t.last_outcome);
    out += "</span>";
    if (t.last_run) out += "<br><span class=dim>" + Ago(*t.last_run, now) + "</span>";
  } else {
    out += "&mdash;";
  }
  out += "</td>";

  // errcode
  out += "<td class=errcode>";
  out += t.errcode ? std::to_string(*t.errcode) : std::string("&mdash;");
  out += "</td>";

  // errmsg / rid / detail
  out += "<td class=errmsg>";
  if (!t.errmsg.empty()) Escape(out, t.errmsg);
  if (!t.detail.empty()) {
    if (!t.errmsg.empty()) out += "<br>";
    out += "<span class=dim>";
    Escape(out, t.detail);
    out += "</span>";
  }
  if (!t.rid.empty()) {
    out += "<br>rid <code>";
    Escape(out, t.rid);
    out += "</code>";
  }
  out += "</td>";

  // token fingerprint, TTL, age
  out += "<td class=token>";
  if (!t.fingerprint.empty()) {
    out += "<code>";
    Escape(out, t.fingerprint);
    out += "</code>";
  } else {
    out += t.token_known ? "<span class=warn>none cached</span>" : "&mdash;";
  }
  out += "</td><td class=ttl>";
  out += TtlText(t);
  out += "</td><td class=age>";
  out += t.fingerprint.empty() ? std::string("&mdash;") : Seconds(t.token_age_seconds);
  out += "</td>";

  // conflict
  out += "<td class=conflict>";
  out += t.distinct_tokens > 1 ? "<span class=warn>" : "<span>";
  out += std::to_string(t.distinct_tokens);
  out += t.distinct_tokens == 1 ? " token" : " tokens";
  out += "</span> for the AppId";
  if (!t.cause_env.empty()) {
    out += "<br>last invalidated by <b class=cause>";
    Escape(out, t.cause_env);
    out += "</b>";
    if (t.last_invalidation)
      out += " <span class=dim>" + Ago(*t.last_invalidation, now) + "</span>";
  }
  if (t.attribution_pending) out += "<br><span class=dim>cause pending</span>";
  if (t.dies_at) {
    out += "<br><b class=cause>superseded by ";
    Escape(out, t.superseded_by);
    out += "</b>: stops working at " + Clock(*t.dies_at) + " <span class=dim>(in " +
           Seconds(std::max<double>(0, std::chrono::duration<double>(*t.dies_at - now).count())) +
           ")</span>";
  }
  if (t.last_expiry) {
    out +=
        "<br><b class=cause>expired in the cache</b>: the app's cache outlives the token <span "
        "class=dim>" +
        Ago(*t.last_expiry, now) + "</span>";
  }
  out += "</td>";

  // heal
  out += "<td class=heal>";
  if (t.heal_mode == config::HealMode::kOff) {
    out += "<span class=dim>off</span>";
  } else {
    if (t.heal_action.empty()) {
      out += HealModeName(t.heal_mode);
      out += ": <span class=dim>none yet</span>";
    } else {
      Escape(out, t.heal_action);
      out += t.heal_result == "done" ? " <b>" : " <b class=bad>";
      Escape(out, t.heal_result);
      out += "</b>";
      if (t.heal_at) out += " <span class=dim>" + Ago(*t.heal_at, now) + "</span>";
    }
    if (!t.heal_skip.empty() && (!t.heal_at || (t.heal_skip_at && *t.heal_skip_at >= *t.heal_at))) {
      out += t.heal_action.empty() ? "<br><span class=dim>" : "<br><span class=dim>then ";
      Escape(out, t.heal_skip);
      if (t.heal_skip_at) out += " " + Ago(*t.heal_skip_at, now);
      out += "</span>";
    }
  }
  if (t.keep != config::KeepMode::kOff) {
    out += "<br>keeper: ";
    out += t.keep_dry_run ? "dry run" : t.keeper_writer ? "writer" : "standby";
    if (t.keep_owner) out += ", owner";
    if (!t.keeper_result.empty()) {
      const bool bad = t.keeper_result == "error" || t.keeper_result == "changed";
      out += bad ? " <b class=bad>" : " <b>";
      Escape(out, t.keeper_result);
      out += "</b>";
      if (t.keeper_at) out += " <span class=dim>" + Ago(*t.keeper_at, now) + "</span>";
    }
    if (!t.keeper_fingerprint.empty()) {
      out += "<br><span class=dim>stable token </span><code>";
      Escape(out, t.keeper_fingerprint);
      out += "</code>";
      if (t.keeper_expires_at)
        out += " <span class=dim>(" +
               Seconds(std::max<double>(
                   0, std::chrono::duration<double>(*t.keeper_expires_at - now).count())) +
               " left)</span>";
    } else {
      out += "<br><span class=bad>no stable token yet</span>";
    }
  }
  out += "</td>";

  // last success
  out += "<td class=success>";
  out += t.last_success ? When(*t.last_success, now) : std::string("<span class=dim>never</span>");
  out += "</td></tr>\n";
}

}  // namespace

TargetStatus::State TargetStatus::state() const {
  if (last_outcome && *last_outcome == Outcome::kOk) return State::kOk;
  if (last_success) return State::kFailing;
  return State::kNeverSucceeded;
}

bool TargetStatus::in_conflict() const {
  return distinct_tokens > 1 || (FailingNow(*this) && !cause_env.empty());
}

std::string_view StateName(TargetStatus::State s) {
  switch (s) {
    case TargetStatus::State::kOk: return "ok";
    case TargetStatus::State::kFailing: return "failing";
    case TargetStatus::State::kNeverSucceeded: return "never_succeeded";
  }
  return "unknown";
}

std::vector<TargetStatus> CollectStatus(const telemetry::ProbeMetrics& metrics,
                                        const tracking::TokenTracker& tracker,
                                        const heal::Healer& healer, const keeper::Keeper* keeper) {
  auto probes = metrics.Snapshot();
  std::vector<TargetStatus> out;
  out.reserve(probes.size());
  std::unordered_map<std::string, size_t> index;  // "app_id\napp_env" -> position in out
  index.reserve(probes.size());
  auto key = [](const std::string& id, const std::string& env) { return id + '\n' + env; };
  for (auto& p : probes) {
    TargetStatus t;
    t.app_id = std::move(p.app_id);
    t.app_env = std::move(p.app_env);
    t.probes = p.probes;
    t.last_outcome = p.last_outcome;
    t.errcode = p.last_errcode;
    t.errmsg = std::move(p.last_errmsg);
    t.rid = std::move(p.last_rid);
    t.detail = std::move(p.last_detail);
    t.token_known = p.token_known;
    t.token_present = p.token_present;
    t.fingerprint = std::move(p.fingerprint);
    t.ttl_seconds = p.ttl_seconds;
    t.last_run = p.last_run;
    t.last_success = p.last_success;
    t.failing_since = p.failing_since;
    index.emplace(key(t.app_id, t.app_env), out.size());
    out.push_back(std::move(t));
  }
  for (auto& c : tracker.Snapshot()) {
    auto it = index.find(key(c.app_id, c.app_env));
    if (it == index.end()) continue;
    TargetStatus& t = out[it->second];
    t.token_age_seconds = c.token_age_seconds;
    t.distinct_tokens = c.distinct_tokens;
    t.invalidations = c.invalidations;
    t.cause_env = std::move(c.last_cause_env);
    t.last_invalidation = c.last_invalidation;
    t.attribution_pending = c.attribution_pending;
    t.expirations = c.expirations;
    t.last_expiry = c.last_expiry;
    t.superseded_by = std::move(c.superseded_by);
    t.dies_at = c.dies_at;
  }
  for (auto& h : healer.Snapshot()) {
    auto it = index.find(key(h.app_id, h.app_env));
    if (it == index.end()) continue;
    TargetStatus& t = out[it->second];
    t.heal_mode = h.mode;
    t.heal_action = std::move(h.last_action);
    t.heal_result = std::move(h.last_result);
    t.heal_at = h.last_at;
    t.heal_skip = std::move(h.last_skip);
    t.heal_skip_at = h.last_skip_at;
  }
  for (auto& k : keeper ? keeper->Targets() : std::vector<keeper::Keeper::TargetSnapshot>{}) {
    auto it = index.find(key(k.app_id, k.app_env));
    if (it == index.end()) continue;
    TargetStatus& t = out[it->second];
    t.keep = config::KeepMode::kStable;
    t.keep_owner = k.owner;
    t.keep_dry_run = k.dry_run;
    t.keeper_writer = k.lease_held;
    t.keeper_fingerprint = std::move(k.fingerprint);
    t.keeper_expires_at = k.expires_at;
    t.keeper_result = std::move(k.last_result);
    t.keeper_at = k.last_at;
  }
  return out;
}

StatusQuery StatusQuery::Parse(const std::multimap<std::string, std::string>& params) {
  StatusQuery q;
  auto get = [&](const std::string& k) -> const std::string* {
    auto it = params.find(k);
    return it == params.end() ? nullptr : &it->second;
  };
  if (auto* v = get("app_id")) q.app_id = *v;
  if (auto* v = get("app_env")) q.app_env = *v;
  if (auto* v = get("refresh")) q.refresh = *v != "off" && *v != "0" && *v != "false";
  if (auto* v = get("page")) {
    size_t page = 0;
    bool digits = !v->empty() && v->size() <= 9;
    for (char c : *v) {
      if (c < '0' || c > '9') digits = false;
      else page = page * 10 + static_cast<size_t>(c - '0');
    }
    q.page = digits && page > 0 ? page : 1;
  }
  return q;
}

void SortForStatus(std::vector<TargetStatus>& targets) {
  // 0: failing now, longest first; 1: not probed yet; 2: ok.
  auto rank = [](const TargetStatus& t) {
    if (FailingNow(t)) return 0;
    return t.last_outcome ? 2 : 1;
  };
  std::sort(targets.begin(), targets.end(), [&](const TargetStatus& a, const TargetStatus& b) {
    const int ra = rank(a), rb = rank(b);
    if (ra != rb) return ra < rb;
    if (ra == 0) {
      const SystemTime fa = a.failing_since.value_or(SystemTime::max());
      const SystemTime fb = b.failing_since.value_or(SystemTime::max());
      if (fa != fb) return fa < fb;
    }
    return std::tie(a.app_id, a.app_env) < std::tie(b.app_id, b.app_env);
  });
}

std::string RenderStatusPage(std::vector<TargetStatus> targets, const StatusQuery& query,
                             SystemTime now) {
  SortForStatus(targets);
  const Counts counts = CountAll(targets);
  const auto rows = Matching(targets, query);
  const size_t pages = std::max<size_t>(1, (rows.size() + kStatusPageRows - 1) / kStatusPageRows);
  const size_t page = std::min(query.page, pages);
  const size_t from = (page - 1) * kStatusPageRows;
  const size_t to = std::min(rows.size(), from + kStatusPageRows);

  std::string out;
  out.reserve(8192 + (to - from) * 1400);
  out += "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n";
  out += "<meta name=viewport content=\"width=device-width, initial-scale=1\">\n";
  if (query.refresh)
    out += "<meta http-equiv=refresh content=\"" + std::to_string(kStatusRefreshSeconds) + "\">\n";
  out += "<title>wxcanary: " + std::to_string(counts.failing) + " failing of " +
         std::to_string(counts.targets) + "</title>\n<style>";
  out += kStyle;
  out += "</style></head><body>\n<h1>wxcanary</h1>\n";

  out += "<p class=counts id=counts><span id=count-targets>" + std::to_string(counts.targets) +
         (counts.targets == 1 ? " target" : " targets") + "</span>";
  out += std::string("<span id=count-failing class=") + (counts.failing ? "bad" : "good") + ">" +
         std::to_string(counts.failing) + " failing</span>";
  out += std::string("<span id=count-conflict class=") + (counts.in_conflict ? "warn" : "good") +
         ">" + std::to_string(counts.in_conflict) + " in conflict</span>";
  out += "<span class=dim style=\"background:none;font-weight:normal\">as of " + Clock(now) +
         "</span></p>\n";

  out += "<form method=get action=\"./\" id=filter>app_id <input name=app_id value=\"";
  Escape(out, query.app_id);
  out += "\" placeholder=\"part of an AppId\"> app_env <input name=app_env value=\"";
  Escape(out, query.app_env);
  out += "\" placeholder=\"part of an environment\">";
  if (!query.refresh) out += "<input type=hidden name=refresh value=off>";
  out += " <button type=submit>Filter</button> <a href=\"./";
  Escape(out, QueryString(StatusQuery{}, 1, query.refresh));
  out += "\">clear</a></form>\n";

  out += "<p class=nav>";
  if (query.refresh) {
    out +=
        "Refreshes every " + std::to_string(kStatusRefreshSeconds) + " s: <a id=refresh href=\"./";
    Escape(out, QueryString(query, page, false));
    out += "\">turn off</a>";
  } else {
    out += "Auto-refresh off: <a id=refresh href=\"./";
    Escape(out, QueryString(query, page, true));
    out += "\">turn on</a>";
  }
  out += " &middot; <a href=\"api/v1/targets";
  Escape(out, QueryString(query, 1, true));
  out +=
      "\">JSON</a> &middot; <a href=\"metrics\">metrics</a> &middot; <a "
      "href=\"-/healthy\">health</a></p>\n";

  out += "<p class=nav id=showing>";
  if (rows.empty()) {
    out += "No target matches.";
  } else {
    out += "Showing " + std::to_string(from + 1) + "&ndash;" + std::to_string(to) + " of " +
           std::to_string(rows.size()) +
           (query.app_id.empty() && query.app_env.empty() ? " targets" : " matching targets") +
           ", failing first (" + std::to_string(kStatusPageRows) + " per page, page " +
           std::to_string(page) + " of " + std::to_string(pages) + ")";
    if (page > 1) {
      out += " &middot; <a id=prev href=\"./";
      Escape(out, QueryString(query, page - 1, query.refresh));
      out += "\">previous</a>";
    }
    if (page < pages) {
      out += " &middot; <a id=next href=\"./";
      Escape(out, QueryString(query, page + 1, query.refresh));
      out += "\">next</a>";
    }
  }
  out += "</p>\n";

  out +=
      "<table id=targets><thead><tr><th>target</th><th>state</th><th>last probe</th>"
      "<th>errcode</th><th>errmsg / rid</th><th>token</th><th>Redis TTL</th><th>token age</th>"
      "<th>conflict</th><th>last heal / keeper</th><th>last success</th></tr></thead><tbody>\n";
  for (size_t i = from; i < to; ++i) RenderRow(out, *rows[i], now);
  out += "</tbody></table>\n";
  out +=
      "<p class=dim>Tokens are shown by fingerprint only (first 8 hex of SHA-256). "
      "&ldquo;In conflict&rdquo;: the AppId's environments hold more than one token, or the "
      "current failure was caused by another environment's refresh.</p>\n";
  out += "</body></html>\n";
  return out;
}

std::string RenderStatusJson(std::vector<TargetStatus> targets, const StatusQuery& query,
                             SystemTime now) {
  SortForStatus(targets);
  const Counts counts = CountAll(targets);
  const auto rows = Matching(targets, query);
  nlohmann::json list = nlohmann::json::array();
  for (const TargetStatus* t : rows) {
    nlohmann::json j;
    j["app_id"] = t->app_id;
    j["app_env"] = t->app_env;
    j["state"] = StateName(t->state());
    j["failing_since"] =
        OptionalTime(t->state() == TargetStatus::State::kOk ? std::nullopt : t->failing_since);
    j["last_outcome"] =
        t->last_outcome ? nlohmann::json(OutcomeName(*t->last_outcome)) : nlohmann::json(nullptr);
    j["errcode"] = t->errcode ? nlohmann::json(*t->errcode) : nlohmann::json(nullptr);
    j["errmsg"] = t->errmsg;
    j["rid"] = t->rid;
    j["detail"] = t->detail;
    j["last_run"] = OptionalTime(t->last_run);
    j["last_success"] = OptionalTime(t->last_success);
    j["probes"] = t->probes;
    j["token"] = {
        {"known", t->token_known},
        {"present", t->token_present},
        {"fingerprint", t->fingerprint},
        {"ttl_seconds", t->token_known ? nlohmann::json(t->ttl_seconds) : nlohmann::json(nullptr)},
        {"age_seconds", t->token_age_seconds}};
    j["conflict"] = {{"in_conflict", t->in_conflict()},
                     {"distinct_tokens", t->distinct_tokens},
                     {"invalidations", t->invalidations},
                     {"cause_env", t->cause_env.empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(t->cause_env)},
                     {"last_invalidation", OptionalTime(t->last_invalidation)},
                     {"attribution_pending", t->attribution_pending},
                     {"superseded_by", t->superseded_by.empty() ? nlohmann::json(nullptr)
                                                                : nlohmann::json(t->superseded_by)},
                     {"dies_at", OptionalTime(t->dies_at)}};
    j["expiry"] = {{"expirations", t->expirations}, {"last_expiry", OptionalTime(t->last_expiry)}};
    j["heal"] = {{"mode", HealModeName(t->heal_mode)},
                 {"last_action", t->heal_action.empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(t->heal_action)},
                 {"last_result", t->heal_result.empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(t->heal_result)},
                 {"last_at", OptionalTime(t->heal_at)},
                 {"last_skip",
                  t->heal_skip.empty() ? nlohmann::json(nullptr) : nlohmann::json(t->heal_skip)},
                 {"last_skip_at", OptionalTime(t->heal_skip_at)}};
    auto or_null = [](const std::string& s) {
      return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
    };
    j["keeper"] = {{"mode", KeepModeName(t->keep)},
                   {"owner", t->keep_owner},
                   {"dry_run", t->keep_dry_run},
                   {"writer", t->keeper_writer},
                   {"fingerprint", or_null(t->keeper_fingerprint)},
                   {"expires_at", OptionalTime(t->keeper_expires_at)},
                   {"last_result", or_null(t->keeper_result)},
                   {"last_at", OptionalTime(t->keeper_at)}};
    list.push_back(std::move(j));
  }
  nlohmann::json doc;
  doc["generated_at"] = FormatRfc3339(now);
  doc["counts"] = {{"targets", counts.targets},
                   {"failing", counts.failing},
                   {"in_conflict", counts.in_conflict}};
  doc["filter"] = {{"app_id", query.app_id}, {"app_env", query.app_env}};
  doc["matching"] = rows.size();
  doc["targets"] = std::move(list);
  // An errmsg that is not UTF-8 must not make the whole answer throw.
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace wxcanary::daemon
