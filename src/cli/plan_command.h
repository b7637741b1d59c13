// Why this file exists: `ladder plan --config F.ini [--world N] [--gpu-memory 80GiB]` (BRIEF
// §5): per rung, the bytes per rank and the micro-batch and recompute that fit, before a job
// is launched (plan/memory_planner.h).
#pragma once

#include <string>
#include <vector>

namespace ladder {

int plan_command(const std::vector<std::string>& args);  // everything after "plan"
std::string plan_usage();

}  // namespace ladder
