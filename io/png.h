// Why this file exists: ladder writes reconstruction grids and reads user images as PNG
// (BRIEF §5: `samples/`, `ladder pack --images`, `ladder reconstruct`). This is the one
// place that talks to libpng; everything else sees 8-bit (H, W, C) byte arrays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder::io {

// An 8-bit image, pixels row-major (H, W, C). channels: 1 gray, 3 RGB or 4 RGBA.
struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, C)
};

// The most pixels ladder decodes from one PNG or JPEG (16384 × 16384, far beyond any training
// image). The header alone says the size, so without a bound a few hundred crafted bytes
// would make ladder allocate gigabytes before the first row turns out to be missing.
constexpr uint64_t kMaxImagePixels = uint64_t{1} << 28;

// Writes an 8-bit PNG. channels must be 1 (gray), 3 (RGB) or 4 (RGBA). The file is written
// to `path + ".tmp"`, flushed to disk and renamed over `path`, so a crash never leaves a
// truncated PNG behind. Throws ladder::Error naming the path on any failure.
void write_png(const std::string& path, int height, int width, int channels,
               const uint8_t* pixels /* (H, W, C) */);

// Reads any PNG as 8 bits per channel: palettes become RGB(A), low-bit gray becomes 8-bit,
// 16-bit samples are scaled to 8, tRNS transparency becomes an alpha channel and
// gray+alpha becomes RGBA. The result has 1, 3 or 4 channels. Throws ladder::Error
// naming the path if the file is missing, not a PNG, or corrupt.
Image read_png(const std::string& path);

}  // namespace ladder::io
