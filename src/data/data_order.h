// Why this file exists: the order in which a rung's training images are trained on, a
// function of (seed, data set, data.partitions, train.batch) alone, so that a run continues
// the same training on any world size that divides the partitions (a preemption on 8 ranks
// resumed on 4, 2 or 1).
//
// Partitions. Image i (of the rung's N training images, counted from its range's start) is in
// partition i mod P. P is data.partitions, which divides train.batch B; auto (the default) is
// B, or the largest divisor of B not above N when the data set is smaller than a batch. Rank r
// of world W (W divides P) holds the whole partitions ≡ r (mod W), which are the images
// i ≡ r (mod W) (image_shard.h): about N / W of them.
//
// Order. Each partition is an endless sequence of epochs of its own images, each epoch a
// permutation drawn from (seed, partition epoch, partition). Global batch k takes B / P
// consecutive draws from every partition: its slot j (0 ≤ j < B) is draw k·(B/P) + ⌊j / P⌋ of
// partition j mod P. Rank r computes slots r, r + W, r + 2W, ... of every global batch — B / W
// images, all from its own partitions — so 1, 2, 4 or W ranks train on the same global batches,
// and the global batch index is the whole data cursor. A batch is thus a stratified sample
// (B / P images of every partition); partitions differ in size by at most one image, so an
// image of a smaller partition comes round (1 / ⌊N/P⌋) sooner.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder::data {

// Where one slot of a global batch draws from: draw `draw` of partition `partition`'s sequence.
struct PartitionDraw {
  int64_t partition = 0;
  int64_t draw = 0;
};

class DataOrder {
 public:
  // images: the rung's training images N (≥ 1); partitions: data.partitions (0: auto); batch:
  // train.batch. UsageError, naming data.partitions, when they do not divide the batch or
  // outnumber the images.
  DataOrder(int64_t images, int64_t partitions, int64_t batch);

  int64_t images() const { return images_; }
  int64_t partitions() const { return partitions_; }  // P
  int64_t batch() const { return batch_; }
  // Images in partition p: those i ≡ p (mod P).
  int64_t partition_size(int64_t partition) const { return (images_ - partition + partitions_ - 1) / partitions_; }
  // The image (0 ≤ i < N) that is member m of partition p.
  int64_t image(int64_t partition, int64_t member) const { return partition + member * partitions_; }

  // The world sizes that keep this order: the divisors of P, ascending.
  std::vector<int> world_sizes() const;
  bool fits(int world) const { return world >= 1 && partitions_ % world == 0; }
  // UsageError, one line naming data.partitions and the world sizes that work, when `world`
  // does not divide P.
  void check_world(int world) const;

  // Slot j of global batch k.
  PartitionDraw slot(int64_t global_batch, int64_t j) const;
  // Rank r of `world` computes slots r, r + W, ... of every global batch: the p-th image of its
  // endless sequence is this slot of global batch p / (B / W).
  int64_t rank_slot(int64_t position, int rank, int world) const;

 private:
  int64_t images_, partitions_, batch_;
  bool automatic_;
};

// Partition p's order in its epoch e: a permutation of its `count` members drawn from (seed, e, p).
std::vector<int64_t> partition_permutation(int64_t count, uint64_t seed, int64_t epoch, int64_t partition);

// One line for the log: the partitions in use and the balance of a world's ranks (images held
// by the fullest rank against the mean).
std::string describe_order(const DataOrder& order, int world);

}  // namespace ladder::data
