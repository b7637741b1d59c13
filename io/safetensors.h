// Why this file exists: the safetensors format (huggingface/safetensors), the way weights
// travel between ladder and PyTorch/MONAI. There is no C++ package for it in Debian, so it is
// written here with nlohmann-json, following the format exactly:
//   8 bytes      N, the header's length, unsigned little-endian
//   N bytes      a JSON object: {"__metadata__": {str: str}, NAME: {"dtype": "F32",
//                "shape": [..], "data_offsets": [begin, end]}, ...}, padded with spaces to
//                a multiple of 8
//   the rest     the data section: every tensor's little-endian bytes at [begin, end)
//                relative to its start, with no holes and no overlaps
// The writer puts tensors in name order (the header is nlohmann's sorted object), so equal
// tensors give equal bytes. The reader refuses anything else with one line naming the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ladder::io {

struct SafetensorEntry {
  std::string name;
  std::string dtype;           // "F32", "BF16", "F16", "F64", ...
  std::vector<int64_t> shape;  // PyTorch order
  int64_t begin = 0, end = 0;  // bytes, relative to the data section
  int64_t numel() const;
};

struct SafetensorsHeader {
  std::string path;
  std::map<std::string, std::string> metadata;  // __metadata__
  std::vector<SafetensorEntry> tensors;         // in data order
  int64_t data_start = 0;                        // 8 + N
};

// Bytes per element of a dtype name; 0 for names this build does not know.
int64_t safetensors_dtype_bytes(const std::string& dtype);

// Reads and validates the header (UsageError "<path>: <fault>": not safetensors, truncated,
// a header larger than the file, bad JSON, offsets out of the file, overlapping or leaving
// holes, a size that does not match dtype × shape).
SafetensorsHeader read_safetensors_header(const std::string& path);
// A tensor's bytes as stored.
std::vector<uint8_t> read_safetensors_tensor(const SafetensorsHeader& header,
                                             const SafetensorEntry& entry);

struct SafetensorToWrite {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // little-endian, dtype × shape
};

// Writes `path` atomically (a temporary file, fsynced, renamed).
void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<SafetensorToWrite>& tensors);

}  // namespace ladder::io
