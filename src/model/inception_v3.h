// Why this file exists: FID and KID are defined on the 2048-d pool3 features of one network,
// the InceptionV3 that pytorch-fid and torch-fidelity share (TF's 2015 graph:
// docs/reference-fid.md §1). This is that network, forward only and frozen: 94 BasicConv2d
// units (convolution without bias → eval-mode BatchNorm, eps 1e-3 → ReLU), the two stem max
// pools, Mixed_5b..7c with the FID blocks' pools (average over in-image taps only; a max pool
// in Mixed_7c), and the global average pool. Weights come from a safetensors file with
// pytorch-fid's names (fc and num_batches_tracked may be there and are ignored).
//
// Images enter as uint8 (N, H, W, C), C = 3 or 1 (repeated to 3), and are prepared as the
// chosen tool prepares them (InceptionInput): resized to 299×299 and normalised.
//
// Backends: the CPU backend (kernels/cpu/feature_ops.h), the fp32 CUDA backend
// (kernels/cuda/feature_ops.cu; its owner points it at the weights on the device, as
// eval/inception_features.cpp does) and the planner's counting backend. Every tensor, the
// folded BatchNorms included, lives on the backend's device; the host sees the images going in
// and the features coming out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/params.h"
#include "core/tensor.h"
#include "kernels/cpu/feature_ops.h"
#include "kernels/cpu/ops.h"

namespace ladder {

enum class InceptionInput {
  kPytorchFid,  // u8/255, PyTorch's bilinear (half-pixel, no antialias) to 299, then 2x − 1
  kTf1,         // u8 as float, TF1's bilinear to 299, then (x − 128)/128 (torch-fidelity, the LDM paper)
};
// "pytorch_fid" or "tf1" (UsageError naming `what` otherwise), and back.
InceptionInput inception_input_named(const std::string& name, const std::string& what);
const char* inception_input_name(InceptionInput mode);

constexpr int kInceptionFeatures = 2048;  // pool3

template <class B>
class InceptionV3 {
 public:
  using Tensor = typename B::Tensor;
  using FloatTensor = typename B::FloatTensor;
  static constexpr int kFeatures = kInceptionFeatures;
  static constexpr int kSide = 299;

  // Registers and allocates the parameters (zeros until load()). `backend` must outlive it.
  explicit InceptionV3(B& backend);
  InceptionV3(const InceptionV3&) = delete;
  InceptionV3& operator=(const InceptionV3&) = delete;

  // Reads the weights strictly (every conv and BatchNorm tensor with its PyTorch shape; fc.*
  // and *.num_batches_tracked are allowed and skipped). UsageError naming the file otherwise.
  void load(const std::string& safetensors_path);
  // Instead of load(): seeded random weights (Kaiming-normal convolutions, BatchNorm statistics
  // near identity), the same on every machine. Their scores are a sanity check, not a paper's
  // numbers; save() writes them for other tools (pytorch-fid's names and layouts).
  void randomize(uint64_t seed);
  void save(const std::string& safetensors_path) const;
  // load(path), or randomize(seed) for "random" or "random:SEED" (seed 0 by default).
  void load_or_randomize(const std::string& weights);

  // images (n, h, w, c) uint8, row-major → features (n, 2048) appended to `out`.
  void features(const uint8_t* images, int n, int h, int w, int c, InceptionInput mode, std::vector<float>& out);

  ParamStore& params() { return params_; }

 private:
  struct Unit {  // one BasicConv2d
    int cin = 0, cout = 0, kernel_h = 1, kernel_w = 1, stride = 1, pad_h = 0, pad_w = 0;
    ParamView weight, gamma, beta, mean, variance;
    FloatTensor affine;  // (2, cout) on the backend: BatchNorm as y = x·scale + shift, from load()
  };
  void fold_batch_norms();  // scale and shift of every unit from its BatchNorm values
  int unit(const std::string& name, int cin, int cout, int kernel_h, int kernel_w, int stride = 1, int pad_h = 0,
           int pad_w = 0);
  // out = relu(bn(conv(in))) for unit `index`
  void run(int index, const Tensor& in, Tensor& out);
  // The 3×3 stride-1 'same' pool of the A, C and E blocks; the 3×3 stride-2 max pool of the stem,
  // B and D.
  void same_pool(cpu::SamePool kind, const Tensor& in, Tensor& out);
  void max_pool_stride2(const Tensor& in, Tensor& out);
  // Concatenates parts along channels into out.
  void concat(const std::vector<const Tensor*>& parts, Tensor& out);
  void block_a(const std::string& name, const Tensor& in, Tensor& out);
  void block_b(const Tensor& in, Tensor& out);
  void block_c(const std::string& name, const Tensor& in, Tensor& out);
  void block_d(const Tensor& in, Tensor& out);
  void block_e(const std::string& name, bool max_pool, const Tensor& in, Tensor& out);

  B& backend_;
  ParamStore params_;
  std::vector<Unit> units_;
  std::vector<std::string> names_;  // per unit
  bool folded_ = false;              // the units' affines hold the loaded weights
};

}  // namespace ladder
