// Why this file exists: multi-head scaled dot-product attention on the GPU (the autoencoder's
// attention blocks), the same contract as ladder::cpu::attention_* (kernels/cpu/ops.h) on
// device pointers:
//   q, k, v, o, dout, dq, dk, dv (N, L, C) with C = heads × d; head h uses channels
//   [h·d, (h+1)·d); per (image, head):
//     S = q·kᵀ/√d,  P = softmax_rows(S) (saved in `probs`),  o = P·v
//     dv = Pᵀ·do,  dP = do·vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dq = dS·k/√d,  dk = dSᵀ·q/√d
// Forward writes o and probs; backward writes dq, dk, dv (never read; they may hold NaN).
//
// Implementation: cuBLAS strided-batched GEMMs for the four products of each pass, the head's
// channel slice read in place as a strided view with leading dimension C (no transposes, no
// copies of q, k, v), and our own fp32 row-softmax and softmax-backward kernels (one block per
// row, fixed reduction trees: deterministic). S, P, dP and dS are fp32 whatever T is; for
// bf16 and fp16 the GEMMs that consume P or dS read a rounding of it to T kept in the scratch
// (cuBLAS needs A and B in one type), accumulating in fp32. fp32 GEMMs run without TF32.
// T is float, __nv_bfloat16 or __half.
//
// Memory: `probs` is (N, heads, L, L) fp32, saved from forward to backward, and the scratch
// is up to twice that again (below): O(N·heads·L²), quadratic in the token count. That is
// fine where the configs enable attention (the low-resolution levels and the mid block of the
// latent grid: L = 32² = 1024 tokens gives 4 MiB per image and head), and prohibitive at high
// resolution (L = 256² would need 16 GiB per image and head), where a fused (flash-style)
// kernel that never stores P would be the way. The model splits channels into heads of at
// most 128 (model/blocks.h); this implementation has no limit on d itself.
//
// Every call is asynchronous on `stream` (the handle is switched to it) and throws
// ladder::Error on a bad size or a failed cuBLAS/CUDA call. Limits: N·heads·L < 2^31 rows,
// L, C < 2^31.
//
// Plain C++ header (no CUDA syntax). Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cuda/cublas_handle.h"

namespace ladder::cuda {

using AttentionDims = ::ladder::cpu::AttentionDims;

// Bytes of the scratch each pass needs (no contents needed, used only during the call,
// overlapping nothing else); 256-byte aligned sub-buffers inside:
//   forward:  fp32: 0; bf16/fp16: N·heads·L² of T (P rounded for P·v);
//   backward: fp32: N·heads·L² fp32 (dP, then dS in place);
//             bf16/fp16: N·heads·L² × (fp32 dP + T dS + T P) = 8 bytes per element.
template <class T>
int64_t attention_forward_scratch_bytes(const AttentionDims& d);
template <class T>
int64_t attention_backward_scratch_bytes(const AttentionDims& d);

// o = softmax(q·kᵀ/√d)·v per head; probs (N, heads, L, L) fp32 = the softmax, written.
template <class T>
void attention_forward(CublasHandle& cublas, const AttentionDims& d, const T* q, const T* k,
                       const T* v, float* probs, T* o, void* scratch, cudaStream_t stream);

// dq, dk, dv from the forward's q, k, v and probs and the output gradient dout.
template <class T>
void attention_backward(CublasHandle& cublas, const AttentionDims& d, const T* q, const T* k,
                        const T* v, const float* probs, const T* dout, T* dq, T* dk, T* dv,
                        void* scratch, cudaStream_t stream);

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
