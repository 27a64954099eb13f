#pragma once

#include <prometheus/labels.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace wxcanary::telemetry {

/// A label set rendered once for the text format, sorted by name: `a="1",b="x\"y"` (values
/// escaped). Per-target series keep this string instead of a label map: at 10,000 targets and
/// ~45 series each, prometheus-cpp's per-series label maps (and the copies its Collect() makes
/// at every scrape) were most of the daemon's memory and scrape time. Pure.
std::string RenderLabels(const prometheus::Labels& labels);
/// RenderLabels({{"app_id", app_id}, {"app_env", app_env}}) without building the map.
std::string RenderTargetLabels(std::string_view app_id, std::string_view app_env);

/// Appends the Prometheus text exposition format (0.0.4) to a string, or to a list of chunks
/// of about kChunkBytes that each end at a line end (no buffer is ever regrown and copied, so a
/// large scrape never holds its text twice). One line per call, no intermediate copies.
/// Integral values are written as integers, others in the shortest form that reads back
/// exactly. Not thread-safe (one writer per scrape).
class TextWriter {
 public:
  static constexpr size_t kChunkBytes = 256 * 1024;

  explicit TextWriter(std::string& out) : out_(&out) {}
  explicit TextWriter(std::vector<std::string>& chunks);

  /// The `# HELP` and `# TYPE` lines that open a family.
  void Header(std::string_view name, std::string_view type, std::string_view help);
  /// `name{labels} value`; `labels` as RenderLabels makes them, may be empty.
  void Sample(std::string_view name, std::string_view labels, double value);
  /// A label not in the rendered set, e.g. {"outcome", "ok"}.
  struct Label {
    std::string_view name;
    std::string_view value;
  };
  /// The same with more labels (sorted by name) merged in at their sorted places, as a label
  /// map orders them.
  void Sample(std::string_view name, std::string_view labels, std::initializer_list<Label> extra,
              double value);
  /// A histogram's `_bucket` (cumulative, `le` last as prometheus-cpp writes it), `_sum` and
  /// `_count` lines, from per-bucket counts: counts.size() == bounds.size() + 1 (the last is
  /// above every bound). `_count` is the total of `counts`, so it always equals the +Inf bucket.
  void Histogram(std::string_view name, std::string_view labels, std::span<const double> bounds,
                 std::span<const uint64_t> counts, double sum);

 private:
  void Value(double v);  // and the line end
  void EndLine();
  void OpenSample(std::string_view name, std::string_view suffix);

  std::string* out_;
  std::vector<std::string>* chunks_ = nullptr;
};

/// The histogram bucket of `value`: the first bound >= value (bounds are inclusive, `le`), or
/// bounds.size() when above them all. Pure.
size_t BucketOf(std::span<const double> bounds, double value);

/// Something that writes its own families straight from its state at scrape time.
class TextCollectable {
 public:
  virtual void AppendText(TextWriter& out) const = 0;

 protected:
  ~TextCollectable() = default;
};

/// What /metrics serves: prometheus-cpp's registry (daemon-wide, low-cardinality families)
/// followed by the text collectables (the per-target families). Thread-safe; Remove() waits for
/// a scrape in progress, so a collectable may remove itself in its destructor.
class Exposition {
 public:
  Exposition();
  ~Exposition();
  Exposition(const Exposition&) = delete;
  Exposition& operator=(const Exposition&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  const prometheus::Registry& registry() const { return *registry_; }

  void Add(const TextCollectable& collectable);
  void Remove(const TextCollectable& collectable);

  /// The whole exposition in the text format, in chunks (see TextWriter): what /metrics sends.
  std::vector<std::string> SerializeChunks() const;
  /// The same in one string.
  std::string Serialize() const;

 private:
  std::unique_ptr<prometheus::Registry> registry_;
  mutable std::mutex mu_;
  std::vector<const TextCollectable*> collectables_;
};

/// prometheus-cpp's registry alone in the text format. Thread-safe.
std::string Serialize(const prometheus::Registry& registry);

}  // namespace wxcanary::telemetry
