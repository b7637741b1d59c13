// Why this file exists: the adversarial loss's critic, MONAI's PatchDiscriminator (spatial_dims
// 2) with its parameter names, counts and initialisation (docs/reference-patch-discriminator.md):
//   initial_conv: conv 4×4 stride 2 pad 1 (bias) → LeakyReLU
//   0 … L−2:      conv 4×4 stride 2 pad 1 (no bias) → BatchNorm2d (or InstanceNorm2d) → LeakyReLU,
//                 channels doubling
//   L−1:          the same with stride 1
//   final_conv:   conv 4×4 stride 1 pad 1 (bias) to out_channels: the logits (N, H/2^L − 2, …)
// It owns no optimizer state: its parameters live in the ParamStore it is built on (its own
// flat buffer, beside the generator's), its BatchNorm running statistics in its layers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/params.h"
#include "model/batch_norm.h"
#include "model/layer.h"

namespace ladder {

// MONAI's PatchDiscriminator arguments (2D, defaults as MONAI's: kernel_size 4, LeakyReLU 0.2,
// norm BATCH with eps 1e-5 and momentum 0.1, bias False, padding 1, dropout 0). norm INSTANCE:
// InstanceNorm2d (no parameters, eps 1e-5) in place of each BatchNorm2d.
enum class DiscriminatorNorm { kBatch, kInstance };

struct PatchDiscriminatorConfig {
  int in_channels = 1;
  int channels = 64;      // of initial_conv; doubled by each further layer
  int num_layers_d = 3;   // the BatchNorm layers
  int out_channels = 1;
  double negative_slope = 0.2;
  double norm_eps = 1e-5;
  double norm_momentum = 0.1;
  DiscriminatorNorm norm = DiscriminatorNorm::kBatch;
  std::string name_prefix;  // before every parameter name ("discriminator." beside an autoencoder)
};

template <class B>
class PatchDiscriminator {
 public:
  using Tensor = typename B::Tensor;

  // Registers every parameter in `store` (which the caller then allocates and initialises:
  // ParamStore::initialize gives MONAI's normal_init, N(0, 0.02²) conv weights, N(1, 0.02²)
  // BatchNorm scales, zero biases). `backend` runs the ops and must outlive the model.
  PatchDiscriminator(const PatchDiscriminatorConfig& config, ParamStore& store, B& backend);

  // images (N, H, W, in_channels), H and W divisible by 2^num_layers_d → logits (N, Ho, Wo,
  // out_channels) with Ho = H/2^(num_layers_d) − 2. `images` must stay alive until backward().
  const Tensor& forward(const Tensor& images);
  // dlogits (the logits' shape) → the images' gradient (written); parameter gradients
  // accumulate (+=). Needs a training-mode forward.
  const Tensor& backward(const Tensor& dlogits);

  // Training mode (batch statistics; MONAI's tutorial always trains it so) or eval mode
  // (running statistics). Training by default.
  void set_training(bool training);
  // Whether backward() accumulates its parameter gradients (true by default), or only passes
  // the gradient to the images (the generator's adversarial term).
  void set_parameter_gradients(bool accumulate) { layers_.set_parameter_gradients(accumulate); }
  // Told, during backward, which parameter gradients are final (ZeRO-2 buckets).
  void set_backward_observer(BackwardObserver* observer) { layers_.set_observer(observer); }

  Shape output_shape(const Shape& images) const;
  // Frees the activations the layers keep; the next forward allocates them again.
  void release_activations() { layers_.release_activations(); }
  // The BatchNorm layers in model order (their running statistics are the state dict's buffers).
  const std::vector<BatchNorm2d<B>*>& batch_norms() const { return norms_; }
  // Every BatchNorm layer's buffers (BatchNorm2d::buffers()) in model order; none with
  // InstanceNorm. load_buffers takes the same list (names, types and shapes as buffers()).
  std::vector<ModelBuffer> buffers();
  void load_buffers(const std::vector<ModelBuffer>& buffers);

 private:
  PatchDiscriminatorConfig config_;
  Sequential<B> layers_;
  std::vector<BatchNorm2d<B>*> norms_;  // owned by layers_
};

}  // namespace ladder
