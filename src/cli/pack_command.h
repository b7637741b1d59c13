// Why this file exists: `ladder pack`, which builds an HDF5 image store from a folder of
// PNG/JPEG files or from the deterministic synthetic generator.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int pack_command(const std::vector<std::string>& args);  // args: everything after "pack"
std::string pack_usage();

}  // namespace ladder
