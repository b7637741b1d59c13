// Why this file exists: the autoencoder's loss terms and latent sampling: the L1
// reconstruction loss, the reparameterisation z = mu + eps·σ, and the KL divergence to N(0, 1).
// Losses return plain sums (accumulated serially in double, so deterministic); the caller
// normalises.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

constexpr int64_t kParallelGrain = int64_t(1) << 16;

bool inside_clamp(double lv) { return lv >= kLogvarMin && lv <= kLogvarMax; }
double clamp_logvar(double lv) { return std::clamp(lv, kLogvarMin, kLogvarMax); }

}  // namespace

template <class T>
double l1_forward(int64_t n, const T* x, const T* target) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::abs(double(x[i]) - double(target[i]));
  return sum;
}

template <class T>
void l1_backward(int64_t n, const T* x, const T* target, T scale, T* dx) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const T diff = x[i] - target[i];
    dx[i] = diff > T(0) ? scale : (diff < T(0) ? -scale : T(0));
  }
}

template <class T>
double mse_forward(int64_t n, const T* x, const T* target) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double diff = double(x[i]) - double(target[i]);
    sum += diff * diff;
  }
  return sum;
}

template <class T>
void mse_backward(int64_t n, const T* x, const T* target, T scale, T* dx) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = T(2) * scale * (x[i] - target[i]);
}

template <class T>
void reparameterize_forward(int64_t n, const T* mu, const T* logvar, const T* eps, T* z) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i)
    z[i] = mu[i] + eps[i] * T(std::exp(0.5 * clamp_logvar(logvar[i])));
}

template <class T>
void reparameterize_backward(int64_t n, const T* logvar, const T* eps, const T* dz, T* dmu,
                             T* dlogvar) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    dmu[i] = dz[i];
    dlogvar[i] = inside_clamp(logvar[i])
                     ? dz[i] * eps[i] * T(0.5 * std::exp(0.5 * double(logvar[i])))
                     : T(0);
  }
}

template <class T>
double kl_forward(int64_t n, const T* mu, const T* logvar) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double m = mu[i], lv = clamp_logvar(logvar[i]);
    sum += 0.5 * (m * m + std::exp(lv) - lv - 1.0);
  }
  return sum;
}

template <class T>
void kl_backward_accumulate(int64_t n, const T* mu, const T* logvar, T scale, T* dmu,
                            T* dlogvar) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    dmu[i] += scale * mu[i];
    if (inside_clamp(logvar[i])) dlogvar[i] += scale * T(0.5 * (std::exp(double(logvar[i])) - 1.0));
  }
}

#define LADDER_INSTANTIATE(T)                                                               \
  template double l1_forward<T>(int64_t, const T*, const T*);                               \
  template void l1_backward<T>(int64_t, const T*, const T*, T, T*);                         \
  template double mse_forward<T>(int64_t, const T*, const T*);                              \
  template void mse_backward<T>(int64_t, const T*, const T*, T, T*);                        \
  template void reparameterize_forward<T>(int64_t, const T*, const T*, const T*, T*);       \
  template void reparameterize_backward<T>(int64_t, const T*, const T*, const T*, T*, T*);  \
  template double kl_forward<T>(int64_t, const T*, const T*);                               \
  template void kl_backward_accumulate<T>(int64_t, const T*, const T*, T, T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
