#include "daemon/options.h"

#include <CLI/CLI.hpp>

#include "daemon/version.h"

namespace wxcanary::daemon {

std::optional<std::pair<std::string, int>> ParseListenAddress(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = address.substr(0, colon);
  std::string port_text = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (port_text.empty() || port_text.size() > 5) return std::nullopt;
  for (char c : port_text)
    if (c < '0' || c > '9') return std::nullopt;
  int port = std::stoi(port_text);
  if (port > 65535) return std::nullopt;
  return std::make_pair(host, port);
}

ParsedOptions ParseOptions(const std::vector<std::string>& args) {
  Options o;
  o.config_file = kDefaultConfigFile;
  std::string level = "info", format = "json";
  CLI::App app{"wxcanary: canary probes for cached WeChat access tokens", "wxcanary"};
  app.set_version_flag("-V,--version", VersionText(),
                       "Print version and build information, and exit");
  app.footer(
      "Commands (each with --help): wxcanary probe (one probe now), wxcanary evict (delete a "
      "failing token), wxcanary discover (find the token keys in a Redis and print a config)");
  app.option_defaults()->always_capture_default();  // --help shows each option's default
  app.add_option("--config.file", o.config_file, "YAML config file");
  app.add_option("--web.listen-address", o.listen_address,
                 "Address for /metrics, /, /-/healthy and /-/ready");
  app.add_option("--web.config.file", o.web_config_file,
                 "TLS and basic-auth settings (exporter-toolkit web config format)");
  app.add_option("--log.level", level, "debug|info|warn|error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log.format", format, "json|text")->check(CLI::IsMember({"json", "text"}));
  std::string shard;
  app.add_option(
      "--shard", shard,
      "I/N: probe only the apps whose app_id hashes to shard I of N (0-based; default: all apps)");
  app.add_flag("--config.check", o.config_check,
               "Validate the config, print what would be monitored, and exit");

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  ParsedOptions out;
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out.output = app.help();
    return out;
  } catch (const CLI::CallForVersion&) {
    out.output = VersionText();
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_code = 2;
    out.output = std::string("wxcanary: ") + e.what() + " (see --help)\n";
    return out;
  }
  if (!ParseListenAddress(o.listen_address)) {
    out.exit_code = 2;
    out.output =
        "wxcanary: --web.listen-address: \"" + o.listen_address + "\" is not HOST:PORT or :PORT\n";
    return out;
  }
  if (!shard.empty()) {
    auto parsed_shard = probe::ParseShard(shard);
    if (!parsed_shard) {
      out.exit_code = 2;
      out.output = "wxcanary: --shard: \"" + shard + "\" is not I/N with 0 <= I < N <= 4096\n";
      return out;
    }
    o.shard = *parsed_shard;
  }
  o.log_level = level == "debug"   ? telemetry::Level::kDebug
                : level == "warn"  ? telemetry::Level::kWarn
                : level == "error" ? telemetry::Level::kError
                                   : telemetry::Level::kInfo;
  o.log_format = format == "text" ? telemetry::Format::kText : telemetry::Format::kJson;
  out.options = o;
  return out;
}

}  // namespace wxcanary::daemon
