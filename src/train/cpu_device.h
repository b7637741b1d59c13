// Why this file exists: the CPU reference as a ComputeDevice: the model on CpuBackend, the
// ParamStore's own buffers as the flat memory, AdamW on the host.
#pragma once

#include <memory>

#include "core/context.h"
#include "model/cpu_backend.h"
#include "train/compute_device.h"

namespace ladder {

class CpuDevice final : public ComputeDevice {
 public:
  CpuDevice(const ModelConfig& config, ParamStore& store)
      : model_(config, store, backend_) {}

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

  Shape latent_shape(const Shape& images) const override { return model_.latent_shape(images); }
  AutoencoderLossSums micro_step(const uint8_t* pixels, const Shape& images, const float* noise,
                                 double grad_scale, double kl_weight) override {
    backend_.load_images(pixels, images, images_);
    backend_.load_values(noise, model_.latent_shape(images), noise_);
    return model_.forward_backward(images_, noise_, grad_scale, kl_weight);
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
  void set_recompute(bool recompute) override { model_.set_recompute(recompute); }
  void set_backward_observer(BackwardObserver* observer) override {
    model_.set_backward_observer(observer);
  }

  int64_t peak_bytes() const override { return ProcessContext::get().host_memory().peak(); }
  void reset_peak() override { ProcessContext::get().host_memory().reset_peak(); }

 private:
  CpuBackend backend_;
  AutoencoderKL<CpuBackend> model_;
  std::unique_ptr<HostFlatMemory> memory_;
  TensorF images_, noise_;  // (N, R, R, C), latent
};

}  // namespace ladder
