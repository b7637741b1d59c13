// Why this file exists: everything the trainer does that depends on where the model runs and
// in which precision, behind one interface: the model (built on a backend), the flat
// parameter buffers and their vector ops (FlatMemory), the optimizer state, and the memory
// peak. ComputeDevice is what every model shares; AutoencoderDevice (stage 1) and UNetDevice
// (stage 2) add the model's own entry points. CpuDevice (train/cpu_device.h) runs the CPU
// reference in fp32; CudaDevice (train/cuda_device.h) runs one GPU in fp32, bf16 or fp16.
// The make_* functions pick one from run.device and train.precision.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/check.h"
#include "core/model_buffers.h"
#include "core/params.h"
#include "core/tensor.h"
#include "data/prefetcher.h"
#include "model/autoencoder_kl.h"
#include "model/layer.h"
#include "train/adamw.h"
#include "train/flat_memory.h"
#include "train/shard_layout.h"

namespace ladder {

class ComputeDevice {
 public:
  virtual ~ComputeDevice() = default;

  virtual std::string name() const = 0;       // "cpu", "cuda:0"
  virtual std::string precision() const = 0;  // "fp32", "bf16", "fp16"
  virtual bool on_gpu() const = 0;

  // After the model registered its parameters (construction) and the store was allocated and
  // initialised: the device takes its copy of the values (GPU) or works in place (CPU).
  virtual void attach_parameters(ParamStore& store) = 0;
  virtual FlatMemory& memory() = 0;
  virtual std::unique_ptr<Optimizer> make_optimizer(const ParamStore& store,
                                                    std::vector<Range> owned,
                                                    AdamWSettings settings) = 0;
  // After the optimizer and the all-gather changed the values (the GPU refreshes its
  // compute-precision copy).
  virtual void parameters_changed() = 0;
  // Copies the device's values into the store (no-op on the CPU, where they are the store's).
  virtual void download_parameters(ParamStore& store) = 0;

  // The model's buffers (core/model_buffers.h: BatchNorm's running statistics), copied to the
  // host; none by default. load_buffers takes the same list (names, types and shapes as
  // buffers() gives them, which the caller checks).
  virtual std::vector<ModelBuffer> buffers() { return {}; }
  virtual void load_buffers(const std::vector<ModelBuffer>& buffers) {
    LADDER_CHECK(buffers.empty(), name(), ": this model has no buffers to load");
  }

  // How the prefetcher's ring buffers should be prepared (GPU: page-locked); empty: as they are.
  virtual data::BufferPinner buffer_pinner() { return {}; }

  virtual void set_recompute(bool recompute) = 0;
  virtual void set_backward_observer(BackwardObserver* observer) = 0;

  // Peak bytes of the memory the model works in (host on the CPU, device on a GPU) since the
  // last reset; mem_peak_bytes in metrics.jsonl.
  virtual int64_t peak_bytes() const = 0;
  virtual void reset_peak() = 0;
  // The memory the model works in, in bytes, for the progress line's share; 0 when unbounded
  // (host memory).
  virtual int64_t memory_capacity() const { return 0; }
};

// One micro-step of stage 1's loss: L1 + kl_weight·KL, the further terms of perceptual.* and,
// when `adversarial` (after adversarial.start_step), adversarial.*, whose discriminator steps
// on the same micro-batch.
struct AutoencoderObjective {
  double grad_scale = 0;                // the autoencoder's gradients: loss scale / images of the step
  double kl_weight = 0;
  bool adversarial = false;
  double discriminator_grad_scale = 0;  // the discriminator's gradients: its loss scale / images
};

// Stage 1: the KL autoencoder (and its critics, model/autoencoder_critics.h).
class AutoencoderDevice : public ComputeDevice {
 public:
  // images: host fp32 (N, R, R, C) in [−1, 1] (the prefetcher's); noise: host fp32 latent_shape
  // values. One micro-batch forward, loss and backward; gradients accumulate scaled by the
  // objective's. When it returns, `images` and `noise` have been read (the caller may reuse
  // them); the device may still be working on the backward.
  virtual Shape latent_shape(const Shape& images) const = 0;
  virtual AutoencoderLossSums micro_step(const float* images, const Shape& shape, const float* noise,
                                         const AutoencoderObjective& objective) = 0;
  // images: host fp32 in [−1, 1]; reconstruction (z = μ) into `out` on the host.
  virtual void reconstruct(const TensorF& images, TensorF& out) = 0;
  // images: host fp32 in [−1, 1]; the latent μ and log σ² into host tensors (ladder encode).
  virtual void encode(const TensorF& images, TensorF& mu, TensorF& logvar) = 0;
  // latents: host fp32 (N, R/d, R/d, latent); the decoded images into `images` (ladder sample).
  virtual void decode(const TensorF& latents, TensorF& images) = 0;
};

// Stage 2: the diffusion UNet.
class UNetDevice : public ComputeDevice {
 public:
  // One micro-step of the denoising regression: prediction = UNet(x_t, t), image i's loss
  // weights[i] · mean over its elements of (prediction − target)²; returns the sum of the
  // images' losses, and accumulates the gradients of grad_scale × that sum. x_t, target: host
  // fp32 (N, h, w, C); timesteps, weights: (N). Read before it returns (as above).
  virtual double micro_step(const float* x_t, const float* target, const Shape& latents,
                            const std::vector<float>& timesteps, const std::vector<float>& weights,
                            double grad_scale) = 0;
  // The model's output for x_t (N, h, w, C) at `timesteps` (N), into `prediction` on the host.
  virtual void predict(const TensorF& x_t, const std::vector<float>& timesteps,
                       TensorF& prediction) = 0;
};

// run.device = cpu → the CPU reference (fp32); cuda → a GPU of train.precision (auto: bf16) on
// GPU `gpu_index`; auto → cuda when this build has it and a GPU is visible, else cpu. Builds
// the model, which registers its parameters in `store`. UsageError when model.kind is not
// the device's model.
// Whether `device` (auto | cpu | cuda, the value of the key or flag `what`) means this
// process's GPU; UsageError for an unknown value, or cuda where there is none.
bool device_is_gpu(const std::string& device, const std::string& what);

std::unique_ptr<AutoencoderDevice> make_autoencoder_device(const Config& config, ParamStore& store,
                                                           int gpu_index);
std::unique_ptr<UNetDevice> make_unet_device(const Config& config, ParamStore& store, int gpu_index);

// The same, ready to run a trained model: the store allocated and filled from `weights` (a
// checkpoint directory or a safetensors file, strict names; warm_start in train/resume.h).
// For the commands that use a trained model (reconstruct, encode, sample); array "ema": a
// checkpoint's moving average (sample --ema).
std::unique_ptr<AutoencoderDevice> make_loaded_autoencoder(const Config& config, ParamStore& store,
                                                           int gpu_index, const std::string& weights);
std::unique_ptr<UNetDevice> make_loaded_unet(const Config& config, ParamStore& store, int gpu_index,
                                             const std::string& weights, const std::string& array = "master");

}  // namespace ladder
