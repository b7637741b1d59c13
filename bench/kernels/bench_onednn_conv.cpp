// Why this file exists: the per-pass speed of the CPU backend's convolutions against the best
// this machine's library gives. For each convolution shape of the CPU-speed configurations it
// times, interleaved, (a) ladder's call as the trainer makes it (OneDnnConvolutions: weights
// from our layout, scratchpads, the accumulated filter gradient) and (b) a plain oneDNN
// primitive on the same shape with everything prepared outside the timed region (weights
// already in the primitive's preferred layout, buffers allocated once) — what benchdnn would
// time — as a direct convolution and, where the shape allows it, as Winograd (forward and
// backward data; activations in its blocked layout, also prepared outside). Prints GFLOP/s of
// each, the algorithm ladder's call takes, and ladder's share of the best of them.
//   usage: bench_onednn_conv [repeats (9)]     OMP_NUM_THREADS sets the threads
#include <omp.h>

#include <dnnl.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_timing.h"
#include "kernels/cpu/onednn_conv.h"

namespace {

using ladder::bench::random_vector;
using ladder::cpu::Conv2dDims;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// One pass of one shape as a bare oneDNN primitive: memory in the primitive's own layouts,
// allocated and filled once; run() executes it and waits.
class PlainPass {
 public:
  PlainPass(const dnnl::engine& engine, dnnl::primitive primitive, std::unordered_map<int, dnnl::memory> args)
      : stream_(engine), primitive_(std::move(primitive)), args_(std::move(args)) {}
  void run() {
    primitive_.execute(stream_, args_);
    stream_.wait();
  }

 private:
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  std::unordered_map<int, dnnl::memory> args_;
};

dnnl::memory filled(const dnnl::engine& engine, const dnnl::memory::desc& desc) {
  dnnl::memory m(desc, engine);
  float* p = static_cast<float*>(m.get_data_handle());
  const std::vector<float> values = random_vector(static_cast<int64_t>(desc.get_size() / sizeof(float)), 99, 7);
  std::copy(values.begin(), values.end(), p);
  return m;
}

// The plain passes of shape d by `algorithm`, built as ladder builds them (fp32, weights and
// scratchpad in the layouts oneDNN picks; NHWC activations for the direct passes, the layout
// oneDNN picks for Winograd's): forward, backward data, and for the direct algorithm backward
// filter. Empty when the algorithm does not serve the shape.
std::vector<PlainPass> plain_passes(const dnnl::engine& engine, const Conv2dDims& d, dnnl::algorithm algorithm) {
  const bool direct = algorithm == dnnl::algorithm::convolution_direct;
  const tag activations = direct ? tag::nhwc : tag::any;
  const dnnl::memory::desc x({d.n, d.cin, d.h, d.w}, dt::f32, activations);
  const dnnl::memory::desc y({d.n, d.cout, d.out_h(), d.out_w()}, dt::f32, activations);
  const dnnl::memory::desc w_any({d.cout, d.cin, d.kernel_h, d.kernel_w}, dt::f32, tag::any);
  const dnnl::memory::desc b({d.cout}, dt::f32, tag::x);
  const dnnl::memory::dims strides = {d.stride, d.stride}, left = {d.pad_top, d.pad_left},
                           right = {d.pad_bottom, d.pad_right};
  std::vector<PlainPass> passes;
  try {
    const dnnl::convolution_forward::primitive_desc forward(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, x, w_any, b, y, strides, left,
                                        right),
        engine);
    const dnnl::convolution_backward_data::primitive_desc data(
        dnnl::convolution_backward_data::desc(algorithm, x, w_any, y, strides, left, right), engine, forward);
    passes.emplace_back(engine, dnnl::convolution_forward(forward),
                        std::unordered_map<int, dnnl::memory>{
                            {DNNL_ARG_SRC, filled(engine, forward.src_desc())},
                            {DNNL_ARG_WEIGHTS, filled(engine, forward.weights_desc())},
                            {DNNL_ARG_BIAS, filled(engine, b)},
                            {DNNL_ARG_DST, dnnl::memory(forward.dst_desc(), engine)}});
    passes.emplace_back(engine, dnnl::convolution_backward_data(data),
                        std::unordered_map<int, dnnl::memory>{
                            {DNNL_ARG_DIFF_DST, filled(engine, data.diff_dst_desc())},
                            {DNNL_ARG_WEIGHTS, filled(engine, data.weights_desc())},
                            {DNNL_ARG_DIFF_SRC, dnnl::memory(data.diff_src_desc(), engine)}});
    // oneDNN 2.6's Winograd backward filter crashes on some of these shapes: not timed.
    if (direct) {
      const dnnl::convolution_backward_weights::primitive_desc filter(
          dnnl::convolution_backward_weights::desc(algorithm, x, w_any, b, y, strides, left, right), engine, forward);
      passes.emplace_back(engine, dnnl::convolution_backward_weights(filter),
                          std::unordered_map<int, dnnl::memory>{
                              {DNNL_ARG_SRC, filled(engine, x)},
                              {DNNL_ARG_DIFF_DST, filled(engine, y)},
                              {DNNL_ARG_DIFF_WEIGHTS, dnnl::memory(filter.diff_weights_desc(), engine)},
                              {DNNL_ARG_DIFF_BIAS, dnnl::memory(b, engine)}});
    }
  } catch (const dnnl::error&) {
    passes.clear();  // not for this shape or CPU
  }
  return passes;
}

struct Case {
  std::string model;
  Conv2dDims d;
};

// 3×3 stride-1 convolutions of each level, the 1×1 shortcut and the stride-2 downsample of the
// quickstart model (32,64,64) at 64² micro-batch 8 and the 51.7M model (128,256,512,512) at
// 64² micro-batch 2, at the resolutions where they run.
std::vector<Case> cases() {
  auto conv3 = [](int n, int hw, int cin, int cout) { return Conv2dDims::make(n, hw, hw, cin, cout, 3, 1, 1, 1, 1, 1); };
  auto conv1 = [](int n, int hw, int cin, int cout) { return Conv2dDims::make(n, hw, hw, cin, cout, 1, 1, 0, 0, 0, 0); };
  auto down = [](int n, int hw, int c) { return Conv2dDims::make(n, hw, hw, c, c, 3, 2, 0, 0, 1, 1); };
  return {{"quickstart 64² mb 8", conv3(8, 64, 3, 32)},    {"quickstart 64² mb 8", conv3(8, 64, 32, 32)},
          {"quickstart 64² mb 8", down(8, 64, 32)},        {"quickstart 64² mb 8", conv3(8, 32, 32, 64)},
          {"quickstart 64² mb 8", conv1(8, 32, 32, 64)},   {"quickstart 64² mb 8", conv3(8, 32, 64, 64)},
          {"quickstart 64² mb 8", conv3(8, 16, 64, 64)},   {"51.7M 64² mb 2", conv3(2, 64, 128, 128)},
          {"51.7M 64² mb 2", down(2, 64, 128)},            {"51.7M 64² mb 2", conv3(2, 32, 256, 256)},
          {"51.7M 64² mb 2", conv1(2, 32, 128, 256)},      {"51.7M 64² mb 2", conv3(2, 16, 512, 512)},
          {"51.7M 64² mb 2", conv3(2, 8, 512, 512)}};
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 9;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  ladder::cpu::OneDnnConvolutions ours;
  std::printf("oneDNN %d.%d.%d, %d OpenMP threads, median of %d interleaved rounds\n", dnnl_version()->major,
              dnnl_version()->minor, dnnl_version()->patch, omp_get_max_threads(), repeats);
  std::printf("%-20s %-34s %-15s %-9s %10s %10s %10s %8s\n", "model", "shape (N,H,W,Cin->Cout,K,stride)", "pass",
              "algorithm", "ladder", "direct", "winograd", "share");
  for (const Case& c : cases()) {
    const Conv2dDims& d = c.d;
    const std::vector<float> x = random_vector(d.x_size(), 99, 1), w = random_vector(d.w_size(), 99, 2),
                             b = random_vector(d.cout, 99, 3), dy = random_vector(d.y_size(), 99, 4);
    std::vector<float> y(static_cast<size_t>(d.y_size())), dx(static_cast<size_t>(d.x_size())),
        dw(static_cast<size_t>(d.w_size())), db(static_cast<size_t>(d.cout));
    std::vector<PlainPass> direct = plain_passes(engine, d, dnnl::algorithm::convolution_direct);
    std::vector<PlainPass> winograd = plain_passes(engine, d, dnnl::algorithm::convolution_winograd);
    // Per pass: ladder's call, the direct primitive, then Winograd's where there is one.
    std::vector<std::function<void()>> runs = {
        [&] { ours.forward(d, x.data(), w.data(), b.data(), y.data()); }, [&] { direct[0].run(); },
        [&] { ours.backward_data(d, dy.data(), w.data(), dx.data()); }, [&] { direct[1].run(); },
        [&] { ours.backward_filter(d, x.data(), dy.data(), dw.data(), db.data()); }, [&] { direct[2].run(); }};
    for (size_t pass = 0; pass < winograd.size(); ++pass) runs.push_back([&winograd, pass] { winograd[pass].run(); });
    const std::vector<ladder::bench::Timing> s = ladder::bench::time_rounds(repeats, runs);
    const double gflop = 2.0 * double(d.macs()) / 1e9;
    char shape[64];
    std::snprintf(shape, sizeof shape, "%d,%d,%d,%d->%d,%d,%d", d.n, d.h, d.w, d.cin, d.cout, d.kernel_h, d.stride);
    const char* names[] = {"forward", "backward_data", "backward_filter"};
    for (size_t pass = 0; pass < 3; ++pass) {
      double best_s = s[2 * pass + 1].median_s;
      char winograd_rate[16] = "-";
      if (pass < winograd.size()) {
        const double winograd_s = s[6 + pass].median_s;
        best_s = std::min(best_s, winograd_s);
        std::snprintf(winograd_rate, sizeof winograd_rate, "%.1f", gflop / winograd_s);
      }
      const bool ours_winograd = pass < 2 && ours.uses_winograd(d);  // the filter pass is always direct
      std::printf("%-20s %-34s %-15s %-9s %10.1f %10.1f %10s %7.0f%%\n", c.model.c_str(), shape, names[pass],
                  ours_winograd ? "winograd" : "direct", gflop / s[2 * pass].median_s,
                  gflop / s[2 * pass + 1].median_s, winograd_rate, 100.0 * best_s / s[2 * pass].median_s);
    }
  }
  return 0;
}
