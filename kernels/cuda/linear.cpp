// The linear layer on cuBLAS; see linear.h.
//
// Row-major data on column-major cuBLAS. A row-major (r × c) matrix with leading dimension ld
// is, byte for byte, the column-major (c × r) matrix with the same ld: its transpose. So a
// row-major product C = A·B is computed as the column-major product Cᵀ = Bᵀ·Aᵀ, i.e. cuBLAS
// gets the operands swapped, m = columns of C, n = rows of C, and every ld is the row length.
// With x (M, Cin), w (Cout, Cin), dy (M, Cout) row-major, seen by cuBLAS as xᵀ (Cin × M),
// wᵀ (Cin × Cout), dyᵀ (Cout × M), all leading dimensions the row-major row lengths:
//
//   y  = x·wᵀ   (M, Cout):  yᵀ  (Cout × M)   = w·xᵀ    = op_T(wᵀ)·op_N(xᵀ)
//        gemm(T, N, m = Cout, n = M,    k = Cin,  A = w,  lda = Cin,  B = x,  ldb = Cin,  C = y,  ldc = Cout)
//   dx = dy·w   (M, Cin):   dxᵀ (Cin × M)    = wᵀ·dyᵀ  = op_N(wᵀ)·op_N(dyᵀ)
//        gemm(N, N, m = Cin,  n = M,    k = Cout, A = w,  lda = Cin,  B = dy, ldb = Cout, C = dx, ldc = Cin)
//   dw += dyᵀ·x (Cout, Cin): dwᵀ (Cin × Cout) = xᵀ·dy   = op_N(xᵀ)·op_T(dyᵀ)
//        gemm(N, T, m = Cin,  n = Cout, k = M,    A = x,  lda = Cin,  B = dy, ldb = Cout, C = dw, ldc = Cin, beta = 1)
//
// beta = 0 means cuBLAS does not read C, so y and dx may hold anything (NaN) before the call.
#include "kernels/cuda/linear.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>

#include "core/check.h"
#include "core/cuda_check.h"
#include "kernels/cuda/conv2d_kernels.h"

namespace ladder::cuda {
namespace {

void check_sizes(const char* op, int64_t m, int cin, int cout) {
  LADDER_CHECK(m >= 0 && cin > 0 && cout > 0, op, ": bad size ", m, "x", cin, "→", cout);
  LADDER_CHECK(m <= INT_MAX, op, ": ", m, " rows is more than cuBLAS's int dimensions hold");
}

// C = alpha·op(A)·op(B) + beta·C in column-major terms (see the mapping above).
template <class T>
void gemm(CublasHandle& cublas, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          const T* a, int lda, const T* b, int ldb, float beta, T* c, int ldc) {
  const float alpha = 1.0f;
  constexpr cudaDataType type = cublas_data_type<T>();
  LADDER_CUBLAS_CHECK(cublasGemmEx(cublas.get(), ta, tb, m, n, k, &alpha, a, type, lda, b, type,
                                   ldb, &beta, c, type, ldc, cublas_compute_type<T>(),
                                   CUBLAS_GEMM_DEFAULT));
}

}  // namespace

template <class T>
void linear_forward(CublasHandle& cublas, int64_t m, int cin, int cout, const T* x, const T* w,
                    const T* b, T* y, cudaStream_t stream) {
  check_sizes("linear_forward", m, cin, cout);
  if (m == 0) return;
  cublas.set_stream(stream);
  gemm<T>(cublas, CUBLAS_OP_T, CUBLAS_OP_N, cout, int(m), cin, w, cin, x, cin, 0.0f, y, cout);
  if (b != nullptr) detail::bias_add<T>(m, cout, b, y, stream);
}

int64_t linear_backward_scratch_floats(int64_t m, int cout) {
  return int64_t(detail::bias_grad_chunks(m)) * cout;
}

template <class T>
void linear_backward(CublasHandle& cublas, int64_t m, int cin, int cout, const T* x,
                     const T* w, const T* dy, T* dx, T* dw, T* db, float* scratch,
                     cudaStream_t stream) {
  check_sizes("linear_backward", m, cin, cout);
  LADDER_CHECK(db == nullptr || scratch != nullptr, "linear_backward: db needs a scratch");
  if (m == 0) return;  // dx is empty; dw and db gain nothing
  cublas.set_stream(stream);
  gemm<T>(cublas, CUBLAS_OP_N, CUBLAS_OP_N, cin, int(m), cout, w, cin, dy, cout, 0.0f, dx, cin);
  gemm<T>(cublas, CUBLAS_OP_N, CUBLAS_OP_T, cin, cout, int(m), x, cin, dy, cout, 1.0f, dw, cin);
  if (db != nullptr) detail::bias_grad_accumulate<T>(m, cout, dy, scratch, db, stream);
}

#define LADDER_INSTANTIATE(T)                                                                 \
  template void linear_forward<T>(CublasHandle&, int64_t, int, int, const T*, const T*,       \
                                  const T*, T*, cudaStream_t);                                \
  template void linear_backward<T>(CublasHandle&, int64_t, int, int, const T*, const T*,      \
                                   const T*, T*, T*, T*, float*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(__nv_bfloat16)
LADDER_INSTANTIATE(__half)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
