#pragma once

#include <curl/curl.h>

#include <array>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/secret.h"
#include "config/config.h"
#include "wechat/classify.h"
#include "wechat/probe_kinds.h"

namespace wxcanary::wechat {

struct CurlEasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

/// curl_global_init, once per process, before any other curl call.
void CurlGlobalInitOnce();

/// One libcurl easy handle set up for the WeChat API, reused request after request so its
/// connection (and, in a multi, the multi's connection cache) stays open: what Client performs
/// in place and AsyncClient hands to its curl multi. Certificates are always verified (ca_file,
/// when set, replaces the system CA bundle). Not thread-safe.
class CurlRequest {
 public:
  explicit CurlRequest(const config::WeChat& cfg);
  CurlRequest(const CurlRequest&) = delete;
  CurlRequest& operator=(const CurlRequest&) = delete;

  /// The handle, null when curl could not allocate one.
  [[nodiscard]] CURL* handle() const { return easy_.get(); }

  /// Sets up the canary call of call.kind (its method, path and body) with `token`, which must
  /// outlive Finish(). False when there is no handle.
  bool SetUpProbe(const ProbeCall& call, const Secret& token, std::chrono::milliseconds timeout);
  /// Sets up {base_url}{path_and_query}: a POST of `body` (JSON), or a GET when `body` is null
  /// (it must outlive Finish()). Values in the query are scrubbed from errors.
  bool SetUp(const std::string& path_and_query, const std::string* body,
             std::chrono::milliseconds timeout);
  /// What the transfer that ended with `rc` answered; every string in it is scrubbed of the
  /// secrets the request carried. Leaves the handle ready for the next SetUp.
  HttpResponse Finish(CURLcode rc);
  /// The answer when no transfer could even start (no handle).
  static HttpResponse NoHandle();

 private:
  bool Init();
  void Prepare(const std::string* post_body, std::chrono::milliseconds timeout);
  void SetProbeBody(const ProbeKindEntry& entry, const ProbeCall& call);
  static size_t OnWrite(char* data, size_t size, size_t nmemb, void* user);

  config::WeChat cfg_;
  std::string base_;  // base_url without a trailing slash
  std::string user_agent_;
  std::unique_ptr<CURL, CurlEasyDeleter> easy_;
  std::unique_ptr<curl_slist, CurlSlistDeleter> json_headers_;
  std::array<char, CURL_ERROR_SIZE> errbuf_{};
  std::string buffer_;
  bool too_large_ = false;
  bool posted_ = false;
  std::string url_;                    // the request URL, rebuilt in place
  std::vector<Secret> query_secrets_;  // SetUp's query values
  const Secret* token_ = nullptr;      // SetUpProbe's token

  // The probe's request body and what it was made from: consecutive probes almost always send
  // the same canary (one content for every target), so it is serialized only when that changes.
  std::string probe_body_;
  ProbeKind body_kind_ = ProbeKind::kApiDomainIp;
  std::string body_content_, body_openid_;
  int body_scene_ = 0;
};

}  // namespace wxcanary::wechat
