// Why this file exists: the dtype table and the one place that picks a Communicator backend
// from comm.backend (auto | mpi | nccl), plus the world of one used when ladder is built
// without MPI.
#include "comm/communicator.h"

#include <cstring>

#include "core/check.h"
#include "core/log.h"

#ifdef LADDER_WITH_MPI
#include "comm/mpi_communicator.h"
#endif
#if defined(LADDER_WITH_NCCL) && defined(LADDER_WITH_MPI)
#define LADDER_COMM_HAS_NCCL 1
#include "comm/nccl_communicator.h"
#endif
#ifdef LADDER_WITH_CUDA
#include "core/cuda_check.h"
#endif

namespace ladder {

int64_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF64: return 8;
  }
  LADDER_FAIL("unknown dtype ", static_cast<int>(dtype));
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kF64: return "f64";
  }
  return "unknown dtype";
}

namespace {

// A world of one (a build without MPI, or MPI not initialised): sums are the identity, gathers and scatters are copies.
// With device buffers (CUDA ranks) the copies go through cudaMemcpy.
class SoloCommunicator final : public Communicator {
 public:
  explicit SoloCommunicator(bool device_buffers) : device_(device_buffers) {}

  int rank() const override { return 0; }
  int world() const override { return 1; }
  std::string backend() const override { return "local"; }
  bool device_buffers() const override { return device_; }

  void all_reduce_sum(void* data, int64_t count, DType /*dtype*/) override {
    detail::check_collective_buffers(0, "all_reduce_sum", count, data, data);
  }
  void reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) override {
    copy(recv, send, count, dtype, "reduce_scatter_sum");
  }
  void all_gather(const void* send, void* recv, int64_t count, DType dtype) override {
    copy(recv, send, count, dtype, "all_gather");
  }
  void broadcast(void* data, int64_t count, DType /*dtype*/, int root) override {
    detail::check_collective_buffers(0, "broadcast", count, data, data);
    detail::check_broadcast_root(0, root, 1);
  }
  void barrier() override {}

 private:
  void copy(void* to, const void* from, int64_t count, DType dtype, const char* op) const {
    detail::check_collective_buffers(0, op, count, from, to);
    if (count == 0 || to == from) return;
    auto bytes = static_cast<size_t>(count * dtype_bytes(dtype));
#ifdef LADDER_WITH_CUDA
    if (device_) {
      LADDER_CUDA_CHECK(cudaMemcpy(to, from, bytes, cudaMemcpyDefault));
      // A device-to-device cudaMemcpy may return before the copy is done, on the legacy
      // stream the compute stream does not wait for.
      LADDER_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
#endif
    std::memmove(to, from, bytes);
  }

  bool device_;
};

}  // namespace

namespace detail {

void check_collective_buffers(int rank, const char* op, int64_t count, const void* first,
                              const void* second) {
  LADDER_CHECK(count >= 0 && (count == 0 || (first != nullptr && second != nullptr)), "rank ",
               rank, ": ", op, " of ", count, " elements with a null buffer");
}

void check_broadcast_root(int rank, int root, int world) {
  LADDER_CHECK(root >= 0 && root < world, "rank ", rank, ": broadcast from root ", root,
               " in a world of ", world);
}

}  // namespace detail

std::unique_ptr<Communicator> make_communicator(const CommSettings& settings) {
  const std::string& backend = settings.backend;
  LADDER_CHECK_USAGE(backend == "auto" || backend == "mpi" || backend == "nccl",
                     "comm.backend must be auto, mpi or nccl (got '", backend, "')");
  LADDER_CHECK_USAGE(settings.timeout_s > 0, "comm.timeout_s must be > 0 (got ",
                     settings.timeout_s, ")");
#ifndef LADDER_WITH_CUDA
  LADDER_CHECK_USAGE(backend != "nccl", "comm.backend = nccl needs a CUDA build");
#endif
  LADDER_CHECK_USAGE(backend != "nccl" || settings.cuda_ranks,
                     "comm.backend = nccl needs ranks that compute on GPUs (run.device = cuda)");

#ifndef LADDER_WITH_MPI
  bool device = false;
#ifdef LADDER_WITH_CUDA
  device = settings.cuda_ranks && backend != "mpi";
#endif
  return std::make_unique<SoloCommunicator>(device);
#else
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return std::make_unique<SoloCommunicator>(false);  // in-process tests
  auto mpi = std::make_unique<MpiCommunicator>(settings.timeout_s);
  if (backend == "mpi" || !settings.cuda_ranks) return mpi;
#ifdef LADDER_COMM_HAS_NCCL
  GpuPlacement placement = place_on_gpus(*mpi);  // collective: every rank gets the same answer
  if (backend == "nccl" || placement.every_rank_owns_a_gpu)
    return std::make_unique<NcclCommunicator>(std::move(mpi), placement);
  log_info("comm.backend = auto: MPI through host memory, not NCCL: ", placement.problem);
#else
  LADDER_CHECK_USAGE(backend != "nccl", "comm.backend = nccl needs a build with NCCL");
#endif
  return mpi;
#endif
}

}  // namespace ladder
