// Why this file exists: the prefetcher's contract: every epoch is a permutation of the
// rank's images, the sequence depends only on (seed, rank) — not on threads, ring depth or
// timing — flips follow flip_image(), and errors in a loader thread reach the trainer.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data/prefetcher.h"

namespace ladder::data {
namespace {

// A shard of `count` 4×4×3 images where image i is filled with distinctive bytes.
ImageShard make_shard(int64_t count, int rank, int world) {
  ImageShard shard;
  shard.resolution = 4;
  shard.channels = 3;
  for (int64_t i = rank; i < count * world; i += world) shard.indices.push_back(i);
  shard.pixels = HostBuffer<uint8_t>(shard.count() * shard.image_bytes());
  for (int64_t local = 0; local < shard.count(); ++local)
    for (int64_t b = 0; b < shard.image_bytes(); ++b)
      shard.pixels.data()[local * shard.image_bytes() + b] =
          static_cast<uint8_t>((shard.indices[local] * 7 + b * 13) % 251);
  return shard;
}

struct Drawn {
  std::vector<int64_t> indices;
  std::vector<uint8_t> pixels;
};

Drawn draw(const ImageShard& shard, PrefetchSettings settings, int batches) {
  Prefetcher prefetcher(shard, settings);
  Drawn drawn;
  for (int k = 0; k < batches; ++k) {
    const MicroBatch& batch = prefetcher.next();
    EXPECT_EQ(batch.number, settings.first_batch + k);
    drawn.indices.insert(drawn.indices.end(), batch.indices.begin(), batch.indices.end());
    drawn.pixels.insert(drawn.pixels.end(), batch.pixels.data(),
                        batch.pixels.data() + batch.pixels.size());
  }
  return drawn;
}

TEST(Prefetcher, EveryEpochIsAPermutationOfTheShard) {
  ImageShard shard = make_shard(12, /*rank=*/1, /*world=*/3);
  PrefetchSettings settings;
  settings.micro_batch = 5;  // does not divide 12: batches straddle epochs
  settings.seed = 3;
  settings.rank = 1;
  Drawn drawn = draw(shard, settings, 12);  // 60 images = 5 epochs
  for (int epoch = 0; epoch < 5; ++epoch) {
    std::set<int64_t> seen(drawn.indices.begin() + epoch * 12, drawn.indices.begin() + (epoch + 1) * 12);
    EXPECT_EQ(seen, std::set<int64_t>(shard.indices.begin(), shard.indices.end())) << epoch;
  }
  // consecutive epochs are shuffled differently
  EXPECT_FALSE(std::equal(drawn.indices.begin(), drawn.indices.begin() + 12, drawn.indices.begin() + 12));
}

TEST(Prefetcher, SequenceDependsOnlyOnSeedAndRank) {
  ImageShard shard = make_shard(50, 0, 1);
  PrefetchSettings one;
  one.micro_batch = 4;
  one.seed = 9;
  one.threads = 1;
  one.depth = 1;
  PrefetchSettings many = one;
  many.threads = 3;
  many.depth = 5;
  Drawn a = draw(shard, one, 40);
  Drawn b = draw(shard, many, 40);
  Drawn c = draw(shard, many, 40);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(b.pixels, c.pixels);
  PrefetchSettings other_seed = one;
  other_seed.seed = 10;
  EXPECT_NE(draw(shard, other_seed, 40).indices, a.indices);
  // starting at batch 7 (a resumed run) continues the same sequence
  PrefetchSettings resumed = many;
  resumed.first_batch = 7;
  Drawn tail = draw(shard, resumed, 10);
  EXPECT_EQ(tail.indices, std::vector<int64_t>(a.indices.begin() + 28, a.indices.begin() + 68));
}

TEST(Prefetcher, FlipsMirrorTheImagesThatFlipImageNames) {
  ImageShard shard = make_shard(16, 0, 1);
  PrefetchSettings settings;
  settings.micro_batch = 16;
  settings.seed = 5;
  Drawn drawn = draw(shard, settings, 1);
  int flipped = 0;
  std::vector<uint8_t> expected(static_cast<size_t>(shard.image_bytes()));
  for (int b = 0; b < 16; ++b) {
    const int64_t index = drawn.indices[b];
    const bool flip = flip_image(5, 0, index);
    flipped += flip;
    copy_image(shard, index, flip, expected.data());  // world 1: local == global index
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(),
                           drawn.pixels.begin() + b * shard.image_bytes()))
        << "image " << index;
    // a flip really mirrors: first pixel of row 0 equals the last pixel of the source row
    if (flip) {
      EXPECT_EQ(drawn.pixels[b * shard.image_bytes()], shard.image(index)[3 * 3]);
    }
  }
  EXPECT_GT(flipped, 2);
  EXPECT_LT(flipped, 14);
  settings.flip = false;
  Drawn plain = draw(shard, settings, 1);
  for (int b = 0; b < 16; ++b)
    EXPECT_TRUE(std::equal(plain.pixels.begin() + b * shard.image_bytes(),
                           plain.pixels.begin() + (b + 1) * shard.image_bytes(),
                           shard.image(plain.indices[b])));
}

TEST(Prefetcher, StopsCleanlyWithBatchesInFlight) {
  ImageShard shard = make_shard(40, 0, 1);
  PrefetchSettings settings;
  settings.micro_batch = 3;
  settings.threads = 4;
  settings.depth = 6;
  for (int round = 0; round < 20; ++round) {
    Prefetcher prefetcher(shard, settings);
    prefetcher.next();  // destroyed while the other slots are being filled
  }
}

}  // namespace
}  // namespace ladder::data
