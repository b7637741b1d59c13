// Why this file exists: small helpers shared by the engine tests: a temporary directory that
// removes itself, a small synthetic image store, a synthetic latent store, and running the
// real `ladder` binary (path from $LADDER_BINARY, set by CTest).
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli/pack_command.h"
#include "core/check.h"
#include "core/rng.h"
#include "io/latent_store.h"
#include "io/safetensors.h"

namespace ladder::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ladder-test-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// 8 synthetic 32×32 images (seed 7), packed once per test program.
inline const std::string& small_synthetic_store() {
  static TempDir dir;
  static const std::string path = [] {
    std::string store = dir / "synthetic-8.h5";
    pack_command({"--synthetic", "8", "--out", store, "--levels", "32", "--seed", "7"});
    return store;
  }();
  return path;
}

// A latent store of `count` images at each image resolution of `resolutions` (downsampling
// 4, `channels` latent channels): μ is a smooth pattern whose phase and amplitude depend on
// the image (something to learn), log σ² = −4. Deterministic in `seed`.
inline void write_synthetic_latent_store(const std::string& path, int64_t count,
                                         const std::vector<int>& resolutions, int channels, uint64_t seed) {
  io::LatentStoreInfo info;
  info.count = count;
  info.latent_channels = channels;
  info.downsampling = 4;
  info.resolutions = resolutions;
  info.autoencoder = "{}";
  std::vector<std::string> names;
  for (int64_t i = 0; i < count; ++i) names.push_back("synthetic-" + std::to_string(i));
  io::LatentStoreWriter writer(path, info, names);
  for (int resolution : resolutions) {
    const int side = resolution / 4;
    const int64_t per_image = int64_t(side) * side * channels;
    std::vector<float> mu(static_cast<size_t>(count * per_image)), logvar(mu.size(), -4.f);
    for (int64_t i = 0; i < count; ++i) {
      Rng rng(seed, static_cast<uint64_t>(i));
      const double phase = 6.283 * rng.uniform(), amplitude = 0.5 + rng.uniform();
      for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x)
          for (int c = 0; c < channels; ++c)
            mu[static_cast<size_t>(i * per_image + (int64_t(y) * side + x) * channels + c)] = static_cast<float>(
                amplitude * std::sin(phase + 6.283 * (x + (c + 1) * y) / side));
    }
    writer.write(resolution, 0, count, mu.data(), logvar.data());
  }
  writer.finish(1.0);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Runs fn, expects a ladder::Error and returns its message (empty, and a test failure, if
// nothing was thrown).
template <class Fn>
std::string error_message(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected ladder::Error";
  return "";
}

// The float32 tensor `name` of a safetensors file (a test failure and zeros when absent).
inline std::vector<float> safetensor_floats(const io::SafetensorsHeader& file, const std::string& name) {
  for (const io::SafetensorEntry& entry : file.tensors)
    if (entry.name == name) {
      const std::vector<uint8_t> bytes = io::read_safetensors_tensor(file, entry);
      std::vector<float> values(bytes.size() / 4);
      std::memcpy(values.data(), bytes.data(), values.size() * 4);
      return values;
    }
  ADD_FAILURE() << file.path << ": no tensor " << name;
  return std::vector<float>(1, 0.f);
}

// d/dε loss(values + ε·direction) at ε = 0 by the central difference (L(+h) − L(−h)) / 2h:
// the `count` floats at `values` (parameters, an input) are moved along `direction`, `loss`
// is evaluated at both points, and the values are put back.
inline double central_difference(float* values, const std::vector<float>& direction, float h,
                                 const std::function<double()>& loss) {
  const std::vector<float> original(values, values + direction.size());
  for (size_t i = 0; i < direction.size(); ++i) values[i] = original[i] + h * direction[i];
  const double plus = loss();
  for (size_t i = 0; i < direction.size(); ++i) values[i] = original[i] - h * direction[i];
  const double minus = loss();
  std::copy(original.begin(), original.end(), values);
  return (plus - minus) / (2.0 * h);
}

// A direction of `count` N(0, 1) values, and Σ gradient·direction (the analytic derivative).
inline std::vector<float> random_direction(int64_t count, Rng& rng) {
  std::vector<float> direction(static_cast<size_t>(count));
  for (float& v : direction) v = static_cast<float>(rng.normal());
  return direction;
}
inline double dot(const float* gradient, const std::vector<float>& direction) {
  double sum = 0;
  for (size_t i = 0; i < direction.size(); ++i) sum += double(gradient[i]) * direction[i];
  return sum;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command, capturing stdout and stderr together and the exit code.
inline CommandResult run_ladder_command(const std::string& shell_command) {
  const std::string command = shell_command + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, got);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs `ladder <args>` (LADDER_BINARY) through the shell.
inline CommandResult run_ladder(const std::string& args) {
  const char* binary = std::getenv("LADDER_BINARY");
  return run_ladder_command(std::string(binary ? binary : "ladder") + " " + args);
}

// `ladder <args>` on `ranks` ranks under real mpirun (as root too; more ranks than cores).
inline CommandResult run_ladder_ranks(int ranks, const std::string& args) {
  const char* binary = std::getenv("LADDER_BINARY");
  return run_ladder_command("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 mpirun -np " +
                            std::to_string(ranks) + " --oversubscribe " + std::string(binary ? binary : "ladder") +
                            " " + args);
}

}  // namespace ladder::testing
