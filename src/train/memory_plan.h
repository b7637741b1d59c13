// Why this file exists: the engine's accounting of bytes per rank under each ZeRO stage
// (BRIEF §3, DeepSpeed's ZeRO paper), used for the start-of-run log and the benchmark table.
// Ψ = padded parameter count, N = world:
//   parameters        Ψ × compute bytes (replicated: every rank runs the whole model)
//   gradients         fp32 accumulation: Ψ × 4 (stage 0), Ψ × 4 + Ψ/N × 4 (stage 1: the
//                     full accumulation plus the reduce-scattered shard AdamW reads; the ZeRO
//                     formula reduces in place and counts only Ψ × 4) or Ψ/N × 4 (stage 2)
//   working gradients compute-precision gradients of one micro-step, only where they are
//                     a separate buffer: bf16 Ψ × 2 on GPUs; on the CPU (fp32) the stage-0/1
//                     accumulation is that buffer, and stage 2 needs it beside its shard
//   master weights    fp32 copy: none when computing in fp32 (the parameters are the master),
//                     else Ψ × 4 (stage 0) or Ψ/N × 4 (stage 1, 2)
//   moments           Adam m and v: Ψ × 8 (stage 0) or Ψ/N × 8 (stage 1, 2)
#pragma once

#include <cstdint>

namespace ladder {

struct RankMemory {
  int64_t parameters = 0;
  int64_t gradients = 0;
  int64_t working_gradients = 0;
  int64_t master_weights = 0;
  int64_t moments = 0;

  int64_t total() const {
    return parameters + gradients + working_gradients + master_weights + moments;
  }
};

// compute_bytes: 4 (fp32, CPU) or 2 (bf16/fp16 on GPUs).
inline RankMemory zero_rank_memory(int64_t padded_count, int world, int stage, int compute_bytes) {
  const int64_t all = padded_count, shard = padded_count / world;
  const bool mixed = compute_bytes != 4;
  RankMemory m;
  m.parameters = all * compute_bytes;
  m.gradients = (stage == 0 ? all : stage == 1 ? all + shard : shard) * 4;
  m.working_gradients = mixed ? all * compute_bytes : (stage == 2 ? all * 4 : 0);
  m.master_weights = mixed ? (stage == 0 ? all : shard) * 4 : 0;
  m.moments = (stage == 0 ? all : shard) * 8;
  return m;
}

}  // namespace ladder
