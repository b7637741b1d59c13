// Why this file exists: reading and writing safetensors files (see the header).
#include "io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "io/checkpoint_files.h"

namespace ladder::io {
namespace {

using nlohmann::json;

// A header larger than this is not a weights file (the format's own readers cap it at 100 MB).
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

using FilePtr = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

FilePtr open_or_fail(const std::string& path, const char* mode) {
  FilePtr file(std::fopen(path.c_str(), mode), &std::fclose);
  if (!file) throw UsageError(detail::concat(path, ": cannot open (", std::strerror(errno), ")"));
  return file;
}

}  // namespace

int64_t SafetensorEntry::numel() const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

int64_t safetensors_dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U8", 1},  {"U16", 2}, {"U32", 4},  {"U64", 8}, {"BOOL", 1}};
  auto found = sizes.find(dtype);
  return found == sizes.end() ? 0 : found->second;
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw UsageError(path + ": not a file (a safetensors file was expected)");
  const uint64_t file_size = std::filesystem::file_size(path, error);
  FilePtr file = open_or_fail(path, "rb");
  unsigned char size_bytes[8];
  if (file_size < 8 || std::fread(size_bytes, 1, 8, file.get()) != 8)
    throw UsageError(path + ": not a safetensors file (shorter than its 8-byte header size)");
  uint64_t header_size = 0;
  for (int b = 7; b >= 0; --b) header_size = (header_size << 8) | size_bytes[b];
  if (header_size > file_size - 8)
    throw UsageError(detail::concat(path, ": header size ", header_size, " is larger than the file (",
                                    file_size, " bytes): truncated, or not safetensors"));
  if (header_size > kMaxHeaderBytes || header_size < 2)
    throw UsageError(detail::concat(path, ": header size ", header_size, " is not plausible: not safetensors"));
  std::string text(static_cast<size_t>(header_size), '\0');
  if (std::fread(text.data(), 1, text.size(), file.get()) != text.size())
    throw UsageError(path + ": truncated header");
  json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object())
    throw UsageError(path + ": the header is not a JSON object: not safetensors, or damaged");

  SafetensorsHeader header;
  header.path = path;
  header.data_start = static_cast<int64_t>(8 + header_size);
  const int64_t data_size = static_cast<int64_t>(file_size) - header.data_start;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) throw UsageError(path + ": __metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) throw UsageError(path + ": __metadata__." + m.key() + " is not a string");
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const json& info = it.value();
    const std::string where = path + ": tensor '" + it.key() + "'";
    if (!info.is_object() || !info.contains("dtype") || !info["dtype"].is_string() ||
        !info.contains("shape") || !info["shape"].is_array() || !info.contains("data_offsets") ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2)
      throw UsageError(where + ": needs dtype, shape and data_offsets [begin, end]");
    SafetensorEntry entry;
    entry.name = it.key();
    entry.dtype = info["dtype"].get<std::string>();
    for (const json& d : info["shape"]) {
      if (!d.is_number_unsigned()) throw UsageError(where + ": shape holds a value that is not a size");
      entry.shape.push_back(d.get<int64_t>());
    }
    for (const json& o : info["data_offsets"])
      if (!o.is_number_unsigned()) throw UsageError(where + ": data_offsets are not byte offsets");
    entry.begin = info["data_offsets"][0].get<int64_t>();
    entry.end = info["data_offsets"][1].get<int64_t>();
    if (entry.begin > entry.end || entry.end > data_size)
      throw UsageError(detail::concat(where, ": data_offsets [", entry.begin, ", ", entry.end,
                                      ") lie outside the data section (", data_size,
                                      " bytes): truncated or damaged file"));
    const int64_t element = safetensors_dtype_bytes(entry.dtype);
    if (element > 0 && entry.numel() * element != entry.end - entry.begin)
      throw UsageError(detail::concat(where, ": ", entry.end - entry.begin, " bytes for ", entry.dtype,
                                      " of ", entry.numel(), " elements"));
    header.tensors.push_back(entry);
  }
  // The data section is tiled exactly: no overlaps, no holes.
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const SafetensorEntry& a, const SafetensorEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  int64_t cursor = 0;
  for (const SafetensorEntry& entry : header.tensors) {
    if (entry.begin < cursor)
      throw UsageError(detail::concat(path, ": tensor '", entry.name, "' overlaps the one before it (offset ",
                                      entry.begin, " < ", cursor, ")"));
    if (entry.begin > cursor)
      throw UsageError(detail::concat(path, ": a hole in the data section before tensor '", entry.name,
                                      "' (bytes ", cursor, " to ", entry.begin, ")"));
    cursor = entry.end;
  }
  if (cursor != data_size)
    throw UsageError(detail::concat(path, ": the data section has ", data_size - cursor,
                                    " bytes that no tensor covers"));
  return header;
}

std::vector<uint8_t> read_safetensors_tensor(const SafetensorsHeader& header,
                                             const SafetensorEntry& entry) {
  FilePtr file = open_or_fail(header.path, "rb");
  std::vector<uint8_t> bytes(static_cast<size_t>(entry.end - entry.begin));
  if (std::fseek(file.get(), static_cast<long>(header.data_start + entry.begin), SEEK_SET) != 0 ||
      std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    throw UsageError(header.path + ": cannot read tensor '" + entry.name + "' (truncated file)");
  return bytes;
}

void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<SafetensorToWrite>& tensors) {
  std::vector<const SafetensorToWrite*> order;
  for (const SafetensorToWrite& tensor : tensors) order.push_back(&tensor);
  std::sort(order.begin(), order.end(),
            [](const SafetensorToWrite* a, const SafetensorToWrite* b) { return a->name < b->name; });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const SafetensorToWrite* tensor : order) {
    int64_t numel = 1;
    for (int64_t d : tensor->shape) numel *= d;
    LADDER_CHECK(numel * safetensors_dtype_bytes(tensor->dtype) == static_cast<int64_t>(tensor->bytes.size()),
                 "safetensors: ", tensor->name, " has ", tensor->bytes.size(), " bytes for its shape");
    const int64_t end = offset + static_cast<int64_t>(tensor->bytes.size());
    header[tensor->name] = {{"dtype", tensor->dtype}, {"shape", tensor->shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  const uint64_t size = text.size();
  unsigned char size_bytes[8];
  for (int b = 0; b < 8; ++b) size_bytes[b] = static_cast<unsigned char>(size >> (8 * b));

  const std::string temporary = path + ".tmp";
  {
    FilePtr file = open_or_fail(temporary, "wb");
    bool ok = std::fwrite(size_bytes, 1, 8, file.get()) == 8 &&
              std::fwrite(text.data(), 1, text.size(), file.get()) == text.size();
    for (const SafetensorToWrite* tensor : order)
      ok = ok && std::fwrite(tensor->bytes.data(), 1, tensor->bytes.size(), file.get()) == tensor->bytes.size();
    ok = ok && std::fflush(file.get()) == 0 && ::fsync(fileno(file.get())) == 0;
    if (!ok) {
      const int saved = errno;
      file.reset();
      std::filesystem::remove(temporary);
      LADDER_FAIL("cannot write ", path, ": ", std::strerror(saved));
    }
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace ladder::io
