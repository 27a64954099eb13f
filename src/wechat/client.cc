// The blocking HTTPS client: one CurlRequest per Client, performed in place and reused, so the
// connection to the API stays open between calls (a canary that paid a TLS handshake every call
// would measure the handshake, not the token).

#include "wechat/client.h"

#include "wechat/curl_request.h"

namespace wxcanary::wechat {

struct Client::Impl {
  explicit Impl(const config::WeChat& cfg) : request(cfg) {}
  HttpResponse Perform(bool ready) {
    if (!ready) return CurlRequest::NoHandle();
    return request.Finish(curl_easy_perform(request.handle()));
  }
  CurlRequest request;
};

Client::Client(config::WeChat cfg) : impl_(std::make_unique<Impl>(cfg)) {}

Client::~Client() = default;

HttpResponse Client::Probe(const ProbeCall& call, const Secret& token,
                           std::chrono::milliseconds timeout) {
  return impl_->Perform(impl_->request.SetUpProbe(call, token, timeout));
}

HttpResponse Client::PostJson(const std::string& path_and_query, const std::string& body,
                              std::chrono::milliseconds timeout) {
  return impl_->Perform(impl_->request.SetUp(path_and_query, &body, timeout));
}

HttpResponse Client::Get(const std::string& path_and_query, std::chrono::milliseconds timeout) {
  return impl_->Perform(impl_->request.SetUp(path_and_query, nullptr, timeout));
}

}  // namespace wxcanary::wechat
