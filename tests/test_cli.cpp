// Why this file exists: the `ladder` binary's contract for pack and inspect (BRIEF §5): each
// bad input is one error line and a non-zero exit (2 for bad arguments), and nothing already
// written is replaced by a failed command.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "test_support.h"

namespace ladder {
namespace {

using testing::TempDir;

int line_count(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(Cli, PackThenInspectASyntheticStore) {
  TempDir dir;
  testing::CommandResult pack =
      testing::run_ladder("pack --synthetic 6 --out " + (dir / "s.h5") + " --levels 16,32 --seed 4");
  ASSERT_EQ(pack.exit_code, 0) << pack.output;
  testing::CommandResult inspect = testing::run_ladder("inspect " + (dir / "s.h5"));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  for (const char* fragment : {"ladder-image-store", "16", "32", "valid"})
    EXPECT_NE(inspect.output.find(fragment), std::string::npos) << fragment << "\n" << inspect.output;
}

TEST(Cli, InspectOfATruncatedStoreFailsInOneLine) {
  TempDir dir;
  ASSERT_EQ(testing::run_ladder("pack --synthetic 6 --out " + (dir / "s.h5") + " --levels 32").exit_code, 0);
  const auto size = std::filesystem::file_size(dir / "s.h5");
  std::filesystem::copy_file(dir / "s.h5", dir / "cut.h5");
  std::filesystem::resize_file(dir / "cut.h5", size / 2);
  testing::CommandResult result = testing::run_ladder("inspect " + (dir / "cut.h5"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_EQ(line_count(result.output), 1) << result.output;
  EXPECT_NE(result.output.find("cut.h5"), std::string::npos) << result.output;
}

TEST(Cli, BadPackArgumentsExitTwoAndKeepTheOldStore) {
  TempDir dir;
  ASSERT_EQ(testing::run_ladder("pack --synthetic 4 --out " + (dir / "s.h5") + " --levels 32").exit_code, 0);
  const std::string before = testing::read_file(dir / "s.h5");
  for (const std::string& args : std::vector<std::string>{"--synthetic 4 --levels 24,32", "--synthetic 0 --levels 32",
                                 "--synthetic 4 --levels 32 --channels 2",
                                 "--images " + dir.path().string() + " --synthetic 4 --levels 32"}) {
    testing::CommandResult result = testing::run_ladder("pack " + args + " --out " + (dir / "s.h5"));
    EXPECT_EQ(result.exit_code, 2) << args << "\n" << result.output;
    EXPECT_EQ(line_count(result.output), 1) << args << "\n" << result.output;
  }
  // a folder without images: an error, and the existing store is untouched
  std::filesystem::create_directories(dir.path() / "texts");
  testing::write_file(dir / "texts/a.txt", "not an image");
  testing::CommandResult empty =
      testing::run_ladder("pack --images " + (dir / "texts") + " --out " + (dir / "s.h5") + " --levels 32");
  EXPECT_NE(empty.exit_code, 0) << empty.output;
  EXPECT_EQ(testing::read_file(dir / "s.h5"), before);
}

TEST(Cli, TrainWithoutAStoreIsAConfigError) {
  TempDir dir;
  testing::CommandResult result = testing::run_ladder(
      "train --config /dev/null --run.dir " + (dir / "run") + " --model.channels 32,32");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("data.store"), std::string::npos) << result.output;
}

TEST(Cli, AFailingRankEndsEveryRankPromptly) {
  // Rank 1 throws at step 2 (the test-only trigger); mpirun must end with a non-zero exit
  // well within 30 s, naming rank 1, while rank 0 waits in a collective.
  TempDir dir;
  ASSERT_EQ(testing::run_ladder("pack --synthetic 8 --out " + (dir / "s.h5") + " --levels 16").exit_code, 0);
  const char* binary = std::getenv("LADDER_BINARY");
  const std::string command =
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
      "LADDER_TEST_FAIL=1:2 mpirun -np 2 --oversubscribe -x LADDER_TEST_FAIL -x OMP_NUM_THREADS " +
      std::string(binary ? binary : "ladder") + " train --config /dev/null --data.store " +
      (dir / "s.h5") + " --run.dir " + (dir / "run") +
      " --model.channels 8,16 --model.norm_groups 4 --stages.resolutions 16 --train.batch 4"
      " --stages.images 40 --comm.timeout_s 20 2>&1";
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t got; (got = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, got);
  const int status = pclose(pipe);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << output;
  EXPECT_LT(seconds, 30.0) << output;
  EXPECT_NE(output.find("error on rank 1"), std::string::npos) << output;
  EXPECT_NE(output.find("LADDER_TEST_FAIL"), std::string::npos) << output;
}

}  // namespace
}  // namespace ladder
