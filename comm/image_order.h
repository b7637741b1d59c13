// Why this file exists: ranks hold images rank, rank + world, rank + 2·world, ... (the
// strided shards of data/image_shard.h), and what they compute per image (validation values,
// reconstructions, latent statistics) must combine into the same bits on any world size. A
// sum all-reduced over ranks adds in an order that depends on the world size; gathering the
// rows into image order first lets the caller reduce in one fixed order instead.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"

namespace ladder {

// How many of images 0 .. total − 1 rank `rank` of `world` holds (rank, rank + world, ...).
inline int64_t images_held(int64_t total, int rank, int world) {
  return total > rank ? (total - rank + world - 1) / world : 0;
}

// Every rank's rows in global image order, on every rank: held (held_count, row) holds this
// rank's images rank + k·world, k = 0 .. held_count − 1; returns (total, row). T is float or
// double. A collective: every rank calls it with the same row and total.
template <typename T>
std::vector<T> gather_in_image_order(Communicator& comm, const T* held, int64_t held_count, int64_t row,
                                     int64_t total);

}  // namespace ladder
