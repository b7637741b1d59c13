// Why this file exists: the LPIPS perceptual loss of the LDM recipe (issue #16 item 3), as the
// `lpips` package (0.1.4, version 0.1) computes it (docs/reference-lpips.md):
//   d(x, t) = Σ_K mean_pixels( lin_K( (n(f_K(s(x))) − n(f_K(s(t))))² ) )
// with s the ScalingLayer, f_K the K-th slice output of AlexNet or VGG16 (ReLU features),
// n the unit norm over channels (eps 1e-10) and lin_K a 1×1 convolution to one channel
// without bias. The network is frozen: its weights (read from a safetensors file with lpips'
// names) live in the model's own ParamStore and get no gradients; the backward computes only
// d loss / d x, the gradient for the reconstruction (the first input).
//
// Backends: the CPU backend, the plan's counting backend, and the CUDA backends (there, the
// backend given must be pointed at params()' weights on the device:
// model/cuda_perceptual_term.cpp).
#pragma once

#include <string>
#include <vector>

#include "core/params.h"
#include "core/tensor.h"
#include "kernels/cpu/ops.h"
#include "model/lpips_network.h"

namespace ladder {

template <class B>
class Lpips {
 public:
  using Tensor = typename B::Tensor;

  // Registers the network's parameters (net.slice{K}.{i}.weight/bias, lin{K}.model.1.weight)
  // in params() and allocates them (zeros until load()). `backend` must outlive the model.
  Lpips(LpipsNetwork network, B& backend);
  Lpips(const Lpips&) = delete;  // the layers' views point into params_
  Lpips& operator=(const Lpips&) = delete;

  // Reads the weights, strictly (every tensor above with its PyTorch shape, nothing else;
  // F32, BF16, F16 or F64). UsageError naming the file otherwise.
  void load(const std::string& safetensors_path);

  // x, target (N, H, W, C) in [−1, 1], C = 3, or 1 (gray: broadcast to the three channels
  // by the ScalingLayer, as lpips does with MONAI's 1-channel images), equal shapes, large enough for every slice (AlexNet:
  // 31 pixels a side; VGG16: 16) → the per-image distance (N). x and target must stay alive
  // until backward().
  const std::vector<double>& forward(const Tensor& x, const Tensor& target);
  // ddistance (N): d loss / d distance_i → d loss / d x (N, H, W, C), written.
  const Tensor& backward(const std::vector<double>& ddistance);

  LpipsNetwork network() const { return network_; }
  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  // Frees the saved activations; the next forward allocates them again.
  void release_activations();

 private:
  struct Step {  // a max pool, or a convolution followed by a ReLU
    bool pool = false;
    cpu::MaxPoolDims pool_dims;  // n, h, w, c filled per call
    int cin = 0, cout = 0, kernel = 0, stride = 1, padding = 0;
    ParamView weight, bias;
  };
  // The activations of one input through the trunk.
  struct Pass {
    Tensor scaled;                 // (N, H, W, 3): s(x)
    std::vector<Tensor> outputs;   // one per step: (N, h, w, C)
    std::vector<Tensor> features;  // one per slice: the unit-normalised (N, h, w, C)
    std::vector<Tensor> norms;     // one per slice: (N, h, w, 1)
  };

  void run_trunk(const Tensor& images, Pass& pass);
  cpu::Conv2dDims conv_dims(const Step& step, const Shape& input) const;
  cpu::MaxPoolDims pool_dims(const Step& step, const Shape& input) const;

  LpipsNetwork network_;
  B& backend_;
  ParamStore params_;
  std::vector<Step> steps_;
  std::vector<int> slice_end_;       // per slice: the index of its last step
  std::vector<ParamView> linear_;    // per slice: (1, 1, 1, C)
  Pass x_, target_;
  int channels_ = 3;                 // of the last forward's images: 3, or 1 (gray, broadcast)
  std::vector<double> distance_;     // (N)
  Tensor grad_a_, grad_b_, grad_feature_, grad_x_;
};

}  // namespace ladder
