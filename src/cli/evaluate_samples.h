// Why this file exists: the generated half of a UNet's FID, KID and diversity in `ladder
// evaluate`: N images sampled by the UNet and decoded by the autoencoder, saved as uint8, the
// ranks sharing the images (image i on rank i mod world, its noise keyed by i), so that what is
// computed from them is the same bits on any world size. The noise baseline decodes the
// initial noise itself (no UNet): the score any trained UNet must beat.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace ladder {

struct SampleScoring {
  std::string checkpoint;   // the UNet
  std::string autoencoder;  // decodes its latents
  std::string config;       // config file for the UNet's keys (run.device ...); flags win
  std::vector<std::string> flags;
  int64_t count = 0;        // images to generate
  int resolution = 0;       // their side in pixels
  std::string sampler = "ddim";
  int steps = 50;
  uint64_t seed = 0;
  bool ema = false;
  bool noise_baseline = false;  // decode x_T ~ N(0, 1) instead of the UNet's samples
};

struct HeldImages {
  std::vector<uint8_t> bytes;  // (held, side, side, channels): images rank, rank + world, ...
  int64_t held = 0, total = 0;
  int side = 0, channels = 0;
};

// This rank's share of the generated images.
HeldImages generate_samples(const SampleScoring& s, Communicator& comm);

}  // namespace ladder
