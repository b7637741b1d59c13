// Why this file exists: BatchNorm2d with PyTorch semantics (MONAI's "BATCH" norm in the
// PatchDiscriminator): in training mode each forward normalises with the batch's per-channel
// mean and biased variance and moves the running statistics (momentum, unbiased variance);
// in eval mode it normalises with the running statistics. Parameters "<name>.weight" (γ) and
// "<name>.bias" (β); the running statistics are buffers, not parameters: they live here, not in
// the flat buffer (docs/reference-patch-discriminator.md).
//
// The training-mode passes are split where a data-parallel trainer will all-reduce the
// per-channel sums (synchronised statistics, so that N ranks equal 1 rank); today the
// statistics are this call's batch (one rank).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/model_buffers.h"
#include "core/params.h"
#include "model/layer.h"

namespace ladder {

template <class B>
class BatchNorm2d : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;
  using FloatTensor = typename B::FloatTensor;

  // γ starts at `gamma_init` (kOnes as PyTorch, kOnePlusNormalSmall as MONAI's normal_init),
  // β at 0; running_mean 0, running_var 1.
  BatchNorm2d(B& backend, ParamStore& store, const std::string& name, int channels, double eps,
              double momentum, ParamInit gamma_init);

  void set_training(bool training) { training_ = training; }
  void set_parameter_gradients(bool accumulate) override { parameter_gradients_ = accumulate; }
  bool training() const { return training_; }

  const Tensor& forward(const Tensor& x) override;  // (N, H, W, C) → (N, H, W, C)
  // Training mode only: through the batch statistics.
  const Tensor& backward(const Tensor& dy) override;
  void release_activations() override {
    output_.release();
    grad_input_.release();
    mean_.release();
    rstd_.release();
    count_ = 0;
  }

  const std::string& name() const { return name_; }  // "<name>": buffers are "<name>.running_mean" ...
  int channels() const { return channels_; }
  FloatTensor& running_mean() { return running_mean_; }  // (1, 1, 1, C) fp32, on the backend
  FloatTensor& running_var() { return running_var_; }    // (1, 1, 1, C)
  int64_t num_batches_tracked() const { return batches_tracked_; }
  // The running statistics as PyTorch's buffers: "<name>.running_mean" and "<name>.running_var"
  // (F32, (C)), "<name>.num_batches_tracked" (I64, ()), copied to the host.
  std::vector<ModelBuffer> buffers();
  // Sets them from three buffers named, typed and shaped as buffers() gives them, in its order.
  void load_buffers(const ModelBuffer* three);

 private:
  B& backend_;
  std::string name_;
  int channels_;
  double eps_, momentum_;
  bool training_ = true;
  bool parameter_gradients_ = true;
  ParamView gamma_, beta_;
  int64_t batches_tracked_ = 0;
  FloatTensor running_mean_, running_var_;  // (1, 1, 1, C), kept across steps
  const Tensor* input_ = nullptr;
  double count_ = 0;                        // rows the last training forward's statistics cover (0: none)
  Tensor output_, grad_input_;              // (N, H, W, C)
  FloatTensor sum_, sq_;                    // (1, 1, 1, C) Σx, Σ(x − mean)²
  FloatTensor mean_, rstd_;                 // (1, 1, 1, C) saved for the backward
  FloatTensor grad_sums_;                   // (1, 1, 2, C) Σdy | Σdy·x̂
};

}  // namespace ladder
