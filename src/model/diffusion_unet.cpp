// Why this file exists: building the UNet's blocks with MONAI's names, and its forward and
// backward with the skip connections.
#include "model/diffusion_unet.h"

#include <string>

#include "model/backends.h"

namespace ladder {

template <class B>
DiffusionUNet<B>::DiffusionUNet(const ModelConfig& config, ParamStore& store, B& backend)
    : backend_(backend), levels_(static_cast<int>(config.channels.size())), channels_(config.channels) {
  const NormSettings norm{config.norm_groups, config.norm_eps};
  const int c0 = channels_[0], blocks = config.res_blocks;
  auto heads_at = [&](int level) {
    const int per_head = config.head_channels.at(level);
    LADDER_CHECK_USAGE(per_head > 0 && channels_[level] % per_head == 0, "config: model.head_channels = ",
                       per_head, " at level ", level, " must be > 0 and divide its ", channels_[level],
                       " channels (levels with attention and the mid block, which uses the last level's)");
    return channels_[level] / per_head;
  };
  conv_in_ = std::make_unique<Conv2d<B>>(backend, store, "conv_in.conv", config.in_channels, c0, 3, 1,
                                         Padding::same(3));
  time_ = std::make_unique<TimeEmbedding<B>>(backend, store, c0);
  const int time_dim = time_->dim();
  auto resnet = [&](const std::string& name, int cin, int cout) {
    auto block = std::make_unique<UNetResBlock<B>>(backend, store, name, cin, cout, time_dim, norm);
    all_resnets_.push_back(block.get());
    return block;
  };

  std::vector<int> skip_channels = {c0};  // the channels of each skip, in push order
  int channels = c0;
  down_.resize(static_cast<size_t>(levels_));
  for (int level = 0; level < levels_; ++level) {
    Stage& stage = down_[level];
    const std::string prefix = "down_blocks." + std::to_string(level);
    for (int j = 0; j < blocks; ++j) {
      stage.resnets.push_back(resnet(prefix + ".resnets." + std::to_string(j), channels, channels_[level]));
      channels = channels_[level];
      if (config.attention_levels[level])
        stage.attentions.push_back(std::make_unique<AttentionBlock<B>>(
            backend, store, prefix + ".attentions." + std::to_string(j), channels, norm, heads_at(level)));
      skip_channels.push_back(channels);
    }
    if (level + 1 < levels_) {
      stage.resample = std::make_unique<Conv2d<B>>(backend, store, prefix + ".downsampler.op.conv", channels,
                                                   channels, 3, 2, Padding::same(3));
      skip_channels.push_back(channels);
    }
  }
  mid_offset_ = store.count();
  mid_first_ = resnet("middle_block.resnet_1", channels, channels);
  mid_attention_ = std::make_unique<AttentionBlock<B>>(backend, store, "middle_block.attention", channels,
                                                       norm, heads_at(levels_ - 1));
  mid_second_ = resnet("middle_block.resnet_2", channels, channels);

  up_.resize(static_cast<size_t>(levels_));
  for (int u = 0; u < levels_; ++u) {
    Stage& stage = up_[u];
    stage.first_param_offset = store.count();
    const int level = levels_ - 1 - u;
    const std::string prefix = "up_blocks." + std::to_string(u);
    for (int j = 0; j <= blocks; ++j) {
      const int skip = skip_channels.back();
      skip_channels.pop_back();
      stage.resnets.push_back(resnet(prefix + ".resnets." + std::to_string(j), channels + skip, channels_[level]));
      channels = channels_[level];
      if (config.attention_levels[level])
        stage.attentions.push_back(std::make_unique<AttentionBlock<B>>(
            backend, store, prefix + ".attentions." + std::to_string(j), channels, norm, heads_at(level)));
    }
    if (u + 1 < levels_) stage.resample = std::make_unique<Upsample<B>>(backend, store, prefix + ".upsampler", channels);
  }
  out_offset_ = store.count();
  out_norm_ = std::make_unique<GroupNorm<B>>(backend, store, "out.0", channels, norm.groups, norm.eps, /*silu=*/true);
  out_conv_ = std::make_unique<Conv2d<B>>(backend, store, "out.2.conv", channels, config.in_channels, 3, 1,
                                          Padding::same(3), /*zero_initialized=*/true);
}

template <class B>
const typename B::Tensor& DiffusionUNet<B>::forward(const Tensor& x, const std::vector<float>& timesteps) {
  LADDER_CHECK(static_cast<int64_t>(timesteps.size()) == x.shape().n, "UNet: ", timesteps.size(),
               " timesteps for ", x.shape().str());
  const Tensor& time = time_->forward(timesteps);  // SiLU(emb), (N, 1, 1, 4c0)
  for (UNetResBlock<B>* block : all_resnets_) block->set_time(&time);
  const Tensor* h = &conv_in_->forward(x);
  skips_.assign(1, h);
  for (Stage& stage : down_) {
    for (size_t j = 0; j < stage.resnets.size(); ++j) {
      h = &stage.resnets[j]->forward(*h);
      if (!stage.attentions.empty()) h = &stage.attentions[j]->forward(*h);
      skips_.push_back(h);
    }
    if (stage.resample) {
      h = &stage.resample->forward(*h);
      skips_.push_back(h);
    }
  }
  h = &mid_second_->forward(mid_attention_->forward(mid_first_->forward(*h)));
  size_t next_skip = skips_.size(), k = 0;
  concatenated_.resize(next_skip);
  for (Stage& stage : up_) {
    for (size_t j = 0; j < stage.resnets.size(); ++j, ++k) {
      const Tensor& skip = *skips_[--next_skip];
      const Shape shape = h->shape();
      backend_.resize(concatenated_[k], {shape.n, shape.h, shape.w, shape.c + skip.shape().c});
      backend_.concat_channels(shape.n * shape.pixels(), static_cast<int>(shape.c),
                               static_cast<int>(skip.shape().c), h->data(), skip.data(),
                               concatenated_[k].data());
      h = &stage.resnets[j]->forward(concatenated_[k]);
      if (!stage.attentions.empty()) h = &stage.attentions[j]->forward(*h);
    }
    if (stage.resample) h = &stage.resample->forward(*h);
  }
  return out_conv_->forward(out_norm_->forward(*h));
}

template <class B>
const typename B::Tensor& DiffusionUNet<B>::add_skip_gradient(const Tensor& grad, int skip) {
  Tensor& sum = summed_grads_[skip];
  backend_.resize(sum, grad.shape());
  backend_.add_forward(grad.numel(), grad.data(), skip_grads_[skip].data(), sum.data());
  return sum;
}

template <class B>
const typename B::Tensor& DiffusionUNet<B>::backward(const Tensor& dy) {
  const int skips = static_cast<int>(skips_.size());
  skip_grads_.resize(skips);
  summed_grads_.resize(skips);
  grad_from_concat_.resize(skips);
  const Tensor* g = &out_norm_->backward(out_conv_->backward(dy));
  gradients_ready_from(out_offset_);
  // The up path consumed skip S−1−k at its k-th ResBlock; going back, k runs down.
  int k = skips;
  for (int u = levels_ - 1; u >= 0; --u) {
    Stage& stage = up_[u];
    if (stage.resample) g = &stage.resample->backward(*g);
    for (int j = static_cast<int>(stage.resnets.size()) - 1; j >= 0; --j) {
      --k;
      if (!stage.attentions.empty()) g = &stage.attentions[j]->backward(*g);
      const Tensor& grad_concat = stage.resnets[j]->backward(*g);
      const int skip = skips - 1 - k;
      const Shape skip_shape = skips_[skip]->shape();
      const Shape shape = concatenated_[k].shape();
      const Shape h_shape{shape.n, shape.h, shape.w, shape.c - skip_shape.c};
      backend_.resize(grad_from_concat_[k], h_shape);
      backend_.resize(skip_grads_[skip], skip_shape);
      backend_.split_channels(shape.n * shape.pixels(), static_cast<int>(h_shape.c),
                              static_cast<int>(skip_shape.c), grad_concat.data(), grad_from_concat_[k].data(),
                              skip_grads_[skip].data());
      g = &grad_from_concat_[k];
    }
    gradients_ready_from(stage.first_param_offset);
  }
  g = &mid_first_->backward(mid_attention_->backward(mid_second_->backward(*g)));
  gradients_ready_from(mid_offset_);
  int skip = skips - 1;
  for (int level = levels_ - 1; level >= 0; --level) {
    Stage& stage = down_[level];
    if (stage.resample) g = &stage.resample->backward(add_skip_gradient(*g, skip--));
    for (int j = static_cast<int>(stage.resnets.size()) - 1; j >= 0; --j) {
      g = &add_skip_gradient(*g, skip--);
      if (!stage.attentions.empty()) g = &stage.attentions[j]->backward(*g);
      g = &stage.resnets[j]->backward(*g);
    }
  }
  g = &conv_in_->backward(add_skip_gradient(*g, skip--));

  // Every ResBlock read SiLU(emb): its gradient is the sum of theirs.
  const Tensor& first = all_resnets_[0]->time_gradient();
  backend_.resize(grad_time_, first.shape());
  backend_.add_forward(first.numel(), first.data(), all_resnets_[1]->time_gradient().data(), grad_time_.data());
  for (size_t r = 2; r < all_resnets_.size(); ++r)
    backend_.add_accumulate(grad_time_.numel(), all_resnets_[r]->time_gradient().data(), grad_time_.data());
  time_->backward(grad_time_);
  return *g;
}

LADDER_INSTANTIATE_FOR_BACKENDS(DiffusionUNet)

}  // namespace ladder
