// Why this file exists: fuzzes the decoding of user images for `ladder pack --images`
// (io/image_decode.cpp over libjpeg-turbo, io/png.cpp over libpng): the bytes are written to
// a file, recognised by their magic bytes, decoded, and put through the steps pack applies
// (channel conversion, centre crop, area downsampling). A damaged image must end in
// ladder::Error (pack then skips and lists it).
#include <algorithm>
#include <cstdint>

#include "core/check.h"
#include "fuzz_support.h"
#include "io/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ladder;
  const std::string path = fuzz::write_file(fuzz::scratch() / "image",
                                            std::string(reinterpret_cast<const char*>(data), size));
  try {
    if (io::detect_image_file(path) == io::ImageFileType::kUnknown) return 0;
    const io::Image image = io::decode_image_file(path);
    for (int channels : {1, 3, 4}) {
      const io::Image square = io::center_crop_square(io::to_channels(image, channels));
      io::area_resize(square, std::min(square.height, 5));
    }
  } catch (const Error&) {
    // the documented outcome of a damaged image
  }
  return 0;
}
