// Why this file exists: `ladder inspect PATH [--dataset NAME]`: describes an image store
// (format, count, channels, bytes and checksum of each level), a checkpoint (step, rung,
// world, ZeRO stage, shards and sizes) or a run directory (its checkpoints), reads all of it
// back to check every image or shard checksum, and ends with "valid"; any problem is thrown
// as the one error line main() prints (exit 1 for a store, 2 for a checkpoint).
#include "cli/inspect_command.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/check.h"
#include "core/format.h"
#include "io/checkpoint_files.h"
#include "io/image_store.h"
#include "io/latent_store.h"

namespace ladder {
namespace {

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

void print_checkpoint(const std::string& dir, const io::Manifest& m) {
  const io::TrainingState& s = m.state;
  std::cout << "checkpoint: " << dir << "\n"
            << "step:       " << m.step << " (rung " << s.rung << " at step " << s.rung_step << ", "
            << s.images_seen << " images seen, optimizer step " << s.optimizer_steps << ")\n"
            << "world:      " << m.world << " ranks, ZeRO stage " << m.zero_stage << "\n"
            << "parameters: " << m.count << " in " << m.params.size() << " tensors (flat buffer "
            << m.padded_count << ")\n";
  if (!m.buffers.empty()) {
    int64_t values = 0;
    for (const ModelBuffer& buffer : m.buffers) values += static_cast<int64_t>(buffer.values.size());
    std::cout << "buffers:    " << m.buffers.size() << " (" << values << " values: BatchNorm running statistics)\n";
  }
  std::cout << "loss scale: " << s.scaler.scale << ", skipped steps " << s.scaler.skipped << "\n"
            << "shards:\n";
  char line[200];
  for (const io::ShardRecord& shard : m.shards) {
    std::snprintf(line, sizeof line, "  %-26s %6zu ranges  %12" PRId64 " elements  %10s  %s\n",
                  shard.file.c_str(), shard.ranges.size(), total_size(shard.ranges),
                  human_bytes(shard.bytes).c_str(), hex64(shard.xxh3).c_str());
    std::cout << line;
  }
}

// A field of a metrics line, 0 when it is missing or of another type (a hand-edited or damaged
// metrics.jsonl is summarised, never fatal; nlohmann's value() would throw a type_error).
int64_t integer_field(const nlohmann::json& record, const char* key) {
  const auto found = record.find(key);
  return found != record.end() && found->is_number_integer() ? found->get<int64_t>() : 0;
}
double number_field(const nlohmann::json& record, const char* key) {
  const auto found = record.find(key);
  return found != record.end() && found->is_number() ? found->get<double>() : 0.0;
}

// What a run directory says about the run: its config, the last metrics line, the newest
// sample grid. Returns the number of faults (an unreadable config).
int print_run_summary(const std::string& path) {
  namespace fs = std::filesystem;
  int faults = 0;
  std::error_code ignored;
  const fs::path run(path);
  if (fs::is_regular_file(run / "config.ini", ignored)) {
    try {
      const Config config = load_config((run / "config.ini").string(), {});
      std::cout << "config:      " << (run / "config.ini").string() << ": " << config.model.kind << " (channels ";
      for (size_t i = 0; i < config.model.channels.size(); ++i) std::cout << (i ? "," : "") << config.model.channels[i];
      std::cout << "), batch " << config.train.batch << ", rungs";
      for (int rung = 0; rung < config.stages.rungs(); ++rung)
        std::cout << " " << config.stages.resolutions[rung] << "x" << config.stages.resolutions[rung] << " ("
                  << config.stages.images[rung] << " images)";
      std::cout << "\n";
    } catch (const Error& e) {
      std::cout << "config:      INVALID: " << e.what() << "\n";
      ++faults;
    }
  }
  std::ifstream metrics(run / "metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line))
    if (!line.empty()) last = line;
  const nlohmann::json record = nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
  if (record.is_object() && record.contains("step"))
    std::cout << "last logged: step " << integer_field(record, "step") << ", rung " << integer_field(record, "stage")
              << " (" << integer_field(record, "resolution") << "x" << integer_field(record, "resolution") << "), "
              << integer_field(record, "images_seen") << " images seen, loss " << number_field(record, "loss")
              << ", " << number_field(record, "time_s") << " s\n";
  std::vector<std::string> samples;
  if (fs::is_directory(run / "samples", ignored))
    for (const fs::directory_entry& entry : fs::directory_iterator(run / "samples", ignored))
      if (entry.path().extension() == ".png") samples.push_back(entry.path().string());
  std::sort(samples.begin(), samples.end());  // step-NNNNNNNN-…: name order is step order
  if (!samples.empty()) std::cout << "newest grid: " << samples.back() << "\n";
  return faults;
}

// A checkpoint (a directory with a manifest) or a run directory (with checkpoints/, or a
// config and metrics of a run that has not checkpointed yet).
int inspect_directory(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  const bool step_directory =
      fs::path(path).lexically_normal().filename().string().rfind("step-", 0) == 0 ||
      fs::path(path).lexically_normal().parent_path().filename() == "checkpoints";
  const bool run_directory = fs::is_directory(fs::path(path) / "checkpoints", ignored) ||
                             fs::is_regular_file(fs::path(path) / "metrics.jsonl", ignored) ||
                             fs::is_regular_file(fs::path(path) / "config.ini", ignored);
  if (!fs::exists(fs::path(path) / io::kManifestFile, ignored) && !step_directory && !run_directory)
    throw UsageError(path + ": neither a checkpoint (no manifest.json) nor a run directory (no "
                     "checkpoints/)");
  if (!run_directory) {
    const io::Manifest manifest = io::verify_checkpoint(path);  // throws at the first fault
    print_checkpoint(path, manifest);
    std::cout << "valid\n" << std::flush;
    return 0;
  }
  const io::CheckpointDirectory checkpoints(path);
  const std::vector<int64_t> steps = checkpoints.all_steps();
  std::cout << "run:         " << path << "\n";
  int bad = print_run_summary(path);
  std::cout << "checkpoints: " << checkpoints.complete_steps().size() << " complete";
  const int64_t latest = checkpoints.latest_step();
  if (latest >= 0) std::cout << ", latest " << io::step_directory_name(latest);
  std::cout << "\n" << std::flush;
  for (int64_t step : steps) {
    const std::string dir = checkpoints.step_path(step);
    try {
      const io::Manifest manifest = io::verify_checkpoint(dir);
      std::cout << "  " << io::step_directory_name(step) << "  valid  (" << manifest.world
                << " ranks, ZeRO " << manifest.zero_stage << ", rung " << manifest.state.rung << ")\n";
    } catch (const UsageError& e) {
      std::cout << "  " << io::step_directory_name(step) << "  INVALID: " << e.what() << "\n";
      ++bad;
    }
  }
  if (latest >= 0 && std::find(steps.begin(), steps.end(), latest) == steps.end()) {
    std::cout << "  latest names " << io::step_directory_name(latest) << ", which does not exist\n";
    ++bad;
  }
  if (bad > 0)
    throw UsageError(detail::concat(path, ": ", bad, bad == 1 ? " fault" : " faults",
                                    " (see above: an invalid config or checkpoint)"));
  std::cout << "valid\n" << std::flush;
  return 0;
}

}  // namespace

std::string inspect_usage() {
  return "usage: ladder inspect PATH [--dataset NAME [--layout auto|nhwc|nchw]]\n"
         "\n"
         "Describes and validates an HDF5 image store: format, image count, channels, pixel\n"
         "type, the intensity transform data.intensity = auto gives it, and for each level its\n"
         "bytes and checksum. Every image is read back and checked; the last\n"
         "line is \"valid\", or the command fails (exit 1) naming the problem.\n"
         "PATH may also be a latent store (ladder encode; every image's latents verified), a\n"
         "checkpoint (run.dir/checkpoints/step-N: step, rung, world, ZeRO\n"
         "stage, shards and sizes; every shard's XXH3-64 is verified) or a run directory (each\n"
         "of its checkpoints verified); a fault fails with exit 2, naming the file.\n"
         "\n"
         "options:\n"
         "  --dataset NAME   inspect a plain dataset (h5py layout) of uint8, uint16, float16 or\n"
         "                   float32 instead of a ladder store\n"
         "  --layout L       its layout: auto (whichever its shape allows), nhwc or nchw\n"
         "  --help           this text\n";
}

int inspect_command(const std::vector<std::string>& args) {
  std::string path, dataset, layout = "auto";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << inspect_usage();
      return 0;
    }
    if (arg == "--dataset") {
      LADDER_CHECK_USAGE(i + 1 < args.size(), "inspect: --dataset needs a name");
      dataset = args[++i];
    } else if (arg.rfind("--dataset=", 0) == 0) {
      dataset = arg.substr(10);
    } else if (arg == "--layout" || arg.rfind("--layout=", 0) == 0) {
      LADDER_CHECK_USAGE(arg != "--layout" || i + 1 < args.size(), "inspect: --layout needs auto, nhwc or nchw");
      layout = arg == "--layout" ? args[++i] : arg.substr(9);
      LADDER_CHECK_USAGE(layout == "auto" || layout == "nhwc" || layout == "nchw", "inspect: --layout ", layout,
                         ": expected auto, nhwc or nchw");
    } else if (arg.rfind("--", 0) == 0) {
      throw UsageError("inspect: unknown option '" + arg + "' (see ladder inspect --help)");
    } else {
      LADDER_CHECK_USAGE(path.empty(), "inspect: one PATH only (got '", path, "' and '", arg, "')");
      path = arg;
    }
  }
  LADDER_CHECK_USAGE(!path.empty(), "inspect: PATH is required (see ladder inspect --help)");
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) return inspect_directory(path);

  if (dataset.empty() && io::is_latent_store(path)) {
    const io::LatentStoreReader latents(path);
    const io::LatentStoreInfo& info = latents.info();
    std::cout << "path:         " << info.path << "\n"
              << "format:       ladder-latent-store, version 1\n"
              << "count:        " << info.count << " images\n"
              << "latent:       " << info.latent_channels << " channels, " << info.downsampling
              << "x downsampling, scale_factor " << info.scale_factor << "\n"
              << "autoencoder:  " << info.autoencoder_checkpoint << " (step " << info.autoencoder_step << ")\n"
              << "levels:      ";
    for (int r : info.resolutions)
      std::cout << " " << r << " (" << r / info.downsampling << "x" << r / info.downsampling << ")";
    std::cout << "\n" << std::flush;
    latents.verify_all();  // throws at the first checksum mismatch
    std::cout << "valid\n" << std::flush;
    return 0;
  }
  io::ImageStoreReader reader(path, dataset, layout);
  const io::StoreInfo& info = reader.info();
  std::cout << "path:      " << info.path << "\n";
  if (info.foreign)
    std::cout << "format:    foreign dataset " << info.dataset << " (" << data::pixel_type_name(info.type) << ", "
              << (info.channels_first ? "N, C, H, W" : "N, H, W, C") << ", " << info.height << "x" << info.width
              << ")\n";
  else
    std::cout << "format:    ladder-image-store, version " << info.version << "\n";
  std::cout << "count:     " << info.count << " images\n"
            << "channels:  " << info.channels << "\n"
            << "pixels:    " << data::pixel_type_name(info.type);
  if (info.stated)
    std::cout << ", source intensities " << info.stated->low << ".." << info.stated->high
              << (info.stated->unit.empty() ? "" : " " + info.stated->unit);
  std::cout << "\n" << "intensity: " << reader.intensity_transform({}).description() << "\n" << std::flush;

  reader.verify_all();  // throws at the first problem
  std::cout << "levels:\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %10s  %14s  %10s  %16s\n", "resolution", "bytes", "", "checksum");
  std::cout << line;
  for (const io::StoreLevel& level : info.levels) {
    std::snprintf(line, sizeof line, "  %10d  %14" PRId64 "  %10s  %16s\n", level.resolution,
                  level.bytes, human_bytes(level.bytes).c_str(), hex64(level.checksum).c_str());
    std::cout << line;
  }
  std::cout << "valid\n" << std::flush;
  return 0;
}

}  // namespace ladder
