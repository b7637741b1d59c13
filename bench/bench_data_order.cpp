// Why this file exists: what the world-invariant data order (data/data_order.h) costs in host
// memory. For a store, a rung resolution and a global batch it loads every rank's shard at
// each world size that divides the partitions (the trainer's real HDF5 read) and prints the
// partitions and images each rank holds, the RAM of the fullest rank, and the balance (the
// fullest rank's images over the mean).
//   usage: bench_data_order STORE RESOLUTION BATCH [WORLD ...]   (worlds default 1 2 4 8)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/data_order.h"
#include "io/image_store.h"

using namespace ladder;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_data_order STORE RESOLUTION BATCH [WORLD ...]\n");
    return 2;
  }
  const io::ImageStoreReader store(argv[1]);
  const int resolution = std::atoi(argv[2]);
  const int64_t batch = std::atoll(argv[3]);
  std::vector<int> worlds;
  for (int a = 4; a < argc; ++a) worlds.push_back(std::atoi(argv[a]));
  if (worlds.empty()) worlds = {1, 2, 4, 8};
  const data::DataOrder order(store.info().count, 0, batch);
  std::printf("%s: %lld images at %dx%d, batch %lld: %lld partitions of %lld-%lld images\n\n", argv[1],
              static_cast<long long>(store.info().count), resolution, resolution, static_cast<long long>(batch),
              static_cast<long long>(order.partitions()),
              static_cast<long long>(order.partition_size(order.partitions() - 1)),
              static_cast<long long>(order.partition_size(0)));
  std::printf("%-6s %-18s %-16s %16s %14s\n", "world", "partitions/rank", "images/rank", "MiB (fullest)",
              "fullest/mean");
  for (int world : worlds) {
    if (!order.fits(world)) {
      std::printf("%-6d does not divide the %lld partitions\n", world, static_cast<long long>(order.partitions()));
      continue;
    }
    int64_t least = store.info().count, most = 0, most_bytes = 0;
    for (int rank = 0; rank < world; ++rank) {
      const data::ImageShard shard = store.load_shard(resolution, rank, world);
      least = std::min(least, shard.count());
      most = std::max(most, shard.count());
      most_bytes = std::max(most_bytes, shard.pixels.bytes());
    }
    const double mean = static_cast<double>(store.info().count) / world;
    std::printf("%-6d %-18lld %-16s %16.2f %14.4f\n", world, static_cast<long long>(order.partitions() / world),
                (std::to_string(least) + (least == most ? "" : "-" + std::to_string(most))).c_str(),
                static_cast<double>(most_bytes) / 1048576.0, static_cast<double>(most) / mean);
  }
  return 0;
}
