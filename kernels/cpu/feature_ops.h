// Why this file exists: the forward-only ops of the feature networks that score images
// (InceptionV3 for FID and KID, model/inception_v3.h): BatchNorm in eval mode with ReLU, the
// 3×3 'same' pools of the Inception blocks, the global average pool, channel concatenation
// and the two bilinear resizes to the network's 299×299 that the FID tools define. Nothing
// here is trained, so there are no backward passes. All tensors NHWC, float.
#pragma once

#include <cstdint>

namespace ladder::cpu {

// y (m, c) = x·scale[c] + shift[c], then max(·, 0) when `relu`: an eval-mode BatchNorm as one
// affine map per channel followed by ReLU, or an input normalisation (2x − 1). y may alias x.
void channel_affine(int64_t m, int c, const float* x, const float* scale, const float* shift, bool relu, float* y);

enum class SamePool { kAverageInImage, kMax };
// 3×3 stride-1 pools with one pixel of padding: x (N, H, W, C) → y (N, H, W, C). Average over
// the taps inside the image only (PyTorch's count_include_pad=False: 4 at corners, 6 on
// edges), or max over them.
void pool3x3_same(SamePool kind, int n, int h, int w, int c, const float* x, float* y);

// y (N, C) = the mean over the H·W pixels of each image of x (N, H, W, C), summed in double.
void global_average_pool(int n, int64_t pixels, int c, const float* x, float* y);

// Channels [offset, offset + c_src) of dst (m, c_dst) = src (m, c_src).
void copy_channels(int64_t m, int c_src, const float* src, int c_dst, int offset, float* dst);

enum class BilinearMode {
  kHalfPixel,  // PyTorch's F.interpolate(mode='bilinear', align_corners=False), no antialias
  kTf1,        // TensorFlow 1's resize_bilinear (half_pixel_centers=False), as torch-fidelity has it
};
// x (N, H, W, C) → y (N, OH, OW, C), each axis mapped as the mode says (docs/reference-fid.md
// §1.4 and §3, in float32 arithmetic as those tools compute it).
void resize_bilinear(BilinearMode mode, int n, int h, int w, int c, const float* x, int out_h, int out_w, float* y);

}  // namespace ladder::cpu
