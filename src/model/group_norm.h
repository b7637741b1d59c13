// Why this file exists: GroupNorm with an optional SiLU after it (the pair every ResBlock
// uses twice). Parameters "<name>.weight" (ones) and "<name>.bias" (zeros), no weight decay.
#pragma once

#include <string>

#include "core/params.h"
#include "model/layer.h"

namespace ladder {

template <class B>
class GroupNorm : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  GroupNorm(B& backend, ParamStore& store, const std::string& name, int channels, int groups,
            double eps, bool silu);

  const Tensor& forward(const Tensor& x) override;  // (N, H, W, C) → (N, H, W, C)
  const Tensor& backward(const Tensor& dy) override;
  void release_activations() override {
    output_.release();
    grad_input_.release();
    mean_.release();
    rstd_.release();
  }

 private:
  B& backend_;
  int channels_, groups_;
  double eps_;
  bool silu_;
  ParamView gamma_, beta_;
  const Tensor* input_ = nullptr;
  Tensor output_;                            // (N, H, W, C) silu(x̂·γ + β), or x̂·γ + β
  typename B::FloatTensor mean_, rstd_;      // (N, G) fp32 statistics for the backward
  Tensor grad_input_;
};

}  // namespace ladder
