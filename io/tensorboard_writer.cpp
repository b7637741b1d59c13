// Why this file exists: the TFRecord framing and the protobuf encoding of the events.
#include "io/tensorboard_writer.h"

#include <nmmintrin.h>  // SSE4.2 crc32 (CRC-32C), part of x86-64-v3
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/check.h"

namespace ladder::io {
namespace {

// ---- protobuf wire format: varints and length-delimited fields --------------------------
void varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
void key(std::string& out, int field, int wire_type) { varint(out, static_cast<uint64_t>(field) << 3 | wire_type); }
void bytes_field(std::string& out, int field, const std::string& value) {
  key(out, field, 2);
  varint(out, value.size());
  out += value;
}
void varint_field(std::string& out, int field, uint64_t value) {
  key(out, field, 0);
  varint(out, value);
}
void float_field(std::string& out, int field, float value) {
  key(out, field, 5);
  char raw[4];
  std::memcpy(raw, &value, 4);
  out.append(raw, 4);
}
void double_field(std::string& out, int field, double value) {
  key(out, field, 1);
  char raw[8];
  std::memcpy(raw, &value, 8);
  out.append(raw, 8);
}

// Event.summary (field 5) holding one Summary.Value (field 1).
std::string summary_of(const std::string& value) {
  std::string summary, what;
  bytes_field(summary, 1, value);
  bytes_field(what, 5, summary);
  return what;
}

void put_u32(std::string& out, uint32_t value) {
  for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>(value >> (8 * b)));
}

double wall_time() {
  using clock = std::chrono::system_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const uint8_t* bytes, size_t count) {
  uint64_t crc = 0xffffffffu;
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    crc = _mm_crc32_u64(crc, word);
  }
  uint32_t narrow = static_cast<uint32_t>(crc);
  for (; i < count; ++i) narrow = _mm_crc32_u8(narrow, bytes[i]);
  return ~narrow;
}

uint32_t masked_crc32c(const uint8_t* bytes, size_t count) {
  const uint32_t crc = crc32c(bytes, count);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const long long seconds = static_cast<long long>(wall_time());
  path_ = (std::filesystem::path(dir) / ("events.out.tfevents." + std::to_string(seconds) + ".ladder." +
                                         std::to_string(::getpid())))
              .string();
  file_ = std::fopen(path_.c_str(), "ab");
  LADDER_CHECK(file_ != nullptr, "cannot create ", path_, ": ", std::strerror(errno));
  std::string what;
  bytes_field(what, 3, "brain.Event:2");  // file_version
  write_event(0, what);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::write_event(int64_t step, const std::string& what) {
  std::string event;
  double_field(event, 1, wall_time());
  varint_field(event, 2, static_cast<uint64_t>(step));
  event += what;
  std::string record;
  const uint64_t length = event.size();
  std::string length_bytes;
  for (int b = 0; b < 8; ++b) length_bytes.push_back(static_cast<char>(length >> (8 * b)));
  record += length_bytes;
  put_u32(record, masked_crc32c(reinterpret_cast<const uint8_t*>(length_bytes.data()), 8));
  record += event;
  put_u32(record, masked_crc32c(reinterpret_cast<const uint8_t*>(event.data()), event.size()));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0)
    LADDER_FAIL("cannot write ", path_, ": ", std::strerror(errno));
}

void TensorBoardWriter::scalar(const std::string& tag, int64_t step, double value) {
  std::string v;
  bytes_field(v, 1, tag);
  float_field(v, 2, static_cast<float>(value));  // simple_value
  write_event(step, summary_of(v));
}

void TensorBoardWriter::image(const std::string& tag, int64_t step, const std::vector<uint8_t>& png) {
  LADDER_CHECK(png.size() > 26 && std::memcmp(png.data() + 1, "PNG", 3) == 0, "TensorBoard image ", tag,
               ": not a PNG");
  auto be32 = [&](size_t at) {
    return uint32_t(png[at]) << 24 | uint32_t(png[at + 1]) << 16 | uint32_t(png[at + 2]) << 8 | png[at + 3];
  };
  const int color_type = png[25];  // 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA
  std::string image;
  varint_field(image, 1, be32(20));  // height (IHDR)
  varint_field(image, 2, be32(16));  // width
  varint_field(image, 3, color_type == 2 ? 3 : color_type == 6 ? 4 : color_type == 4 ? 2 : 1);  // colorspace
  bytes_field(image, 4, std::string(png.begin(), png.end()));
  std::string v;
  bytes_field(v, 1, tag);
  bytes_field(v, 4, image);
  write_event(step, summary_of(v));
}

void TensorBoardWriter::text(const std::string& tag, int64_t step, const std::string& text) {
  std::string plugin, metadata, tensor, v;
  bytes_field(plugin, 1, "text");    // PluginData.plugin_name
  bytes_field(metadata, 1, plugin);  // SummaryMetadata.plugin_data
  varint_field(tensor, 1, 7);        // TensorProto.dtype = DT_STRING
  bytes_field(tensor, 2, "");        // tensor_shape: a scalar
  bytes_field(tensor, 8, text);      // string_val
  bytes_field(v, 1, tag);
  bytes_field(v, 9, metadata);
  bytes_field(v, 8, tensor);
  write_event(step, summary_of(v));
}

void TensorBoardWriter::restart_at(int64_t step) {
  std::string session, what;
  varint_field(session, 1, 1);  // SessionLog.status = START
  bytes_field(what, 7, session);
  write_event(step, what);
}

}  // namespace ladder::io
