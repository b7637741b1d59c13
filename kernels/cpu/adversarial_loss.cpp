// Why this file exists: the PatchGAN adversarial loss on the CPU: sums over logits of MONAI's
// per-logit term (kernels/common/adversarial_criterion.h) and its gradient. The caller divides
// by the logits per image (MONAI's mean) and weights the term.
#include "kernels/common/adversarial_criterion.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {

template <class T>
double adversarial_loss_forward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits) {
  double sum = 0;  // serial, in double: deterministic
  for (int64_t i = 0; i < n; ++i) sum += adversarial::loss(criterion, real, logits[i]);
  return sum;
}

template <class T>
void adversarial_loss_backward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits, T scale,
                               T* dlogits) {
  for (int64_t i = 0; i < n; ++i)
    dlogits[i] = static_cast<T>(double(scale) * adversarial::derivative(criterion, real, logits[i]));
}

#define LADDER_INSTANTIATE(T)                                                                        \
  template double adversarial_loss_forward<T>(AdversarialCriterion, bool, int64_t, const T*);       \
  template void adversarial_loss_backward<T>(AdversarialCriterion, bool, int64_t, const T*, T, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
