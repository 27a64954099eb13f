#pragma once

#include <string>
#include <string_view>

namespace wxcanary {

/// First 8 lowercase hex chars of SHA-256(token): the only form in which a token may appear
/// in logs, metrics or errors. Empty input gives "". Thread-safe.
std::string Fingerprint(std::string_view token);

/// Full lowercase hex SHA-256 of data. Thread-safe.
std::string Sha256Hex(std::string_view data);

}  // namespace wxcanary
