// Why this file exists: the PatchGAN adversarial loss of MONAI's LDM tutorial, both sides of
// it, on one micro-batch:
//   generator term (a ReconstructionTerm): adversarial.weight × mean over the logits of
//     ℓ_real(D(x̂)); its gradient flows through the discriminator D to the reconstruction x̂,
//     and D's own parameter gradients are left alone (the tutorial's optimizer_d.zero_grad()
//     discards them; here they are never computed);
//   discriminator step: adversarial.weight × ½ (mean ℓ_fake(D(x̂)) + mean ℓ_real(D(x))), x̂
//     detached, as two forward/backward passes (BatchNorm takes each pass's own statistics, as
//     the tutorial's two calls do); D's parameter gradients accumulate.
// ℓ is PatchAdversarialLoss's per-logit criterion (kernels/common/adversarial_criterion.h).
// "mean over the logits" is per image here (every image has the same number of logits), so
// that sums over images divide by the images of the optimizer step like every other term.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/common/adversarial_criterion.h"
#include "model/patch_discriminator.h"
#include "model/reconstruction_term.h"

namespace ladder {

template <class B>
class PatchAdversarial final : public ReconstructionTerm<B> {
 public:
  using Tensor = typename B::Tensor;

  // `discriminator` and `backend` must outlive the term. weight: adversarial.weight.
  PatchAdversarial(PatchDiscriminator<B>& discriminator, AdversarialCriterion criterion, double weight, B& backend);

  std::string name() const override { return "g_adv_loss"; }
  // The generator's term (above). After train_discriminator(), then the discriminator's step
  // on the same images and reconstruction (the tutorial's order of the three forward passes,
  // which BatchNorm's running statistics follow): inside the autoencoder's forward_backward
  // the reconstruction is at hand, and the discriminator's gradients are complete before the
  // autoencoder's backward announces its own (ZeRO-2 buckets, in falling offsets, the
  // discriminator's parameters being registered after the autoencoder's).
  double accumulate_gradient(const Tensor& images, const Tensor& reconstruction, double scale,
                             Tensor& grad) override;
  // The next accumulate_gradient() also steps the discriminator, its gradients scaled by
  // `scale`; its sums are then last_discriminator_sums().
  void train_discriminator(double scale) { discriminator_scale_ = scale; }
  const DiscriminatorSums& last_discriminator_sums() const { return last_sums_; }
  // The discriminator's step on images and their reconstructions (N, H, W, C): its
  // parameter gradients accumulate scale × the gradient of the weighted loss.
  DiscriminatorSums discriminator_step(const Tensor& images, const Tensor& reconstruction, double scale);
  // The discriminator's ZeRO-2 observer: told about its gradients during the last backward of
  // each discriminator_step (when they are final for the micro-step), never otherwise.
  void set_backward_observer(BackwardObserver* observer) { observer_ = observer; }
  void set_recompute(bool recompute) override { recompute_ = recompute; }

 private:
  // Forward on `input`: Σ over its images of the mean ℓ for the target `real` into loss_sum,
  // of the mean logit into *logit_sum when not null; then the backward of factor × loss_sum.
  // Returns the input's gradient.
  const Tensor& pass(const Tensor& input, bool real, double factor, double& loss_sum, double* logit_sum);

  PatchDiscriminator<B>& discriminator_;
  AdversarialCriterion criterion_;
  double weight_;
  B& backend_;
  BackwardObserver* observer_ = nullptr;
  bool recompute_ = false;
  double discriminator_scale_ = -1;  // < 0: no discriminator step in the next accumulate_gradient
  DiscriminatorSums last_sums_;
  Tensor dlogits_;     // the logits' shape
  TensorF host_logits_;
};

}  // namespace ladder
