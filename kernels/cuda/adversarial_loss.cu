// Why this file exists: the PatchGAN adversarial loss on the GPU, the same per-logit function
// as the CPU op (kernels/common/adversarial_criterion.h, shared by both), with a deterministic
// sum (common.cuh).
#include "kernels/common/adversarial_criterion.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::to_float;

template <class T>
struct AdversarialTerm {
  AdversarialCriterion criterion;
  bool real;
  const T* logits;
  __device__ double operator()(int64_t i) const { return adversarial::loss(criterion, real, to_float(logits[i])); }
};

template <class T>
__global__ void adversarial_loss_backward_kernel(AdversarialCriterion criterion, bool real, int64_t n,
                                                 const T* logits, float scale, T* dlogits) {
  for (int64_t i = detail::global_thread(); i < n; i += detail::grid_stride())
    dlogits[i] = from_float<T>(static_cast<float>(
        double(scale) * adversarial::derivative(criterion, real, to_float(logits[i]))));
}

}  // namespace

template <class T>
void adversarial_loss_forward_async(AdversarialCriterion criterion, bool real, int64_t n, const T* logits,
                                    double* result, double* scratch, cudaStream_t stream) {
  detail::launch_sum(n, AdversarialTerm<T>{criterion, real, logits}, result, scratch, stream);
}

template <class T>
double adversarial_loss_forward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits,
                                double* scratch, cudaStream_t stream) {
  return detail::sum_now(n, AdversarialTerm<T>{criterion, real, logits}, scratch, stream);
}

template <class T>
void adversarial_loss_backward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits, float scale,
                               T* dlogits, cudaStream_t stream) {
  LADDER_CHECK(n >= 0, "adversarial_loss_backward: negative size ", n);
  if (n == 0) return;
  adversarial_loss_backward_kernel<T>
      <<<detail::grid_for(n), detail::kThreads, 0, stream>>>(criterion, real, n, logits, scale, dlogits);
  LADDER_CUDA_CHECK_LAUNCH();
}

#define LADDER_INSTANTIATE(T)                                                                              \
  template void adversarial_loss_forward_async<T>(AdversarialCriterion, bool, int64_t, const T*, double*,  \
                                                  double*, cudaStream_t);                                  \
  template double adversarial_loss_forward<T>(AdversarialCriterion, bool, int64_t, const T*, double*,      \
                                              cudaStream_t);                                               \
  template void adversarial_loss_backward<T>(AdversarialCriterion, bool, int64_t, const T*, float, T*,     \
                                             cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
