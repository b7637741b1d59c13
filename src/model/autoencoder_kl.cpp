// Why this file exists: builds AutoencoderKL from the config, in MONAI's block order (so the
// parameter table lines up with MONAI's state dict), and runs its training micro-step.
#include "model/autoencoder_kl.h"

#include <string>
#include <type_traits>

#include "model/backends.h"

namespace ladder {
namespace {

// Appends blocks to a Sequential: names them "<prefix>.blocks.<i>" in the order they are
// added, as MONAI's ModuleList does, and records where each block's parameters start.
template <class B>
class BlockBuilder {
 public:
  BlockBuilder(B& backend, Sequential<B>& blocks, ParamStore& store, std::string prefix,
               std::vector<ResBlock<B>*>& res_blocks)
      : backend_(backend), blocks_(blocks), store_(store), prefix_(std::move(prefix)),
        res_blocks_(res_blocks) {}

  // Constructs L<B>(backend, store, "<prefix>.blocks.<i><suffix>", args...) and appends it.
  template <template <class> class L, class... Args>
  L<B>& add(const std::string& suffix, Args&&... args) {
    const int64_t first_param = store_.count();
    auto layer = std::make_unique<L<B>>(backend_, store_,
                                        prefix_ + ".blocks." + std::to_string(index_++) + suffix,
                                        std::forward<Args>(args)...);
    L<B>& added = *layer;
    if constexpr (std::is_same_v<L<B>, ResBlock<B>>) res_blocks_.push_back(&added);
    blocks_.add(std::move(layer), first_param);
    return added;
  }

  void add_mid_block(int channels, NormSettings norm) {
    add<ResBlock>("", channels, channels, norm);
    add<AttentionBlock>("", channels, norm);
    add<ResBlock>("", channels, channels, norm);
  }

 private:
  B& backend_;
  Sequential<B>& blocks_;
  ParamStore& store_;
  std::string prefix_;
  std::vector<ResBlock<B>*>& res_blocks_;
  int index_ = 0;
};

const Padding kNoPadding{0, 0, 0, 0};

}  // namespace

template <class B>
AutoencoderKL<B>::AutoencoderKL(const ModelConfig& config, ParamStore& store, B& backend)
    : backend_(backend) {
  downsampling_ = 1 << (config.channels.size() - 1);
  latent_channels_ = config.latent_channels;
  build_encoder(config, store);
  const int latent = config.latent_channels;
  first_quant_param_ = store.count();
  quant_mu_ = std::make_unique<Conv2d<B>>(backend, store, "quant_conv_mu.conv", latent, latent,
                                          1, 1, kNoPadding);
  quant_logvar_ = std::make_unique<Conv2d<B>>(backend, store, "quant_conv_log_sigma.conv",
                                              latent, latent, 1, 1, kNoPadding);
  first_post_quant_param_ = store.count();
  post_quant_ = std::make_unique<Conv2d<B>>(backend, store, "post_quant_conv.conv", latent,
                                            latent, 1, 1, kNoPadding);
  build_decoder(config, store);
}

template <class B>
void AutoencoderKL<B>::set_recompute(bool recompute) {
  for (ResBlock<B>* block : res_blocks_) {
    block->set_recompute(recompute);
    block->release_activations();  // a rung change: the next forward allocates what it keeps
  }
}

template <class B>
void AutoencoderKL<B>::set_backward_observer(BackwardObserver* observer) {
  observer_ = observer;
  encoder_.set_observer(observer);
  decoder_.set_observer(observer);
}

template <class B>
void AutoencoderKL<B>::build_encoder(const ModelConfig& config, ParamStore& store) {
  const NormSettings norm{config.norm_groups, config.norm_eps};
  const int levels = static_cast<int>(config.channels.size());
  BlockBuilder<B> blocks(backend_, encoder_, store, "encoder", res_blocks_);
  blocks.template add<Conv2d>(".conv", config.in_channels, config.channels[0], 3, 1, Padding::same(3))
      .skip_input_gradient();  // nothing needs the gradient of the images
  int channels = config.channels[0];
  for (int level = 0; level < levels; ++level) {
    for (int block = 0; block < config.res_blocks; ++block) {
      blocks.template add<ResBlock>("", channels, config.channels[level], norm);
      channels = config.channels[level];
      if (config.attention_levels[level]) blocks.template add<AttentionBlock>("", channels, norm);
    }
    if (level != levels - 1)  // Downsample
      blocks.template add<Conv2d>(".conv.conv", channels, channels, 3, 2, Padding::bottom_right());
  }
  if (config.mid_attention) blocks.add_mid_block(channels, norm);
  blocks.template add<GroupNorm>("", channels, norm.groups, norm.eps, /*silu=*/false);
  blocks.template add<Conv2d>(".conv", channels, config.latent_channels, 3, 1, Padding::same(3));
}

template <class B>
void AutoencoderKL<B>::build_decoder(const ModelConfig& config, ParamStore& store) {
  const NormSettings norm{config.norm_groups, config.norm_eps};
  const int levels = static_cast<int>(config.channels.size());
  BlockBuilder<B> blocks(backend_, decoder_, store, "decoder", res_blocks_);
  int channels = config.channels[levels - 1];
  blocks.template add<Conv2d>(".conv", config.latent_channels, channels, 3, 1, Padding::same(3));
  if (config.mid_attention) blocks.add_mid_block(channels, norm);
  for (int level = levels - 1; level >= 0; --level) {
    for (int block = 0; block < config.res_blocks; ++block) {
      blocks.template add<ResBlock>("", channels, config.channels[level], norm);
      channels = config.channels[level];
      if (config.attention_levels[level]) blocks.template add<AttentionBlock>("", channels, norm);
    }
    if (level != 0) blocks.template add<Upsample>("", channels);
  }
  blocks.template add<GroupNorm>("", channels, norm.groups, norm.eps, /*silu=*/false);
  blocks.template add<Conv2d>(".conv", channels, config.in_channels, 3, 1, Padding::same(3));
}

template <class B>
AutoencoderLossSums AutoencoderKL<B>::forward_backward(const Tensor& images, const Tensor& noise,
                                                       double grad_scale, double kl_weight,
                                                       const std::vector<ReconstructionTerm<B>*>& terms) {
  // Forward.
  const Tensor& encoded = encoder_.forward(images);
  const Tensor& mu = quant_mu_->forward(encoded);
  const Tensor& logvar = quant_logvar_->forward(encoded);
  LADDER_CHECK(noise.shape() == mu.shape(), "noise ", noise.shape().str(), " for latent ",
               mu.shape().str());
  backend_.resize(z_, mu.shape());
  backend_.reparameterize_forward(mu.numel(), mu.data(), logvar.data(), noise.data(), z_.data());
  const Tensor& reconstruction = decoder_.forward(post_quant_->forward(z_));
  LADDER_CHECK(reconstruction.shape() == images.shape(), "reconstruction ",
               reconstruction.shape().str(), " for images ", images.shape().str());

  const int64_t per_image = images.shape().h * images.shape().w * images.shape().c;
  AutoencoderLossSums sums;
  sums.reconstruction =
      backend_.l1_forward(images.numel(), reconstruction.data(), images.data()) /
      static_cast<double>(per_image);
  sums.kl = backend_.kl_forward(mu.numel(), mu.data(), logvar.data());

  // Backward: L1 → decoder → z → (μ, log σ²) ← KL; both 1×1 convs feed the encoder's output.
  backend_.resize(grad_reconstruction_, images.shape());
  backend_.l1_backward(images.numel(), reconstruction.data(), images.data(),
                       grad_scale / static_cast<double>(per_image), grad_reconstruction_.data());
  for (ReconstructionTerm<B>* term : terms)
    sums.terms.push_back(term->accumulate_gradient(images, reconstruction, grad_scale, grad_reconstruction_));
  last_reconstruction_ = &reconstruction;
  const Tensor& grad_z = post_quant_->backward(decoder_.backward(grad_reconstruction_));
  if (observer_ != nullptr) observer_->gradients_ready_from(first_post_quant_param_);
  backend_.resize(grad_mu_, mu.shape());
  backend_.resize(grad_logvar_, mu.shape());
  backend_.reparameterize_backward(mu.numel(), logvar.data(), noise.data(), grad_z.data(),
                                   grad_mu_.data(), grad_logvar_.data());
  backend_.kl_backward_accumulate(mu.numel(), mu.data(), logvar.data(), kl_weight * grad_scale,
                                  grad_mu_.data(), grad_logvar_.data());
  const Tensor& grad_from_mu = quant_mu_->backward(grad_mu_);
  const Tensor& grad_from_logvar = quant_logvar_->backward(grad_logvar_);
  if (observer_ != nullptr) observer_->gradients_ready_from(first_quant_param_);
  backend_.resize(grad_encoded_, encoded.shape());
  backend_.add_forward(encoded.numel(), grad_from_mu.data(), grad_from_logvar.data(),
                       grad_encoded_.data());
  encoder_.backward(grad_encoded_);
  return sums;
}

template <class B>
std::pair<const typename B::Tensor*, const typename B::Tensor*> AutoencoderKL<B>::encode(
    const Tensor& images) {
  const Tensor& encoded = encoder_.forward(images);
  const Tensor& mu = quant_mu_->forward(encoded);
  return {&mu, &quant_logvar_->forward(encoded)};
}

template <class B>
const typename B::Tensor& AutoencoderKL<B>::decode(const Tensor& z) {
  return decoder_.forward(post_quant_->forward(z));
}

template <class B>
const typename B::Tensor& AutoencoderKL<B>::reconstruct(const Tensor& images) {
  const Tensor& mu = quant_mu_->forward(encoder_.forward(images));
  return decoder_.forward(post_quant_->forward(mu));
}

LADDER_INSTANTIATE_FOR_BACKENDS(AutoencoderKL)

}  // namespace ladder
