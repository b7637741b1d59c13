// Why this file exists: fuzzes the INI config and its `--section.key value` flags
// (src/config/config.cpp, Boost.Program_options plus ladder's own value checks). The input
// is an INI text, then "\n%%\n", then one flag argument per line. A bad config must end in
// ladder's UsageError; a config that loads must also survive what a run does with it: its
// resolved config.ini (written into every run directory, read back by `ladder inspect` and
// compared on resume) loads again to the same keys, and the per-rung accessors work.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "config/config.h"
#include "core/check.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ladder;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 2);
  const std::string path = fuzz::write_file(fuzz::scratch() / "config.ini", parts[0]);
  std::vector<std::string> flags;
  std::istringstream lines(parts[1]);
  for (std::string line; std::getline(lines, line);) flags.push_back(line);

  std::optional<Config> config;
  try {
    config = load_config(path, flags);
  } catch (const Error&) {
    return 0;  // the documented outcome of a bad config
  }
  // From here on nothing may throw: the config was accepted.
  const std::string resolved = fuzz::write_file(fuzz::scratch() / "resolved.ini", config->to_ini());
  const Config reloaded = load_config(resolved, {});
  if (reloaded.key_values() != config->key_values()) {
    std::fprintf(stderr, "fuzz_config: the resolved config.ini loads to other values\n");
    std::abort();
  }
  for (int world = 1; world <= 3; ++world)
    for (int rung = 0; rung < config->stages.rungs(); ++rung) {
      try {
        micro_batch_for_rung(*config, rung, world);
        accumulation_for_rung(*config, rung, world);
      } catch (const Error&) {
        // a batch that does not divide over `world` ranks: the trainer reports it the same way
      }
    }
  return 0;
}
