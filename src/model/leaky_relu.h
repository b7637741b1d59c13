// Why this file exists: the LeakyReLU layer (the PatchDiscriminator's activation, MONAI's
// default negative slope 0.2). It keeps its output and reads its input in the backward.
#pragma once

#include "model/layer.h"

namespace ladder {

template <class B>
class LeakyReLU : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  LeakyReLU(B& backend, double negative_slope);

  const Tensor& forward(const Tensor& x) override;  // (N, H, W, C) → (N, H, W, C)
  const Tensor& backward(const Tensor& dy) override;
  void release_activations() override {
    output_.release();
    grad_input_.release();
  }

 private:
  B& backend_;
  double slope_;
  const Tensor* input_ = nullptr;
  Tensor output_, grad_input_;  // (N, H, W, C)
};

}  // namespace ladder
