// Why this file exists: the per-pass speed of the CPU backend's convolutions against the best
// this machine's library gives. For each convolution shape of the CPU-speed configurations it
// times, interleaved, (a) ladder's call as the trainer makes it (OneDnnConvolutions: weights
// from our layout, scratchpads, the accumulated filter gradient) and (b) a plain oneDNN
// primitive on the same shape with everything prepared outside the timed region (weights
// already in the primitive's preferred layout, buffers allocated once) — what benchdnn would
// time. Prints GFLOP/s of both and ladder's share.
//   usage: bench_onednn_conv [repeats (9)]     OMP_NUM_THREADS sets the threads
#include <omp.h>

#include <dnnl.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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

// The three plain passes of shape d, built as ladder builds them (NHWC fp32 activations,
// weights and scratchpad in the layouts oneDNN picks).
std::vector<PlainPass> plain_passes(const dnnl::engine& engine, const Conv2dDims& d) {
  const dnnl::memory::desc x({d.n, d.cin, d.h, d.w}, dt::f32, tag::nhwc);
  const dnnl::memory::desc y({d.n, d.cout, d.out_h(), d.out_w()}, dt::f32, tag::nhwc);
  const dnnl::memory::desc w_any({d.cout, d.cin, d.kernel, d.kernel}, dt::f32, tag::any);
  const dnnl::memory::desc b({d.cout}, dt::f32, tag::x);
  const dnnl::memory::dims strides = {d.stride, d.stride}, left = {d.pad_top, d.pad_left},
                           right = {d.pad_bottom, d.pad_right};
  const auto algorithm = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::primitive_desc forward(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, x, w_any, b, y, strides, left,
                                      right),
      engine);
  const dnnl::convolution_backward_data::primitive_desc data(
      dnnl::convolution_backward_data::desc(algorithm, x, w_any, y, strides, left, right), engine, forward);
  const dnnl::convolution_backward_weights::primitive_desc filter(
      dnnl::convolution_backward_weights::desc(algorithm, x, w_any, b, y, strides, left, right), engine, forward);
  std::vector<PlainPass> passes;
  passes.emplace_back(engine, dnnl::convolution_forward(forward),
                      std::unordered_map<int, dnnl::memory>{{DNNL_ARG_SRC, filled(engine, x)},
                                                            {DNNL_ARG_WEIGHTS, filled(engine, forward.weights_desc())},
                                                            {DNNL_ARG_BIAS, filled(engine, b)},
                                                            {DNNL_ARG_DST, dnnl::memory(y, engine)}});
  passes.emplace_back(engine, dnnl::convolution_backward_data(data),
                      std::unordered_map<int, dnnl::memory>{{DNNL_ARG_DIFF_DST, filled(engine, y)},
                                                            {DNNL_ARG_WEIGHTS, filled(engine, data.weights_desc())},
                                                            {DNNL_ARG_DIFF_SRC, dnnl::memory(x, engine)}});
  passes.emplace_back(engine, dnnl::convolution_backward_weights(filter),
                      std::unordered_map<int, dnnl::memory>{
                          {DNNL_ARG_SRC, filled(engine, x)},
                          {DNNL_ARG_DIFF_DST, filled(engine, y)},
                          {DNNL_ARG_DIFF_WEIGHTS, dnnl::memory(filter.diff_weights_desc(), engine)},
                          {DNNL_ARG_DIFF_BIAS, dnnl::memory(b, engine)}});
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
  std::printf("%-20s %-34s %-15s %10s %10s %8s\n", "model", "shape (N,H,W,Cin->Cout,K,stride)", "pass",
              "ladder", "oneDNN", "share");
  for (const Case& c : cases()) {
    const Conv2dDims& d = c.d;
    const std::vector<float> x = random_vector(d.x_size(), 99, 1), w = random_vector(d.w_size(), 99, 2),
                             b = random_vector(d.cout, 99, 3), dy = random_vector(d.y_size(), 99, 4);
    std::vector<float> y(static_cast<size_t>(d.y_size())), dx(static_cast<size_t>(d.x_size())),
        dw(static_cast<size_t>(d.w_size())), db(static_cast<size_t>(d.cout));
    std::vector<PlainPass> plain = plain_passes(engine, d);
    const std::vector<ladder::bench::Timing> s = ladder::bench::time_rounds(
        repeats, {[&] { ours.forward(d, x.data(), w.data(), b.data(), y.data()); }, [&] { plain[0].run(); },
                  [&] { ours.backward_data(d, dy.data(), w.data(), dx.data()); }, [&] { plain[1].run(); },
                  [&] { ours.backward_filter(d, x.data(), dy.data(), dw.data(), db.data()); },
                  [&] { plain[2].run(); }});
    const double gflop = 2.0 * double(d.macs()) / 1e9;
    char shape[64];
    std::snprintf(shape, sizeof shape, "%d,%d,%d,%d->%d,%d,%d", d.n, d.h, d.w, d.cin, d.cout, d.kernel, d.stride);
    const char* names[] = {"forward", "backward_data", "backward_filter"};
    for (int pass = 0; pass < 3; ++pass)
      std::printf("%-20s %-34s %-15s %10.1f %10.1f %7.0f%%\n", c.model.c_str(), shape, names[pass],
                  gflop / s[2 * pass].median_s, gflop / s[2 * pass + 1].median_s,
                  100.0 * s[2 * pass + 1].median_s / s[2 * pass].median_s);
  }
  return 0;
}
