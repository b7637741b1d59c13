// Why this file exists: one GPU as a ComputeDevice: the model on CudaBackend<T> (T = float,
// bf16, fp16) on the device's compute stream, the flat buffers in DeviceParameters, the
// vector ops and AdamW as kernels, and the device allocator's peak as mem_peak_bytes.
// Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <memory>

#include "kernels/cuda/device_memory.h"
#include "model/cuda_backend.h"
#include "train/compute_device.h"
#include "train/device_flat_memory.h"
#include "train/device_parameters.h"

namespace ladder {

template <class T>
class CudaDevice final : public ComputeDevice {
 public:
  // Makes `gpu` the calling thread's current device, then builds the model (registering its
  // parameters in `store`).
  CudaDevice(const ModelConfig& config, ParamStore& store, int gpu);

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
  Shape latent_shape(const Shape& images) const override { return model_.latent_shape(images); }
  AutoencoderLossSums micro_step(const uint8_t* pixels, const Shape& images, const float* noise,
                                 double grad_scale, double kl_weight) override;
  void reconstruct(const TensorF& images, TensorF& out) override;
  void encode(const TensorF& images, TensorF& mu, TensorF& logvar) override;
  void decode(const TensorF& latents, TensorF& images) override;
  void set_recompute(bool recompute) override { model_.set_recompute(recompute); }
  void set_backward_observer(BackwardObserver* observer) override {
    model_.set_backward_observer(observer);
  }

  int64_t peak_bytes() const override { return allocator_.peak_bytes(); }
  int64_t memory_capacity() const override;
  void reset_peak() override { allocator_.reset_peak(); }

  cudaStream_t stream() const { return stream_; }

 private:
  struct CurrentDevice {  // first member: every CUDA object below lives on this device
    explicit CurrentDevice(int gpu);
    int gpu;
  };

  // The inputs of a micro-step, double-buffered so that the copy engine brings batch k+1 in
  // while the compute stream still works on batch k.
  struct Inputs {
    cuda::DeviceBuffer<uint8_t> pixels;  // (N, R, R, C) as loaded
    cuda::DeviceBuffer<float> noise;     // (latent) fp32 as generated
    cuda::CudaEvent copied;              // on the copy stream, after both copies
    cuda::CudaEvent consumed;            // on the compute stream, after the last read
  };
  // A host tensor on the device, for the evaluation entry points (reconstruct, encode, decode).
  const typename CudaBackend<T>::Tensor& upload(const TensorF& host);
  // Copies a micro-batch's inputs into inputs_[slot] on the copy stream.
  void copy_inputs(int slot, const uint8_t* pixels, int64_t pixel_count, const float* noise,
                   int64_t noise_count);

  CurrentDevice device_;
  cuda::DeviceAllocator allocator_;
  cuda::CudaStream stream_;       // compute
  cuda::CudaStream copy_stream_;  // host → device inputs
  Inputs inputs_[2];
  int next_inputs_ = 0;
  CudaBackend<T> backend_;
  AutoencoderKL<CudaBackend<T>> model_;
  std::unique_ptr<DeviceParameters<T>> params_;
  std::unique_ptr<DeviceFlatMemory> memory_;
  typename CudaBackend<T>::Tensor images_, noise_;  // (N, R, R, C), latent
  typename CudaBackend<T>::Tensor evaluation_input_;  // upload()'s
};

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
