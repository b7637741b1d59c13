// Why this file exists: the option values of the commands that take "--name value" options
// beside config flags (reconstruct, encode, sample): one place that says "needs a value" and
// "must be a positive integer" the same way for all of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder {

// The value after args[i] (advancing i); UsageError "<command>: <option> needs a value".
const std::string& option_value(const std::vector<std::string>& args, size_t& i, const std::string& command);
// UsageError "<command>: <option> must be a positive integer (got '<text>')" unless it is one.
int64_t positive_integer(const std::string& text, const std::string& command, const std::string& option);

}  // namespace ladder
