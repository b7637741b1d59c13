// Why this file exists: the linear and attention layers of the CPU backend run their GEMMs
// through a BLAS (kernels/cpu/gemm.h, OpenBLAS); oneDNN's matmul is the other candidate. This
// program times both on the GEMMs those layers make (forward y = x·wᵀ, backward dx = dy·w and
// dw = dyᵀ·x, the attention scores S = q·kᵀ and the output P·v) at the models' sizes,
// interleaved — OpenBLAS's cblas_sgemm, a oneDNN matmul primitive created once outside the
// timed region, and oneDNN's BLAS-style dnnl_sgemm — and prints GFLOP/s and the ratio of the
// faster oneDNN call over OpenBLAS, so the choice between them is measured.
//   usage: bench_matmul [repeats (9)]     OMP_NUM_THREADS sets the threads of both
#include <omp.h>

#include <dnnl.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_timing.h"
#include <cblas.h>

namespace {

// C (m, n) = op(A)·op(B), row-major, as kernels/cpu/gemm.h takes it.
struct Gemm {
  std::string what;
  bool trans_a, trans_b;
  int64_t m, n, k;
};

// The same product as a oneDNN matmul: A and B described with the strides of the stored
// (possibly transposed) row-major matrices.
class OneDnnMatmul {
 public:
  OneDnnMatmul(const dnnl::engine& engine, const Gemm& g, float* a, float* b, float* c) : stream_(engine) {
    using dt = dnnl::memory::data_type;
    const dnnl::memory::desc a_desc({g.m, g.k}, dt::f32, g.trans_a ? dnnl::memory::dims{1, g.m} : dnnl::memory::dims{g.k, 1});
    const dnnl::memory::desc b_desc({g.k, g.n}, dt::f32, g.trans_b ? dnnl::memory::dims{1, g.k} : dnnl::memory::dims{g.n, 1});
    const dnnl::memory::desc c_desc({g.m, g.n}, dt::f32, dnnl::memory::dims{g.n, 1});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_desc, b_desc, c_desc), engine);
    matmul_ = dnnl::matmul(pd);
    a_ = dnnl::memory(a_desc, engine, a);
    b_ = dnnl::memory(b_desc, engine, b);
    c_ = dnnl::memory(c_desc, engine, c);
    scratch_ = dnnl::memory(pd.scratchpad_desc(), engine);
  }
  void run() {
    matmul_.execute(stream_, {{DNNL_ARG_SRC, a_}, {DNNL_ARG_WEIGHTS, b_}, {DNNL_ARG_DST, c_},
                              {DNNL_ARG_SCRATCHPAD, scratch_}});
    stream_.wait();
  }

 private:
  dnnl::stream stream_;
  dnnl::matmul matmul_;
  dnnl::memory a_, b_, c_, scratch_;
};

// Linear layers of the attention blocks and the attention products, per model and size:
// tokens = pixels of the level, channels C, one head of C channels (the autoencoder's
// attention) or heads of 64 (the UNet's).
std::vector<Gemm> gemms() {
  std::vector<Gemm> out;
  auto linear = [&](const std::string& where, int64_t tokens, int64_t c) {
    out.push_back({where + " linear forward", false, true, tokens, c, c});
    out.push_back({where + " linear dx", false, false, tokens, c, c});
    out.push_back({where + " linear dw", true, false, c, c, tokens});
  };
  auto attention = [&](const std::string& where, int64_t tokens, int64_t head) {
    out.push_back({where + " scores q·kᵀ", false, true, tokens, tokens, head});
    out.push_back({where + " output P·v", false, false, tokens, head, tokens});
    out.push_back({where + " dv = Pᵀ·do", true, false, tokens, head, tokens});
  };
  // The 51.7M autoencoder's mid block at 256² (32² latents, 512 channels, one head), batch 1.
  linear("AE mid 32²", 1024, 512);
  attention("AE mid 32²", 1024, 512);
  // The tutorial UNet at 64² latents: attention at 16² (256 channels) and 8² (512), batch 4,
  // heads of 64.
  linear("UNet 16²", 4 * 256, 256);
  attention("UNet 16²", 256, 64);
  linear("UNet 8²", 4 * 64, 512);
  attention("UNet 8²", 64, 64);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 9;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  std::printf("OpenBLAS %s vs oneDNN %d.%d.%d matmul, %d threads, median of %d interleaved rounds\n",
              openblas_get_config(), dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch,
              omp_get_max_threads(), repeats);
  std::printf("%-28s %-16s %9s %9s %9s %7s\n", "GEMM", "m x n x k", "OpenBLAS", "matmul", "sgemm", "ratio");
  for (const Gemm& g : gemms()) {
    std::vector<float> a = ladder::bench::random_vector(g.m * g.k, 5, 1), b = ladder::bench::random_vector(g.k * g.n, 5, 2);
    std::vector<float> c_blas(static_cast<size_t>(g.m * g.n)), c_dnnl(static_cast<size_t>(g.m * g.n));
    const int64_t lda = g.trans_a ? g.m : g.k, ldb = g.trans_b ? g.k : g.n;
    OneDnnMatmul matmul(engine, g, a.data(), b.data(), c_dnnl.data());
    std::vector<float> c_sgemm(c_blas.size());
    const std::vector<ladder::bench::Timing> t = ladder::bench::time_rounds(
        repeats, {[&] {
                    cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
                                g.trans_b ? CblasTrans : CblasNoTrans, int(g.m), int(g.n), int(g.k), 1.0f, a.data(),
                                int(lda), b.data(), int(ldb), 0.0f, c_blas.data(), int(g.n));
                  },
                  [&] { matmul.run(); },
                  [&] {
                    dnnl_sgemm(g.trans_a ? 'T' : 'N', g.trans_b ? 'T' : 'N', g.m, g.n, g.k, 1.0f, a.data(), lda,
                               b.data(), ldb, 0.0f, c_sgemm.data(), g.n);
                  }});
    const double s[] = {t[0].median_s, t[1].median_s, t[2].median_s};
    double worst = 0;  // the three must compute the same product
    for (size_t i = 0; i < c_blas.size(); ++i)
      worst = std::max({worst, double(std::abs(c_blas[i] - c_dnnl[i])), double(std::abs(c_blas[i] - c_sgemm[i]))});
    if (worst > 1e-3 * double(g.k)) {
      std::fprintf(stderr, "bench_matmul: %s: OpenBLAS and oneDNN differ by %g\n", g.what.c_str(), worst);
      return 1;
    }
    const double gflop = 2.0 * double(g.m) * double(g.n) * double(g.k) / 1e9;
    char dims[48];
    std::snprintf(dims, sizeof dims, "%lldx%lldx%lld", static_cast<long long>(g.m), static_cast<long long>(g.n),
                  static_cast<long long>(g.k));
    std::printf("%-28s %-16s %9.1f %9.1f %9.1f %7.2f\n", g.what.c_str(), dims, gflop / s[0], gflop / s[1],
                gflop / s[2], s[0] / std::min(s[1], s[2]));
  }
  return 0;
}
