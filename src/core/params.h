// Why this file exists: all trainable parameters live in one flat fp32 buffer (BRIEF §3),
// described by a named table (name, shape, offset). Layers keep views (ParamView) into it;
// the same table drives initialisation, the optimizer, sharding, checkpoints and export.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/host_buffer.h"

namespace ladder {

enum class ParamInit {
  kFanInUniform,  // U(−1/√fan_in, 1/√fan_in): PyTorch's default for conv and linear
  kOnes,          // norm scales
  kZeros,         // norm shifts
  kNormalSmall,   // N(0, 0.02²): MONAI's normal_init of the PatchDiscriminator's conv weights
  kOnePlusNormalSmall,  // N(1, 0.02²): normal_init of its BatchNorm scales
};
constexpr double kNormalInitStd = 0.02;

struct ParamEntry {
  std::string name;            // MONAI parameter name, e.g. "encoder.blocks.1.conv1.conv.weight"
  std::vector<int64_t> shape;  // as stored: conv (Cout, K, K, Cin), linear (Cout, Cin), vectors (C)
  int64_t offset = 0;          // first element in the flat buffer
  int64_t numel = 0;
  ParamInit init = ParamInit::kZeros;
  int64_t fan_in = 1;
  bool decay = false;  // AdamW weight decay applies (weights of convs and linears only)
};

class ParamStore;

// A layer's handle on one parameter: valid once the store is allocated.
class ParamView {
 public:
  ParamView() = default;
  ParamView(ParamStore* store, int index) : store_(store), index_(index) {}
  // False for a default-constructed view: no parameter (a convolution without bias).
  bool valid() const { return store_ != nullptr; }
  float* value() const;
  float* grad() const;
  const ParamEntry& entry() const;

 private:
  ParamStore* store_ = nullptr;
  int index_ = -1;
};

class ParamStore {
 public:
  // Registration phase: layers add their parameters in model order.
  ParamView add(std::string name, std::vector<int64_t> shape, ParamInit init, int64_t fan_in,
                bool decay);
  // Allocates values and gradients (zeroed), `padded_count` ≥ count() elements (the padding
  // lets ZeRO shards split evenly; 0: no padding). No add() after this.
  void allocate(int64_t padded_count = 0);
  // Values only, for a frozen network (LPIPS): grads() is null, and so is every view's grad().
  void allocate_frozen();
  bool frozen() const { return allocated() && grads_.size() == 0 && count_ > 0; }
  bool allocated() const { return values_.size() > 0 || count_ == 0; }

  // Deterministic initialisation: each parameter draws from its own stream (seed, index),
  // so the values do not depend on allocation order or world size.
  void initialize(uint64_t seed);
  void zero_grads();

  const std::vector<ParamEntry>& entries() const { return entries_; }
  int64_t count() const { return count_; }           // real parameters
  int64_t padded_count() const { return values_.size(); }  // flat buffer length
  float* values() { return values_.data(); }
  const float* values() const { return values_.data(); }
  float* grads() { return grads_.size() > 0 ? grads_.data() : nullptr; }
  const float* grads() const { return grads_.size() > 0 ? grads_.data() : nullptr; }
  const ParamEntry& entry(int index) const { return entries_.at(index); }

 private:
  std::vector<ParamEntry> entries_;
  int64_t count_ = 0;
  HostBuffer<float> values_;  // (padded_count) fp32 parameters
  HostBuffer<float> grads_;   // (padded_count) fp32 gradients, accumulated over micro-batches
};

}  // namespace ladder
