#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wxcanary {

/// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates,
/// nothing past U+10FFFF), or 0 when the byte there does not start one. i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

/// True when every byte of s belongs to a well-formed UTF-8 sequence (RFC 3629). Pure.
bool IsValidUtf8(std::string_view s);

/// s with every byte that does not start a well-formed sequence replaced by U+FFFD, so one
/// garbled character does not cost the text around it. Pure.
std::string RepairUtf8(std::string_view s);

}  // namespace wxcanary
