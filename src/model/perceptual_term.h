// Why this file exists: LPIPS (model/lpips.h) as a term of the autoencoder's loss, as MONAI's
// PerceptualLoss(network_type="alex"|"vgg") gives it: the mean over the batch of
// LPIPS(reconstruction, images), weighted by perceptual.weight. The network is frozen: only the
// reconstruction's gradient is computed. The CPU and CUDA backends (as Lpips).
#pragma once

#include <memory>
#include <vector>

#include "model/lpips.h"
#include "model/reconstruction_term.h"

namespace ladder {

template <class B>
class PerceptualTerm final : public ReconstructionTerm<B> {
 public:
  using Tensor = typename B::Tensor;

  // `lpips` (its weights loaded) and `backend` must outlive the term.
  PerceptualTerm(Lpips<B>& lpips, double weight, B& backend) : lpips_(lpips), weight_(weight), backend_(backend) {}
  // The term owning its network.
  PerceptualTerm(std::unique_ptr<Lpips<B>> lpips, double weight, B& backend)
      : owned_(std::move(lpips)), lpips_(*owned_), weight_(weight), backend_(backend) {}

  std::string name() const override { return "p_loss"; }
  double accumulate_gradient(const Tensor& images, const Tensor& reconstruction, double scale,
                             Tensor& grad) override;
  void set_recompute(bool recompute) override { recompute_ = recompute; }

 private:
  std::unique_ptr<Lpips<B>> owned_;  // may be empty
  Lpips<B>& lpips_;
  double weight_;
  B& backend_;
  bool recompute_ = false;
  std::vector<double> ddistance_;  // (N)
};

}  // namespace ladder
