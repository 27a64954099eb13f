#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/secret.h"
#include "config/config.h"
#include "heal/healer.h"
#include "keeper/keeper_store.h"
#include "probe/result_sink.h"
#include "telemetry/exposition.h"
#include "telemetry/log.h"

namespace wxcanary::keeper {

/// The results of one kept environment's write decision, as wxcanary_keeper_writes_total counts
/// them.
enum class WriteResult { kWritten, kDryRun, kSkippedOwner, kChanged, kError };
std::string_view WriteResultName(WriteResult r);

/// Keeper mode: for every AppId with environments marked `keep: stable`, fetches
/// getStableAccessToken (normal mode: the same token for every caller while it is valid, isolated
/// from /cgi-bin/token) every keeper.interval and writes it into each kept environment's key in
/// that environment's own storage and encoding, with TTL = its remaining life - keeper.margin.
/// Every write is a compare-and-set against what was read: an absent key, a token this keeper
/// fetched before (its rotation), or a token the probes confirmed dead; the app's own live token
/// only with `owner: true`. One writer per AppId among replicas: a lease in the Redis of the
/// AppId's first kept environment (taken or renewed every lease_ttl / 3, checked again before
/// each write). Every replica fetches, so each knows the keeper's tokens (its tracker does not
/// count them as refreshes: `on_token`). A failed fetch leaves every key alone.
/// Exports wxcanary_keeper_{writes,fetches,fetch_errors}_total,
/// wxcanary_keeper_token_remaining_seconds and wxcanary_keeper_lease_held from its state at
/// scrape time. Record(), SetTargets(), Apply() and scrapes are thread-safe; the I/O runs on
/// the keeper's own thread (Start) or in RunOnce, never under a lock a scrape takes.
class Keeper final : public ResultSink, private telemetry::TextCollectable {
 public:
  /// Called with (app_id, fingerprint) of each stable token when it is first fetched, before
  /// any write of it.
  using TokenHook = std::function<void(const std::string&, const std::string&)>;

  /// `store`, `fetcher`, `exposition`, `logger` and `clock` must outlive the keeper.
  /// `instance_id` owns the leases, so it must differ between replicas.
  Keeper(KeeperStore& store, heal::TokenFetcher& fetcher, telemetry::Exposition& exposition,
         telemetry::Logger& logger, Clock& clock, std::string instance_id, TokenHook on_token);
  ~Keeper() override;
  Keeper(const Keeper&) = delete;
  Keeper& operator=(const Keeper&) = delete;

  /// Takes the kept environments of `config` and its keeper and heal.confirmations settings.
  /// An AppId no longer kept gives its lease up at the next pass.
  void Apply(const config::Config& config);

  void SetTargets(const TargetList& targets) override;
  /// Learns which tokens in kept keys are dead: heal.confirmations consecutive token errors on
  /// one fingerprint (an ok probe clears it). A newly confirmed death wakes the keeper.
  void Record(const Target& target, const ProbeResult& result) override;

  /// Runs RunOnce on a thread of its own, waiting on the clock between passes.
  void Start();
  /// Stops that thread and gives up the leases held. Idempotent.
  void Stop();
  /// As Stop, but leaves the leases to expire (for tests: a replica that died).
  void Abandon();

  /// One pass at the clock's time: for each kept AppId whose time has come, the lease, the
  /// fetch and the writes. Returns when the next pass is due. Not concurrent with itself.
  MonotonicTime RunOnce();

  /// One kept environment, for the status page: its settings, the AppId's keeper state and
  /// the last write decision about its key.
  struct TargetSnapshot {
    std::string app_id;
    std::string app_env;
    bool owner = false;
    bool dry_run = false;
    bool lease_held = false;  // this instance writes the AppId's keys
    std::string fingerprint;  // of the newest stable token, "" when none
    std::optional<SystemTime> expires_at;
    std::string last_result;  // written, dry_run, skipped_owner, changed, error; "" none yet
    std::optional<SystemTime> last_at;
  };
  /// Every kept environment, by (app_id, app_env). Thread-safe.
  std::vector<TargetSnapshot> Targets() const;

 private:
  struct Work;    // one AppId's state, owned by RunOnce
  struct Shared;  // one AppId's state that Record, scrapes and RunOnce share (under mu_)

  void RunApp(Work& w, const config::Keeper& settings);
  void RenewDueLeases(const config::Keeper& settings);
  bool RenewLease(Work& w, const config::Keeper& settings, bool fencing);
  bool FetchInto(Work& w, bool force_refresh);
  void MaybeForceRefresh(Work& w, const config::Keeper& settings, MonotonicTime now);
  void Keep(Work& w, const config::Environment& env, const config::Keeper& settings);
  void CountWrite(const std::string& app_id, const std::string& app_env, WriteResult r);
  void AppendText(telemetry::TextWriter& out) const override;
  void Loop();
  void Join();  // stops the thread

  KeeperStore& store_;
  heal::TokenFetcher& fetcher_;
  telemetry::Exposition& exposition_;
  telemetry::Logger& logger_;
  Clock& clock_;
  const std::string instance_id_;
  TokenHook on_token_;

  std::mutex run_mu_;  // one RunOnce at a time; guards work_
  std::map<std::string, std::unique_ptr<Work>> work_;

  mutable std::mutex mu_;  // guards everything below; never held across I/O
  std::condition_variable cv_;
  bool stopping_ = false;
  bool wake_ = false;
  config::Keeper settings_;
  int confirmations_ = 2;
  std::map<std::string, std::vector<config::Environment>> kept_;  // app_id -> kept envs
  std::map<std::string, std::unique_ptr<Shared>> shared_;         // app_id ->
  std::thread thread_;
};

}  // namespace wxcanary::keeper
