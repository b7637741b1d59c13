// Why this file exists: LPIPS (model/lpips.h) as a term of the autoencoder's loss on a GPU.
// The frozen network runs on a CUDA backend of its own, on the autoencoder's allocator and
// stream, pointed at the network's weights uploaded once (the fp32 values and the working
// copy in T of a frozen DeviceParameters: no gradient buffer, the term computes only the
// reconstruction's gradient). The term itself is PerceptualTerm's. Only in CUDA builds.
#ifdef LADDER_WITH_CUDA
#include <memory>

#include "model/autoencoder_critics.h"
#include "model/cuda_backend.h"
#include "model/lpips.h"
#include "model/perceptual_term.h"
#include "train/device_parameters.h"

namespace ladder {
namespace {

template <class T>
class CudaPerceptualTerm final : public ReconstructionTerm<CudaBackend<T>> {
 public:
  using Tensor = typename CudaBackend<T>::Tensor;

  // Reads the weights of perceptual.weights (UsageError naming the file) and uploads them.
  CudaPerceptualTerm(const PerceptualConfig& config, CudaBackend<T>& backend)
      : network_backend_(backend.allocator(), backend.stream()),
        lpips_(config.network == "vgg" ? LpipsNetwork::kVgg : LpipsNetwork::kAlex, network_backend_),
        term_(lpips_, config.weight, backend) {
    lpips_.load(config.weights);
    weights_ = std::make_unique<DeviceParameters<T>>(backend.allocator(), lpips_.params(), backend.stream());
    network_backend_.set_parameters(weights_->values(), weights_->working(), weights_->grads());
  }

  std::string name() const override { return term_.name(); }
  double accumulate_gradient(const Tensor& images, const Tensor& reconstruction, double scale,
                             Tensor& grad) override {
    return term_.accumulate_gradient(images, reconstruction, scale, grad);
  }
  void set_recompute(bool recompute) override { term_.set_recompute(recompute); }

 private:
  CudaBackend<T> network_backend_;  // its parameters: the network's weights below
  Lpips<CudaBackend<T>> lpips_;
  PerceptualTerm<CudaBackend<T>> term_;
  std::unique_ptr<DeviceParameters<T>> weights_;
};

}  // namespace

template <class T>
std::unique_ptr<ReconstructionTerm<CudaBackend<T>>> make_perceptual_term(const PerceptualConfig& config,
                                                                        CudaBackend<T>& backend) {
  return std::make_unique<CudaPerceptualTerm<T>>(config, backend);
}

template std::unique_ptr<ReconstructionTerm<CudaBackend<float>>> make_perceptual_term(const PerceptualConfig&,
                                                                                     CudaBackend<float>&);
template std::unique_ptr<ReconstructionTerm<CudaBackend<__nv_bfloat16>>> make_perceptual_term(
    const PerceptualConfig&, CudaBackend<__nv_bfloat16>&);
template std::unique_ptr<ReconstructionTerm<CudaBackend<__half>>> make_perceptual_term(const PerceptualConfig&,
                                                                                      CudaBackend<__half>&);

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
