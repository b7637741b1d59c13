// Why this file exists: the `ladder` binary's contract for pack and inspect (BRIEF §5): each
// bad input is one error line and a non-zero exit (2 for bad arguments), and nothing already
// written is replaced by a failed command.
#include <gtest/gtest.h>

#include <algorithm>
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

}  // namespace
}  // namespace ladder
