// Why this file exists: the diffusion UNet on the GPU against the CPU reference in fp32,
// bf16 and fp16: the same parameters (non-zero everywhere, the zero-initialised convs
// included), input and timesteps; the prediction, every parameter gradient and the input
// gradient compared. Skipped without a GPU.
//
// Bounds: fp32 differs from the CPU in summation order only (1e-4 output, 1e-3 gradients,
// relative L2); bf16/fp16 round every activation through ~25 layers: 2e-2 and 5e-2 are
// estimates, as for the autoencoder, to be confirmed on the first GPU run.
#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "config/config.h"
#include "core/rng.h"
#include "kernels/cuda/device_memory.h"
#include "model/cpu_backend.h"
#include "model/cuda_backend.h"
#include "model/diffusion_unet.h"
#include "train/device_parameters.h"

namespace ladder {
namespace {

#define LADDER_SKIP_WITHOUT_GPU()     \
  if (!cuda::cuda_device_available()) \
  GTEST_SKIP() << "no CUDA device: " << cuda::cuda_device_problem()

ModelConfig unet_config() {
  return load_config("", {"--model.kind", "diffusion_unet", "--model.in_channels", "4", "--model.res_blocks", "1",
                          "--model.channels", "16,32", "--model.attention_levels", "0,1",
                          "--model.head_channels", "0,16", "--model.norm_groups", "8"})
      .model;
}

// Initialised, then moved off zero everywhere (same on both devices).
void fill_parameters(ParamStore& store) {
  store.allocate();
  store.initialize(9);
  Rng rng(9, 1);
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] += static_cast<float>(0.03 * rng.normal());
}

double relative_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / norm);
}

template <class T>
class CudaUNet : public ::testing::Test {};
using Precisions = ::testing::Types<float, __nv_bfloat16, __half>;
TYPED_TEST_SUITE(CudaUNet, Precisions);

TYPED_TEST(CudaUNet, ForwardAndBackwardMatchTheCpu) {
  LADDER_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const double output_bound = std::is_same_v<T, float> ? 1e-4 : 2e-2;
  const double gradient_bound = std::is_same_v<T, float> ? 1e-3 : 5e-2;
  const Shape shape{2, 16, 16, 4};
  const std::vector<float> timesteps = {17.f, 640.f};
  std::vector<float> x(static_cast<size_t>(shape.numel())), dy(x.size());
  Rng rng(3, 0);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(rng.normal());
    dy[i] = static_cast<float>(rng.normal());
  }

  ParamStore cpu_store;
  CpuBackend cpu_backend;
  DiffusionUNet<CpuBackend> cpu(unet_config(), cpu_store, cpu_backend);
  fill_parameters(cpu_store);
  TensorF cpu_x, cpu_dy, want_y, want_dx;
  cpu_backend.load_values(x.data(), shape, cpu_x);
  cpu_backend.load_values(dy.data(), shape, cpu_dy);
  cpu_backend.to_host(cpu.forward(cpu_x, timesteps), want_y);
  cpu_backend.to_host(cpu.backward(cpu_dy), want_dx);
  const std::vector<float> want_grads(cpu_store.grads(), cpu_store.grads() + cpu_store.count());

  ParamStore store;
  cuda::DeviceAllocator allocator;
  cuda::CudaStream stream;
  CudaBackend<T> backend(allocator, stream);
  DiffusionUNet<CudaBackend<T>> gpu(unet_config(), store, backend);
  fill_parameters(store);
  DeviceParameters<T> params(allocator, store, stream);
  backend.set_parameters(params.values(), params.working(), params.grads());
  typename CudaBackend<T>::Tensor gpu_x, gpu_dy;
  backend.load_values(x.data(), shape, gpu_x);
  backend.load_values(dy.data(), shape, gpu_dy);
  TensorF y, dx;
  backend.to_host(gpu.forward(gpu_x, timesteps), y);
  backend.to_host(gpu.backward(gpu_dy), dx);
  std::vector<float> grads(static_cast<size_t>(params.count()));
  params.download_grads(grads.data(), stream);
  grads.resize(want_grads.size());

  EXPECT_LT(relative_l2(std::vector<float>(y.data(), y.data() + y.numel()),
                        std::vector<float>(want_y.data(), want_y.data() + want_y.numel())),
            output_bound);
  EXPECT_LT(relative_l2(std::vector<float>(dx.data(), dx.data() + dx.numel()),
                        std::vector<float>(want_dx.data(), want_dx.data() + want_dx.numel())),
            gradient_bound);
  EXPECT_LT(relative_l2(grads, want_grads), gradient_bound);
}

}  // namespace
}  // namespace ladder
