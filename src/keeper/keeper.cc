#include "keeper/keeper.h"

#include <algorithm>
#include <array>

#include "common/duration.h"
#include "heal/heal_policy.h"
#include "source/value_encoder.h"

namespace wxcanary::keeper {

namespace {

using std::chrono::duration_cast;
using std::chrono::seconds;
using telemetry::Fields;
using telemetry::Level;

constexpr std::array<WriteResult, 5> kWriteResults = {WriteResult::kWritten, WriteResult::kDryRun,
                                                      WriteResult::kSkippedOwner,
                                                      WriteResult::kChanged, WriteResult::kError};
// Fingerprints of the stable tokens fetched that a key may still hold: one is current, one in
// its rotation overlap; the rest cover force refreshes and a replica that wrote before us.
constexpr size_t kKnownTokens = 8;
// WeChat's limits on force_refresh (see shared/wechat-api.md).
constexpr seconds kForceSpacing{30};
constexpr int kForcesPerDay = 20;

// WeChat's daily limits reset at midnight in Beijing (UTC+8).
int64_t DayOf(SystemTime t) {
  return (duration_cast<std::chrono::hours>(t.time_since_epoch()).count() + 8) / 24;
}
// Bounds of what a long run may remember; past them the oldest knowledge goes (at worst a
// decision is logged once more).
constexpr size_t kMaxOnce = 4096;
constexpr size_t kMaxDead = 256;
// How long the keepers' memory of the tokens they wrote lasts: a token's life and a margin.
constexpr seconds kRememberFor{3 * 3600};

}  // namespace

std::string_view WriteResultName(WriteResult r) {
  switch (r) {
    case WriteResult::kWritten: return "written";
    case WriteResult::kDryRun: return "dry_run";
    case WriteResult::kSkippedOwner: return "skipped_owner";
    case WriteResult::kChanged: return "changed";
    case WriteResult::kError: return "error";
  }
  return "error";
}

// One AppId's state that Record(), scrapes and RunOnce share; guarded by Keeper::mu_.
struct Keeper::Shared {
  std::string labels;  // app_id rendered
  bool lease_held = false;
  std::string fingerprint;
  std::optional<SystemTime> expires_at;
  uint64_t fetch_ok = 0;
  uint64_t fetch_error = 0;
  std::map<std::string, uint64_t> fetch_errors;  // by errcode or reason
  struct Env {
    std::string labels;  // app_env, app_id rendered
    std::array<uint64_t, kWriteResults.size()> writes{};
    bool owner = false;
    bool dry_run = false;
    std::optional<WriteResult> last;  // the last decision counted, for the status page
    SystemTime last_at{};
  };
  std::map<std::string, Env> envs;  // by app_env: the kept ones
  // What the probes of kept environments say: consecutive token errors per environment, and
  // the fingerprints confirmed dead.
  struct Streak {
    std::string fingerprint;
    int count = 0;
  };
  std::map<std::string, Streak> streaks;
  std::set<std::string> dead;
  bool wake = false;  // a death was just confirmed: fetch and write now
};

// One AppId's working state: only RunOnce (under run_mu_) touches it.
struct Keeper::Work {
  std::string app_id;
  std::vector<config::Environment> envs;
  std::string lease_redis;  // the first kept environment's Redis
  bool lease_held = false;
  bool lease_error_logged = false;
  MonotonicTime next_lease{};
  MonotonicTime next_fetch{};

  Secret token;  // the newest stable token
  std::string fingerprint;
  SystemTime expires_at{};
  std::deque<std::string> known;          // fingerprints fetched, newest last
  std::map<std::string, Secret> written;  // app_env -> the value this keeper last wrote there
  std::set<std::string> dead;             // Shared::dead, as of this pass
  std::set<std::string> once;             // decisions already logged (and counted)
  std::string failing;                    // the reason fetches fail for, "" while they work
  bool refetched = false;                 // this pass asked WeChat again about a token nobody named
  std::set<std::string> remembered;       // fingerprints already added to TokensKey

  std::optional<MonotonicTime> last_force;
  int64_t force_day = -1;
  int forces = 0;
};

Keeper::Keeper(KeeperStore& store, heal::TokenFetcher& fetcher, telemetry::Exposition& exposition,
               telemetry::Logger& logger, Clock& clock, std::string instance_id, TokenHook on_token)
    : store_(store),
      fetcher_(fetcher),
      exposition_(exposition),
      logger_(logger),
      clock_(clock),
      instance_id_(std::move(instance_id)),
      on_token_(std::move(on_token)) {
  exposition_.Add(*this);
}

Keeper::~Keeper() {
  Stop();
  exposition_.Remove(*this);
}

void Keeper::Apply(const config::Config& config) {
  std::map<std::string, std::vector<config::Environment>> kept;
  for (const auto& app : config.apps)
    for (const auto& env : app.environments)
      if (env.keep == config::KeepMode::kStable) kept[app.app_id].push_back(env);
  std::lock_guard lock(mu_);
  settings_ = config.keeper;
  confirmations_ = config.heal.confirmations;
  for (auto it = shared_.begin(); it != shared_.end();) {
    if (kept.count(it->first) == 0) it = shared_.erase(it);
    else ++it;
  }
  for (const auto& [app_id, envs] : kept) {
    auto& sh = shared_[app_id];
    if (!sh) {
      sh = std::make_unique<Shared>();
      sh->labels = telemetry::RenderLabels({{"app_id", app_id}});
    }
    std::map<std::string, Shared::Env> next;
    for (const auto& env : envs) {
      auto it = sh->envs.find(env.name);
      Shared::Env& e = next[env.name];
      if (it != sh->envs.end()) e = it->second;
      else e.labels = telemetry::RenderTargetLabels(app_id, env.name);
      e.owner = env.owner;
      e.dry_run = env.keep_dry_run;
    }
    sh->envs = std::move(next);
  }
  kept_ = std::move(kept);
  wake_ = true;  // a new kept environment is filled now, not one interval later
  cv_.notify_all();
}

void Keeper::SetTargets(const TargetList& targets) {
  std::lock_guard lock(mu_);
  for (auto& [app_id, sh] : shared_) {
    for (auto it = sh->streaks.begin(); it != sh->streaks.end();) {
      bool present = std::any_of(targets.begin(), targets.end(), [&](const Target& t) {
        return t.app_id == app_id && t.app_env == it->first;
      });
      if (present) ++it;
      else it = sh->streaks.erase(it);
    }
  }
}

void Keeper::Record(const Target& target, const ProbeResult& result) {
  if (target.env.keep == config::KeepMode::kOff) return;
  const heal::Evidence evidence = heal::EvidenceOf(result.outcome);
  if (evidence == heal::Evidence::kNone || result.fingerprint.empty()) return;
  std::lock_guard lock(mu_);
  auto it = shared_.find(target.app_id);
  if (it == shared_.end()) return;
  Shared& sh = *it->second;
  Shared::Streak& streak = sh.streaks[target.app_env];
  if (evidence == heal::Evidence::kNotDead) {
    streak = {};
    sh.dead.erase(result.fingerprint);
    return;
  }
  if (streak.fingerprint != result.fingerprint) streak = {result.fingerprint, 0};
  ++streak.count;
  if (sh.dead.size() >= kMaxDead) sh.dead.clear();
  if (streak.count >= confirmations_ && sh.dead.insert(result.fingerprint).second) {
    sh.wake = true;
    wake_ = true;
    cv_.notify_all();
  }
}

void Keeper::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Keeper::Join() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Keeper::Abandon() {
  Join();
  std::lock_guard run(run_mu_);
  for (auto& [app_id, w] : work_) w->lease_held = false;  // forgotten, not released
}

void Keeper::Stop() {
  Join();
  std::lock_guard run(run_mu_);
  for (auto& [app_id, w] : work_) {
    if (!w->lease_held) continue;
    store_.ReleaseLease(w->lease_redis, LeaseKey(app_id), instance_id_);
    w->lease_held = false;
  }
  std::lock_guard lock(mu_);
  for (auto& [app_id, sh] : shared_) sh->lease_held = false;
}

void Keeper::Loop() {
  while (true) {
    const MonotonicTime next = RunOnce();
    std::unique_lock lock(mu_);
    if (stopping_) return;
    if (!wake_) clock_.WaitUntil(cv_, lock, next);
    wake_ = false;
    if (stopping_) return;
  }
}

MonotonicTime Keeper::RunOnce() {
  std::lock_guard run(run_mu_);
  config::Keeper settings;
  std::map<std::string, std::vector<config::Environment>> kept;
  {
    std::lock_guard lock(mu_);
    settings = settings_;
    kept = kept_;
  }
  const MonotonicTime now = clock_.MonotonicNow();
  // An AppId no longer kept (or whose lease moved to another Redis) gives its lease up.
  for (auto it = work_.begin(); it != work_.end();) {
    Work& w = *it->second;
    auto k = kept.find(it->first);
    const bool moved = k != kept.end() && k->second.front().redis != w.lease_redis;
    if (w.lease_held && (k == kept.end() || moved)) {
      store_.ReleaseLease(w.lease_redis, LeaseKey(w.app_id), instance_id_);
      w.lease_held = false;
    }
    if (k == kept.end()) it = work_.erase(it);
    else ++it;
  }
  for (auto& [app_id, envs] : kept) {
    auto& slot = work_[app_id];
    if (!slot) {
      slot = std::make_unique<Work>();
      slot->app_id = app_id;
      slot->next_lease = now;
      slot->next_fetch = now;
    }
    slot->envs = envs;
    slot->lease_redis = envs.front().redis;
  }
  // The leases first, and again after each AppId's work: a slow fetch or Redis (up to its
  // timeout) for one AppId must not let the others' leases lapse.
  RenewDueLeases(settings);
  for (auto& [app_id, w] : work_) {
    RunApp(*w, settings);
    RenewDueLeases(settings);
  }
  MonotonicTime next = clock_.MonotonicNow() + settings.interval;
  for (auto& [app_id, w] : work_) next = std::min({next, w->next_lease, w->next_fetch});
  return next;
}

void Keeper::RenewDueLeases(const config::Keeper& settings) {
  for (auto& [app_id, w] : work_) {
    const MonotonicTime now = clock_.MonotonicNow();
    if (now < w->next_lease) continue;
    // The writer renews every third of the lease; the others look twice as often, so they take
    // over at most lease_ttl / 6 after a dead writer's lease ran out.
    const bool held = RenewLease(*w, settings, /*fencing=*/false);  // a new writer acts at once
    w->next_lease = now + settings.lease_ttl / (held ? 3 : 6);
  }
}

void Keeper::RunApp(Work& w, const config::Keeper& settings) {
  const MonotonicTime now = clock_.MonotonicNow();
  if (w.once.size() > kMaxOnce) w.once.clear();
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    auto it = shared_.find(w.app_id);
    if (it == shared_.end()) return;  // a reload dropped it since this pass began
    wake = it->second->wake;
    it->second->wake = false;
    w.dead = it->second->dead;
  }
  if (now < w.next_fetch && !wake) return;
  w.refetched = false;
  w.next_fetch = now + settings.interval;
  if (!FetchInto(w, /*force_refresh=*/false)) return;  // keys are left alone
  MaybeForceRefresh(w, settings, now);
  // Never write a token the probes confirmed dead.
  if (!w.lease_held || w.dead.count(w.fingerprint) != 0) return;
  for (const auto& env : w.envs) Keep(w, env, settings);
}

bool Keeper::RenewLease(Work& w, const config::Keeper& settings, bool fencing) {
  std::string error;
  const std::string key = LeaseKey(w.app_id);
  auto held = store_.HoldLease(w.lease_redis, key, instance_id_, settings.lease_ttl, &error);
  const bool now_held = held.value_or(false);
  Fields f{{"labels.app_id", w.app_id},
           {"wxcanary.redis.name", w.lease_redis},
           {"wxcanary.keeper.lease_key", key},
           {"wxcanary.keeper.owner", instance_id_}};
  if (!held.has_value()) f["error.message"] = error;
  if (now_held && !w.lease_held) {
    logger_.Log(Level::kWarn, "keeper_lease_acquired",
                "keeper of app " + w.app_id + " is now the writer (lease " + key + ")", f);
    w.next_fetch = clock_.MonotonicNow();  // write at once, not one interval later
  } else if (!now_held && w.lease_held) {
    logger_.Log(Level::kWarn, "keeper_lease_lost",
                "keeper of app " + w.app_id + " lost the writer lease " + key +
                    (held.has_value() ? ": another replica holds it" : ": " + error) +
                    (fencing ? " (before a write: nothing written)" : ""),
                f);
  } else if (!held.has_value() && !w.lease_error_logged) {
    logger_.Log(Level::kError, "keeper_lease_failed",
                "keeper of app " + w.app_id + " cannot take the writer lease " + key + ": " + error,
                f);
  }
  w.lease_error_logged = !held.has_value();
  w.lease_held = now_held;
  std::lock_guard lock(mu_);
  if (auto it = shared_.find(w.app_id); it != shared_.end()) it->second->lease_held = now_held;
  return now_held;
}

bool Keeper::FetchInto(Work& w, bool force_refresh) {
  std::string error;
  wechat::FetchFailure failure;
  auto fetched = fetcher_.FetchToken(w.app_id, force_refresh, &error, &failure);
  if (!fetched.has_value()) {
    {
      std::lock_guard lock(mu_);
      if (auto it = shared_.find(w.app_id); it != shared_.end()) {
        ++it->second->fetch_error;
        ++it->second->fetch_errors[failure.reason.empty() ? "other" : failure.reason];
      }
    }
    Fields f{{"labels.app_id", w.app_id}};
    if (failure.errcode) f["wxcanary.wechat.errcode"] = *failure.errcode;
    if (!failure.rid.empty()) f["wxcanary.wechat.rid"] = failure.rid;
    f["wxcanary.keeper.reason"] = failure.reason;
    f["error.message"] = error;
    // ERROR when a failure starts or changes; while the same one repeats (every interval), DEBUG.
    const bool repeated = w.failing == failure.reason;
    w.failing = failure.reason;
    logger_.Log(
        repeated ? Level::kDebug : Level::kError, "keeper_fetch_failed",
        "keeper of app " + w.app_id + " could not fetch a stable token, keys left alone: " + error,
        f);
    return false;
  }
  if (!w.failing.empty()) {
    logger_.Log(Level::kWarn, "keeper_fetch_recovered",
                "keeper of app " + w.app_id + " fetches stable tokens again (failed with " +
                    w.failing + " before)",
                Fields{{"labels.app_id", w.app_id}, {"wxcanary.keeper.reason", w.failing}});
    w.failing.clear();
  }
  const SystemTime wall = clock_.SystemNow();
  const std::string fp = fetched->token.Fingerprint();
  if (fp != w.fingerprint && std::find(w.known.begin(), w.known.end(), fp) == w.known.end()) {
    if (on_token_) on_token_(w.app_id, fp);  // before any write of it
    w.known.push_back(fp);
    if (w.known.size() > kKnownTokens) w.known.pop_front();
    logger_.Log(Level::kInfo, "keeper_token_fetched",
                "keeper of app " + w.app_id + " has stable token " + fp + ", expires in " +
                    std::to_string(fetched->expires_in.count()) + "s",
                Fields{{"labels.app_id", w.app_id},
                       {"wxcanary.token.fingerprint", fp},
                       {"wxcanary.keeper.previous_fingerprint", w.fingerprint},
                       {"wxcanary.keeper.expires_in_seconds", fetched->expires_in.count()},
                       {"wxcanary.keeper.force_refresh", force_refresh}});
  }
  w.token = fetched->token;
  w.fingerprint = fp;
  w.expires_at = wall + fetched->expires_in;
  std::lock_guard lock(mu_);
  if (auto it = shared_.find(w.app_id); it != shared_.end()) {
    ++it->second->fetch_ok;
    it->second->fingerprint = fp;
    it->second->expires_at = w.expires_at;
  }
  return true;
}

void Keeper::MaybeForceRefresh(Work& w, const config::Keeper& settings, MonotonicTime now) {
  if (w.dead.count(w.fingerprint) == 0) return;
  const Fields f{{"labels.app_id", w.app_id}, {"wxcanary.token.fingerprint", w.fingerprint}};
  auto once = [&](const std::string& what, const std::string& message) {
    if (w.once.insert(what + "/" + w.fingerprint).second)
      logger_.Log(Level::kError, "keeper_token_dead", message, f);
  };
  if (!settings.force_refresh_on_dead) {
    once("dead", "the stable token " + w.fingerprint + " of app " + w.app_id +
                     " is confirmed dead and keeper.force_refresh_on_dead is off: keys are left "
                     "alone");
    return;
  }
  if (!w.lease_held) return;  // only the writer forces
  // A dry run changes nothing, at WeChat neither: a forced refresh kills the current token.
  if (std::all_of(w.envs.begin(), w.envs.end(),
                  [](const config::Environment& e) { return e.keep_dry_run; })) {
    once("dry", "the stable token " + w.fingerprint + " of app " + w.app_id +
                    " is confirmed dead; keep_dry_run: no force_refresh");
    return;
  }
  const int64_t day = DayOf(clock_.SystemNow());
  if (day != w.force_day) {
    w.force_day = day;
    w.forces = 0;
  }
  if (w.last_force && now - *w.last_force < kForceSpacing) return;
  if (w.forces >= kForcesPerDay) {
    once("limit", "the stable token " + w.fingerprint + " of app " + w.app_id +
                      " is confirmed dead and today's " + std::to_string(kForcesPerDay) +
                      " force refreshes are spent: keys are left alone");
    return;
  }
  ++w.forces;
  w.last_force = now;
  logger_.Log(Level::kWarn, "keeper_force_refresh",
              "the stable token " + w.fingerprint + " of app " + w.app_id +
                  " is confirmed dead: force_refresh (" + std::to_string(w.forces) + " of " +
                  std::to_string(kForcesPerDay) + " today)",
              f);
  FetchInto(w, /*force_refresh=*/true);
}

void Keeper::Keep(Work& w, const config::Environment& env, const config::Keeper& settings) {
  const SystemTime wall = clock_.SystemNow();
  seconds remaining = duration_cast<seconds>(w.expires_at - wall);
  seconds ttl = remaining - duration_cast<seconds>(settings.margin);
  // So close to its end that WeChat rotates it at the next fetch: write that one instead.
  if (ttl <= seconds{0}) return;
  const std::string where =
      "app " + w.app_id + " env " + env.name + " key " + env.key +
      (env.storage == config::Storage::kHash ? " field " + env.hash_field : std::string());
  Fields f{{"labels.app_id", w.app_id},
           {"labels.app_env", env.name},
           {"wxcanary.redis.name", env.redis},
           {"wxcanary.redis.key", env.key},
           {"wxcanary.token.fingerprint", w.fingerprint}};
  auto fail = [&](const std::string& message, const std::string& error) {
    CountWrite(w.app_id, env.name, WriteResult::kError);
    Fields e = f;
    e["error.message"] = error;
    logger_.Log(Level::kError, "keeper_write_failed", message, e);
  };

  const source::TokenRead read = store_.Read(env);
  using Status = source::TokenRead::Status;
  bool takeover = false;
  std::string previous_fp;
  if (read.status == Status::kRedisError) {
    fail("keeper cannot read " + where + ": " + read.error, read.error);
    return;
  }
  if (read.status == Status::kUndecodable) {
    fail("keeper left " + where + " alone: it holds a value the keeper cannot read (" + read.error +
             ")",
         read.error);
    return;
  }
  // A document that keeps its own expiry (Senparc's bag) holds the app's state besides the
  // token (AppId, AppSecret): the app writes it first, the keeper then keeps the token in it;
  // it never invents one. A bare {access_token, expires_in} (PowerWeChat, EasyWeChat 4) it
  // writes whole.
  const bool document = env.storage == config::Storage::kJson || !env.json_path.empty();
  if (read.status == Status::kMissing && document && !env.expiry_path.empty()) {
    if (w.once.insert("empty/" + env.name).second)
      logger_.Log(Level::kInfo, "keeper_skipped_empty",
                  "keeper left " + where +
                      " alone: it is empty and its value is a document the app writes with more "
                      "than the token; the keeper keeps the token in it once the app has",
                  f);
    return;
  }
  if (read.status == Status::kOk) {
    previous_fp = read.token.Fingerprint();
    if (previous_fp == w.fingerprint) return;  // already kept
    auto ours = [&] {
      return (w.written.count(env.name) && w.written[env.name] == read.raw_value) ||
             std::find(w.known.begin(), w.known.end(), previous_fp) != w.known.end();
    };
    // An unknown token may be a stable token another replica fetched after this one (it wrote
    // the rotation first): ask WeChat once more before calling it the app's.
    // Only where it would replace the key (owner); once per pass.
    if (!ours() && env.owner && !env.keep_dry_run && !w.refetched) {
      w.refetched = true;
      if (!FetchInto(w, /*force_refresh=*/false)) return;  // unsure: leave the key alone
      if (previous_fp == w.fingerprint || w.dead.count(w.fingerprint) != 0) return;
    }
    const bool dead = w.dead.count(previous_fp) != 0;
    // Or one a keeper of this AppId wrote before this one started (a restart during a rotation):
    // the keepers remember what they write in Redis, beside the lease.
    const bool remembered =
        !ours() && !dead &&
        store_.RemembersToken(w.lease_redis, TokensKey(w.app_id), previous_fp, nullptr)
            .value_or(false);
    if (!ours() && !dead && !remembered) {
      if (!env.owner) {
        // Counted and logged once per token the app holds, not at every pass.
        if (w.once.insert("owner/" + env.name + "/" + previous_fp).second) {
          CountWrite(w.app_id, env.name, WriteResult::kSkippedOwner);
          Fields s = f;
          s["wxcanary.keeper.previous_fingerprint"] = previous_fp;
          logger_.Log(Level::kInfo, "keeper_skipped_owner",
                      "keeper left " + where + " alone: it holds the app's own live token " +
                          previous_fp + " (set owner: true to replace it)",
                      s);
        }
        return;
      }
      takeover = true;
    }
  }
  // Again: a fetch above may have brought the next token.
  remaining = duration_cast<seconds>(w.expires_at - clock_.SystemNow());
  ttl = remaining - duration_cast<seconds>(settings.margin);
  if (ttl <= seconds{0}) return;
  f["wxcanary.token.fingerprint"] = w.fingerprint;
  f["wxcanary.keeper.previous_fingerprint"] = previous_fp;
  f["wxcanary.keeper.ttl_seconds"] = ttl.count();

  std::string error;
  // An expiry kept in the value says what the TTL says: the token's end minus the margin.
  const source::TokenToWrite in{
      .token = w.token.Reveal(), .expires_at = w.expires_at - settings.margin, .expires_in = ttl};
  auto bytes = source::EncodeValue(env, in, read.raw_value.Reveal(), &error);
  if (!bytes.has_value()) {
    fail("keeper cannot write " + where + ": " + error, error);
    return;
  }
  const std::string replacing = previous_fp.empty() ? "an empty key" : previous_fp;
  if (env.keep_dry_run) {
    if (w.once.insert("dry/" + env.name + "/" + previous_fp + "/" + w.fingerprint).second) {
      CountWrite(w.app_id, env.name, WriteResult::kDryRun);
      logger_.Log(Level::kInfo, "keeper_dry_run",
                  "keeper would write stable token " + w.fingerprint + " to " + where +
                      " with ttl " + std::to_string(ttl.count()) + "s, replacing " + replacing +
                      (takeover ? " (the app's own live token: owner)" : "") +
                      " (keep_dry_run: nothing written)",
                  f);
    }
    return;
  }
  // Fencing: a replica that lost the lease since the pass began writes nothing.
  if (!RenewLease(w, settings, /*fencing=*/true)) return;
  // Remembered before it is written anywhere; past the token's life (7200 s) and overlap.
  if (w.remembered.size() > kKnownTokens) w.remembered.clear();
  if (w.remembered.insert(w.fingerprint).second)
    (void)store_.RememberToken(w.lease_redis, TokensKey(w.app_id), w.fingerprint, kRememberFor,
                               nullptr);
  // A key the app keeps without a TTL because its expiry is in the value (Senparc) stays
  // without one; any other gets the TTL (a hash: see CompareAndSet).
  const bool expiry_in_value = !env.expiry_path.empty() && env.storage != config::Storage::kHash;
  const seconds write_ttl = read.redis_ttl_seconds == -1 && expiry_in_value ? seconds{0} : ttl;
  auto written = store_.CompareAndSet(env, read.raw_value, Secret(*bytes), write_ttl, &error);
  if (!written.has_value()) {
    fail("keeper failed writing " + where + ": " + error, error);
    return;
  }
  if (*written == 0) {
    CountWrite(w.app_id, env.name, WriteResult::kChanged);
    logger_.Log(Level::kInfo, "keeper_write_changed",
                "keeper wrote nothing to " + where + ": it changed since it was read", f);
    return;
  }
  w.written[env.name] = Secret(*bytes);
  CountWrite(w.app_id, env.name, WriteResult::kWritten);
  if (takeover) {
    logger_.Log(Level::kWarn, "keeper_overwrote_app_token",
                "keeper replaced the app's own live token " + previous_fp + " in " + where +
                    " with stable token " + w.fingerprint + " (owner: true), ttl " +
                    std::to_string(ttl.count()) + "s",
                f);
  } else {
    logger_.Log(Level::kInfo, "keeper_wrote",
                "keeper wrote stable token " + w.fingerprint + " to " + where + " with ttl " +
                    std::to_string(ttl.count()) + "s, replacing " + replacing,
                f);
  }
}

void Keeper::CountWrite(const std::string& app_id, const std::string& app_env, WriteResult r) {
  const SystemTime now = clock_.SystemNow();
  std::lock_guard lock(mu_);
  auto it = shared_.find(app_id);
  if (it == shared_.end()) return;
  auto e = it->second->envs.find(app_env);
  if (e == it->second->envs.end()) return;
  ++e->second.writes[static_cast<size_t>(r)];
  e->second.last = r;
  e->second.last_at = now;
}

std::vector<Keeper::TargetSnapshot> Keeper::Targets() const {
  std::lock_guard lock(mu_);
  std::vector<TargetSnapshot> out;
  for (const auto& [app_id, sh] : shared_) {
    for (const auto& [env, e] : sh->envs) {
      TargetSnapshot t;
      t.app_id = app_id;
      t.app_env = env;
      t.owner = e.owner;
      t.dry_run = e.dry_run;
      t.lease_held = sh->lease_held;
      t.fingerprint = sh->fingerprint;
      t.expires_at = sh->expires_at;
      if (e.last) {
        t.last_result = WriteResultName(*e.last);
        t.last_at = e.last_at;
      }
      out.push_back(std::move(t));
    }
  }
  return out;
}

void Keeper::AppendText(telemetry::TextWriter& out) const {
  std::lock_guard lock(mu_);
  if (shared_.empty()) return;
  const SystemTime now = clock_.SystemNow();
  out.Header("wxcanary_keeper_writes_total", "counter",
             "Keeper write decisions per kept environment, by result.");
  for (const auto& [app_id, sh] : shared_)
    for (const auto& [env, e] : sh->envs)
      for (size_t i = 0; i < kWriteResults.size(); ++i)
        out.Sample("wxcanary_keeper_writes_total", e.labels,
                   {{"result", WriteResultName(kWriteResults[i])}},
                   static_cast<double>(e.writes[i]));
  out.Header("wxcanary_keeper_fetches_total", "counter",
             "getStableAccessToken calls of the keeper, by result.");
  for (const auto& [app_id, sh] : shared_) {
    out.Sample("wxcanary_keeper_fetches_total", sh->labels, {{"result", "ok"}},
               static_cast<double>(sh->fetch_ok));
    out.Sample("wxcanary_keeper_fetches_total", sh->labels, {{"result", "error"}},
               static_cast<double>(sh->fetch_error));
  }
  out.Header("wxcanary_keeper_fetch_errors_total", "counter",
             "Failed keeper fetches by WeChat errcode (or transport, http, bad_response).");
  for (const auto& [app_id, sh] : shared_)
    for (const auto& [reason, n] : sh->fetch_errors)
      out.Sample("wxcanary_keeper_fetch_errors_total", sh->labels, {{"errcode", reason}},
                 static_cast<double>(n));
  out.Header("wxcanary_keeper_token_remaining_seconds", "gauge",
             "Seconds left of the newest stable token the keeper holds (0: none).");
  for (const auto& [app_id, sh] : shared_) {
    double left = 0;
    if (sh->expires_at && *sh->expires_at > now)
      left = static_cast<double>(duration_cast<seconds>(*sh->expires_at - now).count());
    out.Sample("wxcanary_keeper_token_remaining_seconds", sh->labels, left);
  }
  out.Header("wxcanary_keeper_lease_held", "gauge",
             "1 when this instance holds the AppId's keeper lease (it is the writer).");
  for (const auto& [app_id, sh] : shared_)
    out.Sample("wxcanary_keeper_lease_held", sh->labels, sh->lease_held ? 1.0 : 0.0);
}

}  // namespace wxcanary::keeper
