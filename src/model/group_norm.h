// Why this file exists: GroupNorm with an optional SiLU after it (the pair every ResBlock
// uses twice). Parameters "<name>.weight" (ones) and "<name>.bias" (zeros), no weight decay.
#pragma once

#include <string>

#include "core/params.h"
#include "model/layer.h"

namespace ladder {

class GroupNorm : public Layer {
 public:
  GroupNorm(ParamStore& store, const std::string& name, int channels, int groups, double eps,
            bool silu);

  const TensorF& forward(const TensorF& x) override;  // (N, H, W, C) → (N, H, W, C)
  const TensorF& backward(const TensorF& dy) override;
  void release_activations() override {
    for (TensorF* t : {&normalized_, &output_, &mean_, &rstd_, &grad_normalized_, &grad_input_})
      t->release();
  }

 private:
  int channels_, groups_;
  double eps_;
  bool silu_;
  ParamView gamma_, beta_;
  const TensorF* input_ = nullptr;
  TensorF normalized_;       // (N, H, W, C) GroupNorm output (SiLU input)
  TensorF output_;           // (N, H, W, C) SiLU output (only when silu_)
  TensorF mean_, rstd_;      // (N, G)
  TensorF grad_normalized_;  // (N, H, W, C)
  TensorF grad_input_;
};

}  // namespace ladder
