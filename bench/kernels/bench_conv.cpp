// Why this file exists: conv2d is the hot op of the CPU trainer and is lowered to GEMM, so its
// speed is judged against the GEMM it is built on. This program times the 3×3 conv passes at
// a representative size and, in the same run, an OpenBLAS sgemm of the same FLOP count, and
// prints each pass's GFLOP/s and its ratio to sgemm.
//   usage: bench_conv [repeats]   (default 5; the median and the best are reported)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/ops.h"

namespace {

struct Timing {
  double median_s = 0, best_s = 0;
};

// One warm-up call, then `repeats` timed calls.
Timing time_it(int repeats, const std::function<void()>& fn) {
  fn();
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    auto stop = std::chrono::steady_clock::now();
    seconds.push_back(std::chrono::duration<double>(stop - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds[seconds.size() / 2], seconds.front()};
}

std::vector<float> random_vector(int64_t count, uint64_t stream) {
  ladder::Rng rng(1234, stream);
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = static_cast<float>(rng.uniform(-1.0, 1.0));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ladder::cpu;
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;

  Conv2dDims d;
  d.n = 8, d.h = 64, d.w = 64, d.cin = 128, d.cout = 128, d.kernel = 3, d.stride = 1;
  d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 1;
  const int64_t x_count = int64_t(d.n) * d.h * d.w * d.cin;
  const int64_t y_count = int64_t(d.n) * d.out_h() * d.out_w() * d.cout;
  const int64_t w_count = int64_t(d.cout) * d.kernel * d.kernel * d.cin;
  std::vector<float> x = random_vector(x_count, 1), w = random_vector(w_count, 2);
  std::vector<float> b = random_vector(d.cout, 3), dy = random_vector(y_count, 4);
  std::vector<float> y(y_count), dx(x_count), dw(w_count), db(d.cout);

  // The GEMM of the forward pass: (N·Ho·Wo, K·K·Cin) × (K·K·Cin, Cout), B stored transposed.
  const int64_t gm = int64_t(d.n) * d.out_h() * d.out_w(), gn = d.cout,
                gk = int64_t(d.kernel) * d.kernel * d.cin;
  std::vector<float> ga = random_vector(gm * gk, 5), gc(gm * gn);
  const double flops = 2.0 * double(d.macs());

  struct Row {
    const char* name;
    Timing t;
  };
  std::vector<Row> rows;
  rows.push_back({"sgemm (same FLOPs)", time_it(repeats, [&] {
                    gemm<float>(false, true, gm, gn, gk, 1.0f, ga.data(), gk, w.data(), gk, 0.0f,
                                gc.data(), gn);
                  })});
  rows.push_back({"conv forward", time_it(repeats, [&] {
                    conv2d_forward(d, x.data(), w.data(), b.data(), y.data());
                  })});
  rows.push_back({"conv backward_data", time_it(repeats, [&] {
                    conv2d_backward_data(d, dy.data(), w.data(), dx.data());
                  })});
  rows.push_back({"conv backward_filter", time_it(repeats, [&] {
                    conv2d_backward_filter(d, x.data(), dy.data(), dw.data(), db.data());
                  })});

  std::printf("conv2d 3x3 stride 1 pad 1, float, N=%d H=W=%d Cin=%d Cout=%d (%.2f GFLOP/pass)\n",
              d.n, d.h, d.cin, d.cout, flops * 1e-9);
  std::printf("sgemm M=%lld N=%lld K=%lld; threads: OpenMP %d, OpenBLAS %d; %d repeats after "
              "1 warm-up\n\n",
              static_cast<long long>(gm), static_cast<long long>(gn),
              static_cast<long long>(gk), omp_get_max_threads(), openblas_get_num_threads(),
              repeats);
  std::printf("%-22s %12s %12s %12s %12s\n", "pass", "median ms", "GFLOP/s", "best GFLOP/s",
              "vs sgemm");
  const double sgemm_rate = flops / rows[0].t.median_s * 1e-9;
  for (const Row& row : rows) {
    const double rate = flops / row.t.median_s * 1e-9;
    std::printf("%-22s %12.1f %12.1f %12.1f %11.0f%%\n", row.name, row.t.median_s * 1e3, rate,
                flops / row.t.best_s * 1e-9, 100.0 * rate / sgemm_rate);
  }
  std::printf("\n(ratios use medians)\n");
  return 0;
}
