#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"
#include "telemetry/log.h"
#include "wechat/client.h"

namespace prometheus {
class Registry;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace wxcanary::tracking {

/// quota/get is never asked more often than this per AppId, whatever the config says.
inline constexpr std::chrono::minutes kMinQuotaPollInterval{10};

using config::AppSecrets;

/// Reads the real daily usage of /cgi-bin/token per AppId (POST /cgi-bin/openapi/quota/get
/// {"cgi_path":"/cgi-bin/token"}) at most once per max(config.quota_poll_interval, 10 min) per
/// app, and exports wxcanary_app_token_quota_used{app_id} / wxcanary_app_token_quota_limit{app_id}
/// after the first good answer. It never calls /cgi-bin/token or /cgi-bin/clear_quota: its
/// access token comes from stable_token without force_refresh. Thread-safe.
class QuotaPoller {
 public:
  /// POST {base_url}{path_and_query} with a JSON body.
  using PostFn = std::function<wechat::HttpResponse(const std::string& path_and_query,
                                                    const std::string& body)>;

  /// Makes the PostFn for a config's WeChat settings.
  using PostFactory = std::function<PostFn(const config::WeChat& wechat)>;

  /// `registry`, `logger` and `clock` must outlive the poller.
  QuotaPoller(prometheus::Registry& registry, telemetry::Logger& logger, Clock& clock,
              const config::Conflict& conflict, PostFn post);
  /// As above, polling `config`'s apps over make_post(config.wechat) (see Apply).
  QuotaPoller(prometheus::Registry& registry, telemetry::Logger& logger, Clock& clock,
              const config::Config& config, PostFactory make_post);
  /// Stops the background thread if running.
  ~QuotaPoller();
  QuotaPoller(const QuotaPoller&) = delete;
  QuotaPoller& operator=(const QuotaPoller&) = delete;

  /// The apps to poll (AppSecrets of the current config); series of apps gone are removed.
  void SetApps(std::map<std::string, Secret> apps);

  /// Takes a reloaded config: its apps (SetApps), conflict.quota_poll_interval and, with a
  /// PostFactory, its WeChat settings. A poll in progress finishes with the old ones.
  void Apply(const config::Config& config);

  /// Polls every app not attempted within the poll interval (failures count as attempts, so a
  /// broken app is not hammered). Returns how many apps were polled. Blocks on the network.
  int PollDue();

  /// Calls PollDue about once a second on a background thread until Stop().
  void Start();
  void Stop();

 private:
  struct AppState {
    Secret secret;
    std::optional<MonotonicTime> last_attempt;
    prometheus::Gauge* used = nullptr;
    prometheus::Gauge* limit = nullptr;
  };
  // Polls one app; called without mu_ held (network), results applied under mu_.
  void PollOne(const PostFn& post, const std::string& app_id, const Secret& secret);
  std::optional<Secret> StableToken(const PostFn& post, const std::string& app_id,
                                    const Secret& secret, std::string* error);
  void Fail(const std::string& app_id, const std::string& message, std::optional<int> errcode,
            const std::string& errmsg, const std::string& rid);

  telemetry::Logger& logger_;
  Clock& clock_;
  PostFactory make_post_;  // may be empty: post_ then never changes
  prometheus::Family<prometheus::Gauge>& used_family_;
  prometheus::Family<prometheus::Gauge>& limit_family_;

  std::mutex poll_mu_;  // one PollDue at a time: PostFn need not be thread-safe
  std::mutex mu_;       // guards what follows
  std::chrono::milliseconds interval_;
  std::shared_ptr<const PostFn> post_;  // a poll keeps its copy alive across a reload
  config::WeChat wechat_;               // what post_ was made for (with make_post_)
  std::map<std::string, AppState> apps_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

/// The production wiring: PostFn over one wechat::Client for `wechat`.
std::unique_ptr<QuotaPoller> MakeQuotaPoller(prometheus::Registry& registry,
                                             telemetry::Logger& logger, Clock& clock,
                                             const config::Config& config);

}  // namespace wxcanary::tracking
