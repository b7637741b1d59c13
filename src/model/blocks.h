// Why this file exists: the composite blocks of AutoencoderKL (BRIEF §4, MONAI names):
//   ResBlock        norm1 → SiLU → conv1 → norm2 → SiLU → conv2, plus skip (nin_shortcut)
//   AttentionBlock  norm → to_q/to_k/to_v → softmax(q·kᵀ/√d)·v → out_proj, plus residual
//   Upsample        nearest ×2 → conv 3×3
// (The Downsample is a Conv2d with bottom/right padding and stride 2.)
#pragma once

#include <memory>
#include <string>

#include "model/conv2d.h"
#include "model/group_norm.h"

namespace ladder {

struct NormSettings {
  int groups = 32;
  double eps = 1e-6;
};

template <class B>
class ResBlock : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  ResBlock(B& backend, ParamStore& store, const std::string& name, int cin, int cout,
           NormSettings norm);
  const Tensor& forward(const Tensor& x) override;  // (N, H, W, Cin) → (N, H, W, Cout)
  const Tensor& backward(const Tensor& dy) override;
  void release_activations() override;

  // Activation recompute (train.recompute = blocks): the forward keeps only the block's
  // input and output; the backward runs the block's forward again before going back.
  void set_recompute(bool recompute) { recompute_ = recompute; }

 private:
  void release_inner_activations();
  const Tensor& forward_main(const Tensor& x);  // norm1 → conv1 → norm2 → conv2

  B& backend_;
  bool recompute_ = false;
  GroupNorm<B> norm1_;
  Conv2d<B> conv1_;
  GroupNorm<B> norm2_;
  Conv2d<B> conv2_;
  std::unique_ptr<Conv2d<B>> shortcut_;  // 1×1 when the channel count changes
  const Tensor* input_ = nullptr;
  Tensor output_, grad_input_;
};

// Heads of at most 128 channels: the fewest heads ≥ ⌈C/128⌉ that divide C.
int attention_heads(int channels);

template <class B>
class AttentionBlock : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  // heads 0: attention_heads(channels) (the autoencoder's rule); the UNet gives its own.
  AttentionBlock(B& backend, ParamStore& store, const std::string& name, int channels,
                 NormSettings norm, int heads = 0);
  const Tensor& forward(const Tensor& x) override;  // (N, H, W, C) → (N, H, W, C)
  const Tensor& backward(const Tensor& dy) override;

 private:
  struct Linear {
    ParamView weight, bias;  // (C, C), (C)
  };
  Linear add_linear(ParamStore& store, const std::string& name);

  B& backend_;
  int channels_, heads_;
  GroupNorm<B> norm_;
  Linear to_q_, to_k_, to_v_, out_proj_;
  const Tensor* input_ = nullptr;
  const Tensor* normalized_ = nullptr;  // norm_'s output (N, H, W, C)
  Tensor q_, k_, v_, attended_;         // (N, H, W, C) each
  typename B::FloatTensor probs_;       // (N, heads, L, L) fp32 softmax, for the backward
  Tensor output_;
  Tensor grad_attended_, grad_q_, grad_k_, grad_v_, grad_normalized_, grad_scratch_;
  Tensor grad_input_;
};

template <class B>
class Upsample : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  Upsample(B& backend, ParamStore& store, const std::string& name, int channels);
  const Tensor& forward(const Tensor& x) override;  // (N, H, W, C) → (N, 2H, 2W, C)
  const Tensor& backward(const Tensor& dy) override;

 private:
  B& backend_;
  Conv2d<B> conv_;
  const Tensor* input_ = nullptr;
  Tensor upsampled_, grad_input_;
};

}  // namespace ladder
