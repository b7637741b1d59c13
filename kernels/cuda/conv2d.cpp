// cuDNN convolutions; see conv2d.h for the contract and docs/CUDA.md (Convolutions) for the design.
//
// How a call runs:
//   1. The batch is split into chunks whose activations stay under cuDNN's 2^31-element limit
//      per legacy tensor descriptor (one chunk except for very large micro-batches at 1024²).
//   2. Each chunk's shape has a Plan (descriptors + per-pass algorithm), made at first use and
//      cached in a map keyed by (shape, dtype). The algorithm of a pass is picked once, from
//      cudnnGet*Algorithm_v7 (heuristics, no benchmarking: no allocations, no timing noise).
//   3. One scratch request covers the cuDNN workspace, the embedded filter (asymmetric
//      padding only) and the bias-gradient partials; the scratch buffer only ever grows.
//
// Asymmetric padding. cudnnSetConvolution2dDescriptor has one pad per dimension, applied to
// both sides. Per dimension, with pads (lo, hi) and P = max(lo, hi), the convolution with
// kernel K and pads (lo, hi) equals the convolution with symmetric pad P and a kernel of
// K + (P − lo) + (P − hi) taps whose first P − lo and last P − hi taps are zero:
//   - output o of stride s reads padded rows s·o − P … s·o − P + K' − 1; the zero taps cover the
//     first P − lo of them, so the real taps read s·o − lo … s·o − lo + K − 1, as wanted;
//   - the output count is (H + 2P − K')/s + 1 = (H + lo + hi − K)/s + 1, the same.
// For the Downsample (K 3, stride 2, pads top/left 0, bottom/right 1): P = 1, a 4×4 kernel with
// a zero first row and column. Forward and backward data run on the embedded filter (built per
// call by a tiny kernel: Cout·16·Cin elements); backward filter computes the 4×4 gradient into
// scratch and adds its real 3×3 taps into dw. No activation is copied or padded; the price
// is 16/9 of the Downsample's convolution FLOPs (~2% of the autoencoder's FLOPs). A tap that
// multiplies a zero weight only reads in-image values or cuDNN's zero padding, so results are
// exact unless x holds Inf/NaN (then 0·Inf = NaN may appear where the true convolution would
// not look; a diverged step is skipped either way).
#include "kernels/cuda/conv2d.h"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <vector>

#include "core/check.h"
#include "core/cuda_check.h"
#include "kernels/cuda/conv2d_kernels.h"

namespace ladder::cuda {
namespace {

template <class T>
cudnnDataType_t cudnn_type();
template <>
cudnnDataType_t cudnn_type<float>() {
  return CUDNN_DATA_FLOAT;
}
template <>
cudnnDataType_t cudnn_type<__nv_bfloat16>() {
  return CUDNN_DATA_BFLOAT16;
}
template <>
cudnnDataType_t cudnn_type<__half>() {
  return CUDNN_DATA_HALF;
}

enum Pass { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };
const char* pass_name(Pass pass) {
  switch (pass) {
    case kForward: return "forward";
    case kBackwardData: return "backward data";
    case kBackwardFilter: return "backward filter";
  }
  return "?";
}

// The algorithm picked for one pass of one plan.
struct Choice {
  bool chosen = false;
  int algo = 0;  // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

struct Plan {
  TensorDescriptor x, y;
  FilterDescriptor w;                      // the (possibly embedded) filter
  std::array<ConvolutionDescriptor, 3> conv;  // one per pass: the math type is per algorithm
  std::array<Choice, 3> choice;
  bool embedded = false;
  detail::FilterEmbedding embedding{};
};

// (n, h, w, cin, cout, kernel, stride, pads ×4, dtype)
using PlanKey = std::array<int, 13>;

constexpr int64_t kMaxDescriptorElements = std::numeric_limits<int32_t>::max();
constexpr size_t kAlign = 256;

size_t align_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Scratch for the embedded filter (or its gradient); 0 when the padding is symmetric.
template <class T>
size_t embedded_filter_bytes(const Plan& plan) {
  if (!plan.embedded) return 0;
  const detail::FilterEmbedding& e = plan.embedding;
  return size_t(e.cout) * size_t(e.kh) * size_t(e.kw) * size_t(e.cin) * sizeof(T);
}

void check_dims(const Conv2dDims& d) {
  LADDER_CHECK(d.n > 0 && d.h > 0 && d.w > 0 && d.cin > 0 && d.cout > 0,
               "cuda conv2d: bad size");
  LADDER_CHECK(d.kernel_h > 0 && d.kernel_w > 0 && d.stride > 0, "cuda conv2d: bad kernel ", d.kernel_h, "x",
               d.kernel_w, " or stride ", d.stride);
  LADDER_CHECK(d.pad_top >= 0 && d.pad_left >= 0 && d.pad_bottom >= 0 && d.pad_right >= 0,
               "cuda conv2d: negative padding");
  LADDER_CHECK(d.h + d.pad_top + d.pad_bottom >= d.kernel_h &&
                   d.w + d.pad_left + d.pad_right >= d.kernel_w,
               "cuda conv2d: kernel ", d.kernel_h, "x", d.kernel_w, " larger than the padded input ", d.h, "x",
               d.w);
}

// Images per chunk so that x and y of a chunk stay under 2^31 elements.
int images_per_chunk(const Conv2dDims& d) {
  const int64_t per_image = std::max(int64_t(d.h) * d.w * d.cin,
                                     int64_t(d.out_h()) * d.out_w() * d.cout);
  LADDER_CHECK(per_image <= kMaxDescriptorElements, "cuda conv2d: one image of ", d.h, "x",
               d.w, "x", d.cin, " -> ", d.out_h(), "x", d.out_w(), "x", d.cout,
               " exceeds cuDNN's 2^31-element tensor limit");
  return int(std::min<int64_t>(d.n, kMaxDescriptorElements / per_image));
}

}  // namespace

class CudnnConv2d::Impl {
 public:
  Impl(CudnnHandle& handle, DeviceAllocator& allocator, Options options)
      : handle_(handle), allocator_(allocator), options_(options) {}

  template <class T>
  void forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y,
               cudaStream_t stream);
  template <class T>
  void backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx, cudaStream_t stream);
  template <class T>
  void backward_filter(const Conv2dDims& d, const T* x, const T* dy, T* dw, T* db,
                       cudaStream_t stream);

  int64_t cached_plans() const { return int64_t(plans_.size()); }
  int64_t scratch_bytes() const { return scratch_.bytes(); }

 private:
  // One chunk of the batch: images [first, first + plan's n).
  struct Chunk {
    int first;
    Plan* plan;
  };

  Plan& plan_for(const Conv2dDims& d, cudnnDataType_t type);
  void choose(Plan& plan, Pass pass, bool fp32);
  // The chunks of d's batch, each with its plan and the pass's algorithm chosen.
  std::vector<Chunk> chunks_for(const Conv2dDims& d, cudnnDataType_t type, Pass pass);
  static size_t max_workspace(const std::vector<Chunk>& chunks, Pass pass);
  // At least `bytes` of device scratch, valid for work enqueued after this call.
  unsigned char* scratch(size_t bytes);

  CudnnHandle& handle_;
  DeviceAllocator& allocator_;
  Options options_;
  std::map<PlanKey, Plan> plans_;
  DeviceBuffer<unsigned char> scratch_;
};

Plan& CudnnConv2d::Impl::plan_for(const Conv2dDims& d, cudnnDataType_t type) {
  const PlanKey key{d.n,      d.h,       d.w,        d.cin,        d.cout,       d.kernel_h, d.kernel_w,
                    d.stride, d.pad_top, d.pad_left, d.pad_bottom, d.pad_right, int(type)};
  auto found = plans_.find(key);
  if (found != plans_.end()) return found->second;

  Plan plan;
  // Symmetric padding per dimension, with the kernel zero-embedded when the sides differ.
  const int pad_h = std::max(d.pad_top, d.pad_bottom);
  const int pad_w = std::max(d.pad_left, d.pad_right);
  plan.embedding.cout = d.cout;
  plan.embedding.cin = d.cin;
  plan.embedding.real_h = d.kernel_h;
  plan.embedding.real_w = d.kernel_w;
  plan.embedding.kh = d.kernel_h + 2 * pad_h - d.pad_top - d.pad_bottom;
  plan.embedding.kw = d.kernel_w + 2 * pad_w - d.pad_left - d.pad_right;
  plan.embedding.off_h = pad_h - d.pad_top;
  plan.embedding.off_w = pad_w - d.pad_left;
  plan.embedded = plan.embedding.kh != d.kernel_h || plan.embedding.kw != d.kernel_w;

  const int ho = d.out_h(), wo = d.out_w();
  plan.x.set_nhwc(type, d.n, d.h, d.w, d.cin);
  plan.y.set_nhwc(type, d.n, ho, wo, d.cout);
  plan.w.set_krsc(type, d.cout, plan.embedding.kh, plan.embedding.kw, d.cin);
  // fp32: FMA only (no TF32) so that results match the CPU to ~1e-6; bf16 and fp16: tensor
  // cores. The compute type is fp32 for every data type (for fp16 that is cuDNN's
  // PSEUDO_HALF_CONFIG: fp16 tensors, fp32 accumulation), so sums never round to 16 bits.
  const cudnnMathType_t math =
      type == CUDNN_DATA_FLOAT ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
  for (ConvolutionDescriptor& conv : plan.conv) {
    conv.set_2d(pad_h, pad_w, d.stride, d.stride, CUDNN_DATA_FLOAT);
    conv.set_math_type(math);
  }
  int n = 0, c = 0, h = 0, w = 0;
  LADDER_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(plan.conv[kForward].get(),
                                                           plan.x.get(), plan.w.get(), &n, &c,
                                                           &h, &w));
  LADDER_CHECK(n == d.n && c == d.cout && h == ho && w == wo,
               "cuda conv2d: cuDNN output shape ", n, "x", h, "x", w, "x", c, " differs from ",
               d.n, "x", ho, "x", wo, "x", d.cout);
  return plans_.emplace(key, std::move(plan)).first->second;
}

namespace {

// Walks the heuristics' candidates (best first) and returns the first usable one: status
// SUCCESS, fp32 without tensor-op math, workspace within the limit; deterministic ones first
// when preferred. `workspace(perf, math, &bytes)` sets the descriptor's math type and asks
// cuDNN for the workspace, returning false if cuDNN refuses the combination.
template <class Perf, class WorkspaceFn>
bool pick(const std::vector<Perf>& perfs, bool fp32, const CudnnConv2d::Options& options,
          WorkspaceFn workspace, Choice* out) {
  for (int round = options.prefer_deterministic ? 0 : 1; round < 2; ++round) {
    for (const Perf& perf : perfs) {
      if (perf.status != CUDNN_STATUS_SUCCESS) continue;
      if (round == 0 && perf.determinism != CUDNN_DETERMINISTIC) continue;
      // cuDNN reports FMA for fp32 when the descriptor forbids tensor ops; DEFAULT is accepted
      // too but the descriptor keeps FMA, so fp32 never runs as TF32.
      if (fp32 && perf.mathType != CUDNN_FMA_MATH && perf.mathType != CUDNN_DEFAULT_MATH)
        continue;
      const cudnnMathType_t math = fp32 ? CUDNN_FMA_MATH : perf.mathType;
      size_t bytes = 0;
      if (!workspace(perf, math, &bytes)) continue;
      if (int64_t(bytes) > options.workspace_limit_bytes) continue;
      out->chosen = true;
      out->algo = int(perf.algo);
      out->math = math;
      out->workspace = bytes;
      return true;
    }
  }
  return false;
}

}  // namespace

void CudnnConv2d::Impl::choose(Plan& plan, Pass pass, bool fp32) {
  Choice& choice = plan.choice[pass];
  if (choice.chosen) return;
  cudnnHandle_t h = handle_.get();
  ConvolutionDescriptor& conv = plan.conv[pass];
  int max_count = 0, returned = 0;
  bool ok = false;
  switch (pass) {
    case kForward: {
      LADDER_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perfs(std::max(1, max_count));
      LADDER_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
          h, plan.x.get(), plan.w.get(), conv.get(), plan.y.get(), int(perfs.size()),
          &returned, perfs.data()));
      perfs.resize(std::max(0, returned));
      ok = pick(perfs, fp32, options_,
                [&](const cudnnConvolutionFwdAlgoPerf_t& perf, cudnnMathType_t math,
                    size_t* bytes) {
                  conv.set_math_type(math);
                  return cudnnGetConvolutionForwardWorkspaceSize(h, plan.x.get(), plan.w.get(),
                                                                 conv.get(), plan.y.get(),
                                                                 perf.algo, bytes) ==
                         CUDNN_STATUS_SUCCESS;
                },
                &choice);
      break;
    }
    case kBackwardData: {
      LADDER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perfs(std::max(1, max_count));
      LADDER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, plan.w.get(), plan.y.get(), conv.get(), plan.x.get(), int(perfs.size()),
          &returned, perfs.data()));
      perfs.resize(std::max(0, returned));
      ok = pick(perfs, fp32, options_,
                [&](const cudnnConvolutionBwdDataAlgoPerf_t& perf, cudnnMathType_t math,
                    size_t* bytes) {
                  conv.set_math_type(math);
                  return cudnnGetConvolutionBackwardDataWorkspaceSize(
                             h, plan.w.get(), plan.y.get(), conv.get(), plan.x.get(),
                             perf.algo, bytes) == CUDNN_STATUS_SUCCESS;
                },
                &choice);
      break;
    }
    case kBackwardFilter: {
      LADDER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perfs(std::max(1, max_count));
      LADDER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, plan.x.get(), plan.y.get(), conv.get(), plan.w.get(), int(perfs.size()),
          &returned, perfs.data()));
      perfs.resize(std::max(0, returned));
      ok = pick(perfs, fp32, options_,
                [&](const cudnnConvolutionBwdFilterAlgoPerf_t& perf, cudnnMathType_t math,
                    size_t* bytes) {
                  conv.set_math_type(math);
                  return cudnnGetConvolutionBackwardFilterWorkspaceSize(
                             h, plan.x.get(), plan.y.get(), conv.get(), plan.w.get(),
                             perf.algo, bytes) == CUDNN_STATUS_SUCCESS;
                },
                &choice);
      break;
    }
  }
  if (!ok) {
    LADDER_FAIL("cuda conv2d: cuDNN offers no ", pass_name(pass), " algorithm for cout ",
                plan.embedding.cout, ", cin ", plan.embedding.cin, ", kernel ",
                plan.embedding.kh, "x", plan.embedding.kw, " within a workspace of ",
                options_.workspace_limit_bytes, " bytes (", returned, " candidates)");
  }
  // The descriptor must carry the chosen algorithm's math type (the loop may have tried others).
  conv.set_math_type(choice.math);
}

std::vector<CudnnConv2d::Impl::Chunk> CudnnConv2d::Impl::chunks_for(const Conv2dDims& d,
                                                                    cudnnDataType_t type,
                                                                    Pass pass) {
  check_dims(d);
  // As few chunks as the limit allows, of balanced sizes: 16 images at most 15 a chunk run as
  // 8 + 8 (one plan, no one-image call), not 15 + 1.
  const int most = images_per_chunk(d);
  const int count = (d.n + most - 1) / most;
  const int per_chunk = (d.n + count - 1) / count;
  std::vector<Chunk> chunks;
  for (int first = 0; first < d.n; first += per_chunk) {
    Conv2dDims part = d;
    part.n = std::min(per_chunk, d.n - first);
    Plan& plan = plan_for(part, type);
    choose(plan, pass, type == CUDNN_DATA_FLOAT);
    chunks.push_back({first, &plan});
  }
  return chunks;
}

size_t CudnnConv2d::Impl::max_workspace(const std::vector<Chunk>& chunks, Pass pass) {
  size_t bytes = 0;
  for (const Chunk& chunk : chunks) bytes = std::max(bytes, chunk.plan->choice[pass].workspace);
  return bytes;
}

unsigned char* CudnnConv2d::Impl::scratch(size_t bytes) {
  if (bytes == 0) return nullptr;
  if (int64_t(bytes) > scratch_.bytes()) {
    // Rare (a larger shape's first use): wait for work that may still read the old buffer,
    // free it first (lower peak), then allocate with some headroom.
    LADDER_CUDA_CHECK(cudaDeviceSynchronize());
    scratch_.reset();
    const int64_t grown = int64_t(bytes) + int64_t(bytes) / 8;
    scratch_ = DeviceBuffer<unsigned char>(allocator_, int64_t(align_up(size_t(grown))));
  }
  return scratch_.data();
}

template <class T>
void CudnnConv2d::Impl::forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y,
                                cudaStream_t stream) {
  LADDER_CHECK(x != nullptr && w != nullptr && y != nullptr, "cuda conv2d forward: null pointer");
  const std::vector<Chunk> chunks = chunks_for(d, cudnn_type<T>(), kForward);
  const Plan& first = *chunks.front().plan;
  const size_t workspace = max_workspace(chunks, kForward);
  const size_t filter_bytes = embedded_filter_bytes<T>(first);
  unsigned char* base = scratch(align_up(workspace) + align_up(filter_bytes));
  void* work = workspace > 0 ? base : nullptr;
  handle_.set_stream(stream);
  const T* filter = w;
  if (first.embedded) {
    T* big = reinterpret_cast<T*>(base + align_up(workspace));
    detail::embed_filter(first.embedding, w, big, stream);
    filter = big;
  }
  const float alpha = 1.f, beta = 0.f;
  const int64_t x_image = int64_t(d.h) * d.w * d.cin;
  const int64_t y_image = int64_t(d.out_h()) * d.out_w() * d.cout;
  for (const Chunk& chunk : chunks) {
    const Plan& plan = *chunk.plan;
    const Choice& choice = plan.choice[kForward];
    LADDER_CUDNN_CHECK(cudnnConvolutionForward(
        handle_.get(), &alpha, plan.x.get(), x + chunk.first * x_image, plan.w.get(), filter,
        plan.conv[kForward].get(), cudnnConvolutionFwdAlgo_t(choice.algo), work,
        choice.workspace, &beta, plan.y.get(), y + chunk.first * y_image));
  }
  if (b != nullptr) detail::bias_add(int64_t(d.n) * d.out_h() * d.out_w(), d.cout, b, y, stream);
}

template <class T>
void CudnnConv2d::Impl::backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx,
                                      cudaStream_t stream) {
  LADDER_CHECK(dy != nullptr && w != nullptr && dx != nullptr,
               "cuda conv2d backward_data: null pointer");
  const std::vector<Chunk> chunks = chunks_for(d, cudnn_type<T>(), kBackwardData);
  const Plan& first = *chunks.front().plan;
  const size_t workspace = max_workspace(chunks, kBackwardData);
  const size_t filter_bytes = embedded_filter_bytes<T>(first);
  unsigned char* base = scratch(align_up(workspace) + align_up(filter_bytes));
  void* work = workspace > 0 ? base : nullptr;
  handle_.set_stream(stream);
  const T* filter = w;
  if (first.embedded) {
    T* big = reinterpret_cast<T*>(base + align_up(workspace));
    detail::embed_filter(first.embedding, w, big, stream);
    filter = big;
  }
  // beta = 0: dx is written, never read (cuDNN does not read the output when beta is zero).
  const float alpha = 1.f, beta = 0.f;
  const int64_t x_image = int64_t(d.h) * d.w * d.cin;
  const int64_t y_image = int64_t(d.out_h()) * d.out_w() * d.cout;
  for (const Chunk& chunk : chunks) {
    const Plan& plan = *chunk.plan;
    const Choice& choice = plan.choice[kBackwardData];
    LADDER_CUDNN_CHECK(cudnnConvolutionBackwardData(
        handle_.get(), &alpha, plan.w.get(), filter, plan.y.get(), dy + chunk.first * y_image,
        plan.conv[kBackwardData].get(), cudnnConvolutionBwdDataAlgo_t(choice.algo), work,
        choice.workspace, &beta, plan.x.get(), dx + chunk.first * x_image));
  }
}

template <class T>
void CudnnConv2d::Impl::backward_filter(const Conv2dDims& d, const T* x, const T* dy, T* dw,
                                        T* db, cudaStream_t stream) {
  LADDER_CHECK(x != nullptr && dy != nullptr && dw != nullptr,
               "cuda conv2d backward_filter: null pointer");
  const std::vector<Chunk> chunks = chunks_for(d, cudnn_type<T>(), kBackwardFilter);
  const Plan& first = *chunks.front().plan;
  const int64_t pixels = int64_t(d.n) * d.out_h() * d.out_w();
  const size_t workspace = max_workspace(chunks, kBackwardFilter);
  const size_t filter_bytes = embedded_filter_bytes<T>(first);
  const size_t partial_bytes =
      db != nullptr ? size_t(detail::bias_grad_chunks(pixels)) * d.cout * sizeof(float) : 0;
  unsigned char* base =
      scratch(align_up(workspace) + align_up(filter_bytes) + align_up(partial_bytes));
  void* work = workspace > 0 ? base : nullptr;
  handle_.set_stream(stream);
  // Without embedding, cuDNN accumulates straight into dw (beta = 1). With it, the embedded
  // filter's gradient goes to scratch (beta = 0 for the first chunk, 1 after) and its real
  // taps are then added into dw.
  T* grad = first.embedded ? reinterpret_cast<T*>(base + align_up(workspace)) : dw;
  const float alpha = 1.f;
  const int64_t x_image = int64_t(d.h) * d.w * d.cin;
  const int64_t y_image = int64_t(d.out_h()) * d.out_w() * d.cout;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Plan& plan = *chunks[i].plan;
    const Choice& choice = plan.choice[kBackwardFilter];
    const float beta = first.embedded && i == 0 ? 0.f : 1.f;
    LADDER_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
        handle_.get(), &alpha, plan.x.get(), x + chunks[i].first * x_image, plan.y.get(),
        dy + chunks[i].first * y_image, plan.conv[kBackwardFilter].get(),
        cudnnConvolutionBwdFilterAlgo_t(choice.algo), work, choice.workspace, &beta,
        plan.w.get(), grad));
  }
  if (first.embedded) detail::accumulate_embedded_filter_grad(first.embedding, grad, dw, stream);
  if (db != nullptr) {
    float* partials = reinterpret_cast<float*>(base + align_up(workspace) + align_up(filter_bytes));
    detail::bias_grad_accumulate(pixels, d.cout, dy, partials, db, stream);
  }
}

// ---- CudnnConv2d -------------------------------------------------------------------------

CudnnConv2d::CudnnConv2d(CudnnHandle& handle, DeviceAllocator& allocator)
    : CudnnConv2d(handle, allocator, Options()) {}

CudnnConv2d::CudnnConv2d(CudnnHandle& handle, DeviceAllocator& allocator, Options options)
    : impl_(std::make_unique<Impl>(handle, allocator, options)) {}

CudnnConv2d::~CudnnConv2d() = default;
CudnnConv2d::CudnnConv2d(CudnnConv2d&&) noexcept = default;
CudnnConv2d& CudnnConv2d::operator=(CudnnConv2d&&) noexcept = default;

template <class T>
void CudnnConv2d::forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y,
                          cudaStream_t stream) {
  impl_->forward(d, x, w, b, y, stream);
}

template <class T>
void CudnnConv2d::backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx,
                                cudaStream_t stream) {
  impl_->backward_data(d, dy, w, dx, stream);
}

template <class T>
void CudnnConv2d::backward_filter(const Conv2dDims& d, const T* x, const T* dy, T* dw, T* db,
                                  cudaStream_t stream) {
  impl_->backward_filter(d, x, dy, dw, db, stream);
}

int64_t CudnnConv2d::cached_plans() const { return impl_->cached_plans(); }
int64_t CudnnConv2d::scratch_bytes() const { return impl_->scratch_bytes(); }

#define LADDER_INSTANTIATE(T)                                                                 \
  template void CudnnConv2d::forward<T>(const Conv2dDims&, const T*, const T*, const T*, T*,   \
                                        cudaStream_t);                                         \
  template void CudnnConv2d::backward_data<T>(const Conv2dDims&, const T*, const T*, T*,       \
                                              cudaStream_t);                                   \
  template void CudnnConv2d::backward_filter<T>(const Conv2dDims&, const T*, const T*, T*, T*, \
                                                cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(__nv_bfloat16)
LADDER_INSTANTIATE(__half)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
