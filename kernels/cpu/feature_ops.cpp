// Why this file exists: the forward-only ops of kernels/cpu/feature_ops.h, plain loops
// parallel over images or rows (each output element written by one thread, so the results do
// not depend on the thread count).
#include "kernels/cpu/feature_ops.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/check.h"

namespace ladder::cpu {

void channel_affine(int64_t m, int c, const float* x, const float* scale, const float* shift, bool relu, float* y) {
  const float floor = relu ? 0.f : -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < m; ++p)
    for (int k = 0; k < c; ++k) y[p * c + k] = std::max(x[p * c + k] * scale[k] + shift[k], floor);
}

void pool3x3_same(SamePool kind, int n, int h, int w, int c, const float* x, float* y) {
  LADDER_CHECK(n >= 0 && h >= 1 && w >= 1 && c >= 1, "pool3x3_same: bad size ", n, "x", h, "x", w, "x", c);
  const int64_t rows = int64_t(n) * h;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t image = r / h;
    const int oy = int(r % h);
    const int y0 = std::max(0, oy - 1), y1 = std::min(h - 1, oy + 1);
    for (int ox = 0; ox < w; ++ox) {
      const int x0 = std::max(0, ox - 1), x1 = std::min(w - 1, ox + 1);
      float* out = y + ((image * h + oy) * w + ox) * c;
      const float taps = float((y1 - y0 + 1) * (x1 - x0 + 1));
      for (int k = 0; k < c; ++k) {
        float value = kind == SamePool::kMax ? x[((image * h + y0) * w + x0) * c + k] : 0.f;
        for (int iy = y0; iy <= y1; ++iy)
          for (int ix = x0; ix <= x1; ++ix) {
            const float v = x[((image * h + iy) * w + ix) * c + k];
            value = kind == SamePool::kMax ? std::max(value, v) : value + v;
          }
        out[k] = kind == SamePool::kMax ? value : value / taps;
      }
    }
  }
}

void global_average_pool(int n, int64_t pixels, int c, const float* x, float* y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    std::vector<double> sums(static_cast<size_t>(c), 0.0);
    for (int64_t p = 0; p < pixels; ++p)
      for (int k = 0; k < c; ++k) sums[k] += x[(i * pixels + p) * c + k];
    for (int k = 0; k < c; ++k) y[int64_t(i) * c + k] = static_cast<float>(sums[k] / static_cast<double>(pixels));
  }
}

void copy_channels(int64_t m, int c_src, const float* src, int c_dst, int offset, float* dst) {
  LADDER_CHECK(offset >= 0 && offset + c_src <= c_dst, "copy_channels: ", c_src, " channels at ", offset,
               " do not fit in ", c_dst);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < m; ++p) std::copy_n(src + p * c_src, c_src, dst + p * c_dst + offset);
}

namespace {

// One axis of a resize: for each output index, the two input indices and the weight of the
// second, computed in float32 as the tool does.
struct AxisTaps {
  std::vector<int> lo, hi;
  std::vector<float> frac;
};

AxisTaps axis_taps(BilinearMode mode, int in, int out) {
  AxisTaps t;
  t.lo.resize(out), t.hi.resize(out), t.frac.resize(out);
  for (int i = 0; i < out; ++i) {
    float src;
    if (mode == BilinearMode::kHalfPixel) {
      const float scale = float(in) / float(out);
      src = std::max(0.f, (float(i) + 0.5f) * scale - 0.5f);
    } else {
      const float scale = static_cast<float>(static_cast<double>(in) / static_cast<double>(out));
      src = float(i) * scale;
    }
    const int lo = std::min(static_cast<int>(src), in - 1);
    t.lo[i] = lo;
    t.hi[i] = std::min(lo + 1, in - 1);
    t.frac[i] = src - float(lo);
  }
  return t;
}

}  // namespace

void resize_bilinear(BilinearMode mode, int n, int h, int w, int c, const float* x, int out_h, int out_w, float* y) {
  LADDER_CHECK(n >= 0 && h >= 1 && w >= 1 && c >= 1 && out_h >= 1 && out_w >= 1, "resize_bilinear: bad size");
  const AxisTaps rows = axis_taps(mode, h, out_h), columns = axis_taps(mode, w, out_w);
  const int64_t total_rows = int64_t(n) * out_h;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < total_rows; ++r) {
    const int64_t image = r / out_h;
    const int oy = int(r % out_h);
    const float* row_lo = x + (image * h + rows.lo[oy]) * int64_t(w) * c;
    const float* row_hi = x + (image * h + rows.hi[oy]) * int64_t(w) * c;
    const float dy = rows.frac[oy];
    float* out = y + (image * out_h + oy) * int64_t(out_w) * c;
    for (int ox = 0; ox < out_w; ++ox) {
      const int64_t a = int64_t(columns.lo[ox]) * c, b = int64_t(columns.hi[ox]) * c;
      const float dx = columns.frac[ox];
      for (int k = 0; k < c; ++k) {
        if (mode == BilinearMode::kHalfPixel) {  // PyTorch: weights (1 − d, d), rows then columns
          const float w0 = 1.f - dx, h0 = 1.f - dy;
          out[int64_t(ox) * c + k] = h0 * (w0 * row_lo[a + k] + dx * row_lo[b + k]) +
                                     dy * (w0 * row_hi[a + k] + dx * row_hi[b + k]);
        } else {  // TF1: lerp along x, then along y
          const float top = row_lo[a + k] + (row_lo[b + k] - row_lo[a + k]) * dx;
          const float bottom = row_hi[a + k] + (row_hi[b + k] - row_hi[a + k]) * dx;
          out[int64_t(ox) * c + k] = top + (bottom - top) * dy;
        }
      }
    }
  }
}

}  // namespace ladder::cpu
