// Why this file exists: what every fuzz target needs around ladder's readers, which take
// paths rather than bytes: a scratch directory private to the process (parallel fuzzing jobs
// each get their own; removed at exit), writing the input there as a file, and splitting one
// input into the several files or arguments a target feeds (at "\n%%\n" separators, so seeds
// stay readable). Nothing here catches anything: each target catches ladder::Error, the
// documented outcome of a bad file, and every other exception or signal is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace ladder::fuzz {

// $TMPDIR/ladder-fuzz-<pid>/, created on first use, removed when the process exits.
class ScratchDirectory {
 public:
  ScratchDirectory()
      : path_(std::filesystem::temp_directory_path() / ("ladder-fuzz-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline const std::filesystem::path& scratch() {
  static const ScratchDirectory directory;
  return directory.path();
}

// Writes `bytes` to `path` (replacing it; parent directories created) and returns the path.
inline std::string write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

// The input cut at every "\n%%\n" into at most `parts` pieces (the last keeps the rest;
// missing pieces are empty).
inline std::vector<std::string> split_input(const uint8_t* data, size_t size, size_t parts) {
  static const std::string kSeparator = "\n%%\n";
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> pieces;
  size_t start = 0;
  while (pieces.size() + 1 < parts) {
    const size_t at = text.find(kSeparator, start);
    if (at == std::string::npos) break;
    pieces.push_back(text.substr(start, at - start));
    start = at + kSeparator.size();
  }
  pieces.push_back(text.substr(start));
  pieces.resize(parts);
  return pieces;
}

// std::cout sent nowhere while in scope (`ladder inspect` prints its findings there).
class SilenceStdout {
 public:
  SilenceStdout() : saved_(std::cout.rdbuf(sink_.rdbuf())) {}
  ~SilenceStdout() { std::cout.rdbuf(saved_); }
  SilenceStdout(const SilenceStdout&) = delete;
  SilenceStdout& operator=(const SilenceStdout&) = delete;

 private:
  std::ostringstream sink_;
  std::streambuf* saved_;
};

}  // namespace ladder::fuzz
