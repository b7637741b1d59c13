// Why this file exists: `ladder evaluate`, the scores papers report. Today it compares two
// sets of feature vectors (FID and KID from feature files, io/feature_file.h); the InceptionV3
// network that extracts them from a checkpoint's images is not built yet.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int evaluate_command(const std::vector<std::string>& args);  // args: everything after "evaluate"
std::string evaluate_usage();

}  // namespace ladder
