// Why this file exists: the stage-1 model, AutoencoderKL with MONAI semantics (BRIEF §4):
// encoder → 1×1 convs to μ and log σ² → z = μ + ε·σ → post-quant 1×1 conv → decoder, trained
// with mean L1 reconstruction + kl_weight × KL. Parameter names and counts match MONAI.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/params.h"
#include "model/blocks.h"
#include "model/reconstruction_term.h"

namespace ladder {

// Sums over the images of one micro-batch: divide by the images of the optimizer step.
struct AutoencoderLossSums {
  double reconstruction = 0;  // Σ_images mean_pixels |x − x̂|
  double kl = 0;              // Σ_images Σ_latent ½(μ² + σ² − log σ² − 1)
  std::vector<double> terms;  // Σ_images of each further term, in the order given
  DiscriminatorSums discriminator;  // when the adversarial term trained the discriminator
};

// B: the backend (model/cpu_backend.h, model/cuda_backend.h) the model runs on.
template <class B>
class AutoencoderKL {
 public:
  using Tensor = typename B::Tensor;

  // Registers every parameter in `store` (which the caller then allocates and initialises).
  // `backend` runs the ops and must outlive the model.
  AutoencoderKL(const ModelConfig& config, ParamStore& store, B& backend);

  // images (N, R, R, C) in [−1, 1]; noise ε (latent_shape) for z = μ + ε·σ. Forward, the
  // loss, and the backward: parameter gradients accumulate, scaled by `grad_scale`
  // (1 / images in the optimizer step, times the loss scale under fp16). `terms`: further
  // terms of the loss on the reconstruction (perceptual, adversarial), each weighted by itself.
  AutoencoderLossSums forward_backward(const Tensor& images, const Tensor& noise, double grad_scale,
                                       double kl_weight, const std::vector<ReconstructionTerm<B>*>& terms = {});
  // The reconstruction of the last forward_backward (N, R, R, C), valid until the next forward
  // (the discriminator's step reads it).
  const Tensor& last_reconstruction() const { return *last_reconstruction_; }

  // Evaluation: z = μ. Returns the reconstruction (N, R, R, C).
  const Tensor& reconstruct(const Tensor& images);
  // The latent distribution of images: μ and log σ² (unclamped, as the 1×1 convs give them),
  // each (N, R/d, R/d, latent); valid until the next forward.
  std::pair<const Tensor*, const Tensor*> encode(const Tensor& images);
  // Latents z (N, R/d, R/d, latent) to images (N, R, R, C).
  const Tensor& decode(const Tensor& z);

  // Activation recompute for every ResBlock (train.recompute = blocks): the forward keeps
  // block inputs and outputs only; each block's backward recomputes its inside first.
  void set_recompute(bool recompute);

  // Told, during forward_backward, which parameter gradients are final (ZeRO-2 buckets).
  void set_backward_observer(BackwardObserver* observer);

  // Spatial downsampling factor of the latent (2^(levels−1)).
  int downsampling() const { return downsampling_; }
  // (N, R/d, R/d, latent) for images (N, R, R, C).
  Shape latent_shape(const Shape& images) const {
    return {images.n, images.h / downsampling_, images.w / downsampling_, latent_channels_};
  }

 private:
  void build_encoder(const ModelConfig& config, ParamStore& store);
  void build_decoder(const ModelConfig& config, ParamStore& store);

  B& backend_;
  int downsampling_ = 1;
  int64_t first_quant_param_ = 0, first_post_quant_param_ = 0;  // flat offsets
  BackwardObserver* observer_ = nullptr;
  std::vector<ResBlock<B>*> res_blocks_;  // owned by encoder_ and decoder_
  int latent_channels_ = 1;
  Sequential<B> encoder_, decoder_;
  std::unique_ptr<Conv2d<B>> quant_mu_, quant_logvar_, post_quant_;
  Tensor z_;                      // (N, h, w, latent)
  Tensor grad_mu_, grad_logvar_;  // (N, h, w, latent)
  Tensor grad_encoded_;           // (N, h, w, latent)
  Tensor grad_reconstruction_;    // (N, R, R, C)
  const Tensor* last_reconstruction_ = nullptr;  // the decoder's output
};

}  // namespace ladder
