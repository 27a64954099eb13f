#pragma once

#include <string>
#include <string_view>

namespace wxcanary {

/// `s` double-quoted with quotes, backslashes and control characters escaped, so a
/// user-supplied value quoted in an error message keeps the message on one line. Pure.
std::string Quote(std::string_view s);

}  // namespace wxcanary
