// Why this file exists: the fully connected layer over rows (the attention block's q, k, v
// and output projections), one GEMM per pass.
#include <cstdint>

#include "core/check.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {

template <class T>
void linear_forward(int64_t m, int cin, int cout, const T* x, const T* w, const T* b, T* y) {
  // x (M, Cin), w (Cout, Cin), b (Cout), y (M, Cout) = x·wᵀ + b
  LADDER_CHECK(m >= 0 && cin > 0 && cout > 0, "linear: bad size ", m, "x", cin, "→", cout);
  gemm<T>(false, true, m, cout, cin, T(1), x, cin, w, cin, T(0), y, cout);
  add_row_bias(m, cout, b, y);
}

template <class T>
void linear_backward(int64_t m, int cin, int cout, const T* x, const T* w, const T* dy, T* dx,
                     T* dw, T* db) {
  LADDER_CHECK(m >= 0 && cin > 0 && cout > 0, "linear: bad size ", m, "x", cin, "→", cout);
  gemm<T>(false, false, m, cin, cout, T(1), dy, cout, w, cin, T(0), dx, cin);  // dx = dy·w
  gemm<T>(true, false, cout, cin, m, T(1), dy, cout, x, cin, T(1), dw, cin);   // dw += dyᵀ·x
  accumulate_column_sums(m, cout, dy, db);                                     // db += Σ dy
}

#define LADDER_INSTANTIATE(T)                                                               \
  template void linear_forward<T>(int64_t, int, int, const T*, const T*, const T*, T*);     \
  template void linear_backward<T>(int64_t, int, int, const T*, const T*, const T*, T*, T*, \
                                   T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
