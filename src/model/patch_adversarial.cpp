// Why this file exists: the implementation of the PatchGAN adversarial loss on any backend.
#include "model/patch_adversarial.h"

#include "core/check.h"
#include "model/backends.h"

namespace ladder {

template <class B>
PatchAdversarial<B>::PatchAdversarial(PatchDiscriminator<B>& discriminator, AdversarialCriterion criterion,
                                      double weight, B& backend)
    : discriminator_(discriminator), criterion_(criterion), weight_(weight), backend_(backend) {}

template <class B>
const typename B::Tensor& PatchAdversarial<B>::pass(const Tensor& input, bool real, double factor, double& loss_sum,
                                                    double* logit_sum) {
  const Tensor& logits = discriminator_.forward(input);
  const int64_t n = logits.numel();
  const double per_image = static_cast<double>(n / logits.shape().n);
  loss_sum = backend_.adversarial_loss_forward(criterion_, real, n, logits.data()) / per_image;
  if (logit_sum != nullptr) {
    backend_.to_host(logits, host_logits_);  // a few values per image
    double total = 0;
    for (int64_t i = 0; i < host_logits_.numel(); ++i) total += host_logits_[i];
    *logit_sum = total / per_image;
  }
  backend_.resize(dlogits_, logits.shape());
  backend_.adversarial_loss_backward(criterion_, real, n, logits.data(), factor / per_image, dlogits_.data());
  return discriminator_.backward(dlogits_);
}

template <class B>
double PatchAdversarial<B>::accumulate_gradient(const Tensor& images, const Tensor& reconstruction, double scale,
                                                Tensor& grad) {
  LADDER_CHECK(grad.shape() == reconstruction.shape(), "adversarial term: gradient ", grad.shape().str(),
               " for reconstruction ", reconstruction.shape().str());
  // The tutorial's order, which BatchNorm's running statistics see: the generator's term on
  // D(x̂), then the discriminator's fake and real passes (D's weights are the same in all three).
  discriminator_.set_parameter_gradients(false);
  discriminator_.set_backward_observer(nullptr);
  double sum = 0;
  const Tensor& dx = pass(reconstruction, true, scale * weight_, sum, nullptr);
  backend_.add_forward(grad.numel(), grad.data(), dx.data(), grad.data());
  discriminator_.set_parameter_gradients(true);
  if (discriminator_scale_ >= 0) {
    last_sums_ = discriminator_step(images, reconstruction, discriminator_scale_);
    discriminator_scale_ = -1;
  }
  if (recompute_) {
    discriminator_.release_activations();
    backend_.resize(dlogits_, {0, 0, 0, 0});
  }
  return sum;
}

template <class B>
DiscriminatorSums PatchAdversarial<B>::discriminator_step(const Tensor& images, const Tensor& reconstruction,
                                                          double scale) {
  LADDER_CHECK(images.shape() == reconstruction.shape(), "discriminator step: images ", images.shape().str(),
               ", reconstruction ", reconstruction.shape().str());
  const double factor = 0.5 * weight_ * scale;
  DiscriminatorSums sums;
  discriminator_.set_parameter_gradients(true);
  discriminator_.set_backward_observer(nullptr);
  double fake = 0, real = 0;
  pass(reconstruction, false, factor, fake, &sums.logits_fake);
  discriminator_.set_backward_observer(observer_);  // the real pass completes the gradients
  pass(images, true, factor, real, &sums.logits_real);
  discriminator_.set_backward_observer(nullptr);
  sums.loss = 0.5 * (fake + real);
  return sums;
}

LADDER_INSTANTIATE_FOR_BACKENDS(PatchAdversarial)

}  // namespace ladder
