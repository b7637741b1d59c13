// Why this file exists: the input folders of `ladder pack` (--images, --nifti): every regular
// file below a root, by relative path in byte order, so the same folder always packs into
// the same store.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ladder {

// UsageError naming `flag` when `root` is not a folder; Error when it cannot be listed.
std::vector<std::string> list_files(const std::filesystem::path& root, const std::string& flag);

}  // namespace ladder
