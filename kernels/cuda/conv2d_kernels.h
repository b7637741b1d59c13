// Why this file exists: the small CUDA kernels around the cuDNN convolutions (conv2d.cpp):
// bias add and bias gradient, and the zero-embedding of a filter that turns an asymmetric
// padding into a symmetric one (and its gradient's way back). Internal to kernels/cuda; T is
// float, __nv_bfloat16 or __half, arithmetic in fp32. All launches go on `stream` and are checked.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include <cstdint>

namespace ladder::cuda::detail {

// y (pixels, c) += b (c).
template <class T>
void bias_add(int64_t pixels, int c, const T* b, T* y, cudaStream_t stream);

// db (c) += Σ_p dy (p, c), summed in fp32 in a fixed order (deterministic): per chunk of
// pixels into partials (chunks, c), then over chunks. `partials` holds
// bias_grad_chunks(pixels) × c floats.
int bias_grad_chunks(int64_t pixels);
template <class T>
void bias_grad_accumulate(int64_t pixels, int c, const T* dy, float* partials, T* db,
                          cudaStream_t stream);

// A (Cout, RH, RW, Cin) filter placed at rows [off_h, off_h + RH), columns [off_w, off_w + RW)
// of a zero (Cout, KH, KW, Cin) filter.
struct FilterEmbedding {
  int cout, cin;      // the real filter's channels
  int real_h, real_w; // and its taps
  int kh, kw;         // the embedding filter
  int off_h, off_w;   // where the real taps sit in it
};

// big (Cout, KH, KW, Cin) = embed(w).
template <class T>
void embed_filter(const FilterEmbedding& e, const T* w, T* big, cudaStream_t stream);
// dw (Cout, RH, RW, Cin) += the real taps of big_grad (Cout, KH, KW, Cin).
template <class T>
void accumulate_embedded_filter_grad(const FilterEmbedding& e, const T* big_grad, T* dw,
                                     cudaStream_t stream);

}  // namespace ladder::cuda::detail

#endif  // LADDER_WITH_CUDA
