// Why this file exists: InstanceNorm2d as MONAI's "INSTANCE" norm builds it (PyTorch's
// defaults: no affine parameters, no running statistics, eps 1e-5): each image's channels are
// normalised over their pixels. The PatchDiscriminator's alternative to BatchNorm
// (adversarial.norm = instance): it depends on each image alone, so a discriminator with it
// gives the same gradients however a batch is split over ranks and micro-steps.
#pragma once

#include "model/layer.h"

namespace ladder {

template <class B>
class InstanceNorm2d : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;
  using FloatTensor = typename B::FloatTensor;

  InstanceNorm2d(B& backend, int channels, double eps);

  const Tensor& forward(const Tensor& x) override;  // (N, H, W, C) → (N, H, W, C), H·W > 1
  const Tensor& backward(const Tensor& dy) override;
  void release_activations() override {
    output_.release();
    grad_input_.release();
    mean_.release();
    rstd_.release();
  }

 private:
  B& backend_;
  int channels_;
  double eps_;
  const Tensor* input_ = nullptr;
  Tensor output_, grad_input_;  // (N, H, W, C)
  FloatTensor mean_, rstd_;     // (N, C)
};

}  // namespace ladder
