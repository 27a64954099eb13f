// The HTTPS client: one libcurl easy handle per Client, reused so the connection to the API
// stays open between probes (a canary that paid a TLS handshake every call would measure the
// handshake, not the token).

#include <curl/curl.h>

#include <array>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/redact.h"
#include "wechat/client.h"

namespace wxcanary::wechat {

// Owners of curl handles, outside the anonymous namespace: Client::Impl holds them, and a
// member of an anonymous-namespace type is an error in the package's unity build.
struct CurlEasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct CurlFreeDeleter {
  void operator()(char* p) const { curl_free(p); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;
using CurlString = std::unique_ptr<char, CurlFreeDeleter>;

namespace {

void GlobalInitOnce() {
  // curl_global_init is not safe to race with other curl calls; every Client comes through here.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string EscapeQueryValue(CURL* h, const std::string& value) {
  CurlString escaped(curl_easy_escape(h, value.data(), static_cast<int>(value.size())));
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

}  // namespace

struct Client::Impl {
  config::WeChat cfg;
  std::string base;  // base_url without a trailing slash
  std::string user_agent = "wxcanary/" WXCANARY_VERSION;
  CurlEasy easy;
  CurlSlist json_headers;
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  std::string buffer;
  bool too_large = false;
  std::string probe_url;  // Probe's request URL, rebuilt in place

  // Probe's request body and what it was made from: consecutive probes almost always send the
  // same canary (one content for every target), so it is serialized only when that changes.
  std::string probe_body;
  ProbeKind body_kind = ProbeKind::kApiDomainIp;
  std::string body_content, body_openid;
  int body_scene = 0;

  void SetProbeBody(const ProbeKindEntry& entry, const ProbeCall& call) {
    if (!probe_body.empty() && call.kind == body_kind && call.content == body_content &&
        call.scene == body_scene && call.openid == body_openid)
      return;
    probe_body = entry.body(call);
    body_kind = call.kind;
    body_content = call.content;
    body_scene = call.scene;
    body_openid = call.openid;
  }

  explicit Impl(config::WeChat c) : cfg(std::move(c)), base(cfg.base_url) {
    while (!base.empty() && base.back() == '/') base.pop_back();
    curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
    // Without this curl waits for "100 Continue" before sending bodies over 1 KiB.
    if (list) list = curl_slist_append(list, "Expect:");
    json_headers.reset(list);
    Init();
  }

  // Sets everything that stays the same for every call. False when curl could not allocate.
  bool Init() {
    easy.reset(curl_easy_init());
    CURL* h = easy.get();
    if (!h) return false;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf.data());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Impl::OnWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!cfg.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, cfg.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // the API never redirects; a proxy page might
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBytes));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    return true;
  }

  static size_t OnWrite(char* data, size_t size, size_t nmemb, void* user) {
    auto* self = static_cast<Impl*>(user);
    const size_t n = size * nmemb;
    if (self->buffer.size() + n > kMaxResponseBytes) {
      self->too_large = true;
      return 0;  // makes curl abort with CURLE_WRITE_ERROR
    }
    self->buffer.append(data, n);
    return n;
  }

  // One request. `post_body` null means GET. Every string in the result is scrubbed of
  // `secrets` before it leaves.
  HttpResponse Perform(const std::string& url, const std::string* post_body,
                       std::chrono::milliseconds timeout, std::span<const Secret> secrets) {
    HttpResponse r;
    if (!easy && !Init()) {
      r.transport_error = "curl_easy_init failed";
      return r;
    }
    CURL* h = easy.get();
    if (timeout.count() <= 0) timeout = cfg.timeout;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    if (post_body) {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body->c_str());
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, json_headers.get());
    } else {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
    }
    buffer.clear();
    too_large = false;
    errbuf[0] = '\0';

    const CURLcode rc = curl_easy_perform(h);
    // POSTFIELDS points into the caller's string; never leave it dangling on the handle.
    if (post_body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));

    if (rc != CURLE_OK) {
      std::string msg;
      if (too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        msg = "response too large (over " + std::to_string(kMaxResponseBytes) + " bytes)";
      } else {
        // errbuf/strerror describe the failure without the URL (which carries the token).
        msg = errbuf[0] != '\0' ? std::string(errbuf.data()) : std::string(curl_easy_strerror(rc));
        msg += " (curl error " + std::to_string(static_cast<int>(rc)) + ")";
      }
      for (const auto& s : secrets) msg = Redact(std::move(msg), s);
      r.transport_error = std::move(msg);
      buffer.clear();
      return r;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    r.transport_ok = true;
    r.http_status = status;
    r.body = std::move(buffer);
    buffer = std::string();
    return r;
  }
};

Client::Client(config::WeChat cfg) : impl_(nullptr) {
  GlobalInitOnce();
  impl_ = std::make_unique<Impl>(std::move(cfg));
}

Client::~Client() = default;

HttpResponse Client::Probe(const ProbeCall& call, const Secret& token,
                           std::chrono::milliseconds timeout) {
  const ProbeKindEntry& entry = KindEntry(call.kind);
  const bool post = entry.method == HttpMethod::kPost;
  if (post) impl_->SetProbeBody(entry, call);
  // The URL is rebuilt in one buffer kept per client.
  std::string& url = impl_->probe_url;
  url.assign(impl_->base).append(entry.path).append("?access_token=");
  const std::string& raw = token.Reveal();
  if (NeedsPercentEncoding(raw)) {
    // Since curl 7.82 curl_easy_escape ignores the handle, so a failed init does not matter.
    url += EscapeQueryValue(impl_->easy.get(), raw);
  } else {
    url += raw;
  }
  return impl_->Perform(url, post ? &impl_->probe_body : nullptr, timeout,
                        std::span<const Secret>(&token, 1));
}

HttpResponse Client::PostJson(const std::string& path_and_query, const std::string& body,
                              std::chrono::milliseconds timeout) {
  return impl_->Perform(impl_->base + path_and_query, &body, timeout, QueryValues(path_and_query));
}

HttpResponse Client::Get(const std::string& path_and_query, std::chrono::milliseconds timeout) {
  return impl_->Perform(impl_->base + path_and_query, nullptr, timeout,
                        QueryValues(path_and_query));
}

}  // namespace wxcanary::wechat
