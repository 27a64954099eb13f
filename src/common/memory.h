#pragma once

#include <malloc.h>

namespace wxcanary {

/// Returns freed heap pages to the kernel (glibc malloc_trim). Called after work that frees
/// much at once: a config (re)load (the YAML tree of 10,000 targets) and a scrape (tens of MB
/// of text in blocks below the mmap threshold). Without it RSS keeps that memory until reused.
/// Thread-safe; costs a few milliseconds.
inline void ReturnFreedMemory() { malloc_trim(0); }

}  // namespace wxcanary
