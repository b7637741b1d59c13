// Why this file exists: keeps the message formatting of failed checks out of every caller.
#include "core/check.h"

namespace ladder::detail {

void throw_check_failure(const char* file, int line, const char* expr,
                         const std::string& message) {
  std::string text = message.empty() ? std::string("check failed") : message;
  throw Error(concat(text, " [", expr, " at ", file, ":", line, "]"));
}

}  // namespace ladder::detail
