// Why this file exists: the checkpoint contract on one process (BRIEF §5 "Checkpoint"): the
// manifest refuses edits, shards written by one world size read back on another, commits keep
// the newest `keep`, every kind of damage is one error line naming the file (inspect and
// --resume PATH) while --resume auto falls back, a checkpoint of another model is refused
// naming the keys, and train.init_from loads weights strictly by name. The multi-rank
// properties (bit-identical resume, kills, signals, resharding) are in tests/checkpoint/ and
// tests/mpi/test_checkpoint_reshard.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <xxhash.h>

#include "config/config.h"
#include "io/checkpoint_files.h"
#include "test_support.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace ladder {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

int line_count(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

void expect_contains(const std::string& text, const std::vector<std::string>& fragments) {
  for (const std::string& fragment : fragments)
    EXPECT_NE(text.find(fragment), std::string::npos) << "'" << fragment << "' not in:\n" << text;
}

// A manifest over a ShardLayout whose shard r holds the values `base + global offset`.
io::Manifest layout_manifest(int64_t count, int world, int64_t bucket, int64_t step) {
  const ShardLayout layout(count, world, bucket);
  io::Manifest m;
  m.step = step;
  m.state.step = step;
  m.world = world;
  m.count = count;
  m.padded_count = layout.padded_count();
  m.params.push_back({"w", {count}, 0, count});
  m.config["model.kind"] = "autoencoder_kl";
  m.ladder_version = "test";
  for (int r = 0; r < world; ++r) m.shards.push_back({r, io::shard_file_name(r, world), layout.owned_ranges(r), 1, 0});
  return m;
}

// Writes every shard of `m` into directory.temporary_path(step) and commits it.
void write_checkpoint(const io::CheckpointDirectory& directory, io::Manifest m, int keep, float base) {
  const std::string temporary = directory.temporary_path(m.step);
  fs::create_directories(temporary);
  for (io::ShardRecord& shard : m.shards) {
    std::vector<float> master, m1, m2;
    for (const Range& range : shard.ranges)
      for (int64_t i = range.begin; i < range.end; ++i) {
        const float value = i < m.count ? base + static_cast<float>(i) : 0.f;
        master.push_back(value);
        m1.push_back(2 * value);
        m2.push_back(3 * value);
      }
    const io::WrittenFile file = io::write_shard_file(
        (fs::path(temporary) / shard.file).string(), shard.rank, m.world, m.step, shard.ranges,
        {master.data(), m1.data(), m2.data()});
    shard.bytes = file.bytes;
    shard.xxh3 = file.xxh3;
  }
  directory.commit(m, keep);
}

TEST(CheckpointManifest, RoundTripsAndRefusesEditsAndDamage) {
  io::Manifest m = layout_manifest(1000, 3, 64, 12);
  m.state.images_seen = 96;
  m.state.rung = 1;
  m.state.rung_step = 4;
  m.state.scaler = {32768, 17, 2};
  m.state.data_batch = 4;
  m.shards[1].xxh3 = 0xfedcba9876543210ull;
  const std::string text = io::manifest_to_json(m);
  const io::Manifest back = io::parse_manifest(text, "m.json");
  EXPECT_EQ(io::manifest_to_json(back), text);
  EXPECT_EQ(back.shards[1].xxh3, 0xfedcba9876543210ull);
  EXPECT_EQ(back.state.scaler.clean_steps, 17);
  EXPECT_EQ(back.state.data_batch, 4);

  std::string edited = text;
  const size_t at = edited.find("\"images_seen\": 96");
  ASSERT_NE(at, std::string::npos) << text;
  edited.replace(at, 17, "\"images_seen\": 97");
  expect_contains(testing::error_message([&] { io::parse_manifest(edited, "m.json"); }),
                  {"m.json", "checksum does not match"});
  expect_contains(testing::error_message([&] { io::parse_manifest(text.substr(0, text.size() / 2), "m.json"); }),
                  {"m.json", "not valid JSON"});
  io::Manifest gap = m;
  gap.shards[2].ranges.back().end -= 1;
  expect_contains(testing::error_message([&] { io::parse_manifest(io::manifest_to_json(gap), "m.json"); }),
                  {"m.json", "shards", "cover"});
}

TEST(CheckpointManifest, BuffersRoundTripExactlyAndBadOnesAreRefused) {
  io::Manifest m = layout_manifest(100, 1, 64, 3);
  const float tiny = std::numeric_limits<float>::denorm_min(), third = 1.0f / 3.0f;
  m.buffers.push_back({"d.0.adn.N.running_mean", ModelBuffer::Type::kF32, {4}, {third, -0.0f, tiny, 1e30f}});
  m.buffers.push_back({"d.0.adn.N.running_var", ModelBuffer::Type::kF32, {2, 2}, {NAN, INFINITY, -INFINITY, 2.5}});
  m.buffers.push_back({"d.0.adn.N.num_batches_tracked", ModelBuffer::Type::kI64, {}, {9007199254740991.0}});
  const std::string text = io::manifest_to_json(m);
  const io::Manifest back = io::parse_manifest(text, "m.json");
  EXPECT_EQ(io::manifest_to_json(back), text);
  ASSERT_EQ(back.buffers.size(), 3u);
  for (size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(back.buffers[b].name, m.buffers[b].name);
    EXPECT_EQ(back.buffers[b].type, m.buffers[b].type);
    EXPECT_EQ(back.buffers[b].shape, m.buffers[b].shape);
    ASSERT_EQ(back.buffers[b].values.size(), m.buffers[b].values.size());
    for (size_t i = 0; i < m.buffers[b].values.size(); ++i) {  // bit for bit, NaN and −0 included
      const float want = static_cast<float>(m.buffers[b].values[i]), got = static_cast<float>(back.buffers[b].values[i]);
      EXPECT_EQ(std::memcmp(&want, &got, sizeof want), 0) << m.buffers[b].name << "[" << i << "]";
    }
  }
  EXPECT_EQ(back.buffers[2].values[0], 9007199254740991.0);
  // A manifest without buffers has no "buffers" field (it reads as one written before them).
  EXPECT_EQ(io::manifest_to_json(layout_manifest(100, 1, 64, 3)).find("buffers"), std::string::npos);

  auto refused = [&](const std::function<void(io::Manifest&)>& edit, const std::vector<std::string>& fragments) {
    io::Manifest bad = m;
    edit(bad);
    expect_contains(testing::error_message([&] { io::parse_manifest(io::manifest_to_json(bad), "m.json"); }),
                    fragments);
  };
  refused([](io::Manifest& b) { b.buffers[0].shape = {5}; }, {"m.json", "buffers[0].values", "holds 4 values"});
  refused([](io::Manifest& b) { b.buffers[1].name.clear(); }, {"m.json", "buffers[1].name", "empty"});
  refused([](io::Manifest& b) { b.buffers[2].values[0] = -1; }, {"m.json", "buffers[2].values", "[0, 2^53)"});
  refused([](io::Manifest& b) { b.buffers[0].shape = {0}; }, {"m.json", "buffers[0].shape", "bad size"});
  // Hand-made faults the writer cannot make (the checksum is recomputed so that the field is read).
  auto refused_text = [&](const std::string& from, const std::string& to, const std::string& fragment) {
    nlohmann::json object = nlohmann::json::parse(text);
    std::string dumped = object["buffers"].dump();
    const size_t at = dumped.find(from);
    ASSERT_NE(at, std::string::npos) << dumped;
    object["buffers"] = nlohmann::json::parse(dumped.replace(at, from.size(), to));
    object.erase("checksum");  // the manifest's own: XXH3-64 of the canonical dump without it
    const std::string canonical = object.dump();
    char sum[17];
    std::snprintf(sum, sizeof sum, "%016llx", static_cast<unsigned long long>(XXH3_64bits(canonical.data(), canonical.size())));
    object["checksum"] = sum;
    expect_contains(testing::error_message([&] { io::parse_manifest(object.dump(), "m.json"); }),
                    {"m.json", fragment});
  };
  refused_text("\"F32\"", "\"F16\"", "buffers[0].dtype");
  refused_text("\"nan\"", "\"NaN?\"", "buffers[1].values");
  refused_text("2.5", "1e+300", "beyond the float range");
}

TEST(CheckpointFiles, RangesWrittenByThreeRanksReadBackOnAnyLayout) {
  TempDir dir;
  const io::CheckpointDirectory directory(dir.path().string());
  write_checkpoint(directory, layout_manifest(1000, 3, 64, 5), 3, 0.5f);
  const io::Manifest manifest = io::verify_checkpoint(directory.step_path(5));
  for (int world : {1, 2, 4}) {
    const ShardLayout layout(1000, world, 100);
    for (int rank = 0; rank < world; ++rank) {
      const std::vector<Range> ranges = layout.owned_ranges(rank);
      std::vector<float> got(static_cast<size_t>(total_size(ranges)), -1.f);
      io::read_checkpoint_ranges(directory.step_path(5), manifest, "exp_avg", ranges, got.data());
      size_t k = 0;
      for (const Range& range : ranges)
        for (int64_t i = range.begin; i < range.end; ++i, ++k)
          ASSERT_EQ(got[k], i < 1000 ? 2 * (0.5f + static_cast<float>(i)) : 0.f)
              << "world " << world << " rank " << rank << " offset " << i;
    }
  }
}

TEST(CheckpointFiles, CommitKeepsTheNewestAndRemovesTemporaries) {
  TempDir dir;
  const io::CheckpointDirectory directory(dir.path().string());
  for (int64_t step : {2, 4, 6, 8}) write_checkpoint(directory, layout_manifest(100, 2, 16, step), 2, 0);
  EXPECT_EQ(directory.complete_steps(), (std::vector<int64_t>{8, 6}));
  EXPECT_EQ(directory.latest_step(), 8);
  fs::create_directories(directory.temporary_path(10));
  testing::write_file(directory.temporary_path(10) + "/shard-00000-of-00002.h5", "half");
  directory.remove_temporaries();
  EXPECT_FALSE(fs::exists(directory.temporary_path(10)));
  EXPECT_EQ(directory.supersede_after(6), (std::vector<std::string>{"step-00000008.superseded"}));
  EXPECT_EQ(directory.complete_steps(), (std::vector<int64_t>{6}));
  // A damaged directory under the name of a new commit is kept aside, not deleted.
  fs::create_directories(directory.step_path(12));
  testing::write_file(directory.step_path(12) + "/junk", "x");
  write_checkpoint(directory, layout_manifest(100, 2, 16, 12), 5, 0);
  EXPECT_TRUE(fs::exists(directory.step_path(12) + ".replaced/junk"));
  EXPECT_EQ(directory.complete_steps(), (std::vector<int64_t>{12, 6}));
}

TEST(CheckpointFiles, MetricsPastTheCheckpointAreDropped) {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  testing::write_file(path, "{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"loss\": 2}\n{\"step\": 3, \"loss\": 3}\n{\"step\": 4, \"lo");
  keep_metrics_through(path, 2);
  EXPECT_EQ(testing::read_file(path), "{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"loss\": 2}\n");
  keep_metrics_through(path, 0);
  EXPECT_EQ(testing::read_file(path), "");
}

// A tiny run on the small store: 2 steps per checkpoint, 6 steps in all.
std::string tiny_run_flags(const std::string& run) {
  return "--config /dev/null --run.dir " + run + " --run.seed 5 --run.log_every 1 --run.sample_every 0"
         " --run.device cpu --model.channels 8,16 --model.norm_groups 4 --model.res_blocks 1"
         " --model.latent_channels 2 --data.store " + testing::small_synthetic_store() +
         " --stages.resolutions 32 --stages.images 24 --train.batch 4 --train.micro_batch 2"
         " --checkpoint.every 2 --checkpoint.keep 5";
}

class CheckpointCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pristine_ = new TempDir;
    const testing::CommandResult run = testing::run_ladder("train " + tiny_run_flags(*pristine_ / "run"));
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  static void TearDownTestSuite() { delete pristine_; }

  // A fresh copy of the finished run (checkpoints at steps 2, 4, 6).
  std::string copy_run() {
    const std::string run = dir_ / "run";
    fs::copy(*pristine_ / "run", run, fs::copy_options::recursive);
    return run;
  }
  static std::string step_dir(const std::string& run, int step) {
    return io::CheckpointDirectory(run).step_path(step);
  }

  static TempDir* pristine_;
  TempDir dir_;
};
TempDir* CheckpointCli::pristine_ = nullptr;

TEST_F(CheckpointCli, InspectDescribesAValidCheckpointAndRun) {
  const std::string run = copy_run();
  const testing::CommandResult one = testing::run_ladder("inspect " + step_dir(run, 6));
  EXPECT_EQ(one.exit_code, 0) << one.output;
  expect_contains(one.output, {"step:       6", "world:      1 ranks", "shard-00000-of-00001.h5", "valid"});
  const testing::CommandResult all = testing::run_ladder("inspect " + run);
  EXPECT_EQ(all.exit_code, 0) << all.output;
  expect_contains(all.output, {"3 complete, latest step-00000006", "step-00000002  valid", "valid",
                               "config:", "autoencoder_kl (channels 8,16)", "last logged: step 6"});
}

TEST_F(CheckpointCli, EveryDamageIsOneLineNamingTheFileAndAutoFallsBack) {
  struct Damage {
    std::string name, file, fault;  // file: the path fragment the error must name
    std::function<void(const std::string& step)> apply;
  };
  const std::string shard = "shard-00000-of-00001.h5";
  const std::vector<Damage> damages = {
      {"flipped byte", shard, "checksum mismatch",
       [&](const std::string& step) {
         std::fstream file(step + "/" + shard, std::ios::in | std::ios::out | std::ios::binary);
         file.seekg(-100, std::ios::end);
         const char byte = static_cast<char>(file.get() ^ 0x20);
         file.seekp(-100, std::ios::end);
         file.put(byte);
       }},
      {"truncated shard", shard, "truncated",
       [&](const std::string& step) { fs::resize_file(step + "/" + shard, fs::file_size(step + "/" + shard) / 2); }},
      {"missing shard", shard, "missing shard", [&](const std::string& step) { fs::remove(step + "/" + shard); }},
      {"missing manifest", "manifest.json", "missing",
       [&](const std::string& step) { fs::remove(step + "/manifest.json"); }},
      {"edited manifest", "manifest.json", "checksum does not match",
       [&](const std::string& step) {
         std::string text = testing::read_file(step + "/manifest.json");
         const size_t at = text.find("\"rung_step\": ");
         text[at + 13] = text[at + 13] == '1' ? '2' : '1';
         testing::write_file(step + "/manifest.json", text);
       }},
  };
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.name);
    const std::string run = copy_run();
    const std::string newest = step_dir(run, 6);
    damage.apply(newest);
    for (const std::string& command : {"inspect " + newest, "train " + tiny_run_flags(run) + " --resume " + newest}) {
      const testing::CommandResult result = testing::run_ladder(command);
      EXPECT_EQ(result.exit_code, 2) << command << "\n" << result.output;
      EXPECT_EQ(line_count(result.output), 1) << command << "\n" << result.output;
      expect_contains(result.output, {damage.file, damage.fault});
    }
    const testing::CommandResult inspect_run = testing::run_ladder("inspect " + run);
    EXPECT_NE(inspect_run.exit_code, 0) << inspect_run.output;
    // --resume auto: from step 4 (with a warning naming step 6, unless step 6 is simply
    // incomplete), trained again to the end.
    const testing::CommandResult resumed =
        testing::run_ladder("train " + tiny_run_flags(run) + " --resume auto --stages.images 32");
    EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
    expect_contains(resumed.output, {"resume: from " + step_dir(run, 4)});
    if (damage.name != "missing manifest")
      expect_contains(resumed.output, {"skipping checkpoint " + newest});
    EXPECT_EQ(io::CheckpointDirectory(run).latest_step(), 8);
    fs::remove_all(run);
  }
}

TEST_F(CheckpointCli, ACheckpointOfAnotherModelIsRefusedNamingTheKeys) {
  const std::string run = copy_run();
  for (const std::string& resume : {std::string("auto"), step_dir(run, 6)}) {
    const testing::CommandResult result = testing::run_ladder(
        "train " + tiny_run_flags(run) + " --model.channels 8,32 --model.latent_channels 3 --resume " + resume);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_EQ(line_count(result.output), 1) << result.output;
    expect_contains(result.output, {"another model", "model.channels = 8,16 in the checkpoint, 8,32 now",
                                    "model.latent_channels"});
  }
}

TEST_F(CheckpointCli, ARunDirectoryWithARunNeedsResume) {
  const std::string run = copy_run();
  const testing::CommandResult again = testing::run_ladder("train " + tiny_run_flags(run));
  EXPECT_EQ(again.exit_code, 2) << again.output;
  expect_contains(again.output, {"already holds a run", "--resume auto"});
  // Resuming a finished run with more images continues it; the log lists what changed.
  const testing::CommandResult more =
      testing::run_ladder("train " + tiny_run_flags(run) + " --resume auto --stages.images 32 --train.lr 2e-4");
  EXPECT_EQ(more.exit_code, 0) << more.output;
  expect_contains(more.output, {"resume: from " + step_dir(run, 6),
                                "stages.images 24 -> 32", "train.lr 0.0001 -> 0.00020000000000000001"});
  // --resume auto where nothing was saved yet: a fresh start.
  const testing::CommandResult fresh = testing::run_ladder("train " + tiny_run_flags(dir_ / "new") + " --resume auto");
  EXPECT_EQ(fresh.exit_code, 0) << fresh.output;
  EXPECT_EQ(fresh.output.find("resume: from"), std::string::npos) << fresh.output;
}

TEST_F(CheckpointCli, EveryMinutesAddsCheckpointsBetweenTheScheduledOnes) {
  // checkpoint.every 0: without the minutes only the rung's end (step 12) would be saved.
  const std::string run = dir_ / "minutes";
  const testing::CommandResult result = testing::run_ladder(
      "train " + tiny_run_flags(run) + " --checkpoint.every 0 --checkpoint.every_minutes 0.0001"
      " --checkpoint.keep 100 --stages.images 48");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::vector<int64_t> steps = io::CheckpointDirectory(run).complete_steps();
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.front(), 12);
  EXPECT_GT(steps.size(), 1u) << "no checkpoint on the minutes (6 ms) within 12 steps";
}

std::vector<std::string> split_flags(const std::string& text) {
  std::vector<std::string> flags;
  std::istringstream stream(text);
  for (std::string word; stream >> word;) flags.push_back(word);
  return flags;
}

TEST_F(CheckpointCli, InitFromLoadsTheWeightsByNameWithFreshOptimizerState) {
  const std::string source = step_dir(*pristine_ / "run", 6);
  std::vector<std::string> flags = split_flags(tiny_run_flags(dir_ / "warm"));
  flags.erase(flags.begin(), flags.begin() + 2);  // --config /dev/null
  flags.insert(flags.end(), {"--train.init_from", source, "--train.zero_stage", "0"});
  Trainer trainer(load_config("", flags));
  const io::Manifest manifest = io::verify_checkpoint(source);
  std::vector<float> saved(static_cast<size_t>(manifest.count));
  io::read_checkpoint_ranges(source, manifest, "master", {Range{0, manifest.count}}, saved.data());
  const ParamStore& params = trainer.params();
  EXPECT_TRUE(std::equal(saved.begin(), saved.end(), params.values()));
  EXPECT_EQ(trainer.optimizer().steps(), 0);
  std::vector<float> m(static_cast<size_t>(params.padded_count())), v(m.size());
  trainer.optimizer().download_moments({Range{0, params.padded_count()}}, m.data(), v.data());
  EXPECT_TRUE(std::all_of(m.begin(), m.end(), [](float x) { return x == 0; }));

  // Another model: one error listing the mismatches, at most 10 of them.
  std::vector<std::string> other = flags;
  other.insert(other.end(), {"--model.channels", "8,32", "--run.dir", dir_ / "other"});
  const std::string message = testing::error_message([&] { Trainer bad(load_config("", other)); });
  expect_contains(message, {"train.init_from = " + source, "parameters do not match", "has shape", "more"});
}

}  // namespace
}  // namespace ladder
