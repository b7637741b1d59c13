// Why this file exists: `ladder export`, a checkpoint's weights as one safetensors file with
// MONAI's state-dict names and PyTorch layouts.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int export_command(const std::vector<std::string>& args);  // args: everything after "export"
std::string export_usage();

}  // namespace ladder
