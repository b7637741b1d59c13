// The cuBLAS linear layer (kernels/cuda/linear.h) and multi-head attention
// (kernels/cuda/attention.h) against the CPU reference (ladder::cpu::linear_*,
// attention_*, run in double on the same inputs, rounded to the device type first):
// relative error < 1e-4 (fp32, no TF32) and < 1e-2 (bf16, fp16), no NaN. Shapes are odd on
// purpose: M = 37 rows of 20 → 12 features (and more), attention with N = 2 images of
// L = 25 tokens, C = 64 channels in 1 and 2 heads, C = 48 in 3 heads (more heads than
// images: the other batching of the GEMMs), and L = 130 (more columns than softmax threads).
// Conventions: outputs and activation gradients are written (NaN-filled buffers), dw and db
// accumulate (a second call adds the same again), the attention backward is bitwise
// repeatable. Every test skips itself when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/rng.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cublas_handle.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/linear.h"
#include "tests/gpu/gpu_compare.h"

namespace ladder::cuda {
namespace {

using gpu_test::bf16_t;
using gpu_test::Dtype;
using gpu_test::expect_close;
using gpu_test::Floats;
using gpu_test::Gpu;
using gpu_test::half_t;
using gpu_test::random_floats;
using gpu_test::representable;
using gpu_test::to_doubles;

#define LADDER_REQUIRE_GPU() \
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem()

template <class T>
class CudaLinearAttention : public ::testing::Test {};
using DeviceTypes = ::testing::Types<float, bf16_t, half_t>;
TYPED_TEST_SUITE(CudaLinearAttention, DeviceTypes);

// ---- Linear ------------------------------------------------------------------------------
struct LinearCase {
  int64_t m;
  int cin, cout;
  bool bias;
};
// 300 rows: two chunks in the bias-gradient reduction.
const LinearCase kLinearCases[] = {
    {37, 20, 12, true}, {37, 20, 12, false}, {1, 3, 5, true}, {300, 64, 48, true}};

template <class T>
std::string linear_name(const std::string& what, const LinearCase& c) {
  return what + " " + Dtype<T>::kName + " M=" + std::to_string(c.m) + " Cin=" +
         std::to_string(c.cin) + " Cout=" + std::to_string(c.cout) +
         (c.bias ? " bias" : " no bias");
}

TYPED_TEST(CudaLinearAttention, Linear) {
  LADDER_REQUIRE_GPU();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  CublasHandle cublas(gpu.allocator, gpu.stream);
  Rng rng(21, 0);
  for (const LinearCase& c : kLinearCases) {
    const size_t m = size_t(c.m), cin = size_t(c.cin), cout = size_t(c.cout);
    const Floats x = representable<T>(random_floats(m * cin, rng));
    const Floats w = representable<T>(random_floats(cout * cin, rng, -0.5, 0.5));
    const Floats b = representable<T>(random_floats(cout, rng));
    const Floats dy = representable<T>(random_floats(m * cout, rng));
    const Floats dw0 = representable<T>(random_floats(cout * cin, rng));  // accumulated into
    const Floats db0 = representable<T>(random_floats(cout, rng));

    // CPU reference in double.
    const std::vector<double> xd = to_doubles(x), wd = to_doubles(w), bd = to_doubles(b),
                              dyd = to_doubles(dy);
    std::vector<double> y_ref(m * cout), dx_ref(m * cin);
    std::vector<double> dw_ref = to_doubles(dw0), db_ref = to_doubles(db0);
    cpu::linear_forward<double>(c.m, c.cin, c.cout, xd.data(), wd.data(),
                                c.bias ? bd.data() : nullptr, y_ref.data());
    cpu::linear_backward<double>(c.m, c.cin, c.cout, xd.data(), wd.data(), dyd.data(),
                                 dx_ref.data(), dw_ref.data(), c.bias ? db_ref.data() : nullptr);

    auto x_dev = gpu.upload<T>(x), w_dev = gpu.upload<T>(w), b_dev = gpu.upload<T>(b);
    auto dy_dev = gpu.upload<T>(dy), dw_dev = gpu.upload<T>(dw0), db_dev = gpu.upload<T>(db0);
    auto y_dev = gpu.garbage<T>(m * cout), dx_dev = gpu.garbage<T>(m * cin);
    DeviceBuffer<float> scratch(gpu.allocator, linear_backward_scratch_floats(c.m, c.cout));

    linear_forward<T>(cublas, c.m, c.cin, c.cout, x_dev.data(), w_dev.data(),
                      c.bias ? b_dev.data() : nullptr, y_dev.data(), gpu.stream);
    expect_close(linear_name<T>("linear_forward y", c), gpu.download(y_dev), y_ref, bound);

    linear_backward<T>(cublas, c.m, c.cin, c.cout, x_dev.data(), w_dev.data(), dy_dev.data(),
                       dx_dev.data(), dw_dev.data(), c.bias ? db_dev.data() : nullptr,
                       c.bias ? scratch.data() : nullptr, gpu.stream);
    expect_close(linear_name<T>("linear_backward dx", c), gpu.download(dx_dev), dx_ref, bound);
    expect_close(linear_name<T>("linear_backward dw (1 call)", c), gpu.download(dw_dev), dw_ref,
                 bound);
    if (c.bias)
      expect_close(linear_name<T>("linear_backward db (1 call)", c), gpu.download(db_dev),
                   db_ref, bound);
    else  // no db: its buffer is untouched
      EXPECT_EQ(gpu.download(db_dev), db0) << linear_name<T>("linear_backward db untouched", c);

    // A second call adds the same gradient again; dx is written again (NaN first).
    cpu::linear_backward<double>(c.m, c.cin, c.cout, xd.data(), wd.data(), dyd.data(),
                                 dx_ref.data(), dw_ref.data(), c.bias ? db_ref.data() : nullptr);
    LADDER_CUDA_CHECK(cudaMemsetAsync(dx_dev.data(), 0xFF, dx_dev.bytes(), gpu.stream));
    linear_backward<T>(cublas, c.m, c.cin, c.cout, x_dev.data(), w_dev.data(), dy_dev.data(),
                       dx_dev.data(), dw_dev.data(), c.bias ? db_dev.data() : nullptr,
                       c.bias ? scratch.data() : nullptr, gpu.stream);
    expect_close(linear_name<T>("linear_backward dx (2nd call)", c), gpu.download(dx_dev),
                 dx_ref, bound);
    expect_close(linear_name<T>("linear_backward dw (2 calls)", c), gpu.download(dw_dev), dw_ref,
                 bound);
    if (c.bias)
      expect_close(linear_name<T>("linear_backward db (2 calls)", c), gpu.download(db_dev),
                   db_ref, bound);
  }
}

// ---- Attention ---------------------------------------------------------------------------
struct AttentionCase {
  int n, tokens, channels, heads;
};
const AttentionCase kAttentionCases[] = {
    {2, 25, 64, 1},  // heads < N: batch over images, loop over heads
    {2, 25, 64, 2},  // heads = N
    {2, 25, 48, 3},  // heads > N: batch over heads, loop over images; d = 16
    {1, 130, 32, 2}, // rows longer than the softmax block
};

template <class T>
std::string attention_name(const std::string& what, const AttentionCase& c) {
  return what + " " + Dtype<T>::kName + " N=" + std::to_string(c.n) + " L=" +
         std::to_string(c.tokens) + " C=" + std::to_string(c.channels) + " heads=" +
         std::to_string(c.heads);
}

TYPED_TEST(CudaLinearAttention, Attention) {
  LADDER_REQUIRE_GPU();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  CublasHandle cublas(gpu.allocator, gpu.stream);
  Rng rng(22, 0);
  for (const AttentionCase& c : kAttentionCases) {
    AttentionDims d;
    d.n = c.n, d.tokens = c.tokens, d.channels = c.channels, d.heads = c.heads;
    const size_t act = size_t(c.n) * c.tokens * c.channels;
    const size_t probs = size_t(c.n) * c.heads * c.tokens * c.tokens;
    // Scores of a few units: softmax rows neither flat nor one-hot.
    const Floats q = representable<T>(random_floats(act, rng, -2, 2));
    const Floats k = representable<T>(random_floats(act, rng, -2, 2));
    const Floats v = representable<T>(random_floats(act, rng));
    const Floats dout = representable<T>(random_floats(act, rng));

    const std::vector<double> qd = to_doubles(q), kd = to_doubles(k), vd = to_doubles(v),
                              doutd = to_doubles(dout);
    std::vector<double> o_ref(act), p_ref(probs), dq_ref(act), dk_ref(act), dv_ref(act);
    cpu::attention_forward<double>(d, qd.data(), kd.data(), vd.data(), p_ref.data(),
                                   o_ref.data());
    cpu::attention_backward<double>(d, qd.data(), kd.data(), vd.data(), p_ref.data(),
                                    doutd.data(), dq_ref.data(), dk_ref.data(), dv_ref.data());

    auto q_dev = gpu.upload<T>(q), k_dev = gpu.upload<T>(k), v_dev = gpu.upload<T>(v);
    auto dout_dev = gpu.upload<T>(dout);
    auto o_dev = gpu.garbage<T>(act);
    auto p_dev = gpu.garbage<float>(probs);
    auto dq_dev = gpu.garbage<T>(act), dk_dev = gpu.garbage<T>(act), dv_dev = gpu.garbage<T>(act);
    // Scratch content is garbage too: nothing may depend on it.
    DeviceBuffer<unsigned char> forward_scratch(gpu.allocator,
                                                attention_forward_scratch_bytes<T>(d));
    DeviceBuffer<unsigned char> backward_scratch(gpu.allocator,
                                                 attention_backward_scratch_bytes<T>(d));
    for (auto* s : {&forward_scratch, &backward_scratch})
      if (!s->empty())
        LADDER_CUDA_CHECK(cudaMemsetAsync(s->data(), 0xFF, s->bytes(), gpu.stream));

    attention_forward<T>(cublas, d, q_dev.data(), k_dev.data(), v_dev.data(), p_dev.data(),
                         o_dev.data(), forward_scratch.data(), gpu.stream);
    expect_close(attention_name<T>("attention_forward o", c), gpu.download(o_dev), o_ref,
                 bound);
    expect_close(attention_name<T>("attention_forward probs", c), gpu.download(p_dev), p_ref,
                 bound);

    attention_backward<T>(cublas, d, q_dev.data(), k_dev.data(), v_dev.data(), p_dev.data(),
                          dout_dev.data(), dq_dev.data(), dk_dev.data(), dv_dev.data(),
                          backward_scratch.data(), gpu.stream);
    const Floats dq = gpu.download(dq_dev), dk = gpu.download(dk_dev), dv = gpu.download(dv_dev);
    expect_close(attention_name<T>("attention_backward dq", c), dq, dq_ref, bound);
    expect_close(attention_name<T>("attention_backward dk", c), dk, dk_ref, bound);
    expect_close(attention_name<T>("attention_backward dv", c), dv, dv_ref, bound);

    // Again into NaN-filled gradients: the same bits (deterministic, everything written).
    for (auto* g : {&dq_dev, &dk_dev, &dv_dev})
      LADDER_CUDA_CHECK(cudaMemsetAsync(g->data(), 0xFF, g->bytes(), gpu.stream));
    attention_backward<T>(cublas, d, q_dev.data(), k_dev.data(), v_dev.data(), p_dev.data(),
                          dout_dev.data(), dq_dev.data(), dk_dev.data(), dv_dev.data(),
                          backward_scratch.data(), gpu.stream);
    const Floats dq2 = gpu.download(dq_dev), dk2 = gpu.download(dk_dev),
                 dv2 = gpu.download(dv_dev);
    EXPECT_EQ(0, std::memcmp(dq.data(), dq2.data(), dq.size() * sizeof(float)))
        << attention_name<T>("attention_backward dq repeat", c);
    EXPECT_EQ(0, std::memcmp(dk.data(), dk2.data(), dk.size() * sizeof(float)))
        << attention_name<T>("attention_backward dk repeat", c);
    EXPECT_EQ(0, std::memcmp(dv.data(), dv2.data(), dv.size() * sizeof(float)))
        << attention_name<T>("attention_backward dv repeat", c);
  }
}

// ---- Errors ------------------------------------------------------------------------------
TEST(CudaLinearAttentionErrors, BadArgumentsAndCublasFailures) {
  LADDER_REQUIRE_GPU();
  Gpu gpu;
  CublasHandle cublas(gpu.stream);
  // Sizes are checked before anything is enqueued.
  EXPECT_THROW(linear_forward<float>(cublas, 4, 0, 3, nullptr, nullptr, nullptr, nullptr,
                                     gpu.stream),
               Error);
  AttentionDims d;
  d.n = 1, d.tokens = 4, d.channels = 10, d.heads = 3;  // 10 channels do not split into 3
  EXPECT_THROW(attention_forward<float>(cublas, d, nullptr, nullptr, nullptr, nullptr, nullptr,
                                        nullptr, gpu.stream),
               Error);
  // A failed cuBLAS call names the call and the status.
  try {
    LADDER_CUBLAS_CHECK(cublasSetStream(nullptr, gpu.stream));
    ADD_FAILURE() << "cublasSetStream on a null handle did not fail";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("cublasSetStream"), std::string::npos) << message;
    EXPECT_NE(message.find("CUBLAS_STATUS_"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace ladder::cuda
