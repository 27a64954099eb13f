#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace wxcanary {

/// First 8 lowercase hex chars of SHA-256(token): the only form in which a token may appear
/// in logs, metrics or errors. Empty input gives "". Thread-safe.
std::string Fingerprint(std::string_view token);

/// One target's last fingerprint, so a probe that reads the same token as the last one does not
/// hash it again (SHA-256 of a ~150-byte token was ~6,500 instructions of every probe on the
/// event loop). Keyed by a 64-bit non-cryptographic hash of the token, kept only in memory: a
/// changed token is told from the last one by that hash, so a new token is hashed in full
/// except with probability 2^-64 (the 8-hex fingerprint itself collides at 2^-32). Not
/// thread-safe: one per target, used by whoever probes it.
class FingerprintMemo {
 public:
  /// Fingerprint(token), computed only when token differs from the last one given.
  std::string Of(std::string_view token);

 private:
  uint64_t key_ = 0;
  bool set_ = false;
  std::array<char, 8> fingerprint_{};
};

/// Full lowercase hex SHA-256 of data. Thread-safe.
std::string Sha256Hex(std::string_view data);

}  // namespace wxcanary
