// Why this file exists: the Communicator over MPI and host buffers (CPU ranks, and GPU ranks
// that share a GPU and stage through host memory). It also bootstraps the NCCL communicator
// (the unique id travels over it) and answers which ranks share a node. Collectives are
// blocking MPI calls guarded by a CollectiveWatchdog: one that does not complete within the
// timeout ends the process with an error line naming the rank and the operation (exit 1).
#pragma once
#ifdef LADDER_WITH_MPI

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "comm/collective_watchdog.h"
#include "comm/communicator.h"

namespace ladder {

class MpiCommunicator : public Communicator {
 public:
  // MPI counts are int: larger buffers go in pieces of at most this many elements, and of
  // at most kMaxChunkBytes (message sizes past 2 GiB are where MPI libraries get fragile).
  static constexpr int64_t kMaxChunk = int64_t{1} << 30;
  static constexpr int64_t kMaxChunkBytes = int64_t{1} << 30;

  // Collective over MPI_COMM_WORLD (works on a duplicate of it). A collective that takes
  // longer than timeout_s ends the process (CollectiveWatchdog). max_chunk is lowered only
  // by tests, to exercise the chunked path with small buffers.
  explicit MpiCommunicator(double timeout_s, int64_t max_chunk = kMaxChunk);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string backend() const override { return "mpi"; }
  bool device_buffers() const override { return false; }
  double timeout_s() const { return timeout_s_; }

  void all_reduce_sum(void* data, int64_t count, DType dtype) override;
  void reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, int64_t count, DType dtype) override;
  void broadcast(void* data, int64_t count, DType dtype, int root) override;
  void barrier() override;

  // The ranks of this communicator that share this node (MPI_COMM_TYPE_SHARED), ordered by
  // rank: its rank() is the node-local rank. Collective; blocking (start-up only).
  std::unique_ptr<MpiCommunicator> split_node_local() const;
  // The ranks that pass the same `color`, ordered by rank (MPI_Comm_split). Collective.
  std::unique_ptr<MpiCommunicator> split(int color) const;

 private:
  // Takes ownership of `comm` (freed in the destructor).
  MpiCommunicator(MPI_Comm comm, double timeout_s, int64_t max_chunk);

  MPI_Datatype mpi_type(DType dtype) const;
  MPI_Op sum_op(DType dtype) const;
  int64_t chunk(DType dtype) const;  // elements per MPI call

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Datatype bf16_type_ = MPI_DATATYPE_NULL;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
  int rank_ = 0;
  int world_ = 1;
  double timeout_s_ = 300;
  int64_t max_chunk_ = kMaxChunk;
  std::unique_ptr<CollectiveWatchdog> watchdog_;  // armed around every collective
};

}  // namespace ladder

#endif  // LADDER_WITH_MPI
