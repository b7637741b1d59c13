// Why this file exists: multi-head scaled dot-product attention (the autoencoder's mid-block
// attention), explicit forward and backward. Per (image, head), with the head's d channels
// read in place from (N, L, C) through the GEMM leading dimension C:
//   S = q·kᵀ/√d,  P = softmax_rows(S) (saved),  o = P·v
//   dv = Pᵀ·do,  dP = do·vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dq = dS·k/√d,  dk = dSᵀ·q/√d
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/check.h"
#include "core/host_buffer.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

void check_dims(const AttentionDims& d) {
  LADDER_CHECK(d.n > 0 && d.tokens > 0 && d.channels > 0 && d.heads > 0, "attention: bad size");
  LADDER_CHECK(d.channels % d.heads == 0, "attention: ", d.channels,
               " channels not divisible into ", d.heads, " heads");
}

// Rows of p (rows, cols) replaced by their softmax: max subtracted first, sums in double.
template <class T>
void softmax_rows(int64_t rows, int64_t cols, T* p) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = p + r * cols;
    const T top = *std::max_element(row, row + cols);
    double sum = 0;
    for (int64_t j = 0; j < cols; ++j) {
      row[j] = std::exp(row[j] - top);
      sum += row[j];
    }
    const T inv = T(1.0 / sum);
    for (int64_t j = 0; j < cols; ++j) row[j] *= inv;
  }
}

}  // namespace

template <class T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* probs,
                       T* o) {
  // q, k, v, o (N, L, C); probs (N, heads, L, L)
  check_dims(d);
  const int64_t l = d.tokens, c = d.channels, hd = d.head_dim();
  const T scale = T(1.0 / std::sqrt(double(hd)));
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t at = n * l * c + h * hd;  // first channel of this head, token 0
      T* p = probs + (n * d.heads + h) * l * l;
      gemm<T>(false, true, l, l, hd, scale, q + at, c, k + at, c, T(0), p, l);  // S
      softmax_rows(l, l, p);
      gemm<T>(false, false, l, hd, l, T(1), p, l, v + at, c, T(0), o + at, c);  // o = P·v
    }
  }
}

template <class T>
void attention_backward(const AttentionDims& d, const T* q, const T* k, const T* v,
                        const T* probs, const T* dout, T* dq, T* dk, T* dv) {
  check_dims(d);
  const int64_t l = d.tokens, c = d.channels, hd = d.head_dim();
  const T scale = T(1.0 / std::sqrt(double(hd)));
  HostBuffer<T> ds(l * l);  // (L, L): dP, then dS in place
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t at = n * l * c + h * hd;
      const T* p = probs + (n * d.heads + h) * l * l;
      gemm<T>(true, false, l, hd, l, T(1), p, l, dout + at, c, T(0), dv + at, c);  // dv = Pᵀ·do
      gemm<T>(false, true, l, l, hd, T(1), dout + at, c, v + at, c, T(0), ds.data(), l);  // dP
      for (int64_t r = 0; r < l; ++r) {
        T* row = ds.data() + r * l;
        const T* prow = p + r * l;
        double dot = 0;
        for (int64_t j = 0; j < l; ++j) dot += double(row[j]) * prow[j];
        for (int64_t j = 0; j < l; ++j) row[j] = prow[j] * (row[j] - T(dot));
      }
      gemm<T>(false, false, l, hd, l, scale, ds.data(), l, k + at, c, T(0), dq + at, c);
      gemm<T>(true, false, l, hd, l, scale, ds.data(), l, q + at, c, T(0), dk + at, c);
    }
  }
}

#define LADDER_INSTANTIATE(T)                                                                \
  template void attention_forward<T>(const AttentionDims&, const T*, const T*, const T*, T*, \
                                     T*);                                                    \
  template void attention_backward<T>(const AttentionDims&, const T*, const T*, const T*,    \
                                      const T*, const T*, T*, T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
