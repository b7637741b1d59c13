// Why this file exists: the blocks of the diffusion UNet that the autoencoder does not have
// (MONAI DiffusionModelUNet semantics, shared/reference/monai-diffusion-unet.md §1.1–1.2):
//   TimeEmbedding  sinusoidal embedding of the timesteps (cos first) → Linear(c0, 4c0) →
//                  SiLU → Linear(4c0, 4c0); keys time_embed.0 and time_embed.2
//   UNetResBlock   norm1 → SiLU → conv1, + time_emb_proj(SiLU(emb)) broadcast over the pixels,
//                  → norm2 → SiLU → conv2 (zero-initialised), + skip (1×1 conv when the
//                  channel count changes)
// Every ResBlock reads SiLU(emb), computed once by the model; each keeps its own gradient of
// it, which the model adds up.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/blocks.h"

namespace ladder {

// (n, dim) host floats: [cos(t·f_0) … cos(t·f_{h−1}), sin(t·f_0) … sin(t·f_{h−1})] with
// h = dim / 2 and f_k = exp(−ln(10000)·k / h); a zero is appended when dim is odd.
std::vector<float> timestep_embedding(const std::vector<float>& timesteps, int dim);

template <class B>
class TimeEmbedding {
 public:
  using Tensor = typename B::Tensor;

  // Registers time_embed.0.{weight,bias} (c0 → 4c0) and time_embed.2.{weight,bias}.
  TimeEmbedding(B& backend, ParamStore& store, int channels);

  // Returns SiLU(emb), (N, 1, 1, 4c0), for timesteps (N) on the host.
  const Tensor& forward(const std::vector<float>& timesteps);
  // grad: of SiLU(emb). Accumulates the parameter gradients.
  void backward(const Tensor& grad);
  int dim() const { return 4 * channels_; }

 private:
  struct Linear {
    ParamView weight, bias;
  };
  B& backend_;
  int channels_;
  Linear first_, second_;
  Tensor sinusoid_, hidden_, hidden_silu_, emb_, emb_silu_;  // (N, 1, 1, ·)
  Tensor grad_emb_, grad_hidden_silu_, grad_hidden_, grad_sinusoid_;
};

template <class B>
class UNetResBlock : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  UNetResBlock(B& backend, ParamStore& store, const std::string& name, int cin, int cout,
               int time_dim, NormSettings norm);

  // The model's SiLU(emb) (N, 1, 1, time_dim) for the next forward and backward.
  void set_time(const Tensor* time) { time_ = time; }
  const Tensor& forward(const Tensor& x) override;  // (N, H, W, Cin) → (N, H, W, Cout)
  const Tensor& backward(const Tensor& dy) override;
  // This block's gradient of SiLU(emb) from the last backward, (N, 1, 1, time_dim).
  const Tensor& time_gradient() const { return grad_time_; }
  // Activation recompute (train.recompute = blocks): the forward keeps only the block's input
  // and output; the backward runs the inside again first (the same ops, the same bits).
  void set_recompute(bool recompute) { recompute_ = recompute; }
  void release_activations() override;

 private:
  const Tensor& forward_main(const Tensor& x);  // norm1 → conv1 + projection → norm2 → conv2
  void release_inner_activations();
  B& backend_;
  int cout_, time_dim_;
  bool recompute_ = false;
  GroupNorm<B> norm1_;
  Conv2d<B> conv1_;
  ParamView proj_weight_, proj_bias_;  // time_emb_proj (Cout, time_dim), (Cout)
  GroupNorm<B> norm2_;
  Conv2d<B> conv2_;
  std::unique_ptr<Conv2d<B>> skip_;  // 1×1 when Cin ≠ Cout
  const Tensor* time_ = nullptr;
  const Tensor* input_ = nullptr;
  Tensor projection_, hidden_, output_;  // (N,1,1,Cout), (N,H,W,Cout) ×2
  Tensor grad_projection_, grad_time_, grad_input_;
};

}  // namespace ladder
