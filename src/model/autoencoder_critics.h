// Why this file exists: what judges stage 1's reconstructions beyond L1 and KL, built from the
// config beside the autoencoder, on its backend:
//   - the PatchDiscriminator of adversarial.* and its PatchGAN terms (model/patch_adversarial.h).
//     Its parameters are registered in the autoencoder's store after the autoencoder's own,
//     named "discriminator.<MONAI name>": one flat buffer, sharded, reduced, gathered,
//     checkpointed and resumed as the autoencoder's is; the trainer gives them an optimizer
//     group of their own (train/optimizer_groups.h);
//   - the LPIPS perceptual term of perceptual.* (model/perceptual_term.h).
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "core/check.h"
#include "core/model_buffers.h"
#include "core/params.h"
#include "model/patch_adversarial.h"
#include "model/patch_discriminator.h"
#include "model/reconstruction_term.h"

namespace ladder {

// The name prefix of the discriminator's parameters in the autoencoder's store.
inline constexpr const char* kDiscriminatorPrefix = "discriminator.";

// The flat offset where the discriminator's parameters begin in `store` (its count when it
// has none): the boundary of the optimizer groups.
int64_t discriminator_offset(const ParamStore& store);

template <class B>
class AutoencoderCritics {
 public:
  // Registers the discriminator's parameters in `store` (after the autoencoder's; the caller
  // allocates and initialises it) and reads the LPIPS weights. UsageError naming the key for
  // what this backend cannot run. `backend` must outlive the critics.
  AutoencoderCritics(const Config& config, ParamStore& store, B& backend);
  ~AutoencoderCritics();

  // The further terms of one micro-step, in metrics order: perceptual (when on), then the
  // adversarial term (when on and `adversarial`, i.e. after adversarial.start_step), which
  // first steps the discriminator with its gradients scaled by `discriminator_scale`.
  const std::vector<ReconstructionTerm<B>*>& terms(bool adversarial, double discriminator_scale);
  // The discriminator's sums of the last micro-step that trained it.
  const DiscriminatorSums& discriminator_sums() const;
  void set_backward_observer(BackwardObserver* observer);
  void set_recompute(bool recompute);  // train.recompute = blocks (ReconstructionTerm)
  // The discriminator's BatchNorm running statistics (PatchDiscriminator::buffers()); none
  // without one or with InstanceNorm.
  std::vector<ModelBuffer> buffers();
  void load_buffers(const std::vector<ModelBuffer>& buffers);

 private:
  std::unique_ptr<PatchDiscriminator<B>> discriminator_;
  std::unique_ptr<PatchAdversarial<B>> adversarial_;
  std::unique_ptr<ReconstructionTerm<B>> perceptual_;
  std::vector<ReconstructionTerm<B>*> terms_;
  DiscriminatorSums none_;
};

// The perceptual term of `config`: on the CPU backend and the plan's counting backend (which
// charges the network's weights without reading them; model/perceptual_term.cpp), and on the
// GPU backends (model/cuda_perceptual_term.cpp).
class CpuBackend;
class PlanBackend;
std::unique_ptr<ReconstructionTerm<CpuBackend>> make_perceptual_term(const PerceptualConfig& config,
                                                                    CpuBackend& backend);
std::unique_ptr<ReconstructionTerm<PlanBackend>> make_perceptual_term(const PerceptualConfig& config,
                                                                     PlanBackend& backend);
#ifdef LADDER_WITH_CUDA
template <class T>
class CudaBackend;
template <class T>
std::unique_ptr<ReconstructionTerm<CudaBackend<T>>> make_perceptual_term(const PerceptualConfig& config,
                                                                        CudaBackend<T>& backend);
#endif

// adversarial.criterion as the op's enum.
AdversarialCriterion adversarial_criterion(const std::string& name);

}  // namespace ladder
