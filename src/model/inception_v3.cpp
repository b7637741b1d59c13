// Why this file exists: the FID InceptionV3 forward (model/inception_v3.h), block by block as
// docs/reference-fid.md §1 lists it.
#include "model/inception_v3.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include "core/check.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "kernels/cpu/feature_ops.h"
#include "model/cpu_backend.h"
#include "model/plan_backend.h"
#ifdef LADDER_WITH_CUDA
#include "model/cuda_backend.h"
#endif
#include "model/torch_layout.h"

namespace ladder {

InceptionInput inception_input_named(const std::string& name, const std::string& what) {
  if (name == "pytorch_fid") return InceptionInput::kPytorchFid;
  if (name == "tf1") return InceptionInput::kTf1;
  throw UsageError(what + " = " + name + ": must be pytorch_fid or tf1");
}

const char* inception_input_name(InceptionInput mode) {
  return mode == InceptionInput::kPytorchFid ? "pytorch_fid" : "tf1";
}

template <class B>
int InceptionV3<B>::unit(const std::string& name, int cin, int cout, int kernel_h, int kernel_w, int stride,
                         int pad_h, int pad_w) {
  Unit u;
  u.cin = cin, u.cout = cout, u.kernel_h = kernel_h, u.kernel_w = kernel_w, u.stride = stride;
  u.pad_h = pad_h, u.pad_w = pad_w;
  const int64_t fan_in = int64_t(cin) * kernel_h * kernel_w;
  u.weight = params_.add(name + ".conv.weight", {cout, kernel_h, kernel_w, cin}, ParamInit::kZeros, fan_in, false);
  u.gamma = params_.add(name + ".bn.weight", {cout}, ParamInit::kOnes, fan_in, false);
  u.beta = params_.add(name + ".bn.bias", {cout}, ParamInit::kZeros, fan_in, false);
  u.mean = params_.add(name + ".bn.running_mean", {cout}, ParamInit::kZeros, fan_in, false);
  u.variance = params_.add(name + ".bn.running_var", {cout}, ParamInit::kOnes, fan_in, false);
  units_.push_back(std::move(u));
  names_.push_back(name);
  return static_cast<int>(units_.size()) - 1;
}

template <class B>
InceptionV3<B>::InceptionV3(B& backend) : backend_(backend) {
  // In execution order, which is the state dict's (docs/reference-fid.md §1.3).
  unit("Conv2d_1a_3x3", 3, 32, 3, 3, 2);
  unit("Conv2d_2a_3x3", 32, 32, 3, 3);
  unit("Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
  unit("Conv2d_3b_1x1", 64, 80, 1, 1);
  unit("Conv2d_4a_3x3", 80, 192, 3, 3);
  const std::pair<const char*, std::pair<int, int>> a_blocks[] = {
      {"Mixed_5b", {192, 32}}, {"Mixed_5c", {256, 64}}, {"Mixed_5d", {288, 64}}};
  for (const auto& [name, sizes] : a_blocks) {
    const std::string p = name;
    const int cin = sizes.first;
    unit(p + ".branch1x1", cin, 64, 1, 1);
    unit(p + ".branch5x5_1", cin, 48, 1, 1);
    unit(p + ".branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
    unit(p + ".branch3x3dbl_1", cin, 64, 1, 1);
    unit(p + ".branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    unit(p + ".branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
    unit(p + ".branch_pool", cin, sizes.second, 1, 1);
  }
  unit("Mixed_6a.branch3x3", 288, 384, 3, 3, 2);
  unit("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1);
  unit("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
  unit("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3, 2);
  const std::pair<const char*, int> c_blocks[] = {{"Mixed_6b", 128}, {"Mixed_6c", 160}, {"Mixed_6d", 160}, {"Mixed_6e", 192}};
  for (const auto& [name, c7] : c_blocks) {
    const std::string p = name;
    unit(p + ".branch1x1", 768, 192, 1, 1);
    unit(p + ".branch7x7_1", 768, c7, 1, 1);
    unit(p + ".branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
    unit(p + ".branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
    unit(p + ".branch7x7dbl_1", 768, c7, 1, 1);
    unit(p + ".branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
    unit(p + ".branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
    unit(p + ".branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
    unit(p + ".branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
    unit(p + ".branch_pool", 768, 192, 1, 1);
  }
  unit("Mixed_7a.branch3x3_1", 768, 192, 1, 1);
  unit("Mixed_7a.branch3x3_2", 192, 320, 3, 3, 2);
  unit("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1);
  unit("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
  unit("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
  unit("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3, 2);
  for (const auto& [name, cin] : {std::pair<const char*, int>{"Mixed_7b", 1280}, {"Mixed_7c", 2048}}) {
    const std::string p = name;
    unit(p + ".branch1x1", cin, 320, 1, 1);
    unit(p + ".branch3x3_1", cin, 384, 1, 1);
    unit(p + ".branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
    unit(p + ".branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
    unit(p + ".branch3x3dbl_1", cin, 448, 1, 1);
    unit(p + ".branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
    unit(p + ".branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
    unit(p + ".branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
    unit(p + ".branch_pool", cin, 192, 1, 1);
  }
  params_.allocate_frozen();  // values only: nothing computes this network's gradients
}

template <class B>
void InceptionV3<B>::load(const std::string& safetensors_path) {
  io::SafetensorsHeader header = io::read_safetensors_header(safetensors_path);
  std::vector<io::SafetensorEntry> kept;
  for (const io::SafetensorEntry& entry : header.tensors) {
    const bool classifier = entry.name.rfind("fc.", 0) == 0;
    const std::string counter = ".num_batches_tracked";
    const bool tracked = entry.name.size() > counter.size() &&
                         entry.name.compare(entry.name.size() - counter.size(), counter.size(), counter) == 0;
    if (!classifier && !tracked) kept.push_back(entry);
  }
  header.tensors = kept;
  load_torch_weights(header, params_);
  fold_batch_norms();
}

template <class B>
void InceptionV3<B>::randomize(uint64_t seed) {
  for (size_t i = 0; i < units_.size(); ++i) {
    Unit& u = units_[i];
    Rng rng(seed, i);
    const double std = std::sqrt(2.0 / (double(u.cin) * u.kernel_h * u.kernel_w));
    const int64_t count = int64_t(u.cout) * u.kernel_h * u.kernel_w * u.cin;
    for (int64_t k = 0; k < count; ++k) u.weight.value()[k] = static_cast<float>(std * rng.normal());
    for (int k = 0; k < u.cout; ++k) {
      u.gamma.value()[k] = static_cast<float>(1 + 0.1 * rng.normal());
      u.beta.value()[k] = static_cast<float>(0.1 * rng.normal());
      u.mean.value()[k] = static_cast<float>(0.1 * rng.normal());
      u.variance.value()[k] = static_cast<float>(0.5 + rng.uniform());
    }
  }
  fold_batch_norms();
}

template <class B>
void InceptionV3<B>::save(const std::string& safetensors_path) const {
  std::vector<io::SafetensorToWrite> tensors;
  for (const ParamEntry& entry : params_.entries())
    tensors.push_back(torch_tensor(entry.name, entry.shape, params_.values() + entry.offset, "F32"));
  io::write_safetensors(safetensors_path, {{"network", "pytorch-fid InceptionV3 (FID), ladder's random weights"}},
                        tensors);
}

template <class B>
void InceptionV3<B>::load_or_randomize(const std::string& weights) {
  if (weights == "random" || weights.rfind("random:", 0) == 0) {
    uint64_t seed = 0;
    if (weights.size() > 7) {
      char* end = nullptr;
      seed = std::strtoull(weights.c_str() + 7, &end, 10);
      LADDER_CHECK_USAGE(*end == '\0' && weights.size() > 7, "InceptionV3 weights '", weights,
                         "': random:SEED needs a non-negative integer seed");
    }
    randomize(seed);
  } else {
    load(weights);
  }
}

template <class B>
void InceptionV3<B>::fold_batch_norms() {
  for (Unit& u : units_) {  // eval-mode BatchNorm: (x − mean)/√(var + 1e-3)·γ + β = x·scale + shift
    std::vector<float> affine(static_cast<size_t>(2 * u.cout));  // scale, then shift
    for (int k = 0; k < u.cout; ++k) {
      const double scale = double(u.gamma.value()[k]) / std::sqrt(double(u.variance.value()[k]) + 1e-3);
      affine[k] = static_cast<float>(scale);
      affine[u.cout + k] = static_cast<float>(double(u.beta.value()[k]) - double(u.mean.value()[k]) * scale);
    }
    backend_.resize(u.affine, {1, 1, 2, u.cout});
    backend_.floats_from_host(affine.data(), u.affine);
  }
  folded_ = true;
}

template <class B>
void InceptionV3<B>::run(int index, const Tensor& in, Tensor& out) {
  const Unit& u = units_[index];
  const Shape s = in.shape();  // (N, H, W, Cin)
  LADDER_CHECK(s.c == u.cin, "InceptionV3 ", names_[index], ": input has ", s.c, " channels, expected ", u.cin);
  const cpu::Conv2dDims d = cpu::Conv2dDims::make_rectangular(
      static_cast<int>(s.n), static_cast<int>(s.h), static_cast<int>(s.w), u.cin, u.cout, u.kernel_h, u.kernel_w,
      u.stride, u.pad_h, u.pad_w, u.pad_h, u.pad_w);
  backend_.resize(out, {s.n, d.out_h(), d.out_w(), u.cout});
  backend_.conv2d_forward(d, in.data(), u.weight, ParamView(), out.data());
  backend_.channel_affine(out.numel() / u.cout, u.cout, out.data(), u.affine.data(), u.affine.data() + u.cout, true,
                          out.data());
}

template <class B>
void InceptionV3<B>::concat(const std::vector<const Tensor*>& parts, Tensor& out) {
  const Shape s = parts.front()->shape();
  int64_t channels = 0;
  for (const Tensor* part : parts) channels += part->shape().c;
  backend_.resize(out, {s.n, s.h, s.w, channels});
  int offset = 0;
  for (const Tensor* part : parts) {
    const int c = static_cast<int>(part->shape().c);
    backend_.copy_channels(s.n * s.h * s.w, c, part->data(), static_cast<int>(channels), offset, out.data());
    offset += c;
  }
}

namespace {

int index_of(const std::vector<std::string>& names, const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  LADDER_FAIL("InceptionV3: no unit ", name);
}

}  // namespace

template <class B>
void InceptionV3<B>::same_pool(cpu::SamePool kind, const Tensor& in, Tensor& out) {
  const Shape s = in.shape();
  backend_.resize(out, s);
  backend_.pool3x3_same(kind, static_cast<int>(s.n), static_cast<int>(s.h), static_cast<int>(s.w),
                        static_cast<int>(s.c), in.data(), out.data());
}

template <class B>
void InceptionV3<B>::max_pool_stride2(const Tensor& in, Tensor& out) {
  const Shape s = in.shape();
  cpu::MaxPoolDims pool;
  pool.n = static_cast<int>(s.n), pool.h = static_cast<int>(s.h), pool.w = static_cast<int>(s.w);
  pool.c = static_cast<int>(s.c), pool.kernel = 3, pool.stride = 2;
  backend_.resize(out, {s.n, pool.out_h(), pool.out_w(), s.c});
  backend_.max_pool2d_forward(pool, in.data(), out.data());
}

template <class B>
void InceptionV3<B>::block_a(const std::string& p, const Tensor& in, Tensor& out) {
  auto u = [&](const char* branch) { return index_of(names_, p + "." + branch); };
  Tensor b1, b5a, b5, d1, d2, d3, pooled, bp;
  run(u("branch1x1"), in, b1);
  run(u("branch5x5_1"), in, b5a);
  run(u("branch5x5_2"), b5a, b5);
  run(u("branch3x3dbl_1"), in, d1);
  run(u("branch3x3dbl_2"), d1, d2);
  run(u("branch3x3dbl_3"), d2, d3);
  same_pool(cpu::SamePool::kAverageInImage, in, pooled);
  run(u("branch_pool"), pooled, bp);
  concat({&b1, &b5, &d3, &bp}, out);
}

template <class B>
void InceptionV3<B>::block_b(const Tensor& in, Tensor& out) {
  auto u = [&](const char* branch) { return index_of(names_, std::string("Mixed_6a.") + branch); };
  Tensor b3, d1, d2, d3, pooled;
  run(u("branch3x3"), in, b3);
  run(u("branch3x3dbl_1"), in, d1);
  run(u("branch3x3dbl_2"), d1, d2);
  run(u("branch3x3dbl_3"), d2, d3);
  max_pool_stride2(in, pooled);
  concat({&b3, &d3, &pooled}, out);
}

template <class B>
void InceptionV3<B>::block_c(const std::string& p, const Tensor& in, Tensor& out) {
  auto u = [&](const std::string& branch) { return index_of(names_, p + "." + branch); };
  Tensor b1, a1, a2, a3, d[6], pooled, bp;
  run(u("branch1x1"), in, b1);
  run(u("branch7x7_1"), in, a1);
  run(u("branch7x7_2"), a1, a2);
  run(u("branch7x7_3"), a2, a3);
  run(u("branch7x7dbl_1"), in, d[1]);
  for (int k = 2; k <= 5; ++k) run(u("branch7x7dbl_" + std::to_string(k)), d[k - 1], d[k]);
  same_pool(cpu::SamePool::kAverageInImage, in, pooled);
  run(u("branch_pool"), pooled, bp);
  concat({&b1, &a3, &d[5], &bp}, out);
}

template <class B>
void InceptionV3<B>::block_d(const Tensor& in, Tensor& out) {
  auto u = [&](const std::string& branch) { return index_of(names_, "Mixed_7a." + branch); };
  Tensor b1, b2, x1, x2, x3, x4, pooled;
  run(u("branch3x3_1"), in, b1);
  run(u("branch3x3_2"), b1, b2);
  run(u("branch7x7x3_1"), in, x1);
  run(u("branch7x7x3_2"), x1, x2);
  run(u("branch7x7x3_3"), x2, x3);
  run(u("branch7x7x3_4"), x3, x4);
  max_pool_stride2(in, pooled);
  concat({&b2, &x4, &pooled}, out);
}

template <class B>
void InceptionV3<B>::block_e(const std::string& p, bool max_pool, const Tensor& in, Tensor& out) {
  auto u = [&](const std::string& branch) { return index_of(names_, p + "." + branch); };
  Tensor b1, t1, t2a, t2b, d1, d2, d3a, d3b, pooled, bp;
  run(u("branch1x1"), in, b1);
  run(u("branch3x3_1"), in, t1);
  run(u("branch3x3_2a"), t1, t2a);
  run(u("branch3x3_2b"), t1, t2b);
  run(u("branch3x3dbl_1"), in, d1);
  run(u("branch3x3dbl_2"), d1, d2);
  run(u("branch3x3dbl_3a"), d2, d3a);
  run(u("branch3x3dbl_3b"), d2, d3b);
  same_pool(max_pool ? cpu::SamePool::kMax : cpu::SamePool::kAverageInImage, in, pooled);
  run(u("branch_pool"), pooled, bp);
  concat({&b1, &t2a, &t2b, &d3a, &d3b, &bp}, out);
}

template <class B>
void InceptionV3<B>::features(const uint8_t* images, int n, int h, int w, int c, InceptionInput mode,
                              std::vector<float>& out) {
  LADDER_CHECK_USAGE(c == 1 || c == 3, "InceptionV3 takes 1- or 3-channel images (got ", c, ")");
  LADDER_CHECK(n >= 0 && h >= 1 && w >= 1, "InceptionV3: bad image size ", h, "x", w);
  LADDER_CHECK(folded_, "InceptionV3: features() before load() or randomize()");
  // The tools' normalisation after the resize, as one affine map per channel: 2x − 1 of u8/255
  // (pytorch_fid), or (x − 128)/128 = x/128 − 1, the same bits since /128 is exact (tf1).
  const bool pytorch_fid = mode == InceptionInput::kPytorchFid;
  const float scale = pytorch_fid ? 2.f : 1.f / 128.f;
  const std::vector<float> normalize = {scale, scale, scale, -1.f, -1.f, -1.f};
  FloatTensor normalization, pooled;
  backend_.resize(normalization, {1, 1, 2, 3});
  backend_.floats_from_host(normalize.data(), normalization);
  std::vector<float> prepared(static_cast<size_t>(int64_t(h) * w * 3));  // (h, w, 3) on the host
  Tensor raw, x, a, b;
  for (int i = 0; i < n; ++i) {  // one image per pass: its features never depend on its batch
    const uint8_t* image = images + int64_t(i) * h * w * c;
    for (int64_t p = 0; p < int64_t(h) * w; ++p)
      for (int k = 0; k < 3; ++k) {
        const float v = float(image[p * c + (c == 3 ? k : 0)]);
        prepared[p * 3 + k] = pytorch_fid ? v * (1.f / 255.f) : v;
      }
    backend_.load_values(prepared.data(), {1, h, w, 3}, raw);
    backend_.resize(x, {1, kSide, kSide, 3});
    backend_.resize_bilinear(pytorch_fid ? cpu::BilinearMode::kHalfPixel : cpu::BilinearMode::kTf1, 1, h, w, 3,
                             raw.data(), kSide, kSide, x.data());
    backend_.channel_affine(x.numel() / 3, 3, x.data(), normalization.data(), normalization.data() + 3, false,
                            x.data());

    const auto by = [&](const char* name) { return index_of(names_, name); };
    run(by("Conv2d_1a_3x3"), x, a);
    run(by("Conv2d_2a_3x3"), a, b);
    run(by("Conv2d_2b_3x3"), b, a);
    max_pool_stride2(a, b);
    run(by("Conv2d_3b_1x1"), b, a);
    run(by("Conv2d_4a_3x3"), a, b);
    max_pool_stride2(b, a);
    block_a("Mixed_5b", a, b);
    block_a("Mixed_5c", b, a);
    block_a("Mixed_5d", a, b);
    block_b(b, a);
    block_c("Mixed_6b", a, b);
    block_c("Mixed_6c", b, a);
    block_c("Mixed_6d", a, b);
    block_c("Mixed_6e", b, a);
    block_d(a, b);
    block_e("Mixed_7b", false, b, a);
    block_e("Mixed_7c", true, a, b);
    const Shape s = b.shape();  // (1, 8, 8, 2048)
    backend_.resize(pooled, {1, 1, 1, s.c});
    backend_.global_average_pool(1, s.h * s.w, static_cast<int>(s.c), b.data(), pooled.data());
    const size_t first = out.size();
    out.resize(first + kFeatures);
    backend_.floats_to_host(pooled, out.data() + first);
  }
}

template class InceptionV3<CpuBackend>;
template class InceptionV3<PlanBackend>;
#ifdef LADDER_WITH_CUDA
template class InceptionV3<CudaBackend<float>>;
#endif

}  // namespace ladder
