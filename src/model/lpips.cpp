// Why this file exists: builds LPIPS's trunk from the network table (model/lpips_network.h),
// runs it on both inputs, and differentiates the distance for the first input only.
#include "model/lpips.h"

#include <string>

#include "core/check.h"
#include "io/safetensors.h"
#include "model/backends.h"
#include "model/torch_layout.h"

namespace ladder {
namespace {

// lpips.ScalingLayer: (x − shift)/scale per RGB channel (float32 buffers in lpips).
constexpr float kShift[3] = {-0.030f, -0.088f, -0.188f};
constexpr float kScale[3] = {0.458f, 0.448f, 0.450f};
constexpr double kNormEps = 1e-10;  // lpips.normalize_tensor
constexpr double kReluSlope = 0.0;

}  // namespace

template <class B>
Lpips<B>::Lpips(LpipsNetwork network, B& backend) : network_(network), backend_(backend) {
  const std::vector<LpipsSlice>& slices = lpips_slices(network);
  for (size_t k = 0; k < slices.size(); ++k) {
    const LpipsSlice& slice = slices[k];
    if (slice.pool_kernel > 0) {
      Step pool;
      pool.pool = true;
      pool.pool_dims.kernel = slice.pool_kernel, pool.pool_dims.stride = slice.pool_stride;
      steps_.push_back(pool);
    }
    for (const LpipsConv& conv : slice.convs) {
      const std::string name = "net.slice" + std::to_string(k + 1) + "." + std::to_string(conv.index);
      Step step;
      step.cin = conv.cin, step.cout = conv.cout, step.kernel = conv.kernel, step.stride = conv.stride;
      step.padding = conv.padding;
      const int64_t fan_in = int64_t(conv.cin) * conv.kernel * conv.kernel;
      step.weight = params_.add(name + ".weight", {conv.cout, conv.kernel, conv.kernel, conv.cin}, ParamInit::kZeros,
                                fan_in, /*decay=*/false);
      step.bias = params_.add(name + ".bias", {conv.cout}, ParamInit::kZeros, fan_in, /*decay=*/false);
      steps_.push_back(step);
    }
    slice_end_.push_back(static_cast<int>(steps_.size()) - 1);
    // NetLinLayer: Dropout (index 0, identity in eval mode), then the 1×1 conv (index 1).
    linear_.push_back(params_.add("lin" + std::to_string(k) + ".model.1.weight", {1, 1, 1, slice.channels()},
                                  ParamInit::kZeros, slice.channels(), /*decay=*/false));
  }
  params_.allocate_frozen();  // values only: nothing computes the network's gradients
}

template <class B>
void Lpips<B>::load(const std::string& safetensors_path) {
  load_torch_weights(io::read_safetensors_header(safetensors_path), params_);
}

template <class B>
cpu::Conv2dDims Lpips<B>::conv_dims(const Step& step, const Shape& in) const {
  const cpu::Conv2dDims d = cpu::Conv2dDims::make(static_cast<int>(in.n), static_cast<int>(in.h),
                                                  static_cast<int>(in.w), step.cin, step.cout, step.kernel,
                                                  step.stride, step.padding, step.padding, step.padding, step.padding);
  LADDER_CHECK_USAGE(d.out_h() >= 1 && d.out_w() >= 1, "LPIPS (", lpips_network_name(network_),
                     "): the images are too small for its ", step.kernel, "×", step.kernel, " convolution");
  return d;
}

template <class B>
cpu::MaxPoolDims Lpips<B>::pool_dims(const Step& step, const Shape& in) const {
  cpu::MaxPoolDims d = step.pool_dims;
  d.n = static_cast<int>(in.n), d.h = static_cast<int>(in.h), d.w = static_cast<int>(in.w);
  d.c = static_cast<int>(in.c);
  LADDER_CHECK_USAGE(d.h >= d.kernel && d.w >= d.kernel, "LPIPS (", lpips_network_name(network_),
                     "): the images are too small for its max pools (", d.h, "×", d.w, " before a ", d.kernel,
                     "×", d.kernel, " pool)");
  return d;
}

template <class B>
void Lpips<B>::run_trunk(const Tensor& images, Pass& pass) {
  const Shape s = images.shape();
  backend_.resize(pass.scaled, {s.n, s.h, s.w, 3});
  backend_.channel_standardize_forward(s.n * s.h * s.w, static_cast<int>(s.c), kShift, kScale, images.data(),
                                       pass.scaled.data());
  pass.outputs.resize(steps_.size());
  const Tensor* current = &pass.scaled;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& step = steps_[i];
    Tensor& out = pass.outputs[i];
    const Shape in = current->shape();
    if (step.pool) {
      const cpu::MaxPoolDims d = pool_dims(step, in);
      backend_.resize(out, {in.n, d.out_h(), d.out_w(), in.c});
      backend_.max_pool2d_forward(d, current->data(), out.data());
    } else {
      const cpu::Conv2dDims d = conv_dims(step, in);
      backend_.resize(out, {in.n, d.out_h(), d.out_w(), d.cout});
      backend_.conv2d_forward(d, current->data(), step.weight, step.bias, out.data());
      // In place, as torchvision's ReLU(inplace=True); its backward reads the output, which is
      // positive exactly where the input was.
      backend_.leaky_relu_forward(out.numel(), kReluSlope, out.data(), out.data());
    }
    current = &out;
  }
  pass.features.resize(slice_end_.size());
  pass.norms.resize(slice_end_.size());
  for (size_t k = 0; k < slice_end_.size(); ++k) {
    const Tensor& f = pass.outputs[slice_end_[k]];  // (N, h, w, C)
    const Shape fs = f.shape();
    backend_.resize(pass.features[k], fs);
    backend_.resize(pass.norms[k], {fs.n, fs.h, fs.w, 1});
    backend_.channel_unit_norm_forward(fs.n * fs.h * fs.w, static_cast<int>(fs.c), kNormEps, f.data(),
                                       pass.features[k].data(), pass.norms[k].data());
  }
}

template <class B>
const std::vector<double>& Lpips<B>::forward(const Tensor& x, const Tensor& target) {
  const Shape s = x.shape();
  LADDER_CHECK_USAGE(s.c == 3 || s.c == 1, "LPIPS takes RGB or gray images (3 or 1 channels), got ", s.str());
  channels_ = static_cast<int>(s.c);
  LADDER_CHECK(target.shape() == s, "LPIPS: the target ", target.shape().str(), " differs from the input ", s.str());
  run_trunk(x, x_);
  run_trunk(target, target_);
  distance_.assign(static_cast<size_t>(s.n), 0.0);
  for (size_t k = 0; k < slice_end_.size(); ++k) {
    const Shape fs = x_.features[k].shape();
    backend_.weighted_distance_accumulate(static_cast<int>(fs.n), fs.h * fs.w, static_cast<int>(fs.c),
                                          x_.features[k].data(), target_.features[k].data(), linear_[k],
                                          distance_.data());
  }
  return distance_;
}

template <class B>
const typename B::Tensor& Lpips<B>::backward(const std::vector<double>& ddistance) {
  LADDER_CHECK(!x_.outputs.empty() && ddistance.size() == distance_.size(),
               "LPIPS backward: needs a forward and one gradient per image");
  // Walk the steps backwards; `grad` holds d loss / d (output of step i). Where a slice ends,
  // its feature's gradient joins: weighted distance → unit norm → the ReLU output.
  Tensor* grad = &grad_a_;
  Tensor* spare = &grad_b_;
  int slice = static_cast<int>(slice_end_.size()) - 1;
  for (int i = static_cast<int>(steps_.size()) - 1; i >= 0; --i) {
    const Tensor& out = x_.outputs[i];
    const Shape os = out.shape();
    if (slice >= 0 && slice_end_[slice] == i) {
      const int64_t m = os.n * os.h * os.w;
      backend_.resize(grad_feature_, os);
      backend_.weighted_distance_backward(static_cast<int>(os.n), os.h * os.w, static_cast<int>(os.c),
                                          x_.features[slice].data(), target_.features[slice].data(), linear_[slice],
                                          ddistance.data(), grad_feature_.data());
      if (slice == static_cast<int>(slice_end_.size()) - 1) {
        backend_.resize(*grad, os);
        backend_.channel_unit_norm_backward(m, static_cast<int>(os.c), kNormEps, out.data(), x_.norms[slice].data(),
                                            grad_feature_.data(), grad->data());
      } else {
        backend_.resize(*spare, os);
        backend_.channel_unit_norm_backward(m, static_cast<int>(os.c), kNormEps, out.data(), x_.norms[slice].data(),
                                            grad_feature_.data(), spare->data());
        backend_.add_accumulate(out.numel(), spare->data(), grad->data());
      }
      --slice;
    }
    const Step& step = steps_[i];
    const Tensor& in = i > 0 ? x_.outputs[i - 1] : x_.scaled;
    backend_.resize(*spare, in.shape());
    if (step.pool) {
      backend_.max_pool2d_backward(pool_dims(step, in.shape()), in.data(), grad->data(), spare->data());
    } else {
      backend_.leaky_relu_backward(out.numel(), kReluSlope, out.data(), grad->data(), grad->data());
      backend_.conv2d_backward_data(conv_dims(step, in.shape()), grad->data(), step.weight, spare->data());
    }
    std::swap(grad, spare);
  }
  const Shape s = x_.scaled.shape();
  backend_.resize(grad_x_, {s.n, s.h, s.w, channels_});
  backend_.channel_standardize_backward(s.n * s.h * s.w, channels_, kScale, grad->data(), grad_x_.data());
  return grad_x_;
}

template <class B>
void Lpips<B>::release_activations() {
  for (Pass* pass : {&x_, &target_}) *pass = Pass{};
  grad_a_.release(), grad_b_.release(), grad_feature_.release(), grad_x_.release();
}

LADDER_INSTANTIATE_FOR_BACKENDS(Lpips)

}  // namespace ladder
