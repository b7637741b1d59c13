// Why this file exists: the per-logit adversarial loss of MONAI's PatchAdversarialLoss
// (monai/losses/adversarial_loss.py, 1.6.1), in one place for the CPU op
// (kernels/cpu/adversarial_loss.cpp) and the CUDA kernels (kernels/cuda/adversarial_loss.cu),
// which therefore compute the same function. For a logit x and the target "real" (1) or
// "fake" (0):
//   least_squares  a = LeakyReLU_0.05(x)        ℓ = (a − y)²,            y = 1 real, 0 fake
//   bce            a = sigmoid(x)               ℓ = −[y·log a + (1−y)·log(1−a)], each log ≥ −100
//                                               (torch.nn.BCELoss's clamp)
//   hinge          a = tanh(x)                  ℓ = 1 − a real, 1 + a fake (MONAI's
//                                               −min(±a − 1, 0); |a| ≤ 1)
// The generator's term is the "real" target on its reconstructions' logits. MONAI's loss is
// the mean of ℓ over the logits; the ops sum and the caller divides.
#pragma once

#include <cmath>

#ifdef __CUDACC__
#define LADDER_HOST_DEVICE __host__ __device__
#else
#define LADDER_HOST_DEVICE
#endif

namespace ladder {

enum class AdversarialCriterion { kLeastSquares, kHinge, kBce };

namespace adversarial {

constexpr double kLeastSquaresSlope = 0.05;  // MONAI's LeakyReLU before the squared error
constexpr double kBceLogFloor = -100.0;      // torch.nn.BCELoss clamps each log here
constexpr double kBceGradientFloor = 1e-12;  // and divides its gradient by max(a(1−a), this)

// The activation in T, as torch computes it on logits of that type (T = float in training,
// double in the finite-difference tests).
template <class T>
LADDER_HOST_DEVICE inline T activation(AdversarialCriterion criterion, T x) {
  using std::exp;
  using std::tanh;
  switch (criterion) {
    case AdversarialCriterion::kLeastSquares: return x > T(0) ? x : T(kLeastSquaresSlope) * x;
    case AdversarialCriterion::kBce: return T(1) / (T(1) + exp(-x));
    case AdversarialCriterion::kHinge: return tanh(x);
  }
  return x;
}

// ℓ(x) for the target `real`, in double from the activation.
template <class T>
LADDER_HOST_DEVICE inline double loss(AdversarialCriterion criterion, bool real, T x) {
  using std::log;
  const double a = activation(criterion, x);
  switch (criterion) {
    case AdversarialCriterion::kLeastSquares: {
      const double diff = a - (real ? 1.0 : 0.0);
      return diff * diff;
    }
    case AdversarialCriterion::kBce: {
      const double log_term = real ? log(a) : log(1.0 - a);
      return -(log_term > kBceLogFloor ? log_term : kBceLogFloor);
    }
    case AdversarialCriterion::kHinge: return real ? 1.0 - a : 1.0 + a;
  }
  return 0.0;
}

// dℓ/dx for the target `real`, as torch's backward of the same expression: LeakyReLU's slope
// at x ≤ 0; BCE's (a − y)/max(a(1−a), 1e-12) times sigmoid's a(1−a) (0 where a rounds to 0
// or 1); tanh's 1 − a².
template <class T>
LADDER_HOST_DEVICE inline double derivative(AdversarialCriterion criterion, bool real, T x) {
  const double a = activation(criterion, x);
  switch (criterion) {
    case AdversarialCriterion::kLeastSquares:
      return 2.0 * (a - (real ? 1.0 : 0.0)) * (x > T(0) ? 1.0 : kLeastSquaresSlope);
    case AdversarialCriterion::kBce: {
      const double slope = a * (1.0 - a);
      const double floor = slope > kBceGradientFloor ? slope : kBceGradientFloor;
      return (a - (real ? 1.0 : 0.0)) / floor * slope;
    }
    case AdversarialCriterion::kHinge: return (real ? -1.0 : 1.0) * (1.0 - a * a);
  }
  return 0.0;
}

}  // namespace adversarial
}  // namespace ladder
