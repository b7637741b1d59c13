// Why this file exists: InceptionV3 runs where the rank computes: on the CPU backend, or on
// the fp32 CUDA backend of the rank's GPU (its weights uploaded once). This is the one
// interface InceptionFeatures holds, so that the choice is made once, at construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/inception_v3.h"

namespace ladder::eval {

class InceptionNetwork {
 public:
  virtual ~InceptionNetwork() = default;
  // images (n, h, w, c) uint8 on the host → (n, 2048) features appended to `out`.
  virtual void features(const uint8_t* images, int n, int h, int w, int c, InceptionInput mode,
                        std::vector<float>& out) = 0;
};

// weights: a safetensors file or "random[:SEED]". gpu: on this process's current CUDA device
// (CUDA builds; a UsageError in others).
std::unique_ptr<InceptionNetwork> make_inception_network(const std::string& weights, bool gpu);

#ifdef LADDER_WITH_CUDA
std::unique_ptr<InceptionNetwork> make_cuda_inception_network(const std::string& weights);
#endif

}  // namespace ladder::eval
