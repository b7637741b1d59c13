// Why this file exists: the loss of stage 2 on any backend, one forward and backward of the
// UNet against a prepared target (diffusion/diffusion_objective.h makes x_t, the target and
// the weights): image i's loss is w_i · mean over its elements of (prediction − target)², the
// returned value their sum over the micro-batch, and the backward starts from
// grad_scale × ∂(sum)/∂prediction (MONAI's F.mse_loss, times the Min-SNR weights).
#pragma once

#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"

namespace ladder {

// x_t, target: (N, h, w, C) on the backend; timesteps, weights: (N) on the host; grad: the
// backend tensor the output gradient is built in (kept by the caller between steps).
template <class B, class Model>
double denoising_step(B& backend, Model& model, const typename B::Tensor& x_t,
                      const typename B::Tensor& target, const std::vector<float>& timesteps,
                      const std::vector<float>& weights, double grad_scale,
                      typename B::Tensor& grad) {
  const Shape shape = x_t.shape();
  LADDER_CHECK(static_cast<int64_t>(weights.size()) == shape.n, "denoising loss: ", weights.size(),
               " weights for ", shape.str());
  const auto& prediction = model.forward(x_t, timesteps);
  const int64_t per_image = shape.numel() / shape.n;
  backend.resize(grad, shape);
  double sum = 0;
  for (int64_t i = 0; i < shape.n; ++i) {
    const int64_t first = i * per_image;
    const double mean_scale = double(weights[static_cast<size_t>(i)]) / double(per_image);
    sum += mean_scale * backend.mse_forward(per_image, prediction.data() + first, target.data() + first);
    backend.mse_backward(per_image, prediction.data() + first, target.data() + first,
                         grad_scale * mean_scale, grad.data() + first);
  }
  model.backward(grad);
  return sum;
}

}  // namespace ladder
