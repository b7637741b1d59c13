// Why this file exists: every score of `ladder evaluate` starts from the InceptionV3 pool3
// features of a set of images that the ranks hold in strided shares (rank r: images r, r + W,
// ...). This runs the network on a rank's share, one image at a time (on the rank's CPU or
// GPU), and gathers the features of all ranks in image order, so the scores are the same bits
// on any number of ranks (of one kind of device).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "eval/inception_network.h"
#include "io/feature_file.h"
#include "model/inception_v3.h"

namespace ladder::eval {

class InceptionFeatures {
 public:
  // weights: a safetensors file with pytorch-fid's names, or "random[:SEED]" (a sanity check).
  // A missing file is a UsageError that says how to make one (launch/fid_weights.py).
  // gpu: run on this process's current CUDA device (CUDA builds), else on the CPU.
  InceptionFeatures(const std::string& weights, InceptionInput mode, bool gpu = false);

  // held (held_count, side, side, channels) uint8: this rank's images of a set of `total`.
  // A collective: every rank calls it. Returns (total, 2048) on every rank.
  io::FeatureSet gather(Communicator& comm, const uint8_t* held, int64_t held_count, int side, int channels,
                        int64_t total);

  // "pytorch-fid InceptionV3 pool3, weights W" or "..., random weights (seed S): not comparable
  // with published scores".
  const std::string& description() const { return description_; }
  InceptionInput mode() const { return mode_; }
  // What the features depend on besides the images: "random:SEED" or "xxh3:HEX" (of the weights
  // file's bytes), then "@cpu" or "@cuda" (keys the reference caches, eval/reference_set.h).
  const std::string& weights_identity() const { return weights_identity_; }

 private:
  std::unique_ptr<InceptionNetwork> network_;
  InceptionInput mode_;
  std::string description_;
  std::string weights_identity_;
};

}  // namespace ladder::eval
