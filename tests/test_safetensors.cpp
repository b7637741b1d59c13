// Why this file exists: the safetensors contract (io/safetensors.h) and the PyTorch layout of
// ladder's parameters (model/torch_layout.h): the exact byte format, every kind of bad file
// as one error naming the file, convolution weights transposed both ways, bf16/fp16 rounding,
// strict name/shape/dtype checks on load, and `ladder export` → train.init_from giving back
// the same weights. The MONAI side (strict load, forward parity) is tests/interop/.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/bf16.h"
#include "core/fp16.h"
#include "io/checkpoint_files.h"
#include "io/safetensors.h"
#include "model/torch_layout.h"
#include "test_support.h"
#include "train/trainer.h"

namespace ladder {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<uint8_t> float_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

void expect_contains(const std::string& text, const std::vector<std::string>& fragments) {
  for (const std::string& fragment : fragments)
    EXPECT_NE(text.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << text;
}

// A file from raw parts: the 8-byte size, the header text as given, the data.
void write_raw(const std::string& path, uint64_t size, const std::string& header, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  for (int b = 0; b < 8; ++b) out.put(static_cast<char>(size >> (8 * b)));
  out << header << data;
}

TEST(Safetensors, WritesTheExactFormatAndReadsItBack) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  io::write_safetensors(path, {{"step", "7"}},
                        {{"b", "F32", {2}, float_bytes({1.5f, -2.f})},
                         {"a", "F32", {1, 3}, float_bytes({1, 2, 3})}});
  const std::string bytes = testing::read_file(path);
  uint64_t size = 0;
  for (int b = 7; b >= 0; --b) size = (size << 8) | static_cast<unsigned char>(bytes[b]);
  EXPECT_EQ(size % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + size + 20);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, size));
  EXPECT_EQ(header["a"]["data_offsets"], nlohmann::json({0, 12}));  // name order, no holes
  EXPECT_EQ(header["b"]["data_offsets"], nlohmann::json({12, 20}));
  EXPECT_EQ(header["__metadata__"]["step"], "7");
  const io::SafetensorsHeader read = io::read_safetensors_header(path);
  ASSERT_EQ(read.tensors.size(), 2u);
  EXPECT_EQ(read.tensors[1].name, "b");
  EXPECT_EQ(read.metadata.at("step"), "7");
  std::vector<uint8_t> b = io::read_safetensors_tensor(read, read.tensors[1]);
  float values[2];
  std::memcpy(values, b.data(), 8);
  EXPECT_EQ(values[0], 1.5f);
  EXPECT_EQ(values[1], -2.f);
}

TEST(Safetensors, EveryBadFileIsOneErrorNamingTheFile) {
  TempDir dir;
  const std::string good = dir / "good.safetensors";
  io::write_safetensors(good, {}, {{"w", "F32", {2}, float_bytes({1, 2})}});
  const std::string text = dir / "text.safetensors", cut = dir / "cut.safetensors",
                    big = dir / "big.safetensors", overlap = dir / "overlap.safetensors",
                    hole = dir / "hole.safetensors", sizes = dir / "sizes.safetensors";
  testing::write_file(text, "these are not weights\n");
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(good) - 3);
  write_raw(big, 1 << 20, "{}", "");
  const std::string two = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  write_raw(overlap, two.size(), two, std::string(12, '\0'));
  const std::string gap = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  write_raw(hole, gap.size(), gap, std::string(8, '\0'));
  const std::string wrong = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  write_raw(sizes, wrong.size(), wrong, std::string(8, '\0'));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {text, "larger than the file"}, {cut, "outside the data section"},
      {big, "larger than the file"},  {overlap, "overlaps"},
      {hole, "hole"},                 {sizes, "8 bytes for F32 of 3 elements"}};
  for (const auto& [path, fault] : cases)
    expect_contains(testing::error_message([&, path = path] { io::read_safetensors_header(path); }),
                    {path, fault});
}

TEST(TorchLayout, ConvolutionsTransposeBothWaysAndHalfPrecisionRounds) {
  ParamStore params;
  params.add("conv.weight", {2, 3, 3, 4}, ParamInit::kFanInUniform, 36, true);  // (Cout, K, K, Cin)
  params.add("norm.weight", {5}, ParamInit::kOnes, 1, false);
  params.allocate();
  params.initialize(3);
  const ParamEntry& conv = params.entry(0);
  io::SafetensorToWrite tensor = torch_tensor(conv.name, conv.shape, params.values(), "F32");
  EXPECT_EQ(tensor.shape, (std::vector<int64_t>{2, 4, 3, 3}));  // (Cout, Cin, kh, kw)
  float torch_value;  // PyTorch element (o=1, i=2, y=0, x=1) is ladder's (1, 0, 1, 2)
  std::memcpy(&torch_value, tensor.bytes.data() + 4 * (((1 * 4 + 2) * 3 + 0) * 3 + 1), 4);
  EXPECT_EQ(torch_value, params.values()[((1 * 3 + 0) * 3 + 1) * 4 + 2]);

  TempDir dir;
  std::vector<float> saved(params.values(), params.values() + params.count());
  for (const char* dtype : {"F32", "BF16", "F16"}) {
    std::vector<io::SafetensorToWrite> tensors;
    for (const ParamEntry& entry : params.entries())
      tensors.push_back(torch_tensor(entry.name, entry.shape, saved.data() + entry.offset, dtype));
    const std::string path = dir / (std::string(dtype) + ".safetensors");
    io::write_safetensors(path, {}, tensors);
    std::fill(params.values(), params.values() + params.count(), 0.f);
    load_torch_weights(io::read_safetensors_header(path), params);
    for (int64_t i = 0; i < params.count(); ++i) {
      const float want = std::string(dtype) == "F32"    ? saved[i]
                         : std::string(dtype) == "BF16" ? static_cast<float>(bf16(saved[i]))
                                                        : half_bits_to_float(float_to_half_bits(saved[i]));
      ASSERT_EQ(params.values()[i], want) << dtype << " element " << i;
    }
  }
  EXPECT_EQ(half_bits_to_float(float_to_half_bits(1.0f + 1.0f / 4096)), 1.0f);  // ties to even
}

TEST(TorchLayout, LoadingChecksNamesShapesAndDtypesInOneError) {
  ParamStore params;
  params.add("conv.weight", {1, 1, 1, 2}, ParamInit::kOnes, 2, true);
  for (int i = 0; i < 12; ++i) params.add("p" + std::to_string(i) + ".weight", {2}, ParamInit::kOnes, 1, false);
  params.allocate();
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  io::write_safetensors(path, {},
                        {{"p0.weight", "F32", {3}, float_bytes({1, 2, 3})},
                         {"p1.weight", "I64", {2}, std::vector<uint8_t>(16, 0)},
                         {"conv.weight", "F32", {1, 1, 1, 2}, float_bytes({1, 2})},  // not (1, 2, 1, 1)
                         {"extra", "F32", {1}, float_bytes({1})}});
  const std::string message =
      testing::error_message([&] { load_torch_weights(io::read_safetensors_header(path), params); });
  expect_contains(message, {path, "p0.weight has shape (3), expected (2)", "p1.weight has dtype I64",
                            "missing p2.weight", "conv.weight has shape (1, 1, 1, 2), expected (1, 2, 1, 1)",
                            "and 4 more"});
}

TEST(Export, AnExportStartsARunWithTheSameWeights) {
  TempDir dir;
  const std::string flags = "--config /dev/null --run.seed 5 --run.sample_every 0 --run.device cpu"
                            " --model.channels 8,16 --model.norm_groups 4 --model.res_blocks 1"
                            " --model.attention_levels 0,1 --model.mid_attention true"
                            " --data.store " + testing::small_synthetic_store() +
                            " --stages.resolutions 32 --stages.images 8 --train.batch 4";
  ASSERT_EQ(testing::run_ladder("train " + flags + " --run.dir " + (dir / "a")).exit_code, 0);
  const std::string checkpoint = dir / "a/checkpoints/step-00000002";
  const testing::CommandResult exported =
      testing::run_ladder("export --checkpoint " + checkpoint + " --out " + (dir / "m.safetensors"));
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  Config config = load_config("", {"--run.dir", dir / "b", "--run.device", "cpu", "--model.channels", "8,16",
                                   "--model.norm_groups", "4", "--model.res_blocks", "1",
                                   "--model.attention_levels", "0,1", "--model.mid_attention", "true",
                                   "--data.store", testing::small_synthetic_store(), "--stages.resolutions", "32",
                                   "--train.init_from", dir / "m.safetensors"});
  Trainer trainer(config);
  const io::Manifest manifest = io::verify_checkpoint(checkpoint);
  std::vector<float> master(static_cast<size_t>(manifest.count));
  io::read_checkpoint_ranges(checkpoint, manifest, "master", {Range{0, manifest.count}}, master.data());
  EXPECT_TRUE(std::equal(master.begin(), master.end(), trainer.params().values()));
  const testing::CommandResult bad = testing::run_ladder("export --checkpoint " + checkpoint + " --out x --dtype fp8");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
}

}  // namespace
}  // namespace ladder
