// Why this file exists: conv2d is the hot op of the CPU trainer, so it is lowered to GEMM
// (kernels/cpu/gemm.h) in one of three ways, chosen by shape:
//
//  1×1, stride 1, no padding: x (N·H·W, Cin) is already the GEMM operand.
//
//  stride 1 ("shifted GEMM"): view the zero-padded input, images stacked, as a matrix of
//    pixels (rows) × channels, Hp·Wp pixels per image. The input of tap (kh, kw) for output
//    pixel q = row·Wp + col is padded pixel q + kh·Wp + kw. Each padded pixel is stored once
//    with its K right-hand neighbours (a 1×K im2col, K·Cin values), so kernel row kh is one
//    GEMM on a view shifted by kh·Wp pixels:
//        Y (rows·Wp, Cout) = Σ_kh cols[kh·Wp :] (·, K·Cin) · w[:, kh]ᵀ (K·Cin, Cout).
//    Outputs with col ≥ Wo, or rows falling between images, are garbage and are dropped when
//    Y is copied into y. backward_data is the same on dy padded by K−1−pad with the flipped
//    kernel; backward_filter: dw[:, kh] += dYᵀ · cols[kh·Wp :] with dY zero at garbage
//    positions. This copies K times less than a full im2col.
//
//  otherwise (the stride-2 downsample): im2col into a column matrix (output pixels ×
//    K·K·Cin), one GEMM per chunk; backward_data gathers the column gradient back (col2im).
//
// Work goes in chunks of output rows whose buffers stay in cache; the chunking depends only on
// the shape, so the order of every sum (dw across chunks) is fixed. The copy loops are serial
// on purpose: OpenBLAS (pthreads) threads and OpenMP threads spin-wait for each other, and on
// the 2-core CI machine OpenMP copies between BLAS calls made every pass 25–45% slower.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/host_buffer.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

// Work buffers per chunk: small enough to stay in cache between the copy that fills them and
// the GEMMs that read them (measured: 2–4 MB chunks beat 32 MB ones by 20–30%), at least a few
// output rows so that the K−1 halo rows copied again per chunk stay a small overhead.
constexpr int64_t kWorkspaceBytes = int64_t(4) << 20;
constexpr int64_t kMinChunkRows = 4;

struct Pads {
  int top, left, bottom, right;
};

// An NHWC tensor's shape.
struct Plane {
  int n, h, w, c;
};

void check_dims(const Conv2dDims& d) {
  LADDER_CHECK(d.n > 0 && d.h > 0 && d.w > 0 && d.cin > 0 && d.cout > 0, "conv2d: bad size");
  LADDER_CHECK(d.kernel_h > 0 && d.kernel_w > 0 && d.stride > 0, "conv2d: bad kernel ", d.kernel_h, "x",
               d.kernel_w, " or stride ", d.stride);
  LADDER_CHECK(d.pad_top >= 0 && d.pad_left >= 0 && d.pad_bottom >= 0 && d.pad_right >= 0,
               "conv2d: negative padding");
  LADDER_CHECK(d.h + d.pad_top + d.pad_bottom >= d.kernel_h &&
                   d.w + d.pad_left + d.pad_right >= d.kernel_w,
               "conv2d: kernel ", d.kernel_h, "x", d.kernel_w, " larger than the padded input ", d.h, "x", d.w);
}

bool is_pointwise(const Conv2dDims& d) {
  return d.kernel_h == 1 && d.kernel_w == 1 && d.stride == 1 && d.pad_top == 0 && d.pad_left == 0 &&
         d.pad_bottom == 0 && d.pad_right == 0;
}

Pads conv_pads(const Conv2dDims& d) { return {d.pad_top, d.pad_left, d.pad_bottom, d.pad_right}; }

int64_t column_width(const Conv2dDims& d) { return int64_t(d.kernel_h) * d.kernel_w * d.cin; }

// Output rows per chunk, from the bytes of work buffer one row needs.
int64_t units_per_chunk(int64_t unit_bytes) {
  return std::max<int64_t>(kMinChunkRows, kWorkspaceBytes / std::max<int64_t>(1, unit_bytes));
}

template <class T>
void fill_zero(T* begin, int64_t count) {
  std::memset(static_cast<void*>(begin), 0, sizeof(T) * size_t(count));
}

// ---- stride 1: shifted GEMM ----------------------------------------------------------------

// dst (r1 − r0, Wp, C) = rows [r0, r1) of src padded by `p`, the N padded images stacked
// (N·Hp rows of Wp = W + left + right pixels).
template <class T>
void pad_rows(const T* src, Plane s, Pads p, int64_t r0, int64_t r1, T* dst) {
  const int hp = s.h + p.top + p.bottom, wp = s.w + p.left + p.right;
  const int64_t row = int64_t(wp) * s.c;
  for (int64_t r = r0; r < r1; ++r) {
    T* out = dst + (r - r0) * row;
    const int64_t n = r / hp;
    const int ih = int(r % hp) - p.top;
    if (ih < 0 || ih >= s.h) {
      fill_zero(out, row);
      continue;
    }
    fill_zero(out, int64_t(p.left) * s.c);
    std::memcpy(out + int64_t(p.left) * s.c, src + (n * s.h + ih) * int64_t(s.w) * s.c,
                sizeof(T) * size_t(s.w) * s.c);
    fill_zero(out + int64_t(p.left + s.w) * s.c, int64_t(p.right) * s.c);
  }
}

// cols ((r1 − r0)·Wp, KW·C): rows [r0, r1) of src padded by `p` (as in pad_rows), where pixel
// (r, pc) holds the KW consecutive padded pixels (r, pc … pc+KW−1), channels last. That is
// im2col with a 1×KW kernel: the KH·KW taps of a KH×KW kernel become KH shifted views (one per
// kh, offset kh·Wp pixels) with KW·C columns each. Pixels with pc > Wp − KW only feed garbage
// outputs and are zero.
template <class T>
void unroll_rows(const T* src, Plane s, Pads p, int k_w, int64_t r0, int64_t r1, T* cols) {
  const int hp = s.h + p.top + p.bottom, wp = s.w + p.left + p.right;
  const int64_t kc = int64_t(k_w) * s.c, row = wp * kc;
  for (int64_t r = r0; r < r1; ++r) {
    T* out = cols + (r - r0) * row;
    const int64_t n = r / hp;
    const int ih = int(r % hp) - p.top;
    if (ih < 0 || ih >= s.h) {
      fill_zero(out, row);
      continue;
    }
    const T* in = src + (n * s.h + ih) * int64_t(s.w) * s.c;
    for (int pc = 0; pc < wp; ++pc, out += kc) {
      const int iw0 = pc - p.left;  // input column of kw = 0
      const int kw_lo = std::max(0, -iw0), kw_hi = std::min(k_w, s.w - iw0);
      if (pc > wp - k_w || kw_lo >= kw_hi) {
        fill_zero(out, kc);
        continue;
      }
      fill_zero(out, int64_t(kw_lo) * s.c);
      std::memcpy(out + int64_t(kw_lo) * s.c, in + int64_t(iw0 + kw_lo) * s.c,
                  sizeof(T) * size_t(kw_hi - kw_lo) * s.c);
      fill_zero(out + int64_t(kw_hi) * s.c, int64_t(k_w - kw_hi) * s.c);
    }
  }
}

// out (N, Ho, Wo, C) receives the valid pixels of padded-domain rows [r0, r1) held in src
// (rows of Wp pixels; row r is image r / Hp, output row r % Hp, valid if < Ho, and only its
// first Wo pixels are valid), plus bias (may be null).
template <class T>
void unpad_rows(const T* src, int hp, int wp, Plane o, int64_t r0, int64_t r1, const T* bias,
                T* out) {
  const int64_t row = int64_t(o.w) * o.c;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / hp;
    const int oh = int(r % hp);
    if (oh >= o.h) continue;
    const T* in = src + (r - r0) * int64_t(wp) * o.c;
    T* dst = out + (n * o.h + oh) * row;
    if (bias == nullptr) {
      std::memcpy(dst, in, sizeof(T) * size_t(row));
      continue;
    }
    for (int64_t i = 0; i < o.w; ++i)
      for (int c = 0; c < o.c; ++c) dst[i * o.c + c] = in[i * o.c + c] + bias[c];
  }
}

// The KW taps of one kernel row kh as a GEMM operand of KW·Ci rows and Co columns:
// B_kh = base + kh·kh_stride, stored with row stride ld, transposed if `trans`.
template <class T>
struct TapRows {
  const T* base;
  int64_t kh_stride, ld;
  bool trans;
};

// out (N, Hs+top+bottom−KH+1, Ws+left+right−KW+1, Co) = the stride-1 correlation of src
// (N, Hs, Ws, Ci) padded by `p` with the KH×KW taps `taps`, plus bias (may be null).
template <class T>
void shifted_conv(const T* src, Plane s, Pads p, int k_h, int k_w, TapRows<T> taps, int co, const T* bias,
                  T* out) {
  const int hp = s.h + p.top + p.bottom, wp = s.w + p.left + p.right;
  const Plane o{s.n, hp - k_h + 1, wp - k_w + 1, co};
  const int64_t kc = int64_t(k_w) * s.c;
  const int64_t rows = int64_t(s.n) * hp - k_h + 1;  // up to the last valid output row
  const int64_t chunk = std::min(rows, units_per_chunk(wp * (kc + co) * int64_t(sizeof(T))));
  HostBuffer<T> cols((chunk + k_h - 1) * wp * kc);  // (chunk + KH − 1, Wp, KW·Ci)
  HostBuffer<T> acc(chunk * wp * co);               // (chunk, Wp, Co)
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * wp;
    unroll_rows(src, s, p, k_w, r0, r1 + k_h - 1, cols.data());
    for (int kh = 0; kh < k_h; ++kh) {
      gemm<T>(false, taps.trans, m, co, kc, T(1), cols.data() + kh * wp * kc, kc,
              taps.base + kh * taps.kh_stride, taps.ld, kh == 0 ? T(0) : T(1), acc.data(), co);
    }
    unpad_rows(acc.data(), hp, wp, o, r0, r1, bias, out);
  }
}

template <class T>
void shifted_forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y) {
  // Row kh of w (Cout, KW·Cin) with row stride KH·KW·Cin, used transposed.
  const TapRows<T> taps{w, int64_t(d.kernel_w) * d.cin, column_width(d), true};
  shifted_conv(x, Plane{d.n, d.h, d.w, d.cin}, conv_pads(d), d.kernel_h, d.kernel_w, taps, d.cout, b, y);
}

// dx = dy padded by K−1−pad per dimension, correlated with the flipped kernel (Cout → Cin);
// needs pad ≤ K−1 on every side. The flipped kernel is stored (KH, KW, Cout, Cin) so that row
// kh is one (KW·Cout, Cin) matrix.
template <class T>
void shifted_backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx) {
  const int k_h = d.kernel_h, k_w = d.kernel_w;
  HostBuffer<T> flipped(int64_t(k_h) * k_w * d.cout * d.cin);  // (KH, KW, Cout, Cin)
  for (int kh = 0; kh < k_h; ++kh)
    for (int kw = 0; kw < k_w; ++kw)
      for (int co = 0; co < d.cout; ++co)
        std::memcpy(flipped.data() + ((int64_t(kh) * k_w + kw) * d.cout + co) * d.cin,
                    w + co * column_width(d) + (int64_t(k_h - 1 - kh) * k_w + (k_w - 1 - kw)) * d.cin,
                    sizeof(T) * size_t(d.cin));
  const Pads p{k_h - 1 - d.pad_top, k_w - 1 - d.pad_left, k_h - 1 - d.pad_bottom, k_w - 1 - d.pad_right};
  const TapRows<T> taps{flipped.data(), int64_t(k_w) * d.cout * d.cin, d.cin, false};
  shifted_conv(dy, Plane{d.n, d.out_h(), d.out_w(), d.cout}, p, k_h, k_w, taps, d.cin,
               static_cast<const T*>(nullptr), dx);
}

// dw (Cout, KH, KW, Cin) += dyᵀ · (unrolled x), one GEMM per kernel row kh.
template <class T>
void shifted_filter_grad(const Conv2dDims& d, const T* x, const T* dy, T* dw) {
  const int k_h = d.kernel_h, k_w = d.kernel_w;
  const Pads p = conv_pads(d);
  const int hp = d.h + p.top + p.bottom, wp = d.w + p.left + p.right;
  const int ho = d.out_h(), wo = d.out_w();
  const int64_t kc = int64_t(k_w) * d.cin;
  // dy placed in the padded domain of x, (N, Hp, Wp, Cout), zero at the garbage positions.
  const Pads dy_pads{0, 0, hp - ho, wp - wo};
  const Plane xs{d.n, d.h, d.w, d.cin}, dys{d.n, ho, wo, d.cout};
  const int64_t rows = int64_t(d.n) * hp - k_h + 1;
  const int64_t chunk = std::min(rows, units_per_chunk(wp * (kc + d.cout) * int64_t(sizeof(T))));
  HostBuffer<T> cols((chunk + k_h - 1) * wp * kc);  // (chunk + KH − 1, Wp, KW·Cin)
  HostBuffer<T> grad(chunk * wp * d.cout);          // (chunk, Wp, Cout)
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * wp;
    unroll_rows(x, xs, p, k_w, r0, r1 + k_h - 1, cols.data());
    pad_rows(dy, dys, dy_pads, r0, r1, grad.data());
    for (int kh = 0; kh < k_h; ++kh) {
      gemm<T>(true, false, d.cout, kc, m, T(1), grad.data(), d.cout,
              cols.data() + kh * wp * kc, kc, T(1), dw + kh * kc, column_width(d));
    }
  }
}

// ---- any stride: im2col ----------------------------------------------------------------------

// Output rows (global index r = n·Ho + oh) per im2col chunk.
template <class T>
int64_t im2col_rows_per_chunk(const Conv2dDims& d) {
  return units_per_chunk(int64_t(d.out_w()) * column_width(d) * int64_t(sizeof(T)));
}

// col ((r1 − r0)·Wo, KH·KW·Cin): one row per output pixel of output rows [r0, r1), laid out
// (kh, kw, ci) like a filter of w. Out-of-image taps are zero. For a fixed kh the taps kw are
// consecutive input pixels, so each (pixel, kh) is one contiguous copy of up to KW·Cin values.
template <class T>
void im2col(const Conv2dDims& d, const T* x, int64_t r0, int64_t r1, T* col) {
  const int ho = d.out_h(), wo = d.out_w(), k_h = d.kernel_h, k_w = d.kernel_w, cin = d.cin;
  const int64_t kc = int64_t(k_w) * cin, kkc = k_h * kc;
  const int64_t pixels = (r1 - r0) * wo;
  for (int64_t p = 0; p < pixels; ++p) {
    const int64_t r = r0 + p / wo;
    const int ow = int(p % wo);
    const int64_t n = r / ho;
    const int oh = int(r % ho);
    const int iw0 = ow * d.stride - d.pad_left;
    const int kw_lo = std::max(0, -iw0), kw_hi = std::min(k_w, d.w - iw0);
    T* dst = col + p * kkc;
    for (int kh = 0; kh < k_h; ++kh, dst += kc) {
      const int ih = oh * d.stride - d.pad_top + kh;
      if (ih < 0 || ih >= d.h || kw_lo >= kw_hi) {
        fill_zero(dst, kc);
        continue;
      }
      const T* src = x + ((n * d.h + ih) * d.w + iw0 + kw_lo) * cin;
      fill_zero(dst, int64_t(kw_lo) * cin);
      std::memcpy(dst + int64_t(kw_lo) * cin, src, sizeof(T) * size_t(kw_hi - kw_lo) * cin);
      fill_zero(dst + int64_t(kw_hi) * cin, int64_t(k_w - kw_hi) * cin);
    }
  }
}

// dx += the contributions of dcol (the column gradient of output rows [r0, r1)). Written as a
// gather: each task owns one input row (n, ih) and sums, in fixed (kh, kw) order, every
// column entry that came from it, so no two threads touch the same dx element.
template <class T>
void col2im_accumulate(const Conv2dDims& d, const T* dcol, int64_t r0, int64_t r1, T* dx) {
  const int ho = d.out_h(), wo = d.out_w(), k_h = d.kernel_h, k_w = d.kernel_w, s = d.stride, cin = d.cin;
  const int64_t kkc = column_width(d);
  const int n_first = int(r0 / ho), n_last = int((r1 - 1) / ho);
  std::vector<int64_t> tasks;  // n·H + ih for every input row this chunk touches
  for (int n = n_first; n <= n_last; ++n) {
    const int oh0 = n == n_first ? int(r0 % ho) : 0;
    const int oh1 = n == n_last ? int((r1 - 1) % ho) + 1 : ho;
    const int ih_lo = std::max(0, oh0 * s - d.pad_top);
    const int ih_hi = std::min(d.h - 1, (oh1 - 1) * s - d.pad_top + k_h - 1);
    for (int ih = ih_lo; ih <= ih_hi; ++ih) tasks.push_back(int64_t(n) * d.h + ih);
  }
  const int64_t count = int64_t(tasks.size());
  for (int64_t t = 0; t < count; ++t) {
    const int64_t n = tasks[t] / d.h;
    const int ih = int(tasks[t] % d.h);
    for (int iw = 0; iw < d.w; ++iw) {
      T* dst = dx + ((n * d.h + ih) * d.w + iw) * cin;
      for (int kh = 0; kh < k_h; ++kh) {
        const int th = ih + d.pad_top - kh;  // = oh·stride
        if (th < 0 || th % s != 0 || th / s >= ho) continue;
        const int64_t r = n * ho + th / s;
        if (r < r0 || r >= r1) continue;
        for (int kw = 0; kw < k_w; ++kw) {
          const int tw = iw + d.pad_left - kw;  // = ow·stride
          if (tw < 0 || tw % s != 0 || tw / s >= wo) continue;
          const T* src = dcol + ((r - r0) * wo + tw / s) * kkc + (int64_t(kh) * k_w + kw) * cin;
          for (int c = 0; c < cin; ++c) dst[c] += src[c];
        }
      }
    }
  }
}

template <class T>
void im2col_forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y) {
  const int64_t wo = d.out_w(), rows = int64_t(d.n) * d.out_h(), kkc = column_width(d);
  const int64_t chunk = std::min(rows, im2col_rows_per_chunk<T>(d));
  HostBuffer<T> col(chunk * wo * kkc);  // (chunk·Wo, KH·KW·Cin)
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * wo;
    im2col(d, x, r0, r1, col.data());
    T* yc = y + r0 * wo * d.cout;
    gemm<T>(false, true, m, d.cout, kkc, T(1), col.data(), kkc, w, kkc, T(0), yc, d.cout);
    add_row_bias(m, d.cout, b, yc);
  }
}

template <class T>
void im2col_backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx) {
  const int64_t wo = d.out_w(), rows = int64_t(d.n) * d.out_h(), kkc = column_width(d);
  const int64_t x_count = int64_t(d.n) * d.h * d.w * d.cin;
  for (int64_t i = 0; i < x_count; ++i) dx[i] = T(0);
  const int64_t chunk = std::min(rows, im2col_rows_per_chunk<T>(d));
  HostBuffer<T> dcol(chunk * wo * kkc);  // (chunk·Wo, K·K·Cin)
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * wo;
    gemm<T>(false, false, m, kkc, d.cout, T(1), dy + r0 * wo * d.cout, d.cout, w, kkc, T(0),
            dcol.data(), kkc);
    col2im_accumulate(d, dcol.data(), r0, r1, dx);
  }
}

template <class T>
void im2col_filter_grad(const Conv2dDims& d, const T* x, const T* dy, T* dw) {
  const int64_t wo = d.out_w(), rows = int64_t(d.n) * d.out_h(), kkc = column_width(d);
  const int64_t chunk = std::min(rows, im2col_rows_per_chunk<T>(d));
  HostBuffer<T> col(chunk * wo * kkc);  // (chunk·Wo, K·K·Cin)
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk), m = (r1 - r0) * wo;
    im2col(d, x, r0, r1, col.data());
    gemm<T>(true, false, d.cout, kkc, m, T(1), dy + r0 * wo * d.cout, d.cout, col.data(), kkc,
            T(1), dw, kkc);
  }
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y) {
  // x (N, H, W, Cin), w (Cout, KH, KW, Cin), b (Cout), y (N, Ho, Wo, Cout)
  check_dims(d);
  const int64_t pixels = int64_t(d.n) * d.out_h() * d.out_w();
  if (is_pointwise(d)) {
    gemm<T>(false, true, pixels, d.cout, d.cin, T(1), x, d.cin, w, d.cin, T(0), y, d.cout);
    add_row_bias(pixels, d.cout, b, y);
  } else if (d.stride == 1) {
    shifted_forward(d, x, w, b, y);
  } else {
    im2col_forward(d, x, w, b, y);
  }
}

template <class T>
void conv2d_backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx) {
  // dy (N, Ho, Wo, Cout), w (Cout, KH, KW, Cin), dx (N, H, W, Cin)
  check_dims(d);
  if (is_pointwise(d)) {
    const int64_t pixels = int64_t(d.n) * d.h * d.w;
    gemm<T>(false, false, pixels, d.cin, d.cout, T(1), dy, d.cout, w, d.cin, T(0), dx, d.cin);
  } else if (d.stride == 1 && std::max(d.pad_top, d.pad_bottom) < d.kernel_h &&
             std::max(d.pad_left, d.pad_right) < d.kernel_w) {
    shifted_backward_data(d, dy, w, dx);
  } else {
    im2col_backward_data(d, dy, w, dx);
  }
}

template <class T>
void conv2d_backward_filter(const Conv2dDims& d, const T* x, const T* dy, T* dw, T* db) {
  // x (N, H, W, Cin), dy (N, Ho, Wo, Cout), dw (Cout, KH, KW, Cin), db (Cout)
  check_dims(d);
  const int64_t pixels = int64_t(d.n) * d.out_h() * d.out_w();
  accumulate_column_sums(pixels, d.cout, dy, db);
  if (is_pointwise(d)) {
    gemm<T>(true, false, d.cout, d.cin, pixels, T(1), dy, d.cout, x, d.cin, T(1), dw, d.cin);
  } else if (d.stride == 1) {
    shifted_filter_grad(d, x, dy, dw);
  } else {
    im2col_filter_grad(d, x, dy, dw);
  }
}

#define LADDER_INSTANTIATE(T)                                                               \
  template void conv2d_forward<T>(const Conv2dDims&, const T*, const T*, const T*, T*);     \
  template void conv2d_backward_data<T>(const Conv2dDims&, const T*, const T*, T*);         \
  template void conv2d_backward_filter<T>(const Conv2dDims&, const T*, const T*, T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
