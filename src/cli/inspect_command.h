// Why this file exists: `ladder inspect PATH`, which describes and validates a store, a
// checkpoint or a run directory; non-zero exit when invalid.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int inspect_command(const std::vector<std::string>& args);  // args: everything after "inspect"
std::string inspect_usage();

}  // namespace ladder
