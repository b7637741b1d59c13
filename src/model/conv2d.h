// Why this file exists: the convolution layer (MONAI `Convolution(conv_only=True)`): weight
// (Cout, K, K, Cin) and bias (Cout, unless built without one) in the flat buffer, NHWC
// activations.
#pragma once

#include <string>

#include "core/params.h"
#include "kernels/cpu/ops.h"
#include "model/layer.h"

namespace ladder {

struct Padding {
  int top, left, bottom, right;
  static Padding same(int kernel) { return {kernel / 2, kernel / 2, kernel / 2, kernel / 2}; }
  static Padding bottom_right() { return {0, 0, 1, 1}; }  // the Downsample's asymmetric pad
};

// How a convolution's parameters start, and whether it has a bias.
struct ConvOptions {
  ParamInit weight_init = ParamInit::kFanInUniform;  // the bias: fan-in uniform too, else zeros
  bool bias = true;
};

template <class B>
class Conv2d : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  // Registers "<name>.weight" and "<name>.bias".
  // zero_initialized: weight and bias start at 0 (the UNet's conv2 and output conv).
  Conv2d(B& backend, ParamStore& store, const std::string& name, int cin, int cout, int kernel,
         int stride, Padding padding, bool zero_initialized = false);
  // Registers "<name>.weight", and "<name>.bias" when options.bias.
  Conv2d(B& backend, ParamStore& store, const std::string& name, int cin, int cout, int kernel,
         int stride, Padding padding, ConvOptions options);

  // The first layer of a model never needs the gradient of the images.
  void skip_input_gradient() { compute_input_grad_ = false; }
  void set_parameter_gradients(bool accumulate) override { compute_param_grad_ = accumulate; }

  const Tensor& forward(const Tensor& x) override;  // (N, H, W, Cin) → (N, Ho, Wo, Cout)
  const Tensor& backward(const Tensor& dy) override;
  void release_activations() override {
    output_.release();
    grad_input_.release();
  }

 private:
  cpu::Conv2dDims dims_for(const Shape& input) const;

  B& backend_;
  int cin_, cout_, kernel_, stride_;
  Padding padding_;
  bool compute_input_grad_ = true;
  bool compute_param_grad_ = true;
  ParamView weight_, bias_;  // bias_ not valid() without a bias
  const Tensor* input_ = nullptr;
  Tensor output_, grad_input_;
};

}  // namespace ladder
