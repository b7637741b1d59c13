// Why this file exists: libpng behind RAII. libpng reports errors by longjmp; here every
// call that may jump runs in a small function whose frame holds only trivially destructible
// locals, and its failure becomes a ladder::Error naming the file once the jump is over.
// The structs and the FILE* are owned by guards, so every path (success, libpng error, C++
// exception) releases them.
#include "io/png.h"

#include <png.h>
#include <unistd.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/check.h"

namespace ladder::io {
namespace {

// Where the error callback leaves libpng's message before it jumps back.
struct ErrorSink {
  char message[256] = "unknown libpng error";
};

[[noreturn]] void on_png_error(png_structp png, png_const_charp message) {
  auto* sink = static_cast<ErrorSink*>(png_get_error_ptr(png));
  if (sink != nullptr) std::snprintf(sink->message, sizeof sink->message, "%s", message);
  png_longjmp(png, 1);
}

// Warnings (odd colour profiles, unknown chunks) do not stop a read or a write.
void on_png_warning(png_structp, png_const_charp) {}

struct FileCloser {
  void operator()(FILE* file) const {
    if (file != nullptr) std::fclose(file);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// Owns a write struct and its info struct; pinned in place because libpng keeps &sink.
struct PngWriteGuard {
  ErrorSink sink;
  png_structp png = nullptr;
  png_infop info = nullptr;

  PngWriteGuard() {
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_error, on_png_warning);
    if (png != nullptr) info = png_create_info_struct(png);
  }
  ~PngWriteGuard() { png_destroy_write_struct(&png, &info); }  // null-safe
  PngWriteGuard(const PngWriteGuard&) = delete;
  PngWriteGuard& operator=(const PngWriteGuard&) = delete;
};

struct PngReadGuard {
  ErrorSink sink;
  png_structp png = nullptr;
  png_infop info = nullptr;

  PngReadGuard() {
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_error, on_png_warning);
    if (png != nullptr) info = png_create_info_struct(png);
  }
  ~PngReadGuard() { png_destroy_read_struct(&png, &info, nullptr); }  // null-safe
  PngReadGuard(const PngReadGuard&) = delete;
  PngReadGuard& operator=(const PngReadGuard&) = delete;
};

// The libpng calls of one write. May longjmp back to the setjmp below; returns false then.
bool encode(png_structp png, png_infop info, FILE* file, int height, int width, int channels,
            const uint8_t* pixels /* (H, W, C) */) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  const int color_type = channels == 1   ? PNG_COLOR_TYPE_GRAY
                         : channels == 3 ? PNG_COLOR_TYPE_RGB
                                         : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const size_t stride = static_cast<size_t>(width) * static_cast<size_t>(channels);
  for (int y = 0; y < height; ++y) png_write_row(png, pixels + static_cast<size_t>(y) * stride);
  png_write_end(png, nullptr);
  return true;
}

struct Header {
  png_uint_32 height = 0, width = 0;
  int channels = 0, bit_depth = 0, passes = 1;
};

// Reads the header (the 8 signature bytes are already consumed) and sets up the transforms
// to 8-bit gray, RGB or RGBA. May longjmp; returns false then.
bool read_header(png_structp png, png_infop info, FILE* file, Header* header) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const bool has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  png_set_expand(png);    // palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha
  png_set_scale_16(png);  // 16 -> 8 bit, rounded
  if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA || (color_type == PNG_COLOR_TYPE_GRAY && has_trns))
    png_set_gray_to_rgb(png);  // gray + alpha -> RGBA
  header->passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  header->height = png_get_image_height(png, info);
  header->width = png_get_image_width(png, info);
  header->channels = png_get_channels(png, info);
  header->bit_depth = png_get_bit_depth(png, info);
  return true;
}

// Decodes every row (every pass when interlaced) into pixels. May longjmp; returns false then.
bool read_rows(png_structp png, png_infop info, uint8_t* pixels /* (H, W, C) */, png_uint_32 height,
               size_t stride, int passes) {
  if (setjmp(png_jmpbuf(png))) return false;
  for (int pass = 0; pass < passes; ++pass)
    for (png_uint_32 y = 0; y < height; ++y) png_read_row(png, pixels + y * stride, nullptr);
  png_read_end(png, info);
  return true;
}

}  // namespace

void write_png(const std::string& path, int height, int width, int channels,
               const uint8_t* pixels /* (H, W, C) */) {
  LADDER_CHECK(channels == 1 || channels == 3 || channels == 4, "writing PNG ", path,
               ": channels must be 1, 3 or 4, got ", channels);
  LADDER_CHECK(height > 0 && width > 0, "writing PNG ", path, ": empty image ", height, "x", width);
  LADDER_CHECK(pixels != nullptr, "writing PNG ", path, ": no pixels");

  const std::string tmp = path + ".tmp";
  {
    FilePtr file(std::fopen(tmp.c_str(), "wb"));
    if (!file)
      LADDER_FAIL("writing PNG ", path, ": cannot create ", tmp, ": ", std::strerror(errno));
    PngWriteGuard guard;
    if (guard.png == nullptr || guard.info == nullptr) {
      file.reset();
      std::remove(tmp.c_str());
      LADDER_FAIL("writing PNG ", path, ": libpng could not allocate its structs");
    }
    std::string error;
    if (!encode(guard.png, guard.info, file.get(), height, width, channels, pixels))
      error = guard.sink.message;
    else if (std::fflush(file.get()) != 0 || ::fsync(::fileno(file.get())) != 0)
      error = std::strerror(errno);
    if (std::fclose(file.release()) != 0 && error.empty()) error = std::strerror(errno);
    if (!error.empty()) {
      std::remove(tmp.c_str());
      LADDER_FAIL("writing PNG ", path, ": ", error);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    LADDER_FAIL("cannot rename ", tmp, " to ", path, ": ", reason);
  }
}

Image read_png(const std::string& path) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) LADDER_FAIL("cannot open PNG ", path, ": ", std::strerror(errno));

  png_byte signature[8] = {};
  if (std::fread(signature, 1, sizeof signature, file.get()) != sizeof signature ||
      png_sig_cmp(signature, 0, sizeof signature) != 0)
    LADDER_FAIL("not a PNG file: ", path);

  PngReadGuard guard;
  if (guard.png == nullptr || guard.info == nullptr)
    LADDER_FAIL("reading PNG ", path, ": libpng could not allocate its structs");

  Header header;
  if (!read_header(guard.png, guard.info, file.get(), &header))
    LADDER_FAIL("corrupt PNG ", path, ": ", guard.sink.message);
  if (header.bit_depth != 8 ||
      (header.channels != 1 && header.channels != 3 && header.channels != 4))
    LADDER_FAIL("reading PNG ", path, ": unsupported layout after expansion (", header.channels,
                " channels, ", header.bit_depth, " bits)");
  // Guard the allocation against absurd headers (kMaxImagePixels).
  const uint64_t bytes = static_cast<uint64_t>(header.height) * header.width * header.channels;
  if (header.height == 0 || header.width == 0 ||
      static_cast<uint64_t>(header.height) * header.width > kMaxImagePixels)
    LADDER_FAIL("reading PNG ", path, ": unsupported size ", header.height, "x", header.width,
                " (at most ", kMaxImagePixels, " pixels)");

  Image image;
  image.height = static_cast<int>(header.height);
  image.width = static_cast<int>(header.width);
  image.channels = header.channels;
  image.pixels.resize(static_cast<size_t>(bytes));
  const size_t stride = static_cast<size_t>(header.width) * header.channels;
  if (!read_rows(guard.png, guard.info, image.pixels.data(), header.height, stride, header.passes))
    LADDER_FAIL("corrupt PNG ", path, ": ", guard.sink.message);
  return image;
}

}  // namespace ladder::io
