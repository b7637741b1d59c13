// The small kernels around the cuDNN convolutions; see conv2d_kernels.h.
#include "kernels/cuda/conv2d_kernels.h"

#include "kernels/cuda/common.cuh"

namespace ladder::cuda::detail {
namespace {

template <class T>
__global__ void bias_add_kernel(int64_t count, int c, const T* __restrict__ b,
                                T* __restrict__ y) {
  for (int64_t i = global_thread(); i < count; i += grid_stride()) {
    y[i] = from_float<T>(to_float(y[i]) + to_float(b[i % c]));
  }
}

// Block (32, 8): threadIdx.x walks channels (coalesced in NHWC), threadIdx.y pixels.
constexpr int kBiasChannels = 32;
constexpr int kBiasRows = 8;
constexpr int kMinPixelsPerChunk = 256;
constexpr int kMaxChunks = 512;

// partials (chunk, c) = Σ over the chunk's pixels of dy (p, c); gridDim.y = chunks.
template <class T>
__global__ void bias_grad_partial_kernel(int64_t pixels, int64_t per_chunk, int c,
                                         const T* __restrict__ dy,
                                         float* __restrict__ partials) {
  __shared__ float sums[kBiasRows][kBiasChannels];
  const int ch = blockIdx.x * kBiasChannels + threadIdx.x;
  const int64_t begin = blockIdx.y * per_chunk;
  const int64_t end = begin + per_chunk < pixels ? begin + per_chunk : pixels;
  float acc = 0.f;
  if (ch < c) {
    for (int64_t p = begin + threadIdx.y; p < end; p += kBiasRows) acc += to_float(dy[p * c + ch]);
  }
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && ch < c) {
    float total = 0.f;
    for (int r = 0; r < kBiasRows; ++r) total += sums[r][threadIdx.x];
    partials[int64_t(blockIdx.y) * c + ch] = total;
  }
}

// db (c) += Σ_chunk partials (chunk, c), chunks in order.
template <class T>
__global__ void bias_grad_finish_kernel(int chunks, int c, const float* __restrict__ partials,
                                        T* __restrict__ db) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  float total = 0.f;
  for (int k = 0; k < chunks; ++k) total += partials[int64_t(k) * c + ch];
  db[ch] = from_float<T>(to_float(db[ch]) + total);
}

// One thread per element of the big (Cout, KH, KW, Cin) filter.
template <class T>
__global__ void embed_filter_kernel(FilterEmbedding e, const T* __restrict__ w,
                                    T* __restrict__ big) {
  const int64_t count = int64_t(e.cout) * e.kh * e.kw * e.cin;
  for (int64_t i = global_thread(); i < count; i += grid_stride()) {
    const int ci = int(i % e.cin);
    int64_t rest = i / e.cin;
    const int s = int(rest % e.kw) - e.off_w;
    rest /= e.kw;
    const int r = int(rest % e.kh) - e.off_h;
    const int64_t co = rest / e.kh;
    const bool inside = r >= 0 && r < e.real_h && s >= 0 && s < e.real_w;
    big[i] = inside ? w[((co * e.real_h + r) * e.real_w + s) * e.cin + ci] : from_float<T>(0.f);
  }
}

// One thread per element of the real (Cout, RH, RW, Cin) filter gradient.
template <class T>
__global__ void accumulate_embedded_kernel(FilterEmbedding e, const T* __restrict__ big,
                                           T* __restrict__ dw) {
  const int64_t count = int64_t(e.cout) * e.real_h * e.real_w * e.cin;
  for (int64_t i = global_thread(); i < count; i += grid_stride()) {
    const int ci = int(i % e.cin);
    int64_t rest = i / e.cin;
    const int s = int(rest % e.real_w);
    rest /= e.real_w;
    const int r = int(rest % e.real_h);
    const int64_t co = rest / e.real_h;
    const T g = big[((co * e.kh + r + e.off_h) * e.kw + s + e.off_w) * e.cin + ci];
    dw[i] = from_float<T>(to_float(dw[i]) + to_float(g));
  }
}

}  // namespace

template <class T>
void bias_add(int64_t pixels, int c, const T* b, T* y, cudaStream_t stream) {
  const int64_t count = pixels * c;
  if (count == 0) return;
  bias_add_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(count, c, b, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

int bias_grad_chunks(int64_t pixels) {
  const int64_t chunks = (pixels + kMinPixelsPerChunk - 1) / kMinPixelsPerChunk;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(chunks, kMaxChunks)));
}

template <class T>
void bias_grad_accumulate(int64_t pixels, int c, const T* dy, float* partials, T* db,
                          cudaStream_t stream) {
  if (pixels == 0 || c == 0) return;
  const int chunks = bias_grad_chunks(pixels);
  const int64_t per_chunk = (pixels + chunks - 1) / chunks;
  const dim3 grid((c + kBiasChannels - 1) / kBiasChannels, chunks);
  const dim3 block(kBiasChannels, kBiasRows);
  bias_grad_partial_kernel<T><<<grid, block, 0, stream>>>(pixels, per_chunk, c, dy, partials);
  LADDER_CUDA_CHECK_LAUNCH();
  bias_grad_finish_kernel<T><<<(c + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      chunks, c, partials, db);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void embed_filter(const FilterEmbedding& e, const T* w, T* big, cudaStream_t stream) {
  const int64_t count = int64_t(e.cout) * e.kh * e.kw * e.cin;
  embed_filter_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(e, w, big);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void accumulate_embedded_filter_grad(const FilterEmbedding& e, const T* big_grad, T* dw,
                                     cudaStream_t stream) {
  const int64_t count = int64_t(e.cout) * e.real_h * e.real_w * e.cin;
  accumulate_embedded_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(e, big_grad, dw);
  LADDER_CUDA_CHECK_LAUNCH();
}

#define LADDER_INSTANTIATE(T)                                                                 \
  template void bias_add<T>(int64_t, int, const T*, T*, cudaStream_t);                         \
  template void bias_grad_accumulate<T>(int64_t, int, const T*, float*, T*, cudaStream_t);     \
  template void embed_filter<T>(const FilterEmbedding&, const T*, T*, cudaStream_t);           \
  template void accumulate_embedded_filter_grad<T>(const FilterEmbedding&, const T*, T*,       \
                                                   cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(__nv_bfloat16)
LADDER_INSTANTIATE(__half)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda::detail
