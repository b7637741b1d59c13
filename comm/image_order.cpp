// Why this file exists: the one all-gather that puts strided shards' per-image rows back in
// image order (comm/image_order.h).
#include "comm/image_order.h"

#include <algorithm>
#include <type_traits>

#include "core/check.h"

namespace ladder {

template <typename T>
std::vector<T> gather_in_image_order(Communicator& comm, const T* held, int64_t held_count, int64_t row,
                                     int64_t total) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double rows");
  const int world = comm.world(), rank = comm.rank();
  const int64_t most = (total + world - 1) / world;  // the most images a rank holds
  const int64_t expected = images_held(total, rank, world);
  LADDER_CHECK(held_count == expected, "gather_in_image_order: rank ", rank, " holds ", held_count,
               " of ", total, " images, expected ", expected);
  std::vector<T> padded(static_cast<size_t>(most * row), T(0));  // (most, row)
  std::copy_n(held, held_count * row, padded.begin());
  std::vector<T> by_rank(static_cast<size_t>(most * row * world));  // (world, most, row)
  comm.all_gather(padded.data(), by_rank.data(), most * row, std::is_same_v<T, float> ? DType::kF32 : DType::kF64);
  std::vector<T> ordered(static_cast<size_t>(total * row));  // (total, row)
  for (int64_t i = 0; i < total; ++i) {
    const int64_t from = i % world, k = i / world;
    std::copy_n(by_rank.data() + (from * most + k) * row, row, ordered.data() + i * row);
  }
  return ordered;
}

template std::vector<float> gather_in_image_order(Communicator&, const float*, int64_t, int64_t, int64_t);
template std::vector<double> gather_in_image_order(Communicator&, const double*, int64_t, int64_t, int64_t);

}  // namespace ladder
