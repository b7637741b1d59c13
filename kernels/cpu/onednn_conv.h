// Why this file exists: the CPU backend's fast convolutions. oneDNN (Debian's libdnnl, on the
// same OpenMP pool as our loops) runs the forward, backward-data and backward-filter passes on
// NHWC fp32 activations with the JIT kernels of the machine's ISA (AVX-512 where present),
// where the reference (kernels/cpu/conv2d.cpp: im2col + OpenBLAS) stays the oracle that the
// tests compare against. Primitives are created once per shape and kept; weights go to the
// layout the primitive prefers by a reorder per call (they are small); scratchpads come from
// our own counted buffers.
#pragma once

#include <memory>

#include "kernels/cpu/ops.h"

namespace ladder::cpu {

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

  // The bytes each pass allocates for the call (weight reorders, scratchpads, the
  // backward-filter result before it is added), without running it: `ladder plan`.
  struct CallBytes {
    int64_t forward = 0, backward_data = 0, backward_filter = 0;
  };
  CallBytes call_bytes(const Conv2dDims& d, bool bias);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ladder::cpu
