// Why this file exists: the sorted file listing of pack's input folders (src/cli/file_list.h).
#include "cli/file_list.h"

#include <algorithm>

#include "core/check.h"

namespace ladder {

namespace fs = std::filesystem;

std::vector<std::string> list_files(const fs::path& root, const std::string& flag) {
  std::error_code error;
  LADDER_CHECK_USAGE(fs::is_directory(root, error), "pack: ", flag, " ", root.string(), ": not a folder");
  std::vector<std::string> names;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, error);
  if (error) LADDER_FAIL("pack: cannot list ", root.string(), ": ", error.message());
  for (const fs::recursive_directory_iterator end; it != end; it.increment(error)) {
    if (error) LADDER_FAIL("pack: cannot list ", root.string(), ": ", error.message());
    std::error_code status_error;
    if (it->is_regular_file(status_error)) names.push_back(it->path().lexically_relative(root).generic_string());
  }
  std::sort(names.begin(), names.end());  // std::string compares bytes
  return names;
}

}  // namespace ladder
