// Why this file exists: the stage-2 model, MONAI's DiffusionModelUNet without conditioning
// (BRIEF §4b; shared/reference/monai-diffusion-unet.md §1.6 is the layout followed here):
//   conv_in → [per level: res_blocks × (UNetResBlock [+ attention]), downsampler (3×3,
//   stride 2, padding 1) except at the last level] → middle_block (ResBlock, attention,
//   ResBlock) → [per level, reversed: res_blocks + 1 × (concat [h, skip] → UNetResBlock
//   [+ attention]), upsampler (nearest ×2 → conv) except at the last] → out.0 GroupNorm →
//   SiLU → out.2 conv (zero-initialised)
// with the timestep embedding added inside every ResBlock. Parameter names, shapes and
// counts are MONAI's; the parameters are registered in forward order.
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "core/params.h"
#include "model/unet_blocks.h"

namespace ladder {

template <class B>
class DiffusionUNet {
 public:
  using Tensor = typename B::Tensor;

  // config: in_channels (= out_channels), channels, res_blocks, attention_levels,
  // head_channels, norm_groups, norm_eps. Throws UsageError for a head size that does not
  // divide its level's channels (the mid block's included).
  DiffusionUNet(const ModelConfig& config, ParamStore& store, B& backend);

  // x (N, H, W, C) with H, W divisible by 2^(levels − 1); timesteps (N) on the host.
  // Returns the prediction (N, H, W, C).
  const Tensor& forward(const Tensor& x, const std::vector<float>& timesteps);
  // dy: gradient of the last forward's output. Accumulates parameter gradients; returns the
  // gradient of x.
  const Tensor& backward(const Tensor& dy);
  // Activation recompute for every ResBlock (train.recompute = blocks), as in stage 1.
  void set_recompute(bool recompute) {
    for (UNetResBlock<B>* block : all_resnets_) {
      block->set_recompute(recompute);
      block->release_activations();  // a rung change: the next forward allocates what it keeps
    }
  }
  // Told during backward which parameter gradients are final (ZeRO-2 buckets): everything from
  // the output block, each up stage and the mid block down. The down path, conv_in and the
  // time embedding (whose gradient comes from every ResBlock) are final only at the end, which
  // the trainer reports itself.
  void set_backward_observer(BackwardObserver* observer) { observer_ = observer; }

 private:
  struct Stage {  // one level of the down or up path
    std::vector<std::unique_ptr<UNetResBlock<B>>> resnets;
    std::vector<std::unique_ptr<AttentionBlock<B>>> attentions;  // empty without attention
    std::unique_ptr<Layer<B>> resample;                          // downsampler / upsampler
    int64_t first_param_offset = 0;                              // flat offset of its first parameter
  };
  void gradients_ready_from(int64_t offset) {
    if (observer_ != nullptr) observer_->gradients_ready_from(offset);
  }
  const Tensor& add_skip_gradient(const Tensor& grad, int skip);  // grad + skip_grads_[skip]

  B& backend_;
  int levels_;
  std::vector<int> channels_;
  std::unique_ptr<Conv2d<B>> conv_in_;
  std::unique_ptr<TimeEmbedding<B>> time_;
  std::vector<Stage> down_, up_;
  std::unique_ptr<UNetResBlock<B>> mid_first_, mid_second_;
  std::unique_ptr<AttentionBlock<B>> mid_attention_;
  std::unique_ptr<GroupNorm<B>> out_norm_;
  std::unique_ptr<Conv2d<B>> out_conv_;
  std::vector<UNetResBlock<B>*> all_resnets_;
  int64_t mid_offset_ = 0, out_offset_ = 0;  // flat offsets of the mid and output blocks' parameters
  BackwardObserver* observer_ = nullptr;

  std::vector<const Tensor*> skips_;        // the down path's outputs, in push order
  std::vector<Tensor> concatenated_;        // per up ResBlock: [h, skip]
  std::vector<Tensor> grad_from_concat_;    // per up ResBlock: the h part of its input gradient
  std::vector<Tensor> skip_grads_;          // per skip: its gradient from the up path
  std::vector<Tensor> summed_grads_;        // per skip: down-path gradient + skip gradient
  Tensor grad_time_;                        // Σ over ResBlocks of ∂/∂ SiLU(emb)
};

}  // namespace ladder
