// Why this file exists: MS-SSIM diversity of a sample set (eval/sample_diversity.h).
#include "eval/sample_diversity.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "comm/image_order.h"
#include "core/check.h"
#include "eval/structural_similarity.h"

namespace ladder::eval {

Diversity ms_ssim_diversity(Communicator& comm, const uint8_t* held, int64_t held_count, int side, int channels,
                            int64_t total, int64_t most) {
  const int world = comm.world(), rank = comm.rank();
  Diversity out;
  out.images = std::min(total, most);
  LADDER_CHECK(out.images >= 2, "MS-SSIM diversity needs at least 2 images, got ", out.images);
  const int64_t per_image = int64_t(side) * side * channels;
  const int64_t used = images_held(out.images, rank, world);
  LADDER_CHECK(used <= held_count, "ms_ssim_diversity: rank ", rank, " holds ", held_count, " images, needs ", used);
  std::vector<float> mine(static_cast<size_t>(used * per_image));
  for (int64_t e = 0; e < used * per_image; ++e) mine[e] = held[e];
  const std::vector<float> all = gather_in_image_order(comm, mine.data(), used, per_image, out.images);
  std::vector<double> images01(all.size());  // (images, side, side, channels) on [0, 1]
  for (size_t e = 0; e < all.size(); ++e) images01[e] = all[e] / 255.0;

  std::vector<std::pair<int64_t, int64_t>> pairs;  // itertools.combinations(range(images), 2)
  for (int64_t a = 0; a < out.images; ++a)
    for (int64_t b = a + 1; b < out.images; ++b) pairs.emplace_back(a, b);
  out.pairs = static_cast<int64_t>(pairs.size());
  SsimSettings settings;
  settings.window = 4;  // the tutorials' kernel_size
  std::vector<double> scores;  // this rank's pairs: rank, rank + W, ...
  for (int64_t p = rank; p < out.pairs; p += world)
    scores.push_back(ms_ssim(images01.data() + pairs[p].first * per_image,
                             images01.data() + pairs[p].second * per_image, side, side, channels, settings));
  const std::vector<double> ordered =
      gather_in_image_order(comm, scores.data(), static_cast<int64_t>(scores.size()), 1, out.pairs);
  double sum = 0;
  for (double v : ordered) sum += v;
  out.mean = sum / out.pairs;
  double squares = 0;
  for (double v : ordered) squares += (v - out.mean) * (v - out.mean);
  out.std = out.pairs > 1 ? std::sqrt(squares / (out.pairs - 1)) : 0;
  return out;
}

}  // namespace ladder::eval
