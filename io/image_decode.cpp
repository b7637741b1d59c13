// Why this file exists: the decoding and pixel steps of `ladder pack --images` (see
// image_decode.h). libjpeg reports errors by longjmp: as in png.cpp, every libjpeg call that
// may jump runs in a small function whose frame holds only trivially destructible locals, the
// decompress struct is owned by a guard in the caller, and the failure becomes a
// ladder::Error naming the file once the jump is over.
#include "io/image_decode.h"

// jpeglib.h needs size_t and FILE declared before it.
#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

#include "core/check.h"
#include "io/image_store.h"

namespace ladder::io {
namespace {

struct FileCloser {
  void operator()(FILE* file) const {
    if (file != nullptr) std::fclose(file);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

FilePtr open_for_reading(const std::string& path) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) LADDER_FAIL("cannot open ", path, ": ", std::strerror(errno));
  return file;
}

std::vector<uint8_t> read_whole_file(const std::string& path) {
  FilePtr file = open_for_reading(path);
  std::vector<uint8_t> bytes;
  uint8_t buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, file.get())) > 0)
    bytes.insert(bytes.end(), buffer, buffer + got);
  if (std::ferror(file.get())) LADDER_FAIL("cannot read ", path, ": ", std::strerror(errno));
  return bytes;
}

// ---- libjpeg

// libjpeg's error manager plus where to jump and what went wrong. `pub` comes first so that
// cinfo->err (a jpeg_error_mgr*) can be cast back to this.
struct JpegErrorSink {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_jpeg_error(j_common_ptr cinfo) {
  auto* sink = reinterpret_cast<JpegErrorSink*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, sink->message);
  std::longjmp(sink->jump, 1);
}

// msg_level < 0 is a warning, which for libjpeg almost always means corrupt data it would
// paper over (a truncated file gets a fake end-of-image and grey blocks): we stop there.
// Only warnings about metadata that do not touch the pixels are let through. Levels ≥ 0
// are trace messages, ignored.
void on_jpeg_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;
  const int code = cinfo->err->msg_code;
  if (code == JWRN_JFIF_MAJOR || code == JWRN_BOGUS_ICC) return;
  on_jpeg_error(cinfo);
}

void on_jpeg_output(j_common_ptr) {}  // never print from the library

// Owns a decompress struct; pinned in place because the struct keeps &sink.
struct JpegDecodeGuard {
  JpegErrorSink sink{};
  jpeg_decompress_struct cinfo{};

  JpegDecodeGuard() {
    cinfo.err = jpeg_std_error(&sink.pub);
    sink.pub.error_exit = on_jpeg_error;
    sink.pub.emit_message = on_jpeg_message;
    sink.pub.output_message = on_jpeg_output;
    std::snprintf(sink.message, sizeof sink.message, "unknown libjpeg error");
  }
  // Safe on a struct whose creation failed or never happened: cinfo was zeroed, and
  // jpeg_destroy does nothing while cinfo.mem is null.
  ~JpegDecodeGuard() { jpeg_destroy_decompress(&cinfo); }
  JpegDecodeGuard(const JpegDecodeGuard&) = delete;
  JpegDecodeGuard& operator=(const JpegDecodeGuard&) = delete;
};

struct JpegHeader {
  int height = 0, width = 0, channels = 0;
  bool cmyk = false;           // output is CMYK (4 samples) and needs converting to RGB
  bool adobe_inverted = false;  // CMYK as Adobe writes it: samples stored inverted
};

// Creates the struct, reads the header, picks the output colour space and starts the
// decompression (which for progressive files reads every scan). May longjmp; returns
// false then.
bool jpeg_begin(jpeg_decompress_struct* cinfo, JpegErrorSink* sink, const uint8_t* data,
                unsigned long size, JpegHeader* header) {
  if (setjmp(sink->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, size);
  jpeg_read_header(cinfo, TRUE);
  header->height = static_cast<int>(cinfo->image_height);
  header->width = static_cast<int>(cinfo->image_width);
  // Before jpeg_start_decompress, which allocates whole-image buffers for progressive files.
  if (uint64_t(cinfo->image_height) * cinfo->image_width > kMaxImagePixels) return true;
  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo->out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo->out_color_space = JCS_CMYK;  // libjpeg converts YCCK → CMYK, not → RGB
      break;
    default:
      cinfo->out_color_space = JCS_RGB;
      break;
  }
  jpeg_start_decompress(cinfo);
  header->height = static_cast<int>(cinfo->output_height);
  header->width = static_cast<int>(cinfo->output_width);
  header->channels = cinfo->output_components;
  header->cmyk = cinfo->out_color_space == JCS_CMYK;
  header->adobe_inverted = cinfo->saw_Adobe_marker != 0;
  return true;
}

// Decodes every scanline into pixels (H, W, channels), growing it row by row (memory follows
// the data actually there, not the header's claim), and reads to the end-of-image marker, so
// that trailing corruption is noticed too. May longjmp; returns false then.
bool jpeg_decode_rows(jpeg_decompress_struct* cinfo, JpegErrorSink* sink,
                      std::vector<uint8_t>* pixels /* (H, W, C) */, size_t stride) {
  if (setjmp(sink->jump)) return false;
  while (cinfo->output_scanline < cinfo->output_height) {
    pixels->resize((static_cast<size_t>(cinfo->output_scanline) + 1) * stride);
    JSAMPROW row = pixels->data() + static_cast<size_t>(cinfo->output_scanline) * stride;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      std::snprintf(sink->message, sizeof sink->message, "decoder returned no scanline");
      return false;
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

Image decode_jpeg(const std::string& path) {
  const std::vector<uint8_t> bytes = read_whole_file(path);
  JpegDecodeGuard guard;
  JpegHeader header;
  if (!jpeg_begin(&guard.cinfo, &guard.sink, bytes.data(), static_cast<unsigned long>(bytes.size()),
                  &header))
    LADDER_FAIL("corrupt JPEG ", path, ": ", guard.sink.message);
  if (header.height <= 0 || header.width <= 0 ||
      uint64_t(header.height) * uint64_t(header.width) > kMaxImagePixels)
    LADDER_FAIL("reading JPEG ", path, ": unsupported size ", header.height, "x", header.width,
                " (at most ", kMaxImagePixels, " pixels)");
  if (header.channels != 1 && header.channels != 3 && !(header.cmyk && header.channels == 4))
    LADDER_FAIL("reading JPEG ", path, ": unsupported layout (", header.channels, " channels)");

  Image image;
  image.height = header.height;
  image.width = header.width;
  image.channels = header.channels;
  if (!jpeg_decode_rows(&guard.cinfo, &guard.sink, &image.pixels,
                        size_t(header.width) * size_t(header.channels)))
    LADDER_FAIL("corrupt JPEG ", path, ": ", guard.sink.message);
  if (!header.cmyk) return image;

  // CMYK → RGB: R = (1 − C)(1 − K), ... Adobe stores the samples inverted (255 = no ink).
  Image rgb;
  rgb.height = image.height;
  rgb.width = image.width;
  rgb.channels = 3;
  rgb.pixels.resize(size_t(image.height) * size_t(image.width) * 3);  // (H, W, 3)
  const size_t n = size_t(image.height) * size_t(image.width);
  for (size_t p = 0; p < n; ++p) {
    const uint8_t* in = &image.pixels[p * 4];
    uint32_t k = in[3];
    if (!header.adobe_inverted) k = 255 - k;
    for (int c = 0; c < 3; ++c) {
      const uint32_t ink_free = header.adobe_inverted ? in[c] : 255u - in[c];
      rgb.pixels[p * 3 + c] = static_cast<uint8_t>((ink_free * k + 127) / 255);
    }
  }
  return rgb;
}

// Owns a compress struct; pinned in place because the struct keeps &sink.
struct JpegEncodeGuard {
  JpegErrorSink sink{};
  jpeg_compress_struct cinfo{};

  JpegEncodeGuard() {
    cinfo.err = jpeg_std_error(&sink.pub);
    sink.pub.error_exit = on_jpeg_error;
    sink.pub.output_message = on_jpeg_output;
    std::snprintf(sink.message, sizeof sink.message, "unknown libjpeg error");
  }
  ~JpegEncodeGuard() { jpeg_destroy_compress(&cinfo); }  // no-op while cinfo.mem is null
  JpegEncodeGuard(const JpegEncodeGuard&) = delete;
  JpegEncodeGuard& operator=(const JpegEncodeGuard&) = delete;
};

// The libjpeg calls of one write. May longjmp; returns false then.
bool jpeg_encode(jpeg_compress_struct* cinfo, JpegErrorSink* sink, FILE* file, int height,
                 int width, int channels, const uint8_t* pixels /* (H, W, C) */, int quality) {
  if (setjmp(sink->jump)) return false;
  jpeg_create_compress(cinfo);
  jpeg_stdio_dest(cinfo, file);
  cinfo->image_height = static_cast<JDIMENSION>(height);
  cinfo->image_width = static_cast<JDIMENSION>(width);
  cinfo->input_components = channels;
  cinfo->in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  const size_t stride = size_t(width) * size_t(channels);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels + size_t(cinfo->next_scanline) * stride);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

// ---- area resize

// For each output index o of a 1-D resize from `in` to `out` samples: the first input
// sample it covers and the overlap of each covered input sample, in units where an input
// sample is `out` long and an output sample `in` long (so the weights of o sum to `in`).
struct AreaWeights {
  std::vector<int> first;       // (out)
  std::vector<int> offset;      // (out + 1) into weight
  std::vector<uint32_t> weight;
};

AreaWeights area_weights(int in, int out) {
  AreaWeights w;
  w.first.resize(size_t(out));
  w.offset.resize(size_t(out) + 1);
  for (int o = 0; o < out; ++o) {
    const int64_t lo = int64_t(o) * in, hi = int64_t(o + 1) * in;  // output span
    const int i0 = static_cast<int>(lo / out), i1 = static_cast<int>((hi - 1) / out);
    w.first[size_t(o)] = i0;
    w.offset[size_t(o)] = static_cast<int>(w.weight.size());
    for (int i = i0; i <= i1; ++i) {
      const int64_t a = std::max(lo, int64_t(i) * out), b = std::min(hi, int64_t(i + 1) * out);
      w.weight.push_back(static_cast<uint32_t>(b - a));
    }
  }
  w.offset[size_t(out)] = static_cast<int>(w.weight.size());
  return w;
}

}  // namespace

ImageFileType detect_image_file(const std::string& path) {
  FilePtr file = open_for_reading(path);
  uint8_t magic[8] = {};
  const size_t got = std::fread(magic, 1, sizeof magic, file.get());
  if (std::ferror(file.get())) LADDER_FAIL("cannot read ", path, ": ", std::strerror(errno));
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (got == 8 && std::memcmp(magic, kPng, 8) == 0) return ImageFileType::kPng;
  if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff)
    return ImageFileType::kJpeg;
  return ImageFileType::kUnknown;
}

Image decode_image_file(const std::string& path) {
  switch (detect_image_file(path)) {
    case ImageFileType::kPng:
      return read_png(path);
    case ImageFileType::kJpeg:
      return decode_jpeg(path);
    case ImageFileType::kUnknown:
      break;
  }
  LADDER_FAIL("not a PNG or JPEG file: ", path);
}

Image to_channels(const Image& image, int channels) {
  LADDER_CHECK(channels == 1 || channels == 3 || channels == 4,
               "to_channels: target must be 1, 3 or 4 channels, got ", channels);
  const int from = image.channels;
  LADDER_CHECK(from >= 1 && from <= 4, "to_channels: source has ", from, " channels");
  const size_t n = size_t(image.height) * size_t(image.width);
  LADDER_CHECK(image.pixels.size() == n * size_t(from), "to_channels: ", image.pixels.size(),
               " bytes for a ", image.height, "x", image.width, "x", from, " image");
  if (from == channels) return image;

  Image out;
  out.height = image.height;
  out.width = image.width;
  out.channels = channels;
  out.pixels.resize(n * size_t(channels));  // (H, W, channels)
  const bool from_color = from >= 3;
  const bool from_alpha = from == 2 || from == 4;
  for (size_t p = 0; p < n; ++p) {
    const uint8_t* in = &image.pixels[p * size_t(from)];
    uint8_t* o = &out.pixels[p * size_t(channels)];
    uint8_t r, g, b;
    if (from_color) {
      r = in[0], g = in[1], b = in[2];
    } else {
      r = g = b = in[0];
    }
    const uint8_t alpha = from_alpha ? in[from - 1] : 255;
    if (channels == 1) {
      o[0] = from_color ? static_cast<uint8_t>((299u * r + 587u * g + 114u * b + 500u) / 1000u) : r;
    } else {
      o[0] = r, o[1] = g, o[2] = b;
      if (channels == 4) o[3] = alpha;
    }
  }
  return out;
}

Image center_crop_square(const Image& image) {
  const int side = std::min(image.height, image.width);
  if (side == image.height && side == image.width) return image;
  const int y0 = (image.height - side) / 2, x0 = (image.width - side) / 2;
  const size_t c = size_t(image.channels);
  Image out;
  out.height = out.width = side;
  out.channels = image.channels;
  out.pixels.resize(size_t(side) * size_t(side) * c);  // (S, S, C)
  for (int y = 0; y < side; ++y)
    std::memcpy(&out.pixels[size_t(y) * size_t(side) * c],
                &image.pixels[(size_t(y0 + y) * size_t(image.width) + size_t(x0)) * c],
                size_t(side) * c);
  return out;
}

void area_resize_floats(const float* in, int side, int channels, int size, float* out) {
  LADDER_CHECK(size >= 1 && size <= side, "area_resize_floats: cannot resize ", side, "x", side, " to ", size, "x",
               size);
  const AreaWeights w = area_weights(side, size);
  const size_t c = size_t(channels);
  std::vector<double> rows(size_t(side) * size_t(size) * c, 0.0);  // (side, size, C): rows resized
  for (int y = 0; y < side; ++y)
    for (int o = 0; o < size; ++o)
      for (int k = w.offset[size_t(o)]; k < w.offset[size_t(o) + 1]; ++k) {
        const int x = w.first[size_t(o)] + (k - w.offset[size_t(o)]);
        for (size_t ch = 0; ch < c; ++ch)
          rows[(size_t(y) * size_t(size) + size_t(o)) * c + ch] +=
              double(w.weight[size_t(k)]) * in[(size_t(y) * size_t(side) + size_t(x)) * c + ch];
      }
  const double area = double(side) * double(side);
  for (int oy = 0; oy < size; ++oy)
    for (int ox = 0; ox < size; ++ox)
      for (size_t ch = 0; ch < c; ++ch) {
        double sum = 0;
        for (int k = w.offset[size_t(oy)]; k < w.offset[size_t(oy) + 1]; ++k) {
          const int y = w.first[size_t(oy)] + (k - w.offset[size_t(oy)]);
          sum += double(w.weight[size_t(k)]) * rows[(size_t(y) * size_t(size) + size_t(ox)) * c + ch];
        }
        out[(size_t(oy) * size_t(size) + size_t(ox)) * c + ch] = static_cast<float>(sum / area);
      }
}

Image area_resize(const Image& image, int size) {
  const int in = image.height;
  LADDER_CHECK(image.height == image.width, "area_resize: image is not square (", image.height,
               "x", image.width, ")");
  LADDER_CHECK(size >= 1 && size <= in, "area_resize: cannot resize ", in, "x", in, " to ", size,
               "x", size);
  if (size == in) return image;
  const int channels = image.channels;
  Image out;
  out.height = out.width = size;
  out.channels = channels;
  out.pixels.resize(size_t(size) * size_t(size) * size_t(channels));  // (size, size, C)
  if (in % size == 0) {
    box_downsample(image.pixels.data(), in, in, channels, in / size, out.pixels.data());
    return out;
  }

  // Separable and exact: rows first into integer sums (each ≤ in × 255), then columns into
  // 64-bit sums (≤ in² × 255), divided once by the whole area in² with rounding to nearest.
  const AreaWeights w = area_weights(in, size);
  std::vector<uint32_t> rows(size_t(in) * size_t(size) * size_t(channels));  // (in, size, C)
  for (int y = 0; y < in; ++y) {
    const uint8_t* src = &image.pixels[size_t(y) * size_t(in) * size_t(channels)];
    uint32_t* dst = &rows[size_t(y) * size_t(size) * size_t(channels)];
    for (int o = 0; o < size; ++o)
      for (int c = 0; c < channels; ++c) {
        uint32_t sum = 0;
        for (int k = w.offset[size_t(o)]; k < w.offset[size_t(o) + 1]; ++k) {
          const int x = w.first[size_t(o)] + (k - w.offset[size_t(o)]);
          sum += w.weight[size_t(k)] * src[size_t(x) * size_t(channels) + size_t(c)];
        }
        dst[size_t(o) * size_t(channels) + size_t(c)] = sum;
      }
  }
  const uint64_t area = uint64_t(in) * uint64_t(in);
  const size_t row_len = size_t(size) * size_t(channels);
  std::vector<uint64_t> acc(row_len);
  for (int o = 0; o < size; ++o) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int k = w.offset[size_t(o)]; k < w.offset[size_t(o) + 1]; ++k) {
      const int y = w.first[size_t(o)] + (k - w.offset[size_t(o)]);
      const uint64_t weight = w.weight[size_t(k)];
      const uint32_t* src = &rows[size_t(y) * row_len];
      for (size_t i = 0; i < row_len; ++i) acc[i] += weight * src[i];
    }
    uint8_t* dst = &out.pixels[size_t(o) * row_len];
    for (size_t i = 0; i < row_len; ++i) dst[i] = static_cast<uint8_t>((acc[i] + area / 2) / area);
  }
  return out;
}

void write_jpeg(const std::string& path, int height, int width, int channels,
                const uint8_t* pixels /* (H, W, C) */, int quality) {
  LADDER_CHECK(channels == 1 || channels == 3, "writing JPEG ", path,
               ": channels must be 1 or 3, got ", channels);
  LADDER_CHECK(height > 0 && width > 0 && pixels != nullptr, "writing JPEG ", path,
               ": empty image ", height, "x", width);
  LADDER_CHECK(quality >= 1 && quality <= 100, "writing JPEG ", path, ": quality ", quality);
  std::string error;
  {
    FilePtr file(std::fopen(path.c_str(), "wb"));
    if (!file) LADDER_FAIL("writing JPEG ", path, ": ", std::strerror(errno));
    JpegEncodeGuard guard;
    if (!jpeg_encode(&guard.cinfo, &guard.sink, file.get(), height, width, channels, pixels,
                     quality))
      error = guard.sink.message;
    else if (std::fflush(file.get()) != 0)
      error = std::strerror(errno);
    if (std::fclose(file.release()) != 0 && error.empty()) error = std::strerror(errno);
  }
  if (!error.empty()) {
    std::remove(path.c_str());
    LADDER_FAIL("writing JPEG ", path, ": ", error);
  }
}

}  // namespace ladder::io
