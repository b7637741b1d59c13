// Why this file exists: the data order's and the prefetcher's contract: the partitions in use
// and the world sizes they allow (with one clear error otherwise); every partition's epoch is
// a permutation of its images; ranks of any world size that divides the partitions draw the
// same global batches, image for image and flip for flip, as one rank; the sequence depends
// only on (seed, partitions, batch) — not on threads, ring depth or timing — and a run restarted
// at a global batch continues it; flips follow flip_image(); the prefetcher stops cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/check.h"
#include "data/prefetcher.h"

namespace ladder::data {
namespace {

// Rank `rank`'s shard of `total` 4×4×3 images (those i ≡ rank mod world), image i filled with
// distinctive bytes.
ImageShard make_shard(int64_t total, int rank, int world) {
  ImageShard shard;
  shard.resolution = 4;
  shard.channels = 3;
  for (int64_t i = rank; i < total; i += world) shard.indices.push_back(i);
  shard.pixels = HostBuffer<uint8_t>(shard.count() * shard.image_bytes());
  for (int64_t local = 0; local < shard.count(); ++local)
    for (int64_t b = 0; b < shard.image_bytes(); ++b)
      shard.pixels.data()[local * shard.image_bytes() + b] =
          static_cast<uint8_t>((shard.indices[local] * 7 + b * 13) % 251);
  return shard;
}

struct Drawn {
  std::vector<int64_t> indices, slots;
  std::vector<float> values;  // the model inputs
};

Drawn draw(const ImageShard& shard, const DataOrder& order, PrefetchSettings settings, int micro_batches) {
  Prefetcher prefetcher(shard, order, settings);
  Drawn drawn;
  const int64_t first = settings.first_global_batch * (order.batch() / settings.world / settings.micro_batch);
  for (int k = 0; k < micro_batches; ++k) {
    const MicroBatch& batch = prefetcher.next();
    EXPECT_EQ(batch.number, first + k);
    drawn.indices.insert(drawn.indices.end(), batch.indices.begin(), batch.indices.end());
    drawn.slots.insert(drawn.slots.end(), batch.slots.begin(), batch.slots.end());
    drawn.values.insert(drawn.values.end(), batch.values.data(), batch.values.data() + batch.values.size());
  }
  return drawn;
}

TEST(DataOrder, PartitionsDivideTheBatchAndAreCappedByTheImages) {
  EXPECT_EQ(DataOrder(40, 0, 8).partitions(), 8);   // auto: the batch
  EXPECT_EQ(DataOrder(5, 0, 8).partitions(), 4);    // auto: the batch's largest divisor ≤ 5
  EXPECT_EQ(DataOrder(40, 4, 8).partitions(), 4);
  EXPECT_EQ(DataOrder(40, 0, 8).partition_size(0), 5);
  EXPECT_EQ(DataOrder(42, 0, 8).partition_size(1), 6);  // 42 = 2 × 6 + 6 × 5
  EXPECT_EQ(DataOrder(42, 0, 8).partition_size(2), 5);
  EXPECT_EQ(DataOrder(40, 0, 12).world_sizes(), (std::vector<int>{1, 2, 3, 4, 6, 12}));
  EXPECT_THROW(DataOrder(40, 3, 8), UsageError);   // does not divide the batch
  EXPECT_THROW(DataOrder(4, 8, 8), UsageError);    // more partitions than images
  try {
    DataOrder(40, 4, 8).check_world(8);
    FAIL() << "8 ranks over 4 partitions were accepted";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("data.partitions (4)"), std::string::npos) << message;
    EXPECT_NE(message.find("world sizes that work: 1, 2, 4"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(DataOrder(40, 4, 8).check_world(2));
}

TEST(DataOrder, EveryGlobalBatchDrawsAlikeFromEveryPartition) {
  const DataOrder order(40, 4, 8);
  for (int64_t k = 0; k < 3; ++k) {
    std::map<int64_t, std::vector<int64_t>> draws;  // partition → its draws in this batch
    for (int64_t j = 0; j < 8; ++j) draws[order.slot(k, j).partition].push_back(order.slot(k, j).draw);
    ASSERT_EQ(draws.size(), 4u);
    for (const auto& [partition, of] : draws) EXPECT_EQ(of, (std::vector<int64_t>{2 * k, 2 * k + 1})) << partition;
  }
}

TEST(Prefetcher, EveryPartitionEpochIsAPermutationOfItsImages) {
  const DataOrder order(40, 0, 8);  // 8 partitions of 5: a global epoch is 5 global batches
  const ImageShard shard = make_shard(40, 0, 1);
  PrefetchSettings settings;
  settings.micro_batch = 4;
  settings.seed = 3;
  const Drawn drawn = draw(shard, order, settings, 20);  // 80 images = 2 epochs
  for (int epoch = 0; epoch < 2; ++epoch) {
    const std::set<int64_t> seen(drawn.indices.begin() + epoch * 40, drawn.indices.begin() + (epoch + 1) * 40);
    EXPECT_EQ(seen.size(), 40u) << epoch;
  }
  for (size_t k = 0; k < drawn.indices.size(); ++k)  // slot j draws from partition j mod 8
    EXPECT_EQ(drawn.indices[k] % 8, drawn.slots[k] % 8) << k;
  EXPECT_FALSE(std::equal(drawn.indices.begin(), drawn.indices.begin() + 40, drawn.indices.begin() + 40));
}

TEST(Prefetcher, AnyWorldSizeThatDividesThePartitionsDrawsTheSameGlobalBatches) {
  const int64_t images = 42, batch = 12, global_batches = 9;  // partitions of 4 and 3: they wrap apart
  const DataOrder order(images, 0, batch);
  // (global batch, slot) → image index and its bytes, as drawn by world 1
  auto assemble = [&](int world, int micro) {
    std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, std::vector<float>>> batches;
    for (int rank = 0; rank < world; ++rank) {
      const ImageShard shard = make_shard(images, rank, world);
      PrefetchSettings settings;
      settings.micro_batch = micro;
      settings.seed = 11;
      settings.rank = rank;
      settings.world = world;
      settings.threads = 2;
      const int64_t per_rank = batch / world;
      const Drawn drawn = draw(shard, order, settings, static_cast<int>(global_batches * per_rank / micro));
      for (size_t p = 0; p < drawn.indices.size(); ++p) {
        const auto values = drawn.values.begin() + static_cast<int64_t>(p) * shard.image_values();
        batches[{static_cast<int64_t>(p) / per_rank, drawn.slots[p]}] = {
            drawn.indices[p], std::vector<float>(values, values + shard.image_values())};
      }
    }
    return batches;
  };
  const auto one = assemble(1, 12);
  ASSERT_EQ(one.size(), static_cast<size_t>(global_batches * batch));
  for (const auto& [world, micro] : std::vector<std::pair<int, int>>{{2, 3}, {3, 4}, {4, 1}, {6, 2}, {12, 1}})
    EXPECT_TRUE(assemble(world, micro) == one) << world << " ranks draw other global batches than one rank";
  // Every image comes round: 9 batches of 12 = 108 draws over 42 images.
  std::set<int64_t> seen;
  for (const auto& entry : one) seen.insert(entry.second.first);
  EXPECT_EQ(seen.size(), 42u);
}

TEST(Prefetcher, SequenceDependsOnlyOnSeedAndOrderAndResumesAtAGlobalBatch) {
  const DataOrder order(50, 0, 10);
  const ImageShard shard = make_shard(50, 1, 2);
  PrefetchSettings one;
  one.micro_batch = 1;
  one.seed = 9;
  one.rank = 1;
  one.world = 2;
  one.threads = 1;
  one.depth = 1;
  PrefetchSettings many = one;
  many.threads = 3;
  many.depth = 5;
  const Drawn a = draw(shard, order, one, 40);
  const Drawn b = draw(shard, order, many, 40);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.values, b.values);
  PrefetchSettings other_seed = one;
  other_seed.seed = 10;
  EXPECT_NE(draw(shard, order, other_seed, 40).indices, a.indices);
  // starting at global batch 3 (a resumed run: 5 images a rank per batch) continues the sequence
  PrefetchSettings resumed = many;
  resumed.first_global_batch = 3;
  const Drawn tail = draw(shard, order, resumed, 10);
  EXPECT_EQ(tail.indices, std::vector<int64_t>(a.indices.begin() + 15, a.indices.begin() + 25));
  Prefetcher counting(shard, order, resumed);
  for (int k = 0; k < 12; ++k) counting.next();  // 2 global batches and 2 of the third's 5
  EXPECT_EQ(counting.global_batches_consumed(), 5);
}

TEST(Prefetcher, FlipsMirrorTheImagesThatFlipImageNames) {
  const DataOrder order(16, 0, 16);  // 16 partitions of one image: partition epoch = global batch
  const ImageShard shard = make_shard(16, 0, 1);
  PrefetchSettings settings;
  settings.micro_batch = 16;
  settings.seed = 5;
  const Drawn drawn = draw(shard, order, settings, 1);
  int flipped = 0;
  const int64_t values = shard.image_values();
  std::vector<float> expected(static_cast<size_t>(values));
  for (int b = 0; b < 16; ++b) {
    const int64_t index = drawn.indices[b];
    const bool flip = flip_image(5, 0, index);
    flipped += flip;
    record_to_floats(shard, index, flip, expected.data());  // world 1: local == global index
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), drawn.values.begin() + b * values)) << "image " << index;
    // a flip really mirrors: the first value of row 0 is the source row's last pixel's, and the
    // values are the bytes through x / 127.5 − 1
    if (flip) {
      EXPECT_EQ(drawn.values[b * values], float(shard.image(index)[3 * 3]) * (2.0f / 255.0f) - 1.0f);
    }
  }
  EXPECT_GT(flipped, 2);
  EXPECT_LT(flipped, 14);
  settings.flip = false;
  const Drawn plain = draw(shard, order, settings, 1);
  for (int b = 0; b < 16; ++b)
    for (int64_t e = 0; e < values; ++e)
      ASSERT_EQ(data::unit_to_byte(plain.values[b * values + e]), shard.image(plain.indices[b])[e]) << b << " " << e;
}

TEST(Prefetcher, StopsCleanlyWithBatchesInFlight) {
  const DataOrder order(40, 0, 6);
  const ImageShard shard = make_shard(40, 0, 1);
  PrefetchSettings settings;
  settings.micro_batch = 3;
  settings.threads = 4;
  settings.depth = 6;
  for (int round = 0; round < 20; ++round) {
    Prefetcher prefetcher(shard, order, settings);
    prefetcher.next();  // destroyed while the other slots are being filled
  }
}

}  // namespace
}  // namespace ladder::data
