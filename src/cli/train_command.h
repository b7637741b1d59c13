// Why this file exists: `ladder train`, the command-line face of the trainer.
#pragma once

#include <string>
#include <vector>

namespace ladder {

// The exit code of a run stopped by a signal after committing a checkpoint (BSD EX_TEMPFAIL:
// "try again later", what schedulers requeue on).
constexpr int kExitStopped = 75;

// args: everything after "train". Returns the process exit code; throws on errors.
int train_command(const std::vector<std::string>& args);
std::string train_usage();

}  // namespace ladder
