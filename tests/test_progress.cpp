// Why this file exists: the progress line (train/progress.h): steps of the run and of the
// rung, the rung's ETA at the current speed, the run's ETA with later rungs scaled by their
// pixels per image, the GPU share of memory, and the duration format.
#include <gtest/gtest.h>

#include "config/config.h"
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
  EXPECT_EQ(Progress::duration(42.4), "42s");
  EXPECT_EQ(Progress::duration(3725), "1h02m");
  EXPECT_EQ(Progress::duration(3 * 86400 + 4 * 3600), "3d04h");
  EXPECT_EQ(Progress::duration(-1), "?");
}

}  // namespace
}  // namespace ladder
