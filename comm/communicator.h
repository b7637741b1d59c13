// Why this file exists: the one small interface through which ranks talk (BRIEF §3; in the
// spirit of flashlight's distributed API): sums, reduce-scatter, all-gather, broadcast and
// barrier over contiguous buffers. Two implementations: MPI over host buffers (CPU ranks,
// and GPU ranks that share a GPU, staged through host memory) and NCCL over device buffers.
// Every call either completes within the communicator's timeout or ends the run (MPI: the
// watchdog ends the process with an error line; NCCL: it throws), so a dead or stuck peer
// never hangs it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace ladder {

enum class DType { kF32, kBF16, kF64 };

int64_t dtype_bytes(DType dtype);
const char* dtype_name(DType dtype);

// Collectives ordered on device streams instead of the host (NCCL): the way ZeRO buckets are
// reduced while the backward goes on. Streams are cudaStream_t passed as void* (this header
// is plain C++). A communicator that has them returns this from stream_ordered().
class StreamOrderedCollectives {
 public:
  virtual ~StreamOrderedCollectives() = default;
  // Enqueues recv (count) ← Σ_ranks send[rank·count, (rank+1)·count) to start once the work
  // queued on `producer` so far is done; returns at once (buffers must stay untouched until
  // order_before() has ordered their next user after it).
  virtual void reduce_scatter_sum_after(void* producer, const void* send, void* recv,
                                        int64_t count, DType dtype) = 0;
  // Work queued on `consumer` from now on starts after every collective enqueued so far.
  virtual void order_before(void* consumer) = 0;
  // Returns when every enqueued collective has completed; throws (naming the rank) when that
  // takes longer than the communicator's timeout.
  virtual void wait_enqueued() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual std::string backend() const = 0;  // "mpi" | "nccl" | "local" (a world of one)
  // Whether buffers are device (CUDA) pointers rather than host pointers.
  virtual bool device_buffers() const = 0;

  // data (count) ← Σ over ranks of data, in place.
  virtual void all_reduce_sum(void* data, int64_t count, DType dtype) = 0;
  // recv (count) ← Σ over ranks of send[rank·count, (rank+1)·count); send has world·count.
  virtual void reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) = 0;
  // recv (world·count) ← every rank's send (count), in rank order. send may alias
  // recv + rank·count (in place).
  virtual void all_gather(const void* send, void* recv, int64_t count, DType dtype) = 0;
  virtual void broadcast(void* data, int64_t count, DType dtype, int root) = 0;
  virtual void barrier() = 0;
  // Stream-ordered collectives, where the implementation has them (NCCL); null otherwise.
  virtual StreamOrderedCollectives* stream_ordered() { return nullptr; }
};

struct CommSettings {
  std::string backend = "auto";  // auto | mpi | nccl (comm.backend)
  double timeout_s = 300;        // comm.timeout_s
  bool cuda_ranks = false;       // ranks compute on GPUs
};

namespace detail {
// Argument checks every implementation makes before a collective (throw naming the rank, the
// operation and the count): buffers present unless count is 0; root inside the world.
void check_collective_buffers(int rank, const char* op, int64_t count, const void* first,
                              const void* second);
void check_broadcast_root(int rank, int root, int world);
}  // namespace detail

// The communicator over all ranks of MPI_COMM_WORLD (a world of one without MPI, or when
// MPI was not initialised, as in single-process tests).
// auto: NCCL for CUDA ranks with one GPU each, else MPI.
std::unique_ptr<Communicator> make_communicator(const CommSettings& settings);

}  // namespace ladder
