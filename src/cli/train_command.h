// Why this file exists: `ladder train`, the command-line face of the trainer.
#pragma once

#include <string>
#include <vector>

namespace ladder {

// args: everything after "train". Returns the process exit code; throws on errors.
int train_command(const std::vector<std::string>& args);
std::string train_usage();

}  // namespace ladder
