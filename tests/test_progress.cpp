// Why this file exists: the progress line (train/progress.h): steps of the run and of the
// rung, the rung's ETA at the current speed, the run's ETA with later rungs scaled by their
// pixels per image, the GPU share of memory, the FID scores of a step that evaluated, the
// duration format, and log.progress: redrawn in
// place (carriage return, clear to the end of the line) or one line per interval.
#include <gtest/gtest.h>

#include "config/config.h"
#include "test_support.h"
#include "train/progress.h"

namespace ladder {
namespace {

TEST(Progress, CountsStepsAndEstimatesTheRemainingTime) {
  // Rungs 32² (100 images) and 64² (40 images), batch 10: 10 + 4 steps.
  const Config config = load_config("", {"--stages.resolutions", "32,64", "--stages.images", "100,40",
                                         "--train.batch", "10", "--model.channels", "32,32"});
  const Progress progress(config);
  EXPECT_EQ(progress.total_steps(), 14);
  EXPECT_EQ(progress.rung_steps(1), 4);
  ProgressPoint point;
  point.step = 4;
  point.rung = 0;
  point.rung_step = 4;
  point.img_per_s = 2;  // 6 steps left here: 60 images, 30 s; then 40 images at 4× the pixels: 80 s
  point.mem_peak_bytes = int64_t{3} << 30;
  point.memory_capacity = int64_t{12} << 30;
  const std::string line = progress.line(point);
  for (const char* fragment : {"step 4/14", "rung 1/2 32x32 step 4/10", "ETA rung 30s, run 1m50s (estimate)",
                               "mem 3.00 GiB (25% of the GPU)"})
    EXPECT_NE(line.find(fragment), std::string::npos) << fragment << " not in: " << line;
  point.evaluation = {{"fid", 12.345678}, {"kid_mean", 0.0123}, {"kid_std", 0.0011}, {"eval_count", 64},
                      {"eval_seconds", 3.5}};  // a step that evaluated: the scores, not the bookkeeping
  const std::string scored = progress.line(point);
  EXPECT_NE(scored.find(" | fid 12.346 | kid 0.0123±0.0011 | lr"), std::string::npos) << scored;
  EXPECT_EQ(scored.find("eval_"), std::string::npos) << scored;
  EXPECT_EQ(Progress::duration(42.4), "42s");
  EXPECT_EQ(Progress::duration(3725), "1h02m");
  EXPECT_EQ(Progress::duration(3 * 86400 + 4 * 3600), "3d04h");
  EXPECT_EQ(Progress::duration(-1), "?");
}

TEST(Progress, RedrawsInPlaceOrWritesLines) {
  testing::TempDir dir;
  auto train = [&](const std::string& name, const std::string& mode) {
    return testing::run_ladder("train --config /dev/null --run.dir " + (dir / name) +
                               " --run.device cpu --run.log_every 1 --run.sample_every 0 --model.channels 8,16"
                               " --model.norm_groups 4 --model.res_blocks 1 --model.latent_channels 2 --data.store " +
                               testing::small_synthetic_store() +
                               " --stages.resolutions 32 --stages.images 12 --train.batch 4 --log.progress " + mode);
  };
  const testing::CommandResult redraw = train("redraw", "redraw"), lines = train("lines", "lines");
  ASSERT_EQ(redraw.exit_code, 0) << redraw.output;
  ASSERT_EQ(lines.exit_code, 0) << lines.output;
  // Three steps redrawn on one line, which the next log line ends first.
  for (const char* step : {"\r\033[Kstep 1/3 ", "\r\033[Kstep 2/3 ", "\r\033[Kstep 3/3 "})
    EXPECT_NE(redraw.output.find(step), std::string::npos) << redraw.output;
  const size_t last = redraw.output.find("\r\033[Kstep 3/3 ");
  const size_t next = redraw.output.find('\n', last);
  ASSERT_NE(next, std::string::npos);
  EXPECT_EQ(redraw.output.find('\r', last + 1), std::string::npos) << "nothing redrawn after the last step";
  EXPECT_EQ(lines.output.find("\033[K"), std::string::npos) << lines.output;
  EXPECT_NE(lines.output.find("\nstep 2/3 "), std::string::npos) << lines.output;
}

}  // namespace
}  // namespace ladder
