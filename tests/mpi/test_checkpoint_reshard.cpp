// Why this file exists: resharding (BRIEF §5 "Resume works on any world size and ZeRO
// stage"), under real mpirun with 3 ranks: a checkpoint written by 3 ranks at ZeRO-2 equals
// the state they trained to, and loads on 2 ranks at ZeRO-1 and on 1 rank at ZeRO-0 with the
// flat master weights and both Adam moments bit for bit the saved ones; training continues
// from the saved data cursor (a global batch index, the same on every world size).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <filesystem>

#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "io/checkpoint_files.h"
#include "train/trainer.h"
#include "trainer_checks.h"

namespace ladder {
namespace {

using testing::world_rank;
using testing::world_size;

std::string shared_dir() {
  static const std::string dir = testing::make_shared_store_dir("ladder-reshard");
  return dir;
}

// 6 images per step (divisible by 1, 2 and 3 ranks); images / 6 steps.
Config reshard_config(const std::string& run, int zero_stage, int micro, int images) {
  return load_config("", {"--run.dir", shared_dir() + "/" + run, "--run.seed", "11",
                          "--run.log_every", "1", "--run.sample_every", "0",
                          "--model.channels", "8,16", "--model.norm_groups", "4",
                          "--model.res_blocks", "1", "--model.latent_channels", "2",
                          "--data.store", shared_dir() + "/s.h5", "--stages.resolutions", "16",
                          "--stages.images", std::to_string(images), "--train.batch", "6",
                          "--train.micro_batch", std::to_string(micro), "--train.lr", "3e-3",
                          "--train.zero_stage", std::to_string(zero_stage),
                          "--train.bucket_mb", "0.01"});  // several buckets, a padded last one
}

struct SavedState {
  io::Manifest manifest;
  std::vector<float> master, exp_avg, exp_avg_sq;  // (count)
};

SavedState read_saved(const std::string& dir) {
  SavedState saved;
  saved.manifest = io::verify_checkpoint(dir);
  const std::vector<Range> all = {Range{0, saved.manifest.count}};
  for (auto [name, values] : {std::pair{"master", &saved.master}, std::pair{"exp_avg", &saved.exp_avg},
                              std::pair{"exp_avg_sq", &saved.exp_avg_sq}}) {
    values->resize(static_cast<size_t>(saved.manifest.count));
    io::read_checkpoint_ranges(dir, saved.manifest, name, all, values->data());
  }
  return saved;
}

// The trainer's master weights and its optimizer's moments equal `saved`, bit for bit.
void expect_state_equals(Trainer& trainer, const SavedState& saved, const std::string& what) {
  const ParamStore& params = trainer.params();
  ASSERT_EQ(params.count(), saved.manifest.count);
  EXPECT_TRUE(std::equal(saved.master.begin(), saved.master.end(), params.values())) << what << ": master";
  const Optimizer& optimizer = trainer.optimizer();
  const std::vector<Range>& ranges = optimizer.owned_ranges();
  std::vector<float> m(static_cast<size_t>(total_size(ranges))), v(m.size());
  optimizer.download_moments(ranges, m.data(), v.data());
  size_t k = 0, mismatches = 0;
  for (const Range& range : ranges)
    for (int64_t i = range.begin; i < range.end; ++i, ++k) {
      const float want_m = i < saved.manifest.count ? saved.exp_avg[i] : 0.f;
      const float want_v = i < saved.manifest.count ? saved.exp_avg_sq[i] : 0.f;
      mismatches += (m[k] != want_m) + (v[k] != want_v);
    }
  EXPECT_EQ(mismatches, 0u) << what << ": Adam moments";
  EXPECT_EQ(optimizer.steps(), saved.manifest.state.optimizer_steps) << what;
}

TEST(CheckpointReshard, ThreeRanksAtZero2LoadOnTwoAtZero1AndOneAtZero0) {
  if (world_size() != 3) GTEST_SKIP() << "needs mpirun -np 3";
  const int rank = world_rank();
  MpiCommunicator all(60);

  // 3 ranks, ZeRO-2, 5 steps: the end-of-run checkpoint is the state they trained to.
  const Config three = reshard_config("np3-zero2", 2, 2, 30);
  const std::string source = (std::filesystem::path(three.run.dir) / "checkpoints/step-00000005").string();
  {
    Trainer trainer(three, all.split(0));
    EXPECT_EQ(trainer.run().steps, 5);
    const SavedState saved = read_saved(source);
    EXPECT_EQ(saved.manifest.world, 3);
    EXPECT_EQ(saved.manifest.zero_stage, 2);
    EXPECT_EQ(saved.manifest.state.data_batch, 5);  // global batches of the rung trained on
    expect_state_equals(trainer, saved, "3 ranks after training");
  }
  const SavedState saved = read_saved(source);

  // 2 ranks at ZeRO-1 (micro-batch 3), and rank 0 alone at ZeRO-0 (micro-batch 6), continue
  // to step 8.
  struct Target {
    int ranks, stage, micro;
  };
  for (const Target target : {Target{2, 1, 3}, Target{1, 0, 6}}) {
    std::unique_ptr<MpiCommunicator> group = all.split(rank < target.ranks ? 0 : 1 + rank);
    if (rank >= target.ranks) continue;
    const std::string what = std::to_string(target.ranks) + " ranks at ZeRO-" + std::to_string(target.stage);
    Config config = reshard_config("np" + std::to_string(target.ranks) + "-zero" +
                                       std::to_string(target.stage),
                                   target.stage, target.micro, 48);
    TrainOptions options;
    options.resume = source;
    Trainer trainer(config, std::move(group), options);
    expect_state_equals(trainer, saved, what + " after loading");
    const TrainSummary summary = trainer.run();
    EXPECT_EQ(summary.steps, 8) << what;
    EXPECT_EQ(summary.images_seen, 48) << what;
    const ParamStore& params = trainer.params();
    EXPECT_FALSE(std::equal(saved.master.begin(), saved.master.end(), params.values()))
        << what << ": training did not continue";
    const std::string last = (std::filesystem::path(config.run.dir) / "checkpoints/step-00000008").string();
    EXPECT_EQ(io::verify_checkpoint(last).state.data_batch, 8) << what << ": the cursor went on from global batch 5";
  }
}

}  // namespace
}  // namespace ladder
