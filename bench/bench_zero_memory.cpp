// Why this file exists: the bytes per rank of the 51.7M-parameter high-resolution
// autoencoder (BRIEF §4 default) under ZeRO 0/1/2 at N = 1, 2, 4, 8 ranks, from the engine's
// own accounting (zero_rank_memory over the real parameter table and shard layout), next to
// the ZeRO paper's formula with fp32 gradients: stage 0 (2+4+12)Ψ, stage 1 (2+4)Ψ + 12Ψ/N,
// stage 2 2Ψ + (4+12)Ψ/N (bf16 parameters on GPUs). Not a timing: it allocates nothing.
#include <cstdio>

#include "config/config.h"
#include "model/autoencoder_kl.h"
#include "model/cpu_backend.h"
#include "train/memory_plan.h"
#include "train/shard_layout.h"

using namespace ladder;

int main() {
  Config config = load_config("", {"--model.channels", "128,256,512,512", "--model.res_blocks", "2",
                                   "--model.attention_levels", "none", "--model.latent_channels", "4"});
  ParamStore store;
  CpuBackend backend;  // only to build the parameter table
  AutoencoderKL<CpuBackend> model(config.model, store, backend);
  const double psi = static_cast<double>(store.count());
  const double mib = 1 << 20;
  std::printf("AutoencoderKL 128,256,512,512: %lld parameters; buckets of %.0f MiB\n\n",
              static_cast<long long>(store.count()), config.train.bucket_mb);
  for (int compute_bytes : {2, 4}) {
    std::printf("%s\n", compute_bytes == 2 ? "GPU ranks, bf16 compute (MiB per rank)"
                                           : "CPU ranks, fp32 compute (MiB per rank)");
    std::printf("%-5s %-3s %9s %9s %9s %9s %11s %13s %9s\n", "stage", "N", "params", "grads",
                "master", "moments", "sum", "ZeRO formula", "working");
    for (int stage = 0; stage <= 2; ++stage)
      for (int world : {1, 2, 4, 8}) {
        ShardLayout layout(store.count(), world,
                           static_cast<int64_t>(config.train.bucket_mb * mib / sizeof(float)));
        const RankMemory m = zero_rank_memory(layout.padded_count(), world, stage, compute_bytes);
        // The paper's formula (mixed precision, fp32 gradients); working buffers not included.
        const double formula = stage == 0 ? 18 * psi
                               : stage == 1 ? 6 * psi + 12 * psi / world
                                            : 2 * psi + 16 * psi / world;
        const double sum = static_cast<double>(m.parameters + m.gradients + m.master_weights + m.moments);
        char formula_text[32] = "-";
        if (compute_bytes == 2) std::snprintf(formula_text, sizeof formula_text, "%.1f", formula / mib);
        std::printf("%-5d %-3d %9.1f %9.1f %9.1f %9.1f %11.1f %13s %9.1f\n", stage, world,
                    m.parameters / mib, m.gradients / mib, m.master_weights / mib, m.moments / mib,
                    sum / mib, formula_text, m.working_gradients / mib);
      }
    std::printf("\n");
  }
  return 0;
}
