// Why this file exists: the config contract (BRIEF §5): defaults, flags winning over the file,
// per-rung lists, and one clear error line with exit code 2 for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "config/config.h"
#include "core/check.h"
#include "test_support.h"

namespace ladder {
namespace {

using testing::TempDir;

TEST(Config, DefaultsAndFlagsWinOverFile) {
  TempDir dir;
  testing::write_file(dir / "a.ini", "[train]\nlr = 0.002\nbatch = 16\n[stages]\nresolutions = 32,64\n");
  Config c = load_config(dir / "a.ini", {"--train.lr", "0.003", "--model.channels=64,64"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.003);              // flag wins
  EXPECT_DOUBLE_EQ(load_config("", {"--train.lr", "1", "--train.lr", "2"}).train.lr, 2.0);  // last flag wins
  EXPECT_EQ(c.train.batch, 16);                     // file
  EXPECT_EQ(c.model.channels, (std::vector<int>{64, 64}));
  EXPECT_EQ(c.model.latent_channels, 4);            // default
  EXPECT_EQ(c.stages.resolutions, (std::vector<int>{32, 64}));
  EXPECT_EQ(c.stages.images.size(), 2u);            // one value broadcast to every rung
  EXPECT_EQ(c.train.micro_batch, (std::vector<int>{0, 0}));  // auto
}

TEST(Config, PerRungListsNeedOneOrOnePerRung) {
  Config c = load_config("", {"--stages.resolutions", "32,64,128", "--train.micro_batch", "8,4,2",
                              "--model.channels", "32,32"});
  EXPECT_EQ(c.train.micro_batch, (std::vector<int>{8, 4, 2}));
  EXPECT_THROW(load_config("", {"--stages.resolutions", "32,64,128", "--train.micro_batch", "8,4",
                                "--model.channels", "32,32"}),
               UsageError);
}

TEST(Config, ResolvedIniLoadsBackToTheSameConfig) {
  TempDir dir;
  Config a = load_config("", {"--train.lr", "0.00123", "--stages.resolutions", "32,64",
                              "--model.attention_levels", "0,0,1,1"});
  testing::write_file(dir / "resolved.ini", a.to_ini());
  Config b = load_config(dir / "resolved.ini", {});
  EXPECT_EQ(a.to_ini(), b.to_ini());
}

TEST(Config, PerRungValuesFollowTheirResolutionWhenAFlagReplacesTheLadder) {
  // The quickstart gives micro_batch 16,8 and lr_scale 1,0.5 for resolutions 32,64.
  const std::string quickstart = std::string(LADDER_TEST_FIXTURES) + "/../../configs/quickstart.ini";
  const Config only_64 = load_config(quickstart, {"--stages.resolutions", "64"});
  EXPECT_EQ(only_64.stages.resolutions, (std::vector<int>{64}));
  EXPECT_EQ(only_64.train.micro_batch, (std::vector<int>{8}));
  EXPECT_EQ(only_64.stages.lr_scale, (std::vector<double>{0.5}));
  EXPECT_EQ(only_64.stages.images, (std::vector<int64_t>{480}));
  const Config reversed = load_config(quickstart, {"--stages.resolutions", "64,32"});
  EXPECT_EQ(reversed.train.micro_batch, (std::vector<int>{8, 16}));
  // A resolution the file gave no value for: one error naming it.
  try {
    load_config(quickstart, {"--stages.resolutions", "64,128"});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("none for resolution 128"), std::string::npos) << e.what();
  }
  // A flag's own per-rung list is positional, as before.
  EXPECT_EQ(load_config(quickstart, {"--stages.resolutions", "64,128", "--train.micro_batch", "4,2",
                                     "--stages.lr_scale", "1", "--stages.images", "8"})
                .train.micro_batch,
            (std::vector<int>{4, 2}));
}

TEST(Config, KeyValuesListEveryKeyOfTheHelpInItsOrder) {
  const Config c = load_config("", {"--checkpoint.every_minutes", "2.5", "--train.init_from", "x"});
  const std::string help = config_help();
  size_t position = 0;
  for (const auto& [key, value] : c.key_values()) {
    const size_t found = help.find("--" + key + " ");
    ASSERT_NE(found, std::string::npos) << key;
    EXPECT_GT(found, position) << key << " out of order";
    position = found;
  }
  const size_t keys = static_cast<size_t>(std::count(help.begin(), help.end(), '\n')) -
                      static_cast<size_t>(std::count(help.begin(), help.end(), '['));
  EXPECT_EQ(c.key_values().size(), keys);
  EXPECT_DOUBLE_EQ(c.checkpoint.every_minutes, 2.5);
  EXPECT_EQ(c.train.init_from, "x");
}

// Each bad input gives a UsageError whose message names the key (and the file or flag).
void expect_usage_error(const std::string& ini, const std::vector<std::string>& flags,
                        const std::string& expected_fragment) {
  TempDir dir;
  testing::write_file(dir / "bad.ini", ini);
  try {
    load_config(dir / "bad.ini", flags);
    FAIL() << "no error for: " << ini;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(expected_fragment), std::string::npos)
        << "message: " << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
  }
}

TEST(Config, BadInputNamesTheKey) {
  expect_usage_error("[train]\nlearning_rate = 1\n", {}, "train.learning_rate");
  expect_usage_error("[train]\nlr = fast\n", {}, "train.lr");
  expect_usage_error("[train]\nlr = fast\n", {}, "bad.ini");
  expect_usage_error("", {"--train.batch", "-3"}, "flag --train.batch");
  expect_usage_error("", {"--nope.key", "1"}, "nope.key");
  expect_usage_error("[model]\nchannels = 48,64\nnorm_groups = 32\n", {}, "norm_groups");
  expect_usage_error("[model]\nattention_levels = 1\nchannels = 32,32\n", {}, "attention_levels");
  expect_usage_error("[stages]\nresolutions = 30\n", {"--model.channels", "32,32,32"},
                     "divisible");
  expect_usage_error("[run]\ndevice = tpu\n", {}, "run.device");
  expect_usage_error("[train]\nbetas = 0.9\n", {}, "train.betas");
  // A control character would not survive the resolved config.ini (found by fuzz_config).
  expect_usage_error("", {"--train.init_from", std::string("a\0b", 3)}, "train.init_from (flag --train.init_from): contains the control character 0x00 at byte 1");
  expect_usage_error("[run]\ndir = a\tb\n", {}, "run.dir");
  expect_usage_error("", {"--run.dir", "runs/#1"}, "contains '#'");
  expect_usage_error("[run]\nsample_every = 11111111110\n", {}, "run.sample_every");  // would wrap as an int
  expect_usage_error("[adversarial]\nnorm = group\n", {}, "adversarial.norm");
  expect_usage_error("[perceptual]\nweight = 0.1\n", {}, "perceptual.weights");
  expect_usage_error("[adversarial]\nweight = 0.1\n", {"--model.kind", "diffusion_unet"}, "autoencoder");
}

// A flag's value is trimmed as a file's is, so that the resolved config.ini reads back the same.
TEST(Config, FlagValuesAreTrimmedAsFileValues) {
  const Config c = load_config("", {"--run.dir", "  runs/x \t", "--train.lr", " 0.25"});
  EXPECT_EQ(c.run.dir, "runs/x");
  EXPECT_EQ(c.train.lr, 0.25);
}

// A file written with CRLF line ends reads as the same config.
TEST(Config, CrlfLineEndsAreLineEnds) {
  testing::TempDir dir;
  testing::write_file(dir / "crlf.ini", "[run]\r\ndir = runs/x\r\n[train]\r\nlr = 0.5\r\n");
  const Config c = load_config(dir / "crlf.ini", {});
  EXPECT_EQ(c.run.dir, "runs/x");
  EXPECT_EQ(c.train.lr, 0.5);
}

TEST(Config, MicroBatchMustDivideTheBatch) {
  Config c = load_config("", {"--train.batch", "12", "--train.micro_batch", "5"});
  EXPECT_THROW(micro_batch_for_rung(c, 0, 1), UsageError);
  Config d = load_config("", {"--train.batch", "12", "--train.micro_batch", "3"});
  EXPECT_EQ(accumulation_for_rung(d, 0, 1), 4);
  EXPECT_EQ(micro_batch_for_rung(load_config("", {"--train.batch", "12"}), 0, 1), 12);  // auto
}

TEST(Cli, BadConfigExitsWithCodeTwoAndOneLine) {
  TempDir dir;
  testing::write_file(dir / "bad.ini", "[model]\nchannels = 48\n");
  testing::CommandResult result =
      testing::run_ladder("train --config " + (dir / "bad.ini") + " --run.dir " + (dir / "run"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("model.channels"), std::string::npos) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
}

TEST(Cli, HelpListsEveryKeyWithDefaults) {
  for (const std::string command : {"--help", "train --help"}) {
    testing::CommandResult result = testing::run_ladder(command);
    EXPECT_EQ(result.exit_code, 0) << command;
    for (const char* key : {"--run.dir runs/default", "--model.channels 128,256,512,512",
                            "--train.kl_weight 1e-6", "--comm.timeout_s 300"})
      EXPECT_NE(result.output.find(key), std::string::npos) << command << " lacks " << key;
  }
}

}  // namespace
}  // namespace ladder
