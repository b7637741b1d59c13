// Why this file exists: `ladder evaluate`, the scores papers report: FID and KID between
// feature files (io/feature_file.h), and InceptionV3 features of an image store. Scoring a
// checkpoint's reconstructions or samples is not built yet.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int evaluate_command(const std::vector<std::string>& args);  // args: everything after "evaluate"
std::string evaluate_usage();

}  // namespace ladder
