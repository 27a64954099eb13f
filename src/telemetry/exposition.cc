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

// The end (one past the closing quote) of the rendered label starting at `pos`. Label names
// are [a-zA-Z_][a-zA-Z0-9_]* and values are quoted with \" and \\ escaped, so the scan needs
// no full parser.
size_t LabelEnd(std::string_view labels, size_t pos) {
  size_t i = labels.find('=', pos);
  if (i == std::string_view::npos) return labels.size();
  i += 2;  // past ="
  while (i < labels.size() && labels[i] != '"') i += labels[i] == '\\' ? 2 : 1;
  return std::min(i + 1, labels.size());
}

}  // namespace

namespace {

size_t EscapedSize(std::string_view s) {
  size_t n = s.size();
  for (char c : s) n += c == '\\' || c == '\n' || c == '"' ? 1 : 0;
  return n;
}

// Sized before it is written: a label set is kept per target (several times), and growing it a
// character at a time left it with up to twice its length allocated, plus the holes of the
// buffers it outgrew (issue 19).
template <typename Pairs>
std::string Render(const Pairs& labels) {
  size_t size = 0;
  for (const auto& [name, value] : labels)
    size += (size == 0 ? 0 : 1) + std::string_view(name).size() + 3 + EscapedSize(value);
  std::string out;
  out.reserve(size);
  for (const auto& [name, value] : labels) {
    if (!out.empty()) out += ',';
    out += name;
    out += "=\"";
    AppendEscaped(out, value, /*quote_too=*/true);
    out += '"';
  }
  return out;
}

}  // namespace

std::string RenderLabels(const prometheus::Labels& labels) { return Render(labels); }

std::string RenderTargetLabels(std::string_view app_id, std::string_view app_env) {
  // In name order, as a prometheus::Labels map would have them.
  const std::pair<std::string_view, std::string_view> labels[] = {{"app_env", app_env},
                                                                  {"app_id", app_id}};
  return Render(labels);
}

size_t BucketOf(std::span<const double> bounds, double value) {
  return static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                             bounds.begin());
}

TextWriter::TextWriter(std::vector<std::string>& chunks) : chunks_(&chunks) {
  chunks_->emplace_back().reserve(kChunkBytes + kChunkBytes / 16);
  out_ = &chunks_->back();
}

void TextWriter::EndLine() {
  *out_ += '\n';
  if (chunks_ == nullptr || out_->size() < kChunkBytes) return;
  chunks_->emplace_back().reserve(kChunkBytes + kChunkBytes / 16);
  out_ = &chunks_->back();  // the vector may have moved the others; their buffers stay put
}

void TextWriter::Header(std::string_view name, std::string_view type, std::string_view help) {
  *out_ += "# HELP ";
  *out_ += name;
  *out_ += ' ';
  AppendEscaped(*out_, help, /*quote_too=*/false);
  *out_ += "\n# TYPE ";
  *out_ += name;
  *out_ += ' ';
  *out_ += type;
  EndLine();
}

void TextWriter::Value(double v) {
  *out_ += ' ';
  if (std::isnan(v)) {
    *out_ += "NaN";
  } else if (std::isinf(v)) {
    *out_ += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    // Integral values (counts, timestamps in whole seconds, TTLs) as integers, like %g would
    // not do for 1e+06; the rest in the shortest form that reads back exactly.
    auto [end, ec] = (std::trunc(v) == v && std::fabs(v) < 9.0e15)
                         ? std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v))
                         : std::to_chars(buf, buf + sizeof buf, v);
    out_->append(buf, end);
  }
  EndLine();
}

void TextWriter::OpenSample(std::string_view name, std::string_view suffix) {
  *out_ += name;
  *out_ += suffix;
}

void TextWriter::Sample(std::string_view name, std::string_view labels, double value) {
  *out_ += name;
  if (!labels.empty()) {
    *out_ += '{';
    *out_ += labels;
    *out_ += '}';
  }
  Value(value);
}

void TextWriter::Sample(std::string_view name, std::string_view labels,
                        std::initializer_list<Label> extra, double value) {
  *out_ += name;
  *out_ += '{';
  bool first = true;
  auto separate = [&] {
    if (!first) *out_ += ',';
    first = false;
  };
  auto put_extra = [&](const Label& l) {
    separate();
    *out_ += l.name;
    *out_ += "=\"";
    AppendEscaped(*out_, l.value, /*quote_too=*/true);
    *out_ += '"';
  };
  const Label* next = extra.begin();
  for (size_t pos = 0; pos < labels.size();) {
    const size_t end = LabelEnd(labels, pos);
    const std::string_view label = labels.substr(pos, end - pos);
    const std::string_view label_name = label.substr(0, label.find('='));
    while (next != extra.end() && next->name < label_name) put_extra(*next++);
    separate();
    *out_ += label;
    pos = end + 1;  // past the comma
  }
  while (next != extra.end()) put_extra(*next++);
  *out_ += '}';
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
      *out_ += labels;
      *out_ += ',';
    }
    *out_ += "le=\"";
    if (i < bounds.size()) {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, bounds[i]);
      out_->append(buf, end);
    } else {
      *out_ += "+Inf";
    }
    *out_ += "\"}";
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

std::vector<std::string> Exposition::SerializeChunks() const {
  std::vector<std::string> chunks;
  if (auto daemon_wide = telemetry::Serialize(*registry_); !daemon_wide.empty())
    chunks.push_back(std::move(daemon_wide));  // small: a few families without target labels
  std::lock_guard lock(mu_);
  TextWriter writer(chunks);
  for (const auto* c : collectables_) c->AppendText(writer);
  if (chunks.back().empty()) chunks.pop_back();  // the writer rolled over after its last line
  return chunks;
}

std::string Exposition::Serialize() const {
  const auto chunks = SerializeChunks();
  size_t size = 0;
  for (const auto& c : chunks) size += c.size();
  std::string out;
  out.reserve(size);
  for (const auto& c : chunks) out += c;
  return out;
}

std::string Serialize(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace wxcanary::telemetry
