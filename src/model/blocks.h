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

class ResBlock : public Layer {
 public:
  ResBlock(ParamStore& store, const std::string& name, int cin, int cout, NormSettings norm);
  const TensorF& forward(const TensorF& x) override;  // (N, H, W, Cin) → (N, H, W, Cout)
  const TensorF& backward(const TensorF& dy) override;
  void release_activations() override;

  // Activation recompute (train.recompute = blocks): the forward keeps only the block's
  // input and output; the backward runs the block's forward again before going back.
  void set_recompute(bool recompute) { recompute_ = recompute; }

 private:
  void release_inner_activations();
  const TensorF& forward_main(const TensorF& x);  // norm1 → conv1 → norm2 → conv2

  bool recompute_ = false;
  GroupNorm norm1_;
  Conv2d conv1_;
  GroupNorm norm2_;
  Conv2d conv2_;
  std::unique_ptr<Conv2d> shortcut_;  // 1×1 when the channel count changes
  const TensorF* input_ = nullptr;
  TensorF output_, grad_input_;
};

// Heads of at most 128 channels: the fewest heads ≥ ⌈C/128⌉ that divide C.
int attention_heads(int channels);

class AttentionBlock : public Layer {
 public:
  AttentionBlock(ParamStore& store, const std::string& name, int channels, NormSettings norm);
  const TensorF& forward(const TensorF& x) override;  // (N, H, W, C) → (N, H, W, C)
  const TensorF& backward(const TensorF& dy) override;

 private:
  struct Linear {
    ParamView weight, bias;  // (C, C), (C)
  };
  Linear add_linear(ParamStore& store, const std::string& name);

  int channels_, heads_;
  GroupNorm norm_;
  Linear to_q_, to_k_, to_v_, out_proj_;
  const TensorF* input_ = nullptr;
  const TensorF* normalized_ = nullptr;   // norm_'s output (N, H, W, C)
  TensorF q_, k_, v_, attended_, probs_;  // (N, H, W, C) each; probs (N, heads, L, L)
  TensorF output_;
  TensorF grad_attended_, grad_q_, grad_k_, grad_v_, grad_normalized_, grad_scratch_;
  TensorF grad_input_;
};

class Upsample : public Layer {
 public:
  Upsample(ParamStore& store, const std::string& name, int channels);
  const TensorF& forward(const TensorF& x) override;  // (N, H, W, C) → (N, 2H, 2W, C)
  const TensorF& backward(const TensorF& dy) override;

 private:
  Conv2d conv_;
  const TensorF* input_ = nullptr;
  TensorF upsampled_, grad_input_;
};

}  // namespace ladder
