#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/outcome.h"
#include "common/secret.h"
#include "config/config.h"
#include "wechat/classify.h"
#include "wechat/probe_kinds.h"

namespace wxcanary::wechat {

/// A keep-alive HTTPS client for the WeChat API, one per worker. Certificates are always
/// verified (ca_file, when set, replaces the system CA bundle; there is no switch to turn
/// verification off).
/// Not thread-safe: each worker owns one.
class Client {
 public:
  explicit Client(config::WeChat cfg);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends the canary call of call.kind (its entry's method, path and body) with `token`,
  /// giving up after `timeout`.
  HttpResponse Probe(const ProbeCall& call, const Secret& token, std::chrono::milliseconds timeout);

  /// POST {base_url}{path} with a JSON body (path may carry a query). For quota/stable_token.
  HttpResponse PostJson(const std::string& path_and_query, const std::string& body,
                        std::chrono::milliseconds timeout);
  HttpResponse Get(const std::string& path_and_query, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wxcanary::wechat
