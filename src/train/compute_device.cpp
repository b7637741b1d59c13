// Why this file exists: the choice of ComputeDevice from run.device and train.precision.
#include "train/compute_device.h"

#include "train/resume.h"

#include "core/check.h"
#include "train/cpu_device.h"
#ifdef LADDER_WITH_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/device_memory.h"
#include "train/cuda_device.h"
#endif

namespace ladder {
namespace {

// Whether the model runs on a GPU; UsageError for a precision or device this run cannot have.
bool use_gpu(const Config& config) {
  const std::string& device = config.run.device;
  const bool gpu = device_is_gpu(device, "run.device");
  const std::string& precision = config.train.precision;
  if (!gpu)
    LADDER_CHECK_USAGE(precision == "auto" || precision == "fp32", "train.precision = ",
                       precision, " needs a GPU, and this run is on the CPU (run.device = ",
                       device, ")");
  return gpu;
}

// Cpu: the CPU device of the model; Cuda<T>: its GPU device in precision T.
template <class Interface, class Cpu, template <class> class Cuda>
std::unique_ptr<Interface> make_device(const Config& config, ParamStore& store, int gpu_index) {
  if (!use_gpu(config)) return std::make_unique<Cpu>(config, store);
#ifdef LADDER_WITH_CUDA
  const std::string& precision = config.train.precision;
  if (precision == "fp32") return std::make_unique<Cuda<float>>(config, store, gpu_index);
  if (precision == "fp16") return std::make_unique<Cuda<__half>>(config, store, gpu_index);
  return std::make_unique<Cuda<__nv_bfloat16>>(config, store, gpu_index);  // auto, bf16
#else
  (void)gpu_index;
  LADDER_FAIL("unreachable: no CUDA in this build");
#endif
}

template <class Device>
std::unique_ptr<Device> loaded(std::unique_ptr<Device> device, ParamStore& store,
                               const std::string& weights, const std::string& array = "master") {
  store.allocate();
  warm_start(weights, store, array);
  device->attach_parameters(store);
  return device;
}

#ifndef LADDER_WITH_CUDA
template <class T>
using CudaAutoencoderDevice = CpuAutoencoderDevice;  // never made: use_gpu() is false
template <class T>
using CudaUNetDevice = CpuUNetDevice;
#endif

}  // namespace

bool device_is_gpu(const std::string& device, const std::string& what) {
  LADDER_CHECK_USAGE(device == "auto" || device == "cpu" || device == "cuda", what, " = ", device,
                     ": must be auto, cpu or cuda");
#ifdef LADDER_WITH_CUDA
  if (device == "cuda")
    LADDER_CHECK_USAGE(cuda::cuda_device_available(), what, " = cuda, but no usable GPU: ", cuda::cuda_device_problem());
  return device == "cuda" || (device == "auto" && cuda::cuda_device_available());
#else
  LADDER_CHECK_USAGE(device != "cuda", what, " = cuda, but this ladder was built without CUDA");
  return false;
#endif
}

std::unique_ptr<AutoencoderDevice> make_autoencoder_device(const Config& config, ParamStore& store,
                                                           int gpu_index) {
  LADDER_CHECK_USAGE(config.model.kind == "autoencoder_kl", "model.kind = ", config.model.kind,
                     ": this needs an autoencoder (autoencoder_kl)");
  return make_device<AutoencoderDevice, CpuAutoencoderDevice, CudaAutoencoderDevice>(config, store, gpu_index);
}

std::unique_ptr<UNetDevice> make_unet_device(const Config& config, ParamStore& store, int gpu_index) {
  LADDER_CHECK_USAGE(config.model.kind == "diffusion_unet", "model.kind = ", config.model.kind,
                     ": this needs a diffusion UNet (diffusion_unet)");
  return make_device<UNetDevice, CpuUNetDevice, CudaUNetDevice>(config, store, gpu_index);
}

std::unique_ptr<AutoencoderDevice> make_loaded_autoencoder(const Config& config, ParamStore& store,
                                                           int gpu_index, const std::string& weights) {
  return loaded(make_autoencoder_device(config, store, gpu_index), store, weights);
}

std::unique_ptr<UNetDevice> make_loaded_unet(const Config& config, ParamStore& store, int gpu_index,
                                             const std::string& weights, const std::string& array) {
  return loaded(make_unet_device(config, store, gpu_index), store, weights, array);
}

}  // namespace ladder
