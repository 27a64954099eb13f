#pragma once

namespace wxcanary::daemon {

/// The whole program: parse flags, load the config, serve /metrics, probe until SIGTERM/SIGINT,
/// re-read the config on SIGHUP (keeping the old one when the new one is invalid).
/// Returns the process exit code. Call once, from main, before any other thread exists.
int Main(int argc, char** argv);

}  // namespace wxcanary::daemon
