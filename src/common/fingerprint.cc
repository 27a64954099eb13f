#include "common/fingerprint.h"

#include <openssl/evp.h>

#include <array>
#include <functional>
#include <memory>

namespace wxcanary {

namespace {

using Digest = std::array<unsigned char, 32>;

// SHA-256 with the algorithm fetched once per process and one context per thread: EVP_Digest
// with EVP_sha256() fetched it implicitly and made a new context on every call (3 heap
// allocations per hash; a probe hashes its token at least once). False only if libcrypto
// cannot hash at all (no default provider).
bool Sha256(std::string_view data, Digest* out) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                 &EVP_MD_CTX_free);
  unsigned int len = 0;
  return md != nullptr && ctx && EVP_DigestInit_ex2(ctx.get(), md, nullptr) == 1 &&
         EVP_DigestUpdate(ctx.get(), data.data(), data.size()) == 1 &&
         EVP_DigestFinal_ex(ctx.get(), out->data(), &len) == 1 && len == out->size();
}

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xF];
  }
  return out;
}

}  // namespace

// Both give "" when libcrypto cannot hash: a made-up digest would look like a real one.
std::string Sha256Hex(std::string_view data) {
  Digest d{};
  return Sha256(data, &d) ? Hex(d.data(), d.size()) : std::string();
}

std::string Fingerprint(std::string_view token) {
  Digest d{};
  if (token.empty() || !Sha256(token, &d)) return {};
  return Hex(d.data(), 4);  // 8 hex chars
}

std::string FingerprintMemo::Of(std::string_view token) {
  const uint64_t key = std::hash<std::string_view>{}(token);
  if (set_ && key == key_) return std::string(fingerprint_.data(), fingerprint_.size());
  std::string fp = Fingerprint(token);
  set_ = fp.size() == fingerprint_.size();  // "" (no token, no libcrypto) is not remembered
  if (set_) {
    key_ = key;
    std::copy(fp.begin(), fp.end(), fingerprint_.begin());
  }
  return fp;
}

}  // namespace wxcanary
