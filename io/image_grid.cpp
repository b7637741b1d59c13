// Why this file exists: turns batches of model-range tensors into one comparison PNG and
// measures reconstruction quality, for sample grids and `ladder reconstruct`.
#include "io/image_grid.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "io/png.h"

namespace ladder::io {

void write_image_grid(const std::string& path, const std::vector<const TensorF*>& rows) {
  LADDER_CHECK(!rows.empty(), "image grid ", path, ": no rows");
  for (const TensorF* row : rows) LADDER_CHECK(row != nullptr, "image grid ", path, ": null row");
  const Shape shape = rows[0]->shape();  // (N, H, W, C)
  LADDER_CHECK(shape.numel() > 0, "image grid ", path, ": empty tensor ", shape.str());
  for (size_t r = 1; r < rows.size(); ++r)
    LADDER_CHECK(rows[r]->shape() == shape, "image grid ", path, ": row ", r, " has shape ",
                 rows[r]->shape().str(), ", row 0 has ", shape.str());

  const int out_channels = shape.c == 3 ? 3 : 1;
  const int64_t tiles = shape.n, rows_count = static_cast<int64_t>(rows.size());
  const int64_t height = rows_count * shape.h + (rows_count - 1) * kGridGap;
  const int64_t width = tiles * shape.w + (tiles - 1) * kGridGap;
  LADDER_CHECK(
      height <= std::numeric_limits<int>::max() / 4 && width <= std::numeric_limits<int>::max() / 4,
      "image grid ", path, ": ", height, "x", width, " pixels is too large");

  // (H, W, C), gaps white
  std::vector<uint8_t> pixels(static_cast<size_t>(height * width * out_channels), 255);
  for (int64_t r = 0; r < rows_count; ++r) {
    const TensorF& tensor = *rows[r];
    for (int64_t n = 0; n < tiles; ++n) {
      const int64_t top = r * (shape.h + kGridGap), left = n * (shape.w + kGridGap);
      for (int64_t y = 0; y < shape.h; ++y) {
        for (int64_t x = 0; x < shape.w; ++x) {
          uint8_t* out =
              &pixels[static_cast<size_t>(((top + y) * width + left + x) * out_channels)];
          for (int c = 0; c < out_channels; ++c)
            out[c] = data::unit_to_byte(tensor.at(n, y, x, c));
        }
      }
    }
  }
  write_png(path, static_cast<int>(height), static_cast<int>(width), out_channels, pixels.data());
}

double psnr(const TensorF& a, const TensorF& b) {
  LADDER_CHECK(a.shape() == b.shape(), "psnr: shapes differ, ", a.shape().str(), " vs ",
               b.shape().str());
  LADDER_CHECK(a.numel() > 0, "psnr: empty tensors");
  double sum = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += d * d;
  }
  const double mse = sum / static_cast<double>(a.numel());
  if (mse == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(4.0 / mse);
}

}  // namespace ladder::io
