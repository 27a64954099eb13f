#pragma once

#include <string>

#include "common/clock.h"

namespace wxcanary {

/// UTC RFC 3339 with milliseconds, e.g. "2023-11-14T22:13:20.000Z". Pure; thread-safe.
std::string FormatRfc3339(SystemTime t);

}  // namespace wxcanary
