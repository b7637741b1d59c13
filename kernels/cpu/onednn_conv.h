// Why this file exists: the CPU backend's fast convolutions. oneDNN (Debian's libdnnl, on the
// same OpenMP pool as our loops) runs the forward, backward-data and backward-filter passes on
// NHWC fp32 activations with the JIT kernels of the machine's ISA (AVX-512 where present),
// where the reference (kernels/cpu/conv2d.cpp: im2col + GEMM) stays the oracle that the
// tests compare against. Primitives are created once per shape and kept; weights go to the
// layout the primitive prefers by a reorder per call (they are small). 3×3 "same"
// convolutions with enough channels and pixels run their forward and backward-data passes as
// Winograd F(4×4, 3×3) on blocked activations (reordered from and to NHWC around the call);
// every other pass is direct. Reordered weights and activations, scratchpads and the filter
// gradients live in grow-only workspaces of our own counted buffers, reused by every call:
// after the first step no call allocates, zeroes or faults in memory. One instance serves one
// thread at a time.
#pragma once

#include <memory>
#include <string>

#include "kernels/cpu/ops.h"

namespace ladder::cpu {

// The ISA oneDNN's kernels run with on this machine, after any DNNL_MAX_CPU_ISA cap:
// "avx512_core_bf16", "avx2", ... (the run log names it: results differ in the last bits
// between ISAs, docs/ARCHITECTURE.md "Determinism").
std::string onednn_isa();

class OneDnnConvolutions {
 public:
  OneDnnConvolutions();
  ~OneDnnConvolutions();
  OneDnnConvolutions(const OneDnnConvolutions&) = delete;
  OneDnnConvolutions& operator=(const OneDnnConvolutions&) = delete;

  // The same contracts as conv2d_forward / conv2d_backward_data / conv2d_backward_filter
  // (kernels/cpu/ops.h): x (N, H, W, Cin), w (Cout, K, K, Cin), b (Cout) or null, y (N, Ho, Wo,
  // Cout); backward_filter accumulates (dw +=, db += when not null).
  void forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y);
  void backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx);
  void backward_filter(const Conv2dDims& d, const float* x, const float* dy, float* dw, float* db);

  // What one pass asks of each grow-only workspace (bytes): weights (the reordered weights, or
  // the filter gradient in oneDNN's layout), scratch (oneDNN's scratchpad), bias (the bias
  // gradient), source and result (a Winograd pass's input and output in its blocked layout).
  // `ladder plan` charges their growth.
  enum class Pass { kForward, kBackwardData, kBackwardFilter };
  struct WorkspaceBytes {
    size_t weights = 0, scratch = 0, bias = 0, source = 0, result = 0;
  };
  WorkspaceBytes workspace_bytes(const Conv2dDims& d, bool bias, Pass pass);
  // Whether the forward and backward-data passes of this shape run as Winograd.
  bool uses_winograd(const Conv2dDims& d, bool bias = true);
  // The floats a workspace holds after asking for `bytes` (the growth rule, shared with the plan).
  static int64_t workspace_floats(size_t bytes) {
    return static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float));
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ladder::cpu
