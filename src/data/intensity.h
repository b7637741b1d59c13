// Why this file exists: how a stored image's values become the model's input in [−1, 1]
// (`data.intensity`), with MONAI's semantics so that a MONAI user's preprocessing carries over:
//   window:A,B       ScaleIntensityRange(a_min=A, a_max=B, b_min=−1, b_max=1, clip=True):
//                    y = clip((x − A) / (B − A) · 2 − 1, −1, 1), computed in float32
//   percentile:P,Q   ScaleIntensityRangePercentiles(lower=P, upper=Q, b_min=−1, b_max=1,
//                    clip=True, relative=False, channel_wise=False): A and B are the image's
//                    P-th and Q-th percentiles over all its values (linear interpolation, as
//                    numpy.percentile and torch.quantile), then the window; a constant image
//                    gives −1 everywhere (ScaleIntensityRange's A = B case)
//   minmax           percentile:0,100 (each image's own minimum and maximum)
//   auto             uint8: x / 127.5 − 1 (ladder's photo path, 2/255 in float32); otherwise
//                    the window of the store's stated intensity range when it has one (e.g. HU
//                    from a CT volume), else the type's full range for uint16 (0..65535), else
//                    minmax (float16, float32)
// The same transform shows 1-channel and 16-bit images in grids and FID (its output mapped to
// bytes), so PSNR and the grids are over the transformed range [−1, 1].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "data/pixel_type.h"

namespace ladder::data {

struct IntensitySpec {
  enum class Kind { kAuto, kMinMax, kWindow, kPercentile };
  Kind kind = Kind::kAuto;
  double low = 0, high = 0;  // window: A, B; percentile: P, Q
};

// Parses data.intensity (auto | minmax | window:A,B | percentile:P,Q); UsageError naming the
// key and the value when it is none of them (A < B; 0 ≤ P < Q ≤ 100).
IntensitySpec parse_intensity(const std::string& text);
std::string intensity_text(const IntensitySpec& spec);

class IntensityTransform {
 public:
  // `stated`: the store's source intensity range (low, high), where it states one.
  IntensityTransform(IntensitySpec spec, PixelType type, std::optional<std::pair<double, double>> stated = {});

  PixelType type() const { return type_; }
  // One image's `count` raw values (native byte order) → out[count] in [−1, 1].
  void apply(const uint8_t* raw, int64_t count, float* out) const;
  // What it does, for the log: "window -160..240 (data.intensity = window:-160,240)".
  std::string description() const;

 private:
  void window(const uint8_t* raw, int64_t count, float low, float high, float* out) const;

  IntensitySpec spec_;  // auto resolved
  PixelType type_;
  bool photo_ = false;  // uint8 auto: x · (2/255) − 1
  std::string source_;
};

// A model-range value to a byte: round((v + 1) · 127.5), clamped to [0, 255]; NaN gives 0.
uint8_t unit_to_byte(float value);

// The p-th percentile (0..100) of values[0..count) with numpy.percentile's linear
// interpolation; reorders `values`.
float percentile(float* values, int64_t count, double p);

}  // namespace ladder::data
