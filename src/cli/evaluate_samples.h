// Why this file exists: the generated half of a UNet's FID and KID in `ladder evaluate`: N
// images sampled by the UNet, decoded by the autoencoder, saved as uint8 and through
// InceptionV3, the ranks sharing the images (image i on rank i mod world, its noise keyed by
// i), so the features are the same bits on any world size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "eval/inception_features.h"
#include "io/feature_file.h"

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
};

// (count, 2048) features of the generated images, on every rank.
io::FeatureSet sample_features(const SampleScoring& s, Communicator& comm, eval::InceptionFeatures& network);

}  // namespace ladder
