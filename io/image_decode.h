// Why this file exists: `ladder pack --images` turns arbitrary user files into square 8-bit
// images of one channel count and one size. This is the decoding (PNG and JPEG, told apart
// by their magic bytes, not their names) and the pixel steps that follow it: channel
// conversion, centre crop and exact area downsampling.
#pragma once

#include <string>

#include "io/png.h"

namespace ladder::io {

enum class ImageFileType { kUnknown, kPng, kJpeg };

// The type of the file by its first bytes. Throws ladder::Error naming the path if it
// cannot be opened or read.
ImageFileType detect_image_file(const std::string& path);

// Decodes a PNG (through read_png) or a baseline/progressive JPEG into 1, 3 or 4 channels
// (gray, RGB, RGBA; CMYK JPEGs become RGB). Throws ladder::Error naming the path when the
// file is not a PNG or JPEG, or is corrupt or truncated: libjpeg's corrupt-data warnings
// count as errors, so a damaged file is rejected rather than decoded with grey blocks.
Image decode_image_file(const std::string& path);

// Converts to `channels` (1, 3 or 4) from 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA):
// gray is replicated to RGB; RGB becomes gray by the integer BT.601 luminance
// (299 R + 587 G + 114 B + 500) / 1000; alpha is dropped, or set to 255 where added.
Image to_channels(const Image& image, int channels);

// The centred S×S square, S = min(H, W), from offset ((H − S) / 2, (W − S) / 2) floored.
Image center_crop_square(const Image& image);

// Exact area (box) downsampling of a square S×S image to size×size, size ≤ S. Each output
// pixel is the area-weighted mean of the input it covers, rounded to nearest. S == size
// copies; when size divides S the result equals box_downsample by S / size bit for bit.
Image area_resize(const Image& image, int size);
// The same exact area average for float values (a volume's slices): in (side, side, C) →
// out (size, size, C), size ≤ side, each output the mean of its input area in double.
void area_resize_floats(const float* in, int side, int channels, int size, float* out);

// Writes an 8-bit baseline JPEG (channels 1 or 3) at `quality` (1..100). ladder itself only
// reads JPEGs; the tests and bench/bench_pack make their inputs with this. Throws
// ladder::Error naming the path on failure (no partial file is left).
void write_jpeg(const std::string& path, int height, int width, int channels,
                const uint8_t* pixels /* (H, W, C) */, int quality);

}  // namespace ladder::io
