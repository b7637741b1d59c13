// Why this file exists: the helpers the multi-rank training tests share: a directory every
// rank sees with a small synthetic store in it, the check that every rank holds the same
// parameters, and the relative difference of two parameter vectors.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/pack_command.h"
#include "../test_support.h"
#include "train/trainer.h"

namespace ladder::testing {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  return world;
}

// A fresh temporary directory made by rank 0 and named to every rank, holding s.h5: 8
// synthetic 16×16 images (seed 5), and l.h5: the latents of 8 synthetic images at image
// resolution 16 (4×4, 2 channels; test_support.h).
inline std::string make_shared_store_dir(const std::string& prefix) {
  char path[256] = {0};
  if (world_rank() == 0) {
    std::string made = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    std::strncpy(path, mkdtemp(made.data()), sizeof path - 1);
    pack_command({"--synthetic", "8", "--out", std::string(path) + "/s.h5", "--levels", "16",
                  "--seed", "5"});
    write_synthetic_latent_store(std::string(path) + "/l.h5", 8, {16}, 2, 5);
  }
  MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
  return std::string(path);
}

// Every rank of the trainer's world holds the same parameters: their hashes, all-gathered
// (as 8 raw bytes each), are equal.
inline void expect_identical_replicas(Trainer& trainer, int64_t step) {
  const ParamStore& p = trainer.params();
  uint64_t hash = 1469598103934665603ull;  // FNV-1a over the whole flat buffer
  const auto* bytes = reinterpret_cast<const unsigned char*>(p.values());
  for (int64_t i = 0; i < p.padded_count() * 4; ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  Communicator& comm = trainer.communicator();
  std::vector<uint64_t> hashes(static_cast<size_t>(comm.world()));
  comm.all_gather(&hash, hashes.data(), 1, DType::kF64);
  for (uint64_t other : hashes) EXPECT_EQ(other, hash) << "replicas differ after step " << step;
}

// ‖a − b‖ / ‖b‖ over the elements of b.
inline double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

}  // namespace ladder::testing
