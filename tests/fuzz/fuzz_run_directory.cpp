// Why this file exists: fuzzes the small files of a run directory that ladder reads back:
// config.ini and metrics.jsonl (`ladder inspect RUN_DIR` summarises them;
// keep_metrics_through trims metrics.jsonl on resume) and checkpoints/latest (which
// checkpoint `--resume auto` tries first). The input is config.ini, "\n%%\n", metrics.jsonl,
// "\n%%\n", latest. Inspect's findings must be printed or end in ladder::Error.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/inspect_command.h"
#include "core/check.h"
#include "fuzz_support.h"
#include "io/checkpoint_files.h"
#include "train/metrics.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ladder;
  namespace fs = std::filesystem;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 3);
  const fs::path run = fuzz::scratch() / "run";
  fs::remove_all(run);
  fuzz::write_file(run / "config.ini", parts[0]);
  const std::string metrics = fuzz::write_file(run / "metrics.jsonl", parts[1]);
  fuzz::write_file(run / "checkpoints" / io::kLatestFile, parts[2]);
  try {
    const fuzz::SilenceStdout silence;
    inspect_command({run.string()});
  } catch (const Error&) {
    // an invalid config or a `latest` naming a missing checkpoint: the documented outcome
  }
  io::CheckpointDirectory(run.string()).latest_step();
  keep_metrics_through(metrics, 10);
  return 0;
}
