#include "common/fingerprint.h"

#include <openssl/evp.h>

#include <array>

namespace wxcanary {

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(len) * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0xF];
  }
  return out;
}

std::string Fingerprint(std::string_view token) {
  if (token.empty()) return {};
  return Sha256Hex(token).substr(0, 8);
}

}  // namespace wxcanary
