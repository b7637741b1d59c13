// Why this file exists: collectives on device buffers over a host communicator (MPI), by way
// of host staging: copy to the host, run the host collective, copy back. It is how GPU ranks
// reduce gradients when NCCL is not used (comm.backend = mpi, ranks that share a GPU, tests),
// and it is slow by design (two PCIe copies per call); NCCL is the path for real runs.
// The caller makes sure the device data is complete before a call (GradientSync synchronises
// the compute stream first); each call returns with the results in device memory.
// Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <string>
#include <vector>

#include "comm/communicator.h"

namespace ladder {

class StagedCommunicator final : public Communicator {
 public:
  // `host` must outlive this object and have host buffers.
  explicit StagedCommunicator(Communicator& host);

  int rank() const override { return host_.rank(); }
  int world() const override { return host_.world(); }
  std::string backend() const override { return host_.backend() + "-staged"; }
  bool device_buffers() const override { return true; }

  void all_reduce_sum(void* data, int64_t count, DType dtype) override;
  void reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, int64_t count, DType dtype) override;
  void broadcast(void* data, int64_t count, DType dtype, int root) override;
  void barrier() override { host_.barrier(); }

 private:
  // Host scratch of at least `bytes`, grow-only; `which` selects one of two.
  char* staging(int which, int64_t bytes);

  Communicator& host_;
  std::vector<char> send_, recv_;
};

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
