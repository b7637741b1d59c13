// Why this file exists: the CPU reference as a ComputeDevice: the model on CpuBackend, the
// ParamStore's own buffers as the flat memory, AdamW on the host. CpuDevice holds what both
// models share; CpuAutoencoderDevice and CpuUNetDevice add their entry points.
#pragma once

#include <memory>
#include <vector>

#include "core/context.h"
#include "model/cpu_backend.h"
#include "model/diffusion_unet.h"
#include "train/compute_device.h"
#include "train/critics_device.h"
#include "diffusion/denoising_loss.h"

namespace ladder {

// Model: AutoencoderKL<CpuBackend> or DiffusionUNet<CpuBackend>; Interface: the device
// interface of that model.
template <class Model, class Interface>
class CpuDevice : public Interface {
 public:
  CpuDevice(const Config& config, ParamStore& store) : model_(config.model, store, backend_) {}

  std::string name() const override { return "cpu"; }
  std::string precision() const override { return "fp32"; }
  bool on_gpu() const override { return false; }

  void attach_parameters(ParamStore& store) override {
    memory_ = std::make_unique<HostFlatMemory>(store);
  }
  FlatMemory& memory() override { return *memory_; }
  std::unique_ptr<Optimizer> make_optimizer(const ParamStore& store, std::vector<Range> owned,
                                            AdamWSettings settings) override {
    return std::make_unique<AdamW>(store, std::move(owned), settings);
  }
  void parameters_changed() override {}
  void download_parameters(ParamStore& /*store*/) override {}

  void set_recompute(bool recompute) override { model_.set_recompute(recompute); }
  void set_backward_observer(BackwardObserver* observer) override {
    model_.set_backward_observer(observer);
  }

  int64_t peak_bytes() const override { return ProcessContext::get().host_memory().peak(); }
  void reset_peak() override { ProcessContext::get().host_memory().reset_peak(); }

 protected:
  CpuBackend backend_;
  Model model_;
  std::unique_ptr<HostFlatMemory> memory_;
};

class CpuAutoencoderDevice final
    : public WithCritics<CpuDevice<AutoencoderKL<CpuBackend>, AutoencoderDevice>, CpuBackend> {
 public:
  CpuAutoencoderDevice(const Config& config, ParamStore& store) : WithCritics(config, store) {}

  Shape latent_shape(const Shape& images) const override { return model_.latent_shape(images); }
  AutoencoderLossSums micro_step(const float* images, const Shape& shape, const float* noise,
                                 const AutoencoderObjective& objective) override {
    backend_.load_values(images, shape, images_);
    backend_.load_values(noise, model_.latent_shape(shape), noise_);
    const auto& terms = critics_.terms(objective.adversarial, objective.discriminator_grad_scale);
    AutoencoderLossSums sums = model_.forward_backward(images_, noise_, objective.grad_scale, objective.kl_weight, terms);
    if (objective.adversarial) sums.discriminator = critics_.discriminator_sums();
    return sums;
  }
  void reconstruct(const TensorF& images, TensorF& out) override {
    backend_.to_host(model_.reconstruct(images), out);
  }
  void encode(const TensorF& images, TensorF& mu, TensorF& logvar) override {
    const auto [m, v] = model_.encode(images);
    backend_.to_host(*m, mu);
    backend_.to_host(*v, logvar);
  }
  void decode(const TensorF& latents, TensorF& images) override {
    backend_.to_host(model_.decode(latents), images);
  }

 private:
  TensorF images_, noise_;  // (N, R, R, C), latent
};

class CpuUNetDevice final : public CpuDevice<DiffusionUNet<CpuBackend>, UNetDevice> {
 public:
  using CpuDevice::CpuDevice;

  double micro_step(const float* x_t, const float* target, const Shape& latents,
                    const std::vector<float>& timesteps, const std::vector<float>& weights,
                    double grad_scale) override {
    backend_.load_values(x_t, latents, x_t_);
    backend_.load_values(target, latents, target_);
    return denoising_step(backend_, model_, x_t_, target_, timesteps, weights, grad_scale, grad_);
  }
  void predict(const TensorF& x_t, const std::vector<float>& timesteps, TensorF& prediction) override {
    backend_.to_host(model_.forward(x_t, timesteps), prediction);
  }

 private:
  TensorF x_t_, target_, grad_;  // (N, h, w, C)
};

}  // namespace ladder
