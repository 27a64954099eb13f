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
struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
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
  /// Points probe_url_ at {base_url}{path} and target_ at what curl sends as its request target
  /// for it, up to the query. False when curl rejects that URL (then the plain URL path runs,
  /// and curl's own error names the problem).
  bool SetProbeUrl(std::string_view path);
  void Prepare(const std::string* post_body, std::chrono::milliseconds timeout, bool direct);
  void SetProbeBody(const ProbeKindEntry& entry, const ProbeCall& call);
  static size_t OnWrite(char* data, size_t size, size_t nmemb, void* user);

  config::WeChat cfg_;
  std::string base_;                                  // base_url without a trailing slash
  std::unique_ptr<CURLU, CurlUrlDeleter> probe_url_;  // see direct_ok_; outlives easy_
  std::unique_ptr<CURL, CurlEasyDeleter> easy_;
  std::unique_ptr<curl_slist, CurlSlistDeleter> get_headers_;   // User-Agent
  std::unique_ptr<curl_slist, CurlSlistDeleter> json_headers_;  // and the JSON body's
  std::array<char, CURL_ERROR_SIZE> errbuf_{};
  std::string buffer_;
  bool too_large_ = false;
  bool posted_ = false;
  std::string url_;  // the request URL, rebuilt in place
  // The probe's fast path: curl 7.88 formats a URL one character at a time, and a token in the
  // query went through that three times per request (~55,000 instructions, ~40% of a probe on
  // the event loop). A probe instead hands curl a parsed URL without the query (CURLOPT_CURLU,
  // parsed when the probe's path changes) and the request target it sends verbatim
  // (CURLOPT_REQUEST_TARGET). Not through a forward proxy (plain http with http_proxy or
  // all_proxy set), which needs the absolute URL as its target: there the URL path runs.
  bool direct_ok_ = false;
  // A proxy variable was set when this was made; when none was, curl is told "no proxy" once
  // instead of reading the environment for every request. The environment is read once, like
  // direct_ok_: the daemon never changes it.
  bool proxy_env_ = false;
  bool direct_set_ = false;            // the handle holds probe_url_ rather than a URL string
  std::string probe_path_;             // the probe path probe_url_ was made for
  std::string target_;                 // the request target: path, "?access_token=" and the token
  size_t target_prefix_ = 0;           // target_'s length before the token
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
