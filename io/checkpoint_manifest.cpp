// Why this file exists: the manifest's JSON (nlohmann-json) and its validation.
#include "io/checkpoint_manifest.h"

#include <xxhash.h>

#include <cinttypes>
#include <cmath>
#include <limits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/check.h"

namespace ladder::io {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "ladder-checkpoint";
constexpr int kVersion = 1;

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

// XXH3-64 of the canonical dump (sorted keys, no whitespace) of everything but "checksum".
std::string content_checksum(json object) {
  object.erase("checksum");
  const std::string canonical = object.dump();
  return hex64(XXH3_64bits(canonical.data(), canonical.size()));
}

// A buffer's values: F32 as numbers (exact: the float widened to a double, which JSON keeps),
// except the non-finite, which JSON cannot hold, as the strings "nan", "inf", "-inf"; I64 as
// integers.
json buffer_to_json(const ModelBuffer& buffer) {
  json values = json::array();
  for (double v : buffer.values) {
    if (buffer.type == ModelBuffer::Type::kI64) values.push_back(static_cast<int64_t>(v));
    else if (std::isfinite(v)) values.push_back(v);
    else values.push_back(std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
  }
  return {{"name", buffer.name}, {"dtype", type_name(buffer.type)}, {"shape", buffer.shape}, {"values", values}};
}

json ranges_to_json(const std::vector<Range>& ranges) {
  json list = json::array();
  for (const Range& range : ranges) list.push_back({range.begin, range.end});
  return list;
}

// Reads fields with one clear error per fault: "<path>: field 'shards[1].bytes' ...".
class FieldReader {
 public:
  explicit FieldReader(const std::string& path) : path_(path) {}

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw UsageError(detail::concat(path_, ": field '", field, "' ", why));
  }
  const json& get(const json& object, const std::string& key, const std::string& where) const {
    const std::string field = where.empty() ? key : where + "." + key;
    if (!object.is_object() || !object.contains(key)) fail(field, "is missing");
    return object.at(key);
  }
  int64_t integer(const json& object, const std::string& key, const std::string& where = "",
                  int64_t min = 0) const {
    const json& value = get(object, key, where);
    const std::string field = where.empty() ? key : where + "." + key;
    if (!value.is_number_integer()) fail(field, "is not an integer");
    const int64_t v = value.get<int64_t>();
    if (v < min) fail(field, detail::concat("is ", v, ", below ", min));
    return v;
  }
  double number(const json& object, const std::string& key, const std::string& where = "") const {
    const json& value = get(object, key, where);
    if (!value.is_number()) fail(where.empty() ? key : where + "." + key, "is not a number");
    return value.get<double>();
  }
  std::string text(const json& object, const std::string& key, const std::string& where = "") const {
    const json& value = get(object, key, where);
    if (!value.is_string()) fail(where.empty() ? key : where + "." + key, "is not a string");
    return value.get<std::string>();
  }
  const json& array(const json& object, const std::string& key, const std::string& where = "") const {
    const json& value = get(object, key, where);
    if (!value.is_array()) fail(where.empty() ? key : where + "." + key, "is not a list");
    return value;
  }
  // buffers[index]: a name, dtype F32 or I64, a shape, and as many values as it holds.
  ModelBuffer buffer(const json& object, size_t index) const {
    const std::string where = detail::concat("buffers[", index, "]");
    ModelBuffer b;
    b.name = text(object, "name", where);
    if (b.name.empty()) fail(where + ".name", "is empty");
    const std::string dtype = text(object, "dtype", where);
    if (dtype != "F32" && dtype != "I64") fail(where + ".dtype", "is '" + dtype + "', expected 'F32' or 'I64'");
    b.type = dtype == "F32" ? ModelBuffer::Type::kF32 : ModelBuffer::Type::kI64;
    int64_t count = 1;
    for (const json& d : array(object, "shape", where)) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > (int64_t{1} << 31))
        fail(where + ".shape", "holds a bad size");
      count *= d.get<int64_t>();
      if (count > (int64_t{1} << 31)) fail(where + ".shape", "holds more than 2^31 values");
      b.shape.push_back(d.get<int64_t>());
    }
    const json& values = array(object, "values", where);
    if (static_cast<int64_t>(values.size()) != count)
      fail(where + ".values", detail::concat("holds ", values.size(), " values for shape of ", count));
    for (const json& v : values) {
      if (b.type == ModelBuffer::Type::kI64) {
        if (!v.is_number_unsigned() || v.get<uint64_t>() >= (uint64_t{1} << 53))  // counts
          fail(where + ".values", "holds a value that is not an integer in [0, 2^53)");
        b.values.push_back(static_cast<double>(v.get<uint64_t>()));
      } else if (v.is_number()) {
        const double x = v.get<double>();
        if (std::isfinite(x) && std::fabs(x) > std::numeric_limits<float>::max())
          fail(where + ".values", "holds a value beyond the float range");
        b.values.push_back(static_cast<float>(x));
      } else if (v == "nan" || v == "inf" || v == "-inf") {
        b.values.push_back(v == "nan" ? NAN : v == "inf" ? INFINITY : -INFINITY);
      } else {
        fail(where + ".values", "holds a value that is neither a number nor \"nan\", \"inf\", \"-inf\"");
      }
    }
    return b;
  }
  std::vector<Range> ranges(const json& object, const std::string& key, const std::string& where) const {
    std::vector<Range> out;
    for (const json& pair : array(object, key, where)) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() ||
          !pair[1].is_number_integer())
        fail(where + "." + key, "holds an entry that is not [begin, end]");
      const Range range{pair[0].get<int64_t>(), pair[1].get<int64_t>()};
      if (range.begin < 0 || range.end < range.begin)
        fail(where + "." + key, detail::concat("holds [", range.begin, ", ", range.end, ")"));
      out.push_back(range);
    }
    return out;
  }

 private:
  std::string path_;
};

}  // namespace

std::string step_directory_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return name;
}

std::string shard_file_name(int rank, int world) {
  char name[48];
  std::snprintf(name, sizeof name, "shard-%05d-of-%05d.h5", rank, world);
  return name;
}

std::string manifest_to_json(const Manifest& m) {
  json object;
  object["format"] = kFormat;
  object["version"] = kVersion;
  object["ladder_version"] = m.ladder_version;
  object["step"] = m.step;
  object["world"] = m.world;
  object["zero_stage"] = m.zero_stage;
  object["count"] = m.count;
  object["padded_count"] = m.padded_count;
  const TrainingState& s = m.state;
  object["state"] = {{"step", s.step},
                     {"images_seen", s.images_seen},
                     {"rung", s.rung},
                     {"rung_step", s.rung_step},
                     {"optimizer_steps", s.optimizer_steps},
                     {"loss_scale", s.scaler.scale},
                     {"loss_scale_clean_steps", s.scaler.clean_steps},
                     {"skipped_steps", s.scaler.skipped}};
  if (s.data_batch >= 0) object["state"]["data_batch"] = s.data_batch;
  if (s.discriminator_steps >= 0)
    object["state"]["discriminator"] = {{"optimizer_steps", s.discriminator_steps},
                                        {"loss_scale", s.discriminator_scaler.scale},
                                        {"loss_scale_clean_steps", s.discriminator_scaler.clean_steps},
                                        {"skipped_steps", s.discriminator_scaler.skipped}};
  json params = json::array();
  for (const ParamRecord& p : m.params)
    params.push_back({{"name", p.name}, {"shape", p.shape}, {"offset", p.offset}, {"numel", p.numel}});
  object["params"] = params;
  if (!m.buffers.empty()) {  // absent when none: a manifest reads as it did before buffers
    json buffers = json::array();
    for (const ModelBuffer& buffer : m.buffers) buffers.push_back(buffer_to_json(buffer));
    object["buffers"] = buffers;
  }
  json shards = json::array();
  for (const ShardRecord& shard : m.shards)
    shards.push_back({{"rank", shard.rank},
                      {"file", shard.file},
                      {"ranges", ranges_to_json(shard.ranges)},
                      {"bytes", shard.bytes},
                      {"xxh3", hex64(shard.xxh3)}});
  object["shards"] = shards;
  object["config"] = m.config;
  object["checksum"] = content_checksum(object);
  return object.dump(1) + "\n";
}

Manifest parse_manifest(const std::string& text, const std::string& path) {
  json object;
  try {
    object = json::parse(text);
  } catch (const json::exception& e) {
    throw UsageError(detail::concat(path, ": not valid JSON (", e.what(), ")"));
  }
  const FieldReader r(path);
  if (!object.is_object()) throw UsageError(path + ": not a JSON object");
  if (r.text(object, "format") != kFormat)
    r.fail("format", detail::concat("is '", object["format"].get<std::string>(), "', expected '",
                                    kFormat, "'"));
  if (r.integer(object, "version") != kVersion)
    r.fail("version", detail::concat("is ", object["version"].get<int64_t>(),
                                     "; this build reads version ", kVersion));
  if (r.text(object, "checksum") != content_checksum(object))
    throw UsageError(path + ": checksum does not match the content (edited or damaged manifest)");

  Manifest m;
  m.ladder_version = r.text(object, "ladder_version");
  m.step = r.integer(object, "step");
  m.world = static_cast<int>(r.integer(object, "world", "", 1));
  m.zero_stage = static_cast<int>(r.integer(object, "zero_stage"));
  m.count = r.integer(object, "count", "", 1);
  m.padded_count = r.integer(object, "padded_count", "", m.count);
  const json& state = r.get(object, "state", "");
  TrainingState& s = m.state;
  s.step = r.integer(state, "step", "state");
  s.images_seen = r.integer(state, "images_seen", "state");
  s.rung = static_cast<int>(r.integer(state, "rung", "state"));
  s.rung_step = r.integer(state, "rung_step", "state");
  s.optimizer_steps = r.integer(state, "optimizer_steps", "state");
  s.scaler.scale = r.number(state, "loss_scale", "state");
  s.scaler.clean_steps = r.integer(state, "loss_scale_clean_steps", "state");
  s.scaler.skipped = r.integer(state, "skipped_steps", "state");
  if (state.is_object() && state.contains("data_batch")) s.data_batch = r.integer(state, "data_batch", "state");
  if (s.step != m.step) r.fail("state.step", "differs from 'step'");
  if (state.is_object() && state.contains("discriminator")) {
    const json& d = r.get(state, "discriminator", "state");
    s.discriminator_steps = r.integer(d, "optimizer_steps", "state.discriminator");
    s.discriminator_scaler.scale = r.number(d, "loss_scale", "state.discriminator");
    s.discriminator_scaler.clean_steps = r.integer(d, "loss_scale_clean_steps", "state.discriminator");
    s.discriminator_scaler.skipped = r.integer(d, "skipped_steps", "state.discriminator");
  }

  int64_t expected_offset = 0;
  for (const json& p : r.array(object, "params")) {
    const std::string where = detail::concat("params[", m.params.size(), "]");
    ParamRecord record;
    record.name = r.text(p, "name", where);
    for (const json& d : r.array(p, "shape", where)) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1) r.fail(where + ".shape", "holds a bad size");
      record.shape.push_back(d.get<int64_t>());
    }
    record.offset = r.integer(p, "offset", where);
    record.numel = r.integer(p, "numel", where, 1);
    if (record.offset != expected_offset) r.fail(where + ".offset", "leaves a gap or overlaps");
    expected_offset += record.numel;
    m.params.push_back(record);
  }
  if (expected_offset != m.count) r.fail("params", "do not add up to 'count'");
  if (object.contains("buffers"))
    for (const json& b : r.array(object, "buffers")) m.buffers.push_back(r.buffer(b, m.buffers.size()));

  // The shards: one per rank, whose ranges tile [0, padded_count) without overlap.
  std::vector<Range> all;
  for (const json& shard : r.array(object, "shards")) {
    const std::string where = detail::concat("shards[", m.shards.size(), "]");
    ShardRecord record;
    record.rank = static_cast<int>(r.integer(shard, "rank", where));
    if (record.rank != static_cast<int>(m.shards.size())) r.fail(where + ".rank", "is out of order");
    record.file = r.text(shard, "file", where);
    if (record.file != shard_file_name(record.rank, m.world))
      r.fail(where + ".file", detail::concat("is '", record.file, "', expected '",
                                             shard_file_name(record.rank, m.world), "'"));
    record.ranges = r.ranges(shard, "ranges", where);
    record.bytes = r.integer(shard, "bytes", where, 1);
    const std::string sum = r.text(shard, "xxh3", where);
    char* end = nullptr;
    record.xxh3 = std::strtoull(sum.c_str(), &end, 16);
    if (sum.size() != 16 || *end != '\0') r.fail(where + ".xxh3", "is not 16 hex digits");
    all.insert(all.end(), record.ranges.begin(), record.ranges.end());
    m.shards.push_back(record);
  }
  if (static_cast<int>(m.shards.size()) != m.world)
    r.fail("shards", detail::concat("lists ", m.shards.size(), " shards for world ", m.world));
  std::sort(all.begin(), all.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  int64_t cursor = 0;
  for (const Range& range : all) {
    if (range.begin != cursor) r.fail("shards", detail::concat("ranges leave a gap or overlap at ", cursor));
    cursor = range.end;
  }
  if (cursor != m.padded_count) r.fail("shards", "ranges do not cover 'padded_count'");

  const json& config = r.get(object, "config", "");
  if (!config.is_object()) r.fail("config", "is not an object");
  for (auto it = config.begin(); it != config.end(); ++it) {
    if (!it.value().is_string()) r.fail("config." + it.key(), "is not a string");
    m.config[it.key()] = it.value().get<std::string>();
  }
  return m;
}

Manifest read_manifest(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw UsageError(path + ": missing (an incomplete checkpoint)");
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw UsageError(path + ": cannot be read");
  return parse_manifest(text.str(), path);
}

}  // namespace ladder::io
