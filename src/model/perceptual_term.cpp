// Why this file exists: the implementation of the perceptual term (the CPU and CUDA backends).
#include "model/perceptual_term.h"

#include "core/check.h"
#include "model/autoencoder_critics.h"
#include "model/backends.h"

namespace ladder {

template <class B>
double PerceptualTerm<B>::accumulate_gradient(const Tensor& images, const Tensor& reconstruction, double scale,
                                              Tensor& grad) {
  LADDER_CHECK(grad.shape() == reconstruction.shape(), "perceptual term: gradient ", grad.shape().str(),
               " for reconstruction ", reconstruction.shape().str());
  const std::vector<double>& distance = lpips_.forward(reconstruction, images);
  double sum = 0;
  for (double d : distance) sum += d;
  ddistance_.assign(distance.size(), scale * weight_);
  const Tensor& dx = lpips_.backward(ddistance_);
  backend_.add_forward(grad.numel(), grad.data(), dx.data(), grad.data());
  if (recompute_) lpips_.release_activations();
  return sum;
}

LADDER_INSTANTIATE_FOR_BACKENDS(PerceptualTerm)

std::unique_ptr<ReconstructionTerm<CpuBackend>> make_perceptual_term(const PerceptualConfig& config,
                                                                    CpuBackend& backend) {
  auto lpips = std::make_unique<Lpips<CpuBackend>>(config.network == "vgg" ? LpipsNetwork::kVgg : LpipsNetwork::kAlex,
                                                   backend);
  lpips->load(config.weights);
  return std::make_unique<PerceptualTerm<CpuBackend>>(std::move(lpips), config.weight, backend);
}

std::unique_ptr<ReconstructionTerm<PlanBackend>> make_perceptual_term(const PerceptualConfig& config,
                                                                     PlanBackend& backend) {
  auto lpips = std::make_unique<Lpips<PlanBackend>>(config.network == "vgg" ? LpipsNetwork::kVgg : LpipsNetwork::kAlex,
                                                    backend);
  // The weights are not read; their buffers are charged as the run holds them, frozen: the
  // host ParamStore's values on the CPU, a DeviceParameters' fp32 values and working copy at
  // the activations' width on a GPU.
  const int64_t per_parameter = 4 + (backend.plans_gpu() && backend.value_bytes() != 4 ? backend.value_bytes() : 0);
  backend.counter().add(lpips->params().padded_count() * per_parameter);
  return std::make_unique<PerceptualTerm<PlanBackend>>(std::move(lpips), config.weight, backend);
}

}  // namespace ladder
