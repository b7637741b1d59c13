// Why this file exists: the HDF5 latent store (BRIEF §5), written once by `ladder encode` so
// that stage 2 never runs the autoencoder while it trains. Layout:
//   root attributes   format = "ladder-latent-store", version = 1, latent_channels,
//                     downsampling, scale_factor (1 / std of sampled latents of the top level),
//                     autoencoder (its model keys, JSON), autoencoder_checkpoint,
//                     autoencoder_step, checksum = "xxh3-64"
//   /levels/R/mu      float32 (N, R/d, R/d, latent), one image per chunk, per image resolution R
//   /levels/R/logvar  float32, the same shape (log σ², unclamped)
//   /checksums/R      uint64 (N): XXH3-64 of image i's μ bytes followed by its log σ² bytes
//   /names            N strings (the image store's)
// Training draws z = μ + σ·ε afresh at every use (as MONAI's inferer does), σ = exp(½·clamp(
// log σ², −30, 20)).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image_shard.h"

namespace ladder::io {

struct LatentStoreInfo {
  std::string path;
  int64_t count = 0;
  int latent_channels = 0;
  int downsampling = 1;
  double scale_factor = 1;
  std::string autoencoder;             // JSON object of the autoencoder's model keys
  std::string autoencoder_checkpoint;  // where it came from
  int64_t autoencoder_step = 0;
  std::vector<int> resolutions;        // image resolutions R, ascending
};

// XXH3-64 of one image's latents (μ then log σ², `floats` each).
uint64_t latent_checksum(const float* mu, const float* logvar, int64_t floats);

// Written at `path` through "<path>.tmp" (renamed by finish(); removed if never finished).
class LatentStoreWriter {
 public:
  LatentStoreWriter(const std::string& path, const LatentStoreInfo& info,
                    const std::vector<std::string>& names);
  ~LatentStoreWriter();
  LatentStoreWriter(const LatentStoreWriter&) = delete;
  LatentStoreWriter& operator=(const LatentStoreWriter&) = delete;

  // Images [first, first + count) of image resolution R: mu, logvar (count, r, r, latent).
  void write(int resolution, int64_t first, int64_t count, const float* mu, const float* logvar);
  // Sets scale_factor, writes the checksums, closes and renames.
  void finish(double scale_factor);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class LatentStoreReader {
 public:
  // Opens and validates the structure; throws Error naming the file and the fault.
  explicit LatentStoreReader(const std::string& path);
  ~LatentStoreReader();
  LatentStoreReader(const LatentStoreReader&) = delete;
  LatentStoreReader& operator=(const LatentStoreReader&) = delete;

  const LatentStoreInfo& info() const;
  // The latents of images i ≡ rank (mod world) of image resolution R, checksums verified, as
  // records the prefetcher serves: float (count, R/d, R/d, 2·latent), per pixel μ then log σ²
  // (type float32, `latents`; a flip mirrors both alike).
  // range: only among those images (a validation split).
  data::ImageShard load_shard(int resolution, int rank, int world, data::ImageRange range = {}) const;
  // Reads everything back and verifies every checksum (`ladder inspect`).
  void verify_all() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether `path` is an HDF5 file whose format attribute says latent store (for inspect).
bool is_latent_store(const std::string& path);
// The scale_factor of the latent store at `path`; 0 when there is none there (sample, export).
double scale_factor_of(const std::string& path);

}  // namespace ladder::io
