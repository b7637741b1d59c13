// Why this file exists: one GPU as a ComputeDevice: the model on CudaBackend<T> (T = float,
// bf16, fp16) on the device's compute stream, the flat buffers in DeviceParameters, the
// vector ops and AdamW as kernels, and the device allocator's peak as mem_peak_bytes.
// CudaDevice holds what both models share, including the double-buffered copy of a
// micro-step's inputs; CudaAutoencoderDevice and CudaUNetDevice add their entry points.
// Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <memory>
#include <vector>

#include "kernels/cuda/device_memory.h"
#include "model/cuda_backend.h"
#include "model/diffusion_unet.h"
#include "train/compute_device.h"
#include "train/critics_device.h"
#include "train/device_flat_memory.h"
#include "train/device_parameters.h"

namespace ladder {

// Model: AutoencoderKL<CudaBackend<T>> or DiffusionUNet<CudaBackend<T>>; Interface: the
// device interface of that model.
template <class T, class Model, class Interface>
class CudaDevice : public Interface {
 public:
  // Makes `gpu` the calling thread's current device, then builds the model (registering its
  // parameters in `store`).
  CudaDevice(const Config& config, ParamStore& store, int gpu);

  std::string name() const override;
  std::string precision() const override;
  bool on_gpu() const override { return true; }

  void attach_parameters(ParamStore& store) override;
  FlatMemory& memory() override { return *memory_; }
  std::unique_ptr<Optimizer> make_optimizer(const ParamStore& store, std::vector<Range> owned,
                                            AdamWSettings settings) override;
  void parameters_changed() override { params_->refresh_working(stream_); }
  void download_parameters(ParamStore& store) override;

  data::BufferPinner buffer_pinner() override;
  void set_recompute(bool recompute) override { model_.set_recompute(recompute); }
  void set_backward_observer(BackwardObserver* observer) override {
    model_.set_backward_observer(observer);
  }

  int64_t peak_bytes() const override { return allocator_.peak_bytes(); }
  int64_t memory_capacity() const override;
  void reset_peak() override { allocator_.reset_peak(); }

  cudaStream_t stream() const { return stream_; }

 protected:
  using Tensor = typename CudaBackend<T>::Tensor;

  // A micro-step's inputs on the device: `raw_count` bytes (uint8 pixels, or fp32 values as
  // bytes) and `float_count` fp32 values, copied on the copy stream into one of two slots, so
  // that batch k+1 comes in while the compute stream still works on batch k. The compute
  // stream waits for the copy; when this returns the host buffers have been read. The
  // caller converts them and then calls inputs_consumed().
  struct Inputs {
    cuda::DeviceBuffer<uint8_t> raw;
    cuda::DeviceBuffer<float> floats;
    cuda::CudaEvent copied;    // on the copy stream, after both copies
    cuda::CudaEvent consumed;  // on the compute stream, after the last read
  };
  Inputs& bring_inputs(const void* raw, int64_t raw_count, const float* floats, int64_t float_count);
  void inputs_consumed(Inputs& in);
  // A host tensor on the device, for the evaluation entry points (reconstruct, encode, ...).
  const Tensor& upload(const TensorF& host);

  struct CurrentDevice {  // first member: every CUDA object below lives on this device
    explicit CurrentDevice(int gpu);
    int gpu;
  };
  CurrentDevice device_;
  cuda::DeviceAllocator allocator_;
  cuda::CudaStream stream_;       // compute
  cuda::CudaStream copy_stream_;  // host → device inputs
  Inputs inputs_[2];
  int next_inputs_ = 0;
  CudaBackend<T> backend_;
  Model model_;
  std::unique_ptr<DeviceParameters<T>> params_;
  std::unique_ptr<DeviceFlatMemory> memory_;
  Tensor evaluation_input_;  // upload()'s
};

template <class T>
class CudaAutoencoderDevice final
    : public WithCritics<CudaDevice<T, AutoencoderKL<CudaBackend<T>>, AutoencoderDevice>, CudaBackend<T>> {
 public:
  using Base = WithCritics<CudaDevice<T, AutoencoderKL<CudaBackend<T>>, AutoencoderDevice>, CudaBackend<T>>;
  CudaAutoencoderDevice(const Config& config, ParamStore& store, int gpu) : Base(config, store, gpu) {}

  Shape latent_shape(const Shape& images) const override { return this->model_.latent_shape(images); }
  AutoencoderLossSums micro_step(const float* images, const Shape& shape, const float* noise,
                                 const AutoencoderObjective& objective) override;
  void reconstruct(const TensorF& images, TensorF& out) override;
  void encode(const TensorF& images, TensorF& mu, TensorF& logvar) override;
  void decode(const TensorF& latents, TensorF& images) override;

 private:
  typename CudaBackend<T>::Tensor images_, noise_;  // (N, R, R, C), latent
};

template <class T>
class CudaUNetDevice final : public CudaDevice<T, DiffusionUNet<CudaBackend<T>>, UNetDevice> {
 public:
  using CudaDevice<T, DiffusionUNet<CudaBackend<T>>, UNetDevice>::CudaDevice;

  double micro_step(const float* x_t, const float* target, const Shape& latents,
                    const std::vector<float>& timesteps, const std::vector<float>& weights,
                    double grad_scale) override;
  void predict(const TensorF& x_t, const std::vector<float>& timesteps, TensorF& prediction) override;

 private:
  typename CudaBackend<T>::Tensor x_t_, target_, grad_;  // (N, h, w, C)
};

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
