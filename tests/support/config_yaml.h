#pragma once

#include <string>
#include <utility>
#include <vector>

namespace wxcanary::testing {

/// The wxcanary config an integration test writes, built in code: one home for the YAML
/// instead of a string template per test file. Starts from what most tests want (wechat timeout
/// 2s, 2 workers, probes every 500ms with a 400ms timeout); each call adds or overrides.
///
///   ConfigYaml(sim.base_url()).Redis("r0", redis.address())
///       .App(kApp).Env("prod", "r0", {{"heal", "evict"}}).Section("heal:\n  confirmations: 2\n")
class ConfigYaml {
 public:
  /// key -> value, in order. A value is written as it is when it is a plain word or a flow
  /// collection ("{team: pay}"), else double-quoted.
  using Fields = std::vector<std::pair<std::string, std::string>>;

  explicit ConfigYaml(std::string base_url);

  /// A key under `wechat:` (timeout, ca_file, ...), added or replaced.
  ConfigYaml& WeChat(const std::string& key, const std::string& value);
  ConfigYaml& Workers(int n);
  /// A key under `defaults:` (interval, timeout, probe, ...), added or replaced.
  ConfigYaml& Default(const std::string& key, const std::string& value);
  /// A Redis entry; connect and read timeouts default to 300ms.
  ConfigYaml& Redis(const std::string& name, const std::string& address, const Fields& fields = {});
  /// Starts an app; `fields` go under it (secret_file, ...).
  ConfigYaml& App(const std::string& app_id, const Fields& fields = {});
  /// An environment of the last app; its key defaults to "ACCESS_TOKEN_CACHE:{app_id}".
  ConfigYaml& Env(const std::string& name, const std::string& redis, const Fields& fields = {});
  /// Top-level YAML appended as it is (heal:, conflict:, logging:, ...).
  ConfigYaml& Section(const std::string& yaml);

  [[nodiscard]] std::string str() const;
  operator std::string() const { return str(); }  // NOLINT: passes where a YAML string goes

 private:
  struct App_ {
    std::string app_id;
    Fields fields;
    std::vector<Fields> envs;
  };
  Fields wechat_;
  int workers_ = 2;
  Fields defaults_;
  std::vector<std::pair<std::string, Fields>> redis_;
  std::vector<App_> apps_;
  std::string sections_;
};

}  // namespace wxcanary::testing
