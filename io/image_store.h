// Why this file exists: the HDF5 image store (BRIEF §5, formats 1 and 2), written by `ladder
// pack`, validated by `ladder inspect`, read by the trainer. Layout:
//   root attributes  format = "ladder-image-store", version = 1 (uint8) or 2, channels,
//                    checksum = "xxh3-64" (stores of older builds lack it: repack them);
//                    version 2: pixel_type = "uint8" | "uint16" | "float16" | "float32", and
//                    where known the source's intensity range intensity_low, intensity_high
//                    (doubles) and intensity_unit (e.g. "HU")
//   /levels/R        (N, R, R, C) of the pixel type, one image per chunk, for each level R
//   /checksums/R     uint64 (N), store_checksum() of each image's stored bytes at level R
//   /names           N strings, the source of each image (used in error messages)
// Also readable: a "foreign" file holding one plain (N, H, W, C) or (N, C, H, W) dataset of
// uint8, uint16, float16 or float32 (as h5py users write them, no attributes), named by
// data.dataset; a rung whose resolution divides H by an integer factor is box-filtered from it
// on load.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/image_shard.h"
#include "data/intensity.h"
#include "data/pixel_type.h"

namespace ladder::io {

// XXH3-64 of a byte range (libxxhash; fast: the loader verifies every image it reads).
uint64_t store_checksum(const uint8_t* bytes, int64_t count);

// Integer box filter: out pixel = (sum of the factor×factor block + factor²/2) / factor².
// in (H, W, C) → out (H/factor, W/factor, C); factor must divide H and W.
void box_downsample(const uint8_t* in, int height, int width, int channels, int factor,
                    uint8_t* out);
// The same for values of any pixel type: uint8 and uint16 as above (rounded integer mean),
// float16 and float32 the mean in double, rounded to the type.
void box_downsample_values(data::PixelType type, const uint8_t* in, int height, int width, int channels, int factor,
                           uint8_t* out);

// A store's source intensity range, where known (e.g. a CT volume's, in HU).
struct StatedIntensity {
  double low = 0, high = 0;
  std::string unit;
};

// Writes a format-1 store at `path`: everything goes to "<path>.tmp", which finish() closes
// and renames; a writer destroyed without finish() removes the temporary file, so a failed
// pack never leaves a half store under the final name.
class ImageStoreWriter {
 public:
  // levels: the resolutions, e.g. {256, 512, 1024}, any order (stored by name). A uint8 store
  // without a stated range is format 1; any other, format 2.
  ImageStoreWriter(const std::string& path, int channels, std::vector<int> levels,
                   data::PixelType type = data::PixelType::kUint8, std::optional<StatedIntensity> stated = {});
  ~ImageStoreWriter();
  ImageStoreWriter(const ImageStoreWriter&) = delete;
  ImageStoreWriter& operator=(const ImageStoreWriter&) = delete;

  // Appends one image at every level: pixels[l] is (levels[l], levels[l], C) values of the
  // store's pixel type (native byte order).
  void append(const std::vector<const uint8_t*>& pixels, const std::string& name);
  int64_t count() const;
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct StoreLevel {
  int resolution = 0;
  int64_t bytes = 0;        // N × R × R × C
  uint64_t checksum = 0;    // store_checksum over the level's per-image checksums
};

struct StoreInfo {
  std::string path;
  bool foreign = false;      // a plain dataset rather than a ladder store
  bool channels_first = false;  // foreign: (N, C, H, W), transposed to (N, H, W, C) on load
  int version = 1;           // ladder stores: 1 or 2
  data::PixelType type = data::PixelType::kUint8;
  std::optional<StatedIntensity> stated;  // version 2, where the source's range is known
  std::string dataset;       // foreign: the dataset's name
  int64_t count = 0;
  int channels = 0;
  int height = 0, width = 0;  // foreign: the stored image size
  std::vector<StoreLevel> levels;  // format 1: every stored level; foreign: its H (one level)
};

class ImageStoreReader {
 public:
  // Opens and checks the structure (format, version, dtypes, shapes, counts). `dataset`
  // empty: a ladder store; else the foreign dataset of that name, in `layout` (nhwc, nchw,
  // or auto: whichever the shape allows; UsageError naming data.layout when both or neither
  // do). Throws Error naming the file and the problem.
  explicit ImageStoreReader(const std::string& path, const std::string& dataset = "",
                            const std::string& layout = "auto");
  ~ImageStoreReader();
  ImageStoreReader(const ImageStoreReader&) = delete;
  ImageStoreReader& operator=(const ImageStoreReader&) = delete;

  const StoreInfo& info() const;

  // Whether images at `resolution` can be loaded (a stored level, or for a foreign dataset
  // an integer divisor of its square size).
  bool has_resolution(int resolution) const;

  // Loads images i ≡ rank (mod world) at `resolution` into one RAM buffer in the stored pixel
  // type, verifying each image's checksum (ladder stores); a mismatch throws naming the file,
  // level, index and name. range: only among those images (a validation split, reconstruct's
  // first N). The shard's intensity transform is `intensity` (data.intensity) for this store.
  data::ImageShard load_shard(int resolution, int rank, int world, data::ImageRange range = {},
                              data::IntensitySpec intensity = {}) const;
  // The intensity transform `intensity` resolves to for this store (data/intensity.h).
  data::IntensityTransform intensity_transform(data::IntensitySpec intensity) const;

  // Reads every level in full, recomputing all checksums (`ladder inspect`); fills the
  // levels' checksums. Throws on the first problem.
  void verify_all();

  // The source name of image `index` ("?" when unreadable; foreign files: "image N").
  std::string name(int64_t index) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ladder::io
