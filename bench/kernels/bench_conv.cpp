// Why this file exists: conv2d is the hot op of the CPU trainer and is lowered to GEMM, so its
// speed is judged against the GEMM it is built on. This program times the 3×3 conv passes at
// a representative size and, in the same run, an OpenBLAS sgemm of the same FLOP count, and
// prints each pass's GFLOP/s and its ratio to sgemm.
//   usage: bench_conv [repeats]   (default 7; the median and the best are reported)
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_timing.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/ops.h"

int main(int argc, char** argv) {
  using namespace ladder::cpu;
  using ladder::bench::Timing;
  using ladder::bench::time_rounds;
  auto random_vector = [](int64_t count, uint64_t stream) { return ladder::bench::random_vector(count, 1234, stream); };
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;

  Conv2dDims d;
  d.n = 8, d.h = 64, d.w = 64, d.cin = 128, d.cout = 128, d.kernel_h = 3, d.kernel_w = 3, d.stride = 1;
  d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 1;
  const int64_t x_count = int64_t(d.n) * d.h * d.w * d.cin;
  const int64_t y_count = int64_t(d.n) * d.out_h() * d.out_w() * d.cout;
  const int64_t w_count = int64_t(d.cout) * d.kernel_h * d.kernel_w * d.cin;
  std::vector<float> x = random_vector(x_count, 1), w = random_vector(w_count, 2);
  std::vector<float> b = random_vector(d.cout, 3), dy = random_vector(y_count, 4);
  std::vector<float> y(y_count), dx(x_count), dw(w_count), db(d.cout);

  // The GEMM of the forward pass: (N·Ho·Wo, K·K·Cin) × (K·K·Cin, Cout), B stored transposed.
  const int64_t gm = int64_t(d.n) * d.out_h() * d.out_w(), gn = d.cout,
                gk = int64_t(d.kernel_h) * d.kernel_w * d.cin;
  std::vector<float> ga = random_vector(gm * gk, 5), gc(gm * gn);
  const double flops = 2.0 * double(d.macs());

  const char* names[] = {"sgemm (same FLOPs)", "conv forward", "conv backward_data",
                         "conv backward_filter"};
  const std::vector<Timing> t = time_rounds(
      repeats,
      {[&] {
         gemm<float>(false, true, gm, gn, gk, 1.0f, ga.data(), gk, w.data(), gk, 0.0f, gc.data(),
                     gn);
       },
       [&] { conv2d_forward(d, x.data(), w.data(), b.data(), y.data()); },
       [&] { conv2d_backward_data(d, dy.data(), w.data(), dx.data()); },
       [&] { conv2d_backward_filter(d, x.data(), dy.data(), dw.data(), db.data()); }});

  std::printf("conv2d 3x3 stride 1 pad 1, float, N=%d H=W=%d Cin=%d Cout=%d (%.2f GFLOP/pass)\n",
              d.n, d.h, d.cin, d.cout, flops * 1e-9);
  std::printf("sgemm M=%lld N=%lld K=%lld; threads: OpenMP %d, OpenBLAS %d; %d interleaved "
              "rounds after 1 warm-up\n\n",
              static_cast<long long>(gm), static_cast<long long>(gn),
              static_cast<long long>(gk), omp_get_max_threads(), openblas_get_num_threads(),
              repeats);
  std::printf("%-22s %10s %10s %9s %13s %9s\n", "pass", "median ms", "GFLOP/s", "vs sgemm",
              "best GFLOP/s", "vs sgemm");
  for (size_t i = 0; i < t.size(); ++i) {
    std::printf("%-22s %10.1f %10.1f %8.0f%% %13.1f %8.0f%%\n", names[i], t[i].median_s * 1e3,
                flops / t[i].median_s * 1e-9, 100.0 * t[0].median_s / t[i].median_s,
                flops / t[i].best_s * 1e-9, 100.0 * t[0].best_s / t[i].best_s);
  }
  return 0;
}
