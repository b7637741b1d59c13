// Why this file exists: the shared option-value parsing of the commands.
#include "cli/arguments.h"

#include <cstdlib>

#include "core/check.h"

namespace ladder {

const std::string& option_value(const std::vector<std::string>& args, size_t& i, const std::string& command) {
  LADDER_CHECK_USAGE(i + 1 < args.size(), command, ": ", args[i], " needs a value");
  return args[++i];
}

int64_t positive_integer(const std::string& text, const std::string& command, const std::string& option) {
  char* end = nullptr;
  const long long parsed = std::strtoll(text.c_str(), &end, 10);
  LADDER_CHECK_USAGE(!text.empty() && *end == '\0' && parsed >= 1, command, ": ", option,
                     " must be a positive integer (got '", text, "')");
  return static_cast<int64_t>(parsed);
}

}  // namespace ladder
