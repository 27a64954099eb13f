#include "tracking/quota_poller.h"

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "common/redact.h"
#include "wechat/stable_token.h"

namespace wxcanary::tracking {

namespace {

using nlohmann::json;
using telemetry::Fields;
using telemetry::Level;

constexpr std::string_view kTokenCgi = "/cgi-bin/token";

// The JSON object of a 200 answer, or why there is none.
std::optional<json> ParseAnswer(const wechat::HttpResponse& r, std::string* error) {
  if (!r.transport_ok) {
    *error = "transport error: " + r.transport_error;
    return std::nullopt;
  }
  if (r.http_status != 200) {
    *error = "HTTP status " + std::to_string(r.http_status);
    return std::nullopt;
  }
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object()) {
    *error = "answer is not a JSON object";
    return std::nullopt;
  }
  return j;
}

std::chrono::milliseconds PollInterval(const config::Conflict& conflict) {
  return std::max<std::chrono::milliseconds>(conflict.quota_poll_interval, kMinQuotaPollInterval);
}

std::optional<int> Errcode(const json& j) {
  auto it = j.find("errcode");
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int>();
}

}  // namespace

QuotaPoller::QuotaPoller(prometheus::Registry& registry, telemetry::Logger& logger, Clock& clock,
                         const config::Conflict& conflict, PostFn post)
    : logger_(logger),
      clock_(clock),
      used_family_(prometheus::BuildGauge()
                       .Name("wxcanary_app_token_quota_used")
                       .Help("Calls to /cgi-bin/token this AppId made today, as reported by "
                             "/cgi-bin/openapi/quota/get.")
                       .Register(registry)),
      limit_family_(prometheus::BuildGauge()
                        .Name("wxcanary_app_token_quota_limit")
                        .Help("Daily limit of /cgi-bin/token calls for this AppId, as reported by "
                              "/cgi-bin/openapi/quota/get.")
                        .Register(registry)),
      interval_(PollInterval(conflict)),
      post_(std::make_shared<const PostFn>(std::move(post))) {}

QuotaPoller::QuotaPoller(prometheus::Registry& registry, telemetry::Logger& logger, Clock& clock,
                         const config::Config& config, PostFactory make_post)
    : QuotaPoller(registry, logger, clock, config.conflict, make_post(config.wechat)) {
  make_post_ = std::move(make_post);
  wechat_ = config.wechat;
  SetApps(AppSecrets(config));
}

QuotaPoller::~QuotaPoller() { Stop(); }

void QuotaPoller::SetApps(std::map<std::string, Secret> apps) {
  std::lock_guard lock(mu_);
  for (auto it = apps_.begin(); it != apps_.end();) {
    if (apps.count(it->first)) {
      ++it;
      continue;
    }
    if (it->second.used) used_family_.Remove(it->second.used);
    if (it->second.limit) limit_family_.Remove(it->second.limit);
    it = apps_.erase(it);
  }
  for (auto& [id, secret] : apps) apps_[id].secret = std::move(secret);
}

void QuotaPoller::Apply(const config::Config& config) {
  SetApps(AppSecrets(config));
  std::lock_guard lock(mu_);
  interval_ = PollInterval(config.conflict);
  const auto& w = config.wechat;
  if (make_post_ && w != wechat_) {
    post_ = std::make_shared<const PostFn>(make_post_(w));
    wechat_ = w;
  }
}

int QuotaPoller::PollDue() {
  std::lock_guard poll(poll_mu_);
  std::vector<std::pair<std::string, Secret>> due;
  std::shared_ptr<const PostFn> post;
  {
    std::lock_guard lock(mu_);
    post = post_;
    const MonotonicTime now = clock_.MonotonicNow();
    for (auto& [id, app] : apps_) {
      if (app.last_attempt && now - *app.last_attempt < interval_) continue;
      app.last_attempt = now;
      due.emplace_back(id, app.secret);
    }
  }
  for (const auto& [id, secret] : due) PollOne(*post, id, secret);
  return static_cast<int>(due.size());
}

std::optional<Secret> QuotaPoller::StableToken(const PostFn& post, const std::string& app_id,
                                               const Secret& secret, std::string* error) {
  auto fetched = wechat::ParseStableTokenAnswer(
      post("/cgi-bin/stable_token", wechat::StableTokenRequestBody(app_id, secret)), error);
  if (!fetched) return std::nullopt;
  return std::move(fetched->token);
}

void QuotaPoller::Fail(const std::string& app_id, const std::string& message,
                       std::optional<int> errcode, const std::string& errmsg,
                       const std::string& rid) {
  Fields f{{"event.outcome", "failure"}, {"labels.app_id", app_id}};
  if (errcode) f["wxcanary.wechat.errcode"] = *errcode;
  if (!errmsg.empty()) f["wxcanary.wechat.errmsg"] = errmsg;
  if (!rid.empty()) f["wxcanary.wechat.rid"] = rid;
  f["error.message"] = message;
  logger_.Log(Level::kWarn, "quota_read",
              "could not read the /cgi-bin/token quota of app " + app_id + ": " + message, f);
}

void QuotaPoller::PollOne(const PostFn& post, const std::string& app_id, const Secret& secret) {
  std::string error;
  const auto token = StableToken(post, app_id, secret, &error);
  if (!token) return Fail(app_id, error, std::nullopt, "", "");

  const std::string body = json{{"cgi_path", kTokenCgi}}.dump();
  auto j =
      ParseAnswer(post("/cgi-bin/openapi/quota/get?access_token=" + token->Reveal(), body), &error);
  if (!j) return Fail(app_id, "quota/get: " + error, std::nullopt, "", "");

  const auto code = Errcode(*j);
  const auto quota = j->find("quota");
  if ((code && *code != 0) || quota == j->end() || !quota->is_object()) {
    std::string errmsg, rid;
    wechat::SplitRid(Redact(j->value("errmsg", std::string()), *token), &errmsg, &rid);
    return Fail(app_id,
                code && *code != 0 ? "quota/get answered errcode " + std::to_string(*code)
                                   : "quota/get answer has no \"quota\" object",
                code, errmsg, rid);
  }
  const auto used = quota->find("used");
  const auto limit = quota->find("daily_limit");
  if (used == quota->end() || !used->is_number() || limit == quota->end() || !limit->is_number())
    return Fail(app_id, "quota/get answer lacks quota.used or quota.daily_limit", code, "", "");

  const double used_v = used->get<double>();
  const double limit_v = limit->get<double>();
  {
    std::lock_guard lock(mu_);
    auto it = apps_.find(app_id);
    if (it == apps_.end()) return;  // dropped by a reload meanwhile
    const prometheus::Labels labels{{"app_id", app_id}};
    if (!it->second.used) it->second.used = &used_family_.Add(labels);
    if (!it->second.limit) it->second.limit = &limit_family_.Add(labels);
    it->second.used->Set(used_v);
    it->second.limit->Set(limit_v);
  }
  logger_.Log(Level::kInfo, "quota_read",
              "app " + app_id + " used " + std::to_string(static_cast<int64_t>(used_v)) + " of " +
                  std::to_string(static_cast<int64_t>(limit_v)) + " /cgi-bin/token calls today",
              Fields{{"event.outcome", "success"},
                     {"labels.app_id", app_id},
                     {"wxcanary.quota.cgi_path", kTokenCgi},
                     {"wxcanary.quota.used", used_v},
                     {"wxcanary.quota.daily_limit", limit_v}});
}

void QuotaPoller::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    std::unique_lock l(mu_);
    while (!stop_) {
      l.unlock();
      PollDue();
      l.lock();
      // Through the clock, so a test's FakeClock drives the poll rhythm.
      const MonotonicTime next = clock_.MonotonicNow() + std::chrono::seconds{1};
      while (!stop_ && clock_.MonotonicNow() < next) clock_.WaitUntil(wake_, l, next);
    }
  });
}

void QuotaPoller::Stop() {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  wake_.notify_all();
  if (t.joinable()) t.join();
}

std::unique_ptr<QuotaPoller> MakeQuotaPoller(prometheus::Registry& registry,
                                             telemetry::Logger& logger, Clock& clock,
                                             const config::Config& config) {
  return std::make_unique<QuotaPoller>(
      registry, logger, clock, config, [](const config::WeChat& wechat) -> QuotaPoller::PostFn {
        auto client = std::make_shared<wechat::Client>(wechat);
        return
            [client, timeout = wechat.timeout](const std::string& path, const std::string& body) {
              return client->PostJson(path, body, timeout);
            };
      });
}

}  // namespace wxcanary::tracking
