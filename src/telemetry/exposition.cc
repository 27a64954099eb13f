#include "telemetry/exposition.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace wxcanary::telemetry {

namespace {

void AppendEscaped(std::string& out, std::string_view s, bool quote_too) {
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"':
        if (quote_too) {
          out += "\\\"";
          break;
        }
        [[fallthrough]];
      default: out += c;
    }
  }
}

// The offset in rendered `labels` where a label named `name` goes to keep them sorted: before
// the first label whose name is greater. Label names are [a-zA-Z_][a-zA-Z0-9_]*, values are
// quoted with \" and \\ escaped, so the scan needs no full parser.
size_t InsertionPoint(std::string_view labels, std::string_view name) {
  size_t pos = 0;
  while (pos < labels.size()) {
    const size_t eq = labels.find('=', pos);
    if (eq == std::string_view::npos) break;
    if (labels.substr(pos, eq - pos) > name) return pos;
    size_t i = eq + 2;  // past ="
    while (i < labels.size() && labels[i] != '"') i += labels[i] == '\\' ? 2 : 1;
    pos = i + 2;  // past the closing quote and the comma
  }
  return labels.size();
}

}  // namespace

std::string RenderLabels(const prometheus::Labels& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) out += ',';
    out += name;
    out += "=\"";
    AppendEscaped(out, value, /*quote_too=*/true);
    out += '"';
  }
  return out;
}

void TextWriter::Header(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  AppendEscaped(out_, help, /*quote_too=*/false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void TextWriter::Value(double v) {
  out_ += ' ';
  if (std::isnan(v)) {
    out_ += "NaN";
  } else if (std::isinf(v)) {
    out_ += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    // Integral values (counts, timestamps in whole seconds, TTLs) as integers, like %g would
    // not do for 1e+06; the rest in the shortest form that reads back exactly.
    auto [end, ec] = (std::trunc(v) == v && std::fabs(v) < 9.0e15)
                         ? std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v))
                         : std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, end);
  }
  out_ += '\n';
}

void TextWriter::OpenSample(std::string_view name, std::string_view suffix) {
  out_ += name;
  out_ += suffix;
}

void TextWriter::Sample(std::string_view name, std::string_view labels, double value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    out_ += labels;
    out_ += '}';
  }
  Value(value);
}

void TextWriter::Sample(std::string_view name, std::string_view labels, std::string_view label,
                        std::string_view label_value, double value) {
  const size_t at = InsertionPoint(labels, label);
  out_ += name;
  out_ += '{';
  out_ += labels.substr(0, at);
  if (at > 0 && at == labels.size()) out_ += ',';
  out_ += label;
  out_ += "=\"";
  AppendEscaped(out_, label_value, /*quote_too=*/true);
  out_ += '"';
  if (at < labels.size()) {
    out_ += ',';
    out_ += labels.substr(at);
  }
  out_ += '}';
  Value(value);
}

void TextWriter::Histogram(std::string_view name, std::string_view labels,
                           std::span<const double> bounds, std::span<const uint64_t> counts,
                           double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size() && i < counts.size(); ++i) {
    cumulative += counts[i];
    OpenSample(name, "_bucket{");
    if (!labels.empty()) {
      out_ += labels;
      out_ += ',';
    }
    out_ += "le=\"";
    if (i < bounds.size()) {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, bounds[i]);
      out_.append(buf, end);
    } else {
      out_ += "+Inf";
    }
    out_ += "\"}";
    Value(static_cast<double>(cumulative));
  }
  OpenSample(name, "_sum");
  Sample("", labels, sum);
  OpenSample(name, "_count");
  Sample("", labels, static_cast<double>(cumulative));
}

Exposition::Exposition() : registry_(std::make_unique<prometheus::Registry>()) {}
Exposition::~Exposition() = default;

void Exposition::Add(const TextCollectable& collectable) {
  std::lock_guard lock(mu_);
  collectables_.push_back(&collectable);
}

void Exposition::Remove(const TextCollectable& collectable) {
  std::lock_guard lock(mu_);
  std::erase(collectables_, &collectable);
}

std::string Exposition::Serialize() const {
  std::string out = telemetry::Serialize(*registry_);
  std::lock_guard lock(mu_);
  out.reserve(last_size_ + last_size_ / 8);
  TextWriter writer(out);
  for (const auto* c : collectables_) c->AppendText(writer);
  last_size_ = out.size();
  return out;
}

std::string Serialize(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace wxcanary::telemetry
