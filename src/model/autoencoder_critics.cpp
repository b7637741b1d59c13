// Why this file exists: the construction of stage 1's critics from the config.
#include "model/autoencoder_critics.h"

#include <cstring>

#include "core/check.h"
#include "model/backends.h"

namespace ladder {

int64_t discriminator_offset(const ParamStore& store) {
  for (const ParamEntry& entry : store.entries())
    if (entry.name.rfind(kDiscriminatorPrefix, 0) == 0) return entry.offset;
  return store.count();
}

AdversarialCriterion adversarial_criterion(const std::string& name) {
  if (name == "least_squares") return AdversarialCriterion::kLeastSquares;
  if (name == "hinge") return AdversarialCriterion::kHinge;
  LADDER_CHECK_USAGE(name == "bce", "adversarial.criterion = ", name, ": must be least_squares, hinge or bce");
  return AdversarialCriterion::kBce;
}

template <class B>
AutoencoderCritics<B>::AutoencoderCritics(const Config& config, ParamStore& store, B& backend) {
  if (config.perceptual.enabled()) perceptual_ = make_perceptual_term(config.perceptual, backend);
  if (config.adversarial.enabled()) {
    PatchDiscriminatorConfig d;
    d.in_channels = config.model.in_channels;
    d.channels = config.adversarial.channels;
    d.num_layers_d = config.adversarial.layers;
    d.out_channels = 1;
    d.name_prefix = kDiscriminatorPrefix;
    d.norm = config.adversarial.norm == "instance" ? DiscriminatorNorm::kInstance : DiscriminatorNorm::kBatch;
    discriminator_ = std::make_unique<PatchDiscriminator<B>>(d, store, backend);
    adversarial_ = std::make_unique<PatchAdversarial<B>>(*discriminator_, adversarial_criterion(config.adversarial.criterion),
                                                         config.adversarial.weight, backend);
  }
}

template <class B>
AutoencoderCritics<B>::~AutoencoderCritics() = default;

template <class B>
const std::vector<ReconstructionTerm<B>*>& AutoencoderCritics<B>::terms(bool adversarial, double discriminator_scale) {
  terms_.clear();
  if (perceptual_) terms_.push_back(perceptual_.get());
  if (adversarial_ && adversarial) {
    adversarial_->train_discriminator(discriminator_scale);
    terms_.push_back(adversarial_.get());
  }
  return terms_;
}

template <class B>
const DiscriminatorSums& AutoencoderCritics<B>::discriminator_sums() const {
  return adversarial_ ? adversarial_->last_discriminator_sums() : none_;
}

template <class B>
void AutoencoderCritics<B>::set_backward_observer(BackwardObserver* observer) {
  if (adversarial_) adversarial_->set_backward_observer(observer);
}

template <class B>
void AutoencoderCritics<B>::set_recompute(bool recompute) {
  if (perceptual_) perceptual_->set_recompute(recompute);
  if (adversarial_) adversarial_->set_recompute(recompute);
}

template <class B>
std::vector<ModelBuffer> AutoencoderCritics<B>::buffers() {
  return discriminator_ ? discriminator_->buffers() : std::vector<ModelBuffer>{};
}

template <class B>
void AutoencoderCritics<B>::load_buffers(const std::vector<ModelBuffer>& buffers) {
  if (discriminator_) discriminator_->load_buffers(buffers);
  else LADDER_CHECK(buffers.empty(), "critics: ", buffers.size(), " buffers for no discriminator");
}

LADDER_INSTANTIATE_FOR_BACKENDS(AutoencoderCritics)

}  // namespace ladder
