#include "wechat/curl_request.h"

#include <cstdlib>
#include <initializer_list>
#include <mutex>
#include <string_view>

#include "common/redact.h"

namespace wxcanary::wechat {
namespace {

struct CurlFreeDeleter {
  void operator()(char* p) const { curl_free(p); }
};

std::string EscapeQueryValue(CURL* h, std::string_view value) {
  std::unique_ptr<char, CurlFreeDeleter> escaped(
      curl_easy_escape(h, value.data(), static_cast<int>(value.size())));
  return escaped ? std::string(escaped.get()) : std::string();
}

// Values in a caller-supplied query (e.g. access_token=...) must not leak through an error
// string either; short values ("1", "true") are not secrets and would mangle the message.
std::vector<Secret> QueryValues(std::string_view path_and_query) {
  std::vector<Secret> out;
  const size_t q = path_and_query.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view query = path_and_query.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.size() - eq - 1 >= 8) {
      out.emplace_back(std::string(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

// Whether any of `names` is set in the environment, as curl reads it ("" counts as unset).
bool AnySet(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return true;
  }
  return false;
}

// Whether curl sends a request for `base_url` to a forward proxy in absolute form: plain http
// with a proxy in the environment (curl reads only the lowercase http_proxy, for CGI's sake).
// HTTPS always tunnels through a proxy (CONNECT), so the target stays the origin form.
bool MayUseForwardProxy(std::string_view base_url) {
  const bool https = base_url.size() >= 8 && curl_strnequal(base_url.data(), "https://", 8);
  return !https && AnySet({"http_proxy", "all_proxy", "ALL_PROXY"});
}

// Whether any variable curl 7.88 reads to pick a proxy is set. Without one, the handle is told
// "no proxy" outright: curl otherwise looks up to five of these in the environment for every
// request (~1,600 instructions a probe, issue 19). no_proxy and NO_PROXY only exempt hosts from
// a proxy, so without one they change nothing.
bool ProxyInEnvironment() {
  return AnySet({"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"});
}

// The User-Agent header we send; CURLOPT_USERAGENT (for a proxy's CONNECT) takes its value.
constexpr char kUserAgentHeader[] = "User-Agent: wxcanary/" WXCANARY_VERSION;
constexpr size_t kUserAgentName = std::string_view("User-Agent: ").size();

}  // namespace

void CurlGlobalInitOnce() {
  // curl_global_init is not safe to race with other curl calls; every handle comes through here.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CurlRequest::CurlRequest(const config::WeChat& cfg) : cfg_(cfg), base_(cfg.base_url) {
  CurlGlobalInitOnce();
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  // The User-Agent goes in as a header of our own rather than CURLOPT_USERAGENT: curl 7.88
  // formats that one into a header of its own for every request and then copies it into the
  // request through its printf, a character at a time (~2,500 instructions a probe); ours is
  // copied once.
  get_headers_.reset(curl_slist_append(nullptr, kUserAgentHeader));
  // No "Expect:" to keep curl from asking for "100 Continue": 7.88 asks only for bodies over
  // 1 MiB, and every header in the list costs curl ~8 name comparisons a request.
  curl_slist* list = curl_slist_append(nullptr, kUserAgentHeader);
  if (list) list = curl_slist_append(list, "Content-Type: application/json");
  json_headers_.reset(list);
  direct_ok_ = !MayUseForwardProxy(base_);
  proxy_env_ = ProxyInEnvironment();
  Init();
}

// Sets everything that stays the same for every call. False when curl could not allocate.
bool CurlRequest::Init() {
  easy_.reset(curl_easy_init());
  CURL* h = easy_.get();
  if (!h) return false;
  direct_set_ = false;
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf_.data());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &CurlRequest::OnWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!cfg_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, cfg_.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // the API never redirects; a proxy page might
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBytes));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!proxy_env_) {
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "");
  } else {
    // A proxy's CONNECT gets curl's own User-Agent (headers of ours are not sent in a CONNECT;
    // a plain-http forward proxy gets ours, and curl then drops its own).
    curl_easy_setopt(h, CURLOPT_USERAGENT, kUserAgentHeader + kUserAgentName);
  }
  return true;
}

size_t CurlRequest::OnWrite(char* data, size_t size, size_t nmemb, void* user) {
  auto* self = static_cast<CurlRequest*>(user);
  const size_t n = size * nmemb;
  if (self->buffer_.size() + n > kMaxResponseBytes) {
    self->too_large_ = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  self->buffer_.append(data, n);
  return n;
}

void CurlRequest::SetProbeBody(const ProbeKindEntry& entry, const ProbeCall& call) {
  if (!probe_body_.empty() && call.kind == body_kind_ && call.content == body_content_ &&
      call.scene == body_scene_ && call.openid == body_openid_)
    return;
  probe_body_ = entry.body(call);
  body_kind_ = call.kind;
  body_content_ = call.content;
  body_scene_ = call.scene;
  body_openid_ = call.openid;
}

bool CurlRequest::SetProbeUrl(std::string_view path) {
  if (probe_url_ && path == probe_path_) return true;
  probe_path_.clear();
  if (!probe_url_) probe_url_.reset(curl_url());
  if (!probe_url_) return false;
  const std::string url = base_ + std::string(path);
  if (curl_url_set(probe_url_.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return false;
  char* sent = nullptr;  // the path as curl normalized it, which is what it would send
  if (curl_url_get(probe_url_.get(), CURLUPART_PATH, &sent, 0) != CURLUE_OK) return false;
  target_.assign(sent).append("?access_token=");
  curl_free(sent);
  target_prefix_ = target_.size();
  probe_path_ = path;
  return true;
}

void CurlRequest::Prepare(const std::string* post_body, std::chrono::milliseconds timeout,
                          bool direct) {
  CURL* h = easy_.get();
  if (timeout.count() <= 0) timeout = cfg_.timeout;
  if (direct) {
    if (!direct_set_) {
      curl_easy_setopt(h, CURLOPT_URL, static_cast<const char*>(nullptr));
      curl_easy_setopt(h, CURLOPT_CURLU, probe_url_.get());
      direct_set_ = true;
    }
    curl_easy_setopt(h, CURLOPT_REQUEST_TARGET, target_.c_str());
  } else {
    if (direct_set_) {
      curl_easy_setopt(h, CURLOPT_CURLU, static_cast<CURLU*>(nullptr));
      curl_easy_setopt(h, CURLOPT_REQUEST_TARGET, static_cast<const char*>(nullptr));
      direct_set_ = false;
    }
    curl_easy_setopt(h, CURLOPT_URL, url_.c_str());
  }
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  posted_ = post_body != nullptr;
  if (post_body) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, json_headers_.get());
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, get_headers_.get());
  }
  buffer_.clear();
  too_large_ = false;
  errbuf_[0] = '\0';
}

bool CurlRequest::SetUpProbe(const ProbeCall& call, const Secret& token,
                             std::chrono::milliseconds timeout) {
  if (!easy_ && !Init()) return false;
  const ProbeKindEntry& entry = KindEntry(call.kind);
  const bool post = entry.method == HttpMethod::kPost;
  if (post) SetProbeBody(entry, call);
  const std::string_view raw = token.Reveal();
  // Since curl 7.82 curl_easy_escape ignores the handle.
  const bool encode = NeedsPercentEncoding(raw);
  std::string escaped;
  if (encode) escaped = EscapeQueryValue(easy_.get(), raw);
  const std::string_view value = encode ? std::string_view(escaped) : raw;
  const bool direct = direct_ok_ && SetProbeUrl(entry.path);
  if (direct) {
    target_.resize(target_prefix_);
    target_ += value;
  } else {
    url_.assign(base_).append(entry.path).append("?access_token=").append(value);
  }
  token_ = &token;
  query_secrets_.clear();
  Prepare(post ? &probe_body_ : nullptr, timeout, direct);
  return true;
}

bool CurlRequest::SetUp(const std::string& path_and_query, const std::string* body,
                        std::chrono::milliseconds timeout) {
  if (!easy_ && !Init()) return false;
  url_.assign(base_).append(path_and_query);
  token_ = nullptr;
  query_secrets_ = QueryValues(path_and_query);
  Prepare(body, timeout, false);
  return true;
}

HttpResponse CurlRequest::NoHandle() {
  HttpResponse r;
  r.transport_error = "curl_easy_init failed";
  return r;
}

HttpResponse CurlRequest::Finish(CURLcode rc) {
  HttpResponse r;
  CURL* h = easy_.get();
  // POSTFIELDS points into a string of the caller's; never leave it dangling on the handle.
  if (posted_) curl_easy_setopt(h, CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));
  if (rc != CURLE_OK) {
    std::string msg;
    if (too_large_ || rc == CURLE_FILESIZE_EXCEEDED) {
      msg = "response too large (over " + std::to_string(kMaxResponseBytes) + " bytes)";
    } else {
      // errbuf/strerror describe the failure without the URL (which carries the token).
      msg = errbuf_[0] != '\0' ? std::string(errbuf_.data()) : std::string(curl_easy_strerror(rc));
      msg += " (curl error " + std::to_string(static_cast<int>(rc)) + ")";
    }
    if (token_ != nullptr) msg = Redact(std::move(msg), *token_);
    for (const auto& s : query_secrets_) msg = Redact(std::move(msg), s);
    r.transport_error = std::move(msg);
    buffer_.clear();
  } else {
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    r.transport_ok = true;
    r.http_status = status;
    r.body = std::move(buffer_);
    buffer_ = std::string();
  }
  token_ = nullptr;
  query_secrets_.clear();
  return r;
}

}  // namespace wxcanary::wechat
