#pragma once

#include <string>
#include <string_view>

#include "common/secret.h"

namespace wxcanary {

/// The one scrubber for secrets in text bound for a log line, a metric, an error or a page.
/// Returns `text` with every copy of `secret`, raw or percent-encoded (the form a token takes in
/// a URL query), replaced by `shown`; by default "<fp>", the secret's 8-hex fingerprint in angle
/// brackets, so that an operator can still tell which token a message is about. Pass a fixed
/// `shown` (e.g. "<redacted>") for a low-entropy secret such as a password, whose fingerprint
/// would help a dictionary attack. An empty secret changes nothing. Pure; thread-safe.
std::string Redact(std::string text, const Secret& secret, std::string_view shown = {});

/// Replaces every copy of `from` in *s by `to` (left to right, never rescanning `to`).
void ReplaceAll(std::string* s, std::string_view from, std::string_view to);

/// True when s holds a character outside RFC 3986's unreserved set, i.e. percent-encoding
/// would change it. WeChat's tokens never do, so they go into a URL as they are.
bool NeedsPercentEncoding(std::string_view s);

/// RFC 3986 percent-encoding (unreserved characters as they are, the rest as %XX).
std::string PercentEncode(std::string_view s);

}  // namespace wxcanary
