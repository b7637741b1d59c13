// Why this file exists: the HDF5 image store (BRIEF §5, format 1), written by `ladder pack`,
// validated by `ladder inspect`, read by the trainer. Layout:
//   root attributes  format = "ladder-image-store", version = 1, channels,
//                    checksum = "xxh3-64" (stores of older builds lack it: repack them)
//   /levels/R        uint8 (N, R, R, C), one image per chunk, for each level R
//   /checksums/R     uint64 (N), store_checksum() of each image of level R
//   /names           N strings, the source of each image (used in error messages)
// Also readable: a "foreign" file holding one plain uint8 (N, H, W, C) dataset (h5py's usual
// layout, no attributes), named by data.dataset; a rung whose resolution divides H by an
// integer factor is box-filtered from it on load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image_shard.h"

namespace ladder::io {

// XXH3-64 of a byte range (libxxhash; fast: the loader verifies every image it reads).
uint64_t store_checksum(const uint8_t* bytes, int64_t count);

// Integer box filter: out pixel = (sum of the factor×factor block + factor²/2) / factor².
// in (H, W, C) → out (H/factor, W/factor, C); factor must divide H and W.
void box_downsample(const uint8_t* in, int height, int width, int channels, int factor,
                    uint8_t* out);

// Writes a format-1 store at `path`: everything goes to "<path>.tmp", which finish() closes
// and renames; a writer destroyed without finish() removes the temporary file, so a failed
// pack never leaves a half store under the final name.
class ImageStoreWriter {
 public:
  // levels: the resolutions, e.g. {256, 512, 1024}, any order (stored by name).
  ImageStoreWriter(const std::string& path, int channels, std::vector<int> levels);
  ~ImageStoreWriter();
  ImageStoreWriter(const ImageStoreWriter&) = delete;
  ImageStoreWriter& operator=(const ImageStoreWriter&) = delete;

  // Appends one image at every level: pixels[l] is (levels[l], levels[l], C).
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
  bool foreign = false;      // a plain (N, H, W, C) dataset rather than format 1
  std::string dataset;       // foreign: the dataset's name
  int64_t count = 0;
  int channels = 0;
  int height = 0, width = 0;  // foreign: the stored image size
  std::vector<StoreLevel> levels;  // format 1: every stored level; foreign: its H (one level)
};

class ImageStoreReader {
 public:
  // Opens and checks the structure (format, version, dtypes, shapes, counts). `dataset`
  // empty: a format-1 store; else the foreign dataset of that name. Throws Error naming the
  // file and the problem.
  explicit ImageStoreReader(const std::string& path, const std::string& dataset = "");
  ~ImageStoreReader();
  ImageStoreReader(const ImageStoreReader&) = delete;
  ImageStoreReader& operator=(const ImageStoreReader&) = delete;

  const StoreInfo& info() const;

  // Whether images at `resolution` can be loaded (a stored level, or for a foreign dataset
  // an integer divisor of its square size).
  bool has_resolution(int resolution) const;

  // Loads images i ≡ rank (mod world) at `resolution` into one RAM buffer, verifying each
  // image's checksum (format 1); a mismatch throws naming the file, level, index and name.
  // range: only among those images (a validation split, reconstruct's first N).
  data::ImageShard load_shard(int resolution, int rank, int world, data::ImageRange range = {}) const;

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
