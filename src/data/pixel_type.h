// Why this file exists: the types an image store's pixels may have (BRIEF §5, store format 2):
// uint8 as photos and textures come, uint16 as CT and MRI slices and 16-bit PNG/TIFF come,
// float16 and float32 as scientific data comes. Shards keep the stored type in RAM (2 bytes
// a value for uint16, not 4), and data/intensity.h turns values into model inputs.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "core/fp16.h"

namespace ladder::data {

enum class PixelType { kUint8, kUint16, kFloat16, kFloat32 };

inline int pixel_type_bytes(PixelType type) {
  switch (type) {
    case PixelType::kUint8: return 1;
    case PixelType::kUint16:
    case PixelType::kFloat16: return 2;
    case PixelType::kFloat32: return 4;
  }
  return 1;
}

inline const char* pixel_type_name(PixelType type) {
  switch (type) {
    case PixelType::kUint8: return "uint8";
    case PixelType::kUint16: return "uint16";
    case PixelType::kFloat16: return "float16";
    case PixelType::kFloat32: return "float32";
  }
  return "?";
}

// false when `name` is none of the four.
inline bool parse_pixel_type(const std::string& name, PixelType& type) {
  for (PixelType t : {PixelType::kUint8, PixelType::kUint16, PixelType::kFloat16, PixelType::kFloat32})
    if (name == pixel_type_name(t)) {
      type = t;
      return true;
    }
  return false;
}

inline bool is_integer(PixelType type) { return type == PixelType::kUint8 || type == PixelType::kUint16; }

// Value `index` of raw values of `type` (native byte order), as a float (exact for all four).
inline float pixel_value(PixelType type, const uint8_t* raw, int64_t index) {
  switch (type) {
    case PixelType::kUint8: return static_cast<float>(raw[index]);
    case PixelType::kUint16: {
      uint16_t v;
      std::memcpy(&v, raw + 2 * index, 2);
      return static_cast<float>(v);
    }
    case PixelType::kFloat16: {
      uint16_t bits;
      std::memcpy(&bits, raw + 2 * index, 2);
      return half_bits_to_float(bits);
    }
    case PixelType::kFloat32: {
      float v;
      std::memcpy(&v, raw + 4 * index, 4);
      return v;
    }
  }
  return 0;
}

}  // namespace ladder::data
