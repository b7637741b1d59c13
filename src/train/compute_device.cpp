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

std::unique_ptr<ComputeDevice> make_compute_device(const Config& config, ParamStore& store,
                                                   int gpu_index) {
  LADDER_CHECK_USAGE(config.model.kind == "autoencoder_kl", "model.kind = ", config.model.kind,
                     ": this command needs an autoencoder (autoencoder_kl)");
  const std::string& device = config.run.device;
  const std::string& precision = config.train.precision;
#ifdef LADDER_WITH_CUDA
  const bool gpu = device == "cuda" || (device == "auto" && cuda::cuda_device_available());
  if (device == "cuda")
    LADDER_CHECK_USAGE(cuda::cuda_device_available(), "run.device = cuda, but no usable GPU: ",
                       cuda::cuda_device_problem());
#else
  const bool gpu = false;
#endif
  if (!gpu) {
    LADDER_CHECK_USAGE(precision == "auto" || precision == "fp32", "train.precision = ",
                       precision, " needs a GPU, and this run is on the CPU (run.device = ",
                       device, ")");
    return std::make_unique<CpuDevice>(config.model, store);
  }
#ifdef LADDER_WITH_CUDA
  if (precision == "fp32") return std::make_unique<CudaDevice<float>>(config.model, store, gpu_index);
  if (precision == "fp16") return std::make_unique<CudaDevice<__half>>(config.model, store, gpu_index);
  return std::make_unique<CudaDevice<__nv_bfloat16>>(config.model, store, gpu_index);  // auto, bf16
#else
  LADDER_FAIL("unreachable: no CUDA in this build");
#endif
}

std::unique_ptr<ComputeDevice> make_loaded_device(const Config& config, ParamStore& store, int gpu_index,
                                                  const std::string& weights) {
  std::unique_ptr<ComputeDevice> device = make_compute_device(config, store, gpu_index);
  store.allocate();
  warm_start(weights, store);
  device->attach_parameters(store);
  return device;
}

}  // namespace ladder
