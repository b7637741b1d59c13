// Why this file exists: the Communicator over NCCL and device buffers, for ranks that each own
// a GPU. NCCL is bootstrapped over MPI (rank 0 makes the unique id and broadcasts it) and runs
// on a dedicated non-blocking stream. Collectives are polled against comm.timeout_s; a stuck
// one aborts the NCCL communicator and throws. Only in builds with CUDA (NCCL) and MPI.
#pragma once
#if defined(LADDER_WITH_NCCL) && defined(LADDER_WITH_MPI)

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>

#include "comm/communicator.h"
#include "comm/mpi_communicator.h"

namespace ladder {

// This rank's GPU, chosen from its node-local rank, and whether every rank has its own.
struct GpuPlacement {
  int node_rank = 0;   // rank among the ranks on this node
  int device = -1;     // CUDA device index for this rank; -1 when none is visible
  bool every_rank_owns_a_gpu = false;
  std::string problem;  // why not, when every_rank_owns_a_gpu is false
};

// Collective over `world`. A rank takes device node_rank, or node_rank % count when it sees
// fewer devices (e.g. one each through CUDA_VISIBLE_DEVICES); the devices' UUIDs are then
// compared across the node, so two ranks on one GPU are detected either way.
GpuPlacement place_on_gpus(MpiCommunicator& world);

class NcclCommunicator : public Communicator, public StreamOrderedCollectives {
 public:
  // Collective over the ranks of `bootstrap` (which it keeps). Throws UsageError when some
  // rank has no GPU of its own (placement from place_on_gpus over the same ranks).
  NcclCommunicator(std::unique_ptr<MpiCommunicator> bootstrap, const GpuPlacement& placement);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string backend() const override { return "nccl"; }
  bool device_buffers() const override { return true; }
  int device() const { return device_; }

  void all_reduce_sum(void* data, int64_t count, DType dtype) override;
  void reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, int64_t count, DType dtype) override;
  void broadcast(void* data, int64_t count, DType dtype, int root) override;
  void barrier() override;

  // The stream the collectives run on.
  cudaStream_t stream() const { return stream_.get(); }

  StreamOrderedCollectives* stream_ordered() override { return this; }
  void reduce_scatter_sum_after(void* producer, const void* send, void* recv, int64_t count,
                                DType dtype) override;
  void order_before(void* consumer) override;
  void wait_enqueued() override;

 private:
  using Clock = std::chrono::steady_clock;
  struct StreamDeleter {
    void operator()(cudaStream_t stream) const noexcept { cudaStreamDestroy(stream); }
  };
  struct EventDeleter {
    void operator()(cudaEvent_t event) const noexcept { cudaEventDestroy(event); }
  };
  struct DeviceFree {
    void operator()(void* pointer) const noexcept { cudaFree(pointer); }
  };

  void check_usable(const char* op) const;
  // Waits until NCCL has accepted the last call (non-blocking communicators may answer
  // ncclInProgress), then until the collective stream reaches an event recorded after it.
  void complete(ncclResult_t issued, const char* op, int64_t count, DType dtype);
  // The first half of complete(): the call is on the stream.
  void enqueued(ncclResult_t issued, const char* op, int64_t count, DType dtype,
                Clock::time_point deadline);
  // The second half: the stream has reached everything enqueued so far.
  void await_stream(const char* op, int64_t count, DType dtype, Clock::time_point deadline);
  // Polls the communicator state until it leaves ncclInProgress.
  void await_state(Clock::time_point deadline, const char* op, int64_t count, DType dtype);
  [[noreturn]] void fail(const char* op, const std::string& why);
  [[noreturn]] void time_out(const char* op, int64_t count, DType dtype);
  void abort_comm() noexcept;

  std::unique_ptr<MpiCommunicator> bootstrap_;
  int rank_ = 0;
  int world_ = 1;
  int device_ = -1;
  double timeout_s_ = 300;
  std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter> stream_;
  std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter> done_;
  std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter> producer_ready_;
  std::unique_ptr<void, DeviceFree> barrier_word_;  // one float the barrier sums
  ncclComm_t comm_ = nullptr;  // finalized (or aborted) in the destructor
  std::string broken_by_;      // the operation that timed out or failed; empty while usable
};

}  // namespace ladder

#endif  // LADDER_WITH_NCCL && LADDER_WITH_MPI
