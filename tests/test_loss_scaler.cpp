// Why this file exists: fp16 dynamic loss scaling (GradScaler semantics: halve and skip on
// overflow, double after 2000 clean steps, floor 1, checkpointable state) and the wording of
// the CUDA out-of-memory line, neither of which needs a GPU to test.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/check.h"
#include "train/loss_scaler.h"
#include "train/oom_message.h"

namespace ladder {
namespace {

void clean_steps(LossScaler& scaler, int count) {
  for (int i = 0; i < count; ++i) ASSERT_TRUE(scaler.update(true));
}

TEST(LossScaler, StartsAt65536) {
  LossScaler scaler(true);
  EXPECT_EQ(scaler.scale(), 65536.0);
  EXPECT_EQ(scaler.clean_steps(), 0);
  EXPECT_EQ(scaler.skipped(), 0);
}

TEST(LossScaler, OverflowHalvesAndSkips) {
  LossScaler scaler(true);
  EXPECT_FALSE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 32768.0);
  EXPECT_EQ(scaler.skipped(), 1);
  EXPECT_FALSE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 16384.0);
  EXPECT_EQ(scaler.skipped(), 2);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 16384.0);
  EXPECT_EQ(scaler.skipped(), 2);
}

TEST(LossScaler, DoublesAfter2000CleanStepsNot1999) {
  LossScaler scaler(true);
  clean_steps(scaler, 1999);
  EXPECT_EQ(scaler.scale(), 65536.0);
  EXPECT_EQ(scaler.clean_steps(), 1999);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 131072.0);
  EXPECT_EQ(scaler.clean_steps(), 0);
  // The next doubling needs another full interval.
  clean_steps(scaler, 1999);
  EXPECT_EQ(scaler.scale(), 131072.0);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 262144.0);
  EXPECT_EQ(scaler.skipped(), 0);
}

TEST(LossScaler, OverflowResetsTheCleanCounter) {
  LossScaler scaler(true);
  clean_steps(scaler, 1500);
  EXPECT_FALSE(scaler.update(false));
  EXPECT_EQ(scaler.clean_steps(), 0);
  EXPECT_EQ(scaler.scale(), 32768.0);
  clean_steps(scaler, 1999);  // 1500 + 1999 clean steps in all, but not 2000 in a row
  EXPECT_EQ(scaler.scale(), 32768.0);
  EXPECT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 65536.0);
}

TEST(LossScaler, NeverGoesBelowOne) {
  LossScaler scaler(true, 4.0);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.skipped(), 10);
  // A non-power-of-two scale stops at the floor too.
  LossScaler odd(true, 3.0);
  EXPECT_FALSE(odd.update(false));
  EXPECT_EQ(odd.scale(), 1.5);
  EXPECT_FALSE(odd.update(false));
  EXPECT_EQ(odd.scale(), 1.0);
}

TEST(LossScaler, CustomIntervalAndFactors) {
  LossScaler scaler(true, 1024, 3, 4, 0.25);
  clean_steps(scaler, 2);
  EXPECT_EQ(scaler.scale(), 1024.0);
  clean_steps(scaler, 1);
  EXPECT_EQ(scaler.scale(), 4096.0);
  EXPECT_FALSE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 1024.0);
}

TEST(LossScaler, RejectsBadSettings) {
  EXPECT_THROW(LossScaler(true, 0.5), Error);
  EXPECT_THROW(LossScaler(true, std::numeric_limits<double>::infinity()), Error);
  EXPECT_THROW(LossScaler(true, 65536, 0), Error);
  EXPECT_THROW(LossScaler(true, 65536, 2000, 1.0), Error);
  EXPECT_THROW(LossScaler(true, 65536, 2000, 2, 1.0), Error);
  EXPECT_THROW(LossScaler(true, 65536, 2000, 2, 0.0), Error);
}

TEST(LossScaler, DisabledStaysAtOneAndAppliesFiniteSteps) {
  LossScaler scaler(false);
  EXPECT_FALSE(scaler.enabled());
  EXPECT_EQ(scaler.scale(), 1.0);
  for (int i = 0; i < 4500; ++i) ASSERT_TRUE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.clean_steps(), 0);
  // Non-finite gradients are still skipped (every precision) and counted; the scale stays.
  EXPECT_FALSE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.skipped(), 1);
  EXPECT_TRUE(scaler.update(true));
}

TEST(LossScaler, StateRoundTrip) {
  LossScaler scaler(true);
  EXPECT_FALSE(scaler.update(false));
  EXPECT_FALSE(scaler.update(false));
  clean_steps(scaler, 777);
  LossScalerState saved = scaler.state();
  EXPECT_EQ(saved.scale, 16384.0);
  EXPECT_EQ(saved.clean_steps, 777);
  EXPECT_EQ(saved.skipped, 2);

  LossScaler resumed(true);
  resumed.restore(saved);
  EXPECT_EQ(resumed.scale(), 16384.0);
  EXPECT_EQ(resumed.clean_steps(), 777);
  EXPECT_EQ(resumed.skipped(), 2);
  // The resumed scaler continues exactly where the original would have.
  clean_steps(scaler, 2000 - 777);
  clean_steps(resumed, 2000 - 777);
  EXPECT_EQ(scaler.scale(), 32768.0);
  EXPECT_EQ(resumed.scale(), scaler.scale());
  EXPECT_EQ(resumed.clean_steps(), scaler.clean_steps());
}

TEST(LossScaler, DisabledRestoreKeepsScaleOne) {
  LossScaler scaler(false);
  scaler.restore({8192.0, 12, 5});
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.clean_steps(), 0);
  EXPECT_EQ(scaler.skipped(), 5);
}

void expect_restore_error(LossScalerState state, const std::string& field) {
  LossScaler scaler(true);
  try {
    scaler.restore(state);
    ADD_FAILURE() << "restore accepted a bad " << field;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
  // A rejected state leaves the scaler as it was.
  EXPECT_EQ(scaler.scale(), 65536.0);
  EXPECT_EQ(scaler.clean_steps(), 0);
  EXPECT_EQ(scaler.skipped(), 0);
}

TEST(LossScaler, RestoreRejectsBadStates) {
  expect_restore_error({0.0, 0, 0}, "scale");
  expect_restore_error({-2.0, 0, 0}, "scale");
  expect_restore_error({0.5, 0, 0}, "scale");
  expect_restore_error({std::numeric_limits<double>::quiet_NaN(), 0, 0}, "scale");
  expect_restore_error({std::numeric_limits<double>::infinity(), 0, 0}, "scale");
  expect_restore_error({1024.0, -1, 0}, "clean_steps");
  expect_restore_error({1024.0, 0, -3}, "skipped");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

OutOfMemoryContext rung2(int micro_batch, const std::string& recompute) {
  OutOfMemoryContext c;
  c.rung = 2;
  c.resolution = 1024;
  c.micro_batch = micro_batch;
  c.recompute = recompute;
  c.requested_bytes = int64_t{2} << 30;
  c.held_bytes = int64_t{75} << 30;
  c.device_free_bytes = int64_t{1} << 30;
  c.device_total_bytes = int64_t{80} << 30;
  return c;
}

TEST(OutOfMemoryMessage, SuggestsHalvingAndRecompute) {
  std::string line = out_of_memory_message(rung2(8, "none"));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_TRUE(contains(line, "CUDA out of memory at rung 2 (1024x1024), micro-batch 8, "
                             "recompute none: ")) << line;
  EXPECT_TRUE(contains(line, "asked for 2.00 GiB")) << line;
  EXPECT_TRUE(contains(line, "ladder holds 75.00 GiB")) << line;
  EXPECT_TRUE(contains(line, "the device has 1.00 GiB free of 80.00 GiB")) << line;
  EXPECT_TRUE(contains(line, "try train.micro_batch = 4 or train.recompute = blocks")) << line;
}

TEST(OutOfMemoryMessage, WithRecomputeSuggestsOnlyHalving) {
  std::string line = out_of_memory_message(rung2(3, "blocks"));
  EXPECT_TRUE(contains(line, "try train.micro_batch = 1")) << line;
  EXPECT_FALSE(contains(line, "train.recompute = blocks")) << line;
}

TEST(OutOfMemoryMessage, AtMicroBatchOneSuggestsRecompute) {
  std::string line = out_of_memory_message(rung2(1, "none"));
  EXPECT_TRUE(contains(line, "try train.recompute = blocks")) << line;
  EXPECT_FALSE(contains(line, "train.micro_batch =")) << line;
}

TEST(OutOfMemoryMessage, NothingLeftToTry) {
  std::string line = out_of_memory_message(rung2(1, "blocks"));
  EXPECT_TRUE(contains(line, "the model does not fit at this resolution on this GPU even at "
                             "micro-batch 1 with recompute; use a GPU with more memory"))
      << line;
  EXPECT_FALSE(contains(line, "try train.")) << line;
}

TEST(OutOfMemoryMessage, UnknownDeviceMemoryIsLeftOut) {
  OutOfMemoryContext c = rung2(8, "none");
  c.device_free_bytes = -1;
  c.device_total_bytes = -1;
  std::string line = out_of_memory_message(c);
  EXPECT_FALSE(contains(line, "the device has")) << line;
  EXPECT_TRUE(contains(line, "ladder holds 75.00 GiB; try")) << line;
  c.device_total_bytes = int64_t{80} << 30;
  EXPECT_TRUE(contains(out_of_memory_message(c), "the device has 80.00 GiB in total"));
  c.requested_bytes = -1;
  EXPECT_FALSE(contains(out_of_memory_message(c), "asked for"));
}

}  // namespace
}  // namespace ladder
