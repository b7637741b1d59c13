// Why this file exists: ladder reports every failure by throwing, never by returning codes
// or aborting. One macro family builds the message; the type says how main() exits:
//   Error       an internal invariant or a runtime failure (exit 1)
//   UsageError  bad user input: a config key, a flag, a value (exit 2)
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ladder {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UsageError : public Error {
 public:
  using Error::Error;
};

namespace detail {

template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void throw_check_failure(const char* file, int line, const char* expr,
                                      const std::string& message);

}  // namespace detail
}  // namespace ladder

// Internal invariant: the message names the failed expression and the source line.
#define LADDER_CHECK(cond, ...)                                                        \
  do {                                                                                 \
    if (!(cond))                                                                       \
      ::ladder::detail::throw_check_failure(__FILE__, __LINE__, #cond,                 \
                                            ::ladder::detail::concat(__VA_ARGS__));    \
  } while (0)

// User input: the message alone is the one error line the user sees.
#define LADDER_CHECK_USAGE(cond, ...)                                                  \
  do {                                                                                 \
    if (!(cond)) throw ::ladder::UsageError(::ladder::detail::concat(__VA_ARGS__));    \
  } while (0)

#define LADDER_FAIL(...) throw ::ladder::Error(::ladder::detail::concat(__VA_ARGS__))
