// Why this file exists: the autoencoder's loss beyond L1 + kl_weight·KL, as MONAI's LDM
// tutorial trains it: further terms on the reconstruction (the LPIPS perceptual distance,
// model/perceptual_term.h; the generator's PatchGAN term, model/patch_adversarial.h). Each is
// one object that AutoencoderKL::forward_backward asks, after its L1 gradient, for the term's
// value and gradient by the reconstruction; the decoder's backward then carries their sum.
#pragma once

#include <string>

namespace ladder {

// The discriminator's side of the PatchGAN loss (model/patch_adversarial.h) on one micro-batch:
// sums over its images of each image's value.
struct DiscriminatorSums {
  double loss = 0;         // ½ (mean ℓ_fake + mean ℓ_real), unweighted (the tutorial's discriminator_loss)
  double logits_real = 0;  // mean logit of D on the image
  double logits_fake = 0;  // mean logit of D on its reconstruction
};

template <class B>
class ReconstructionTerm {
 public:
  using Tensor = typename B::Tensor;
  virtual ~ReconstructionTerm() = default;

  // The metrics field of the term ("p_loss", "g_adv_loss").
  virtual std::string name() const = 0;
  // images, reconstruction (N, H, W, C) in [−1, 1]. Returns Σ over the N images of the term
  // (unweighted, each image's value as MONAI computes it), and adds scale · weight · d(that
  // sum)/d reconstruction into grad (N, H, W, C) (+=).
  virtual double accumulate_gradient(const Tensor& images, const Tensor& reconstruction, double scale,
                                     Tensor& grad) = 0;
  // train.recompute = blocks: the term frees the activations it keeps after each use, so that
  // they are not held through the autoencoder's backward and between micro-steps (the next
  // use computes them again).
  virtual void set_recompute(bool recompute) { (void)recompute; }
};

}  // namespace ladder
