// Why this file exists: `ladder inspect PATH [--dataset NAME]`: describes an image store
// (format, count, channels, bytes and checksum of each level), reads all of it back to check
// every image, and ends with "valid"; any problem is thrown as the one error line main()
// prints (exit 1). Checkpoint directories come with the checkpoint issue.
#include "cli/inspect_command.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/check.h"
#include "core/format.h"
#include "io/image_store.h"

namespace ladder {
namespace {

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

}  // namespace

std::string inspect_usage() {
  return "usage: ladder inspect PATH [--dataset NAME]\n"
         "\n"
         "Describes and validates an HDF5 image store: format, image count, channels, and for\n"
         "each level its bytes and checksum. Every image is read back and checked; the last\n"
         "line is \"valid\", or the command fails (exit 1) naming the problem.\n"
         "\n"
         "options:\n"
         "  --dataset NAME   inspect a plain uint8 (N, H, W, C) dataset (h5py layout) instead\n"
         "                   of a ladder store\n"
         "  --help           this text\n";
}

int inspect_command(const std::vector<std::string>& args) {
  std::string path, dataset;
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
    } else if (arg.rfind("--", 0) == 0) {
      throw UsageError("inspect: unknown option '" + arg + "' (see ladder inspect --help)");
    } else {
      LADDER_CHECK_USAGE(path.empty(), "inspect: one PATH only (got '", path, "' and '", arg, "')");
      path = arg;
    }
  }
  LADDER_CHECK_USAGE(!path.empty(), "inspect: PATH is required (see ladder inspect --help)");
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    LADDER_FAIL(path, ": not a store (checkpoints: not yet supported)");

  io::ImageStoreReader reader(path, dataset);
  const io::StoreInfo& info = reader.info();
  std::cout << "path:      " << info.path << "\n";
  if (info.foreign)
    std::cout << "format:    foreign dataset " << info.dataset << " (uint8, " << info.height << "x"
              << info.width << ")\n";
  else
    std::cout << "format:    ladder-image-store, version 1\n";
  std::cout << "count:     " << info.count << " images\n"
            << "channels:  " << info.channels << "\n"
            << std::flush;

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
