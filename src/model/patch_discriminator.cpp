// Why this file exists: builds the PatchDiscriminator's blocks in MONAI's order and names.
#include "model/patch_discriminator.h"

#include <string>
#include <utility>

#include "model/backends.h"
#include "model/conv2d.h"
#include "model/instance_norm.h"
#include "model/leaky_relu.h"

namespace ladder {
namespace {

constexpr int kKernel = 4;
constexpr Padding kPadding{1, 1, 1, 1};

}  // namespace

template <class B>
PatchDiscriminator<B>::PatchDiscriminator(const PatchDiscriminatorConfig& config, ParamStore& store, B& backend)
    : config_(config) {
  LADDER_CHECK(config.in_channels > 0 && config.channels > 0 && config.num_layers_d > 0 && config.out_channels > 0,
               "PatchDiscriminator: in_channels, channels, num_layers_d and out_channels must be positive");
  const ConvOptions with_bias{ParamInit::kNormalSmall, true}, without_bias{ParamInit::kNormalSmall, false};
  auto add = [&](auto layer, int64_t first_param) { layers_.add(std::move(layer), first_param); };
  auto activation = [&] { add(std::make_unique<LeakyReLU<B>>(backend, config.negative_slope), store.count()); };

  int64_t first = store.count();
  add(std::make_unique<Conv2d<B>>(backend, store, config.name_prefix + "initial_conv.conv", config.in_channels, config.channels, kKernel,
                                  2, kPadding, with_bias),
      first);
  activation();
  int cin = config.channels;
  for (int l = 0; l < config.num_layers_d; ++l) {
    const int cout = cin * 2, stride = l == config.num_layers_d - 1 ? 1 : 2;
    const std::string prefix = config.name_prefix + std::to_string(l);
    first = store.count();
    add(std::make_unique<Conv2d<B>>(backend, store, prefix + ".conv", cin, cout, kKernel, stride, kPadding,
                                    without_bias),
        first);
    first = store.count();
    if (config.norm == DiscriminatorNorm::kInstance) {
      add(std::make_unique<InstanceNorm2d<B>>(backend, cout, config.norm_eps), first);
    } else {
      auto norm = std::make_unique<BatchNorm2d<B>>(backend, store, prefix + ".adn.N", cout, config.norm_eps,
                                                   config.norm_momentum, ParamInit::kOnePlusNormalSmall);
      norms_.push_back(norm.get());
      add(std::move(norm), first);
    }
    activation();
    cin = cout;
  }
  first = store.count();
  add(std::make_unique<Conv2d<B>>(backend, store, config.name_prefix + "final_conv.conv", cin, config.out_channels, kKernel, 1, kPadding,
                                  with_bias),
      first);
}

template <class B>
std::vector<ModelBuffer> PatchDiscriminator<B>::buffers() {
  std::vector<ModelBuffer> all;
  for (BatchNorm2d<B>* norm : norms_)
    for (ModelBuffer& buffer : norm->buffers()) all.push_back(std::move(buffer));
  return all;
}

template <class B>
void PatchDiscriminator<B>::load_buffers(const std::vector<ModelBuffer>& buffers) {
  LADDER_CHECK(buffers.size() == 3 * norms_.size(), "PatchDiscriminator: ", buffers.size(), " buffers for ",
               norms_.size(), " BatchNorm layers");
  for (size_t i = 0; i < norms_.size(); ++i) norms_[i]->load_buffers(&buffers[3 * i]);
}

template <class B>
Shape PatchDiscriminator<B>::output_shape(const Shape& images) const {
  // num_layers_d stride-2 convolutions (initial_conv and all BN layers but the last) halve,
  // rounding down; the two stride-1 4×4 convolutions with padding 1 take one pixel each.
  int64_t h = images.h, w = images.w;
  for (int l = 0; l < config_.num_layers_d; ++l) h /= 2, w /= 2;
  return {images.n, h - 2, w - 2, config_.out_channels};
}

template <class B>
const typename B::Tensor& PatchDiscriminator<B>::forward(const Tensor& images) {
  const Shape& s = images.shape();
  LADDER_CHECK(s.c == config_.in_channels, "PatchDiscriminator expects ", config_.in_channels,
               " channels, got ", s.str());
  const Shape out = output_shape(s);
  LADDER_CHECK(out.h >= 1 && out.w >= 1, "PatchDiscriminator with num_layers_d ", config_.num_layers_d,
               ": images ", s.str(), " are too small (at least ", 3 << config_.num_layers_d, " pixels a side)");
  return layers_.forward(images);
}

template <class B>
const typename B::Tensor& PatchDiscriminator<B>::backward(const Tensor& dlogits) {
  return layers_.backward(dlogits);
}

template <class B>
void PatchDiscriminator<B>::set_training(bool training) {
  for (BatchNorm2d<B>* norm : norms_) norm->set_training(training);
}

LADDER_INSTANTIATE_FOR_BACKENDS(PatchDiscriminator)

}  // namespace ladder
