// Why this file exists: the NCCL implementation of the Communicator (GPU ranks, device
// buffers) and the choice of each rank's GPU. The communicator is created non-blocking, so
// that set-up and every collective can be polled against comm.timeout_s: a peer that died
// or never arrives aborts the NCCL communicator and throws, naming the rank and the call.
#if defined(LADDER_WITH_NCCL) && defined(LADDER_WITH_MPI)

#include "comm/nccl_communicator.h"

#include <cstring>
#include <thread>
#include <vector>

#include "core/bf16.h"
#include "core/check.h"
#include "core/cuda_check.h"

namespace ladder {
namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::kF32: return ncclFloat32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF64: return ncclFloat64;
  }
  LADDER_FAIL("unknown dtype");
}

std::chrono::steady_clock::time_point deadline_after(double seconds) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(seconds));
}

// Spins briefly, then sleeps in growing steps up to 200 µs (the waiting rank leaves its core
// to others while a large collective runs).
class Backoff {
 public:
  void pause() {
    if (++polls_ < 200) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(sleep_);
    if (sleep_ < std::chrono::microseconds(200)) sleep_ *= 2;
  }

 private:
  int polls_ = 0;
  std::chrono::microseconds sleep_{10};
};

}  // namespace

// A failed NCCL call: the message names the rank, the operation, the call and NCCL's text.
#define LADDER_NCCL_CALL(op, call)                                                       \
  do {                                                                                   \
    ncclResult_t ladder_nccl_code_ = (call);                                             \
    if (ladder_nccl_code_ != ncclSuccess && ladder_nccl_code_ != ncclInProgress)         \
      fail((op), detail::concat(#call, " failed: ", ncclGetErrorString(ladder_nccl_code_), \
                                " (", ncclGetLastError(comm_), ")"));                    \
  } while (0)

GpuPlacement place_on_gpus(MpiCommunicator& world) {
  GpuPlacement placement;
  auto node = world.split_node_local();
  placement.node_rank = node->rank();

  std::string local_problem;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear it: "no device" is an answer here, not a failure
    count = 0;
    local_problem = detail::concat("no CUDA device visible (", cudaGetErrorString(status), ")");
  } else if (count == 0) {
    local_problem = "no CUDA device visible";
  }
  uint8_t uuid[16] = {0};
  if (count > 0) {
    placement.device = placement.node_rank < count ? placement.node_rank : placement.node_rank % count;
    cudaDeviceProp properties{};
    LADDER_CUDA_CHECK(cudaGetDeviceProperties(&properties, placement.device));
    static_assert(sizeof(properties.uuid.bytes) == sizeof(uuid), "CUDA UUIDs are 16 bytes");
    std::memcpy(uuid, properties.uuid.bytes, sizeof uuid);
  }

  // Two ranks of this node on one physical GPU? Compare UUIDs (as 8 opaque 2-byte words).
  std::vector<bf16> mine(8), all(8 * static_cast<size_t>(node->world()));
  std::memcpy(mine.data(), uuid, sizeof uuid);
  node->all_gather(mine.data(), all.data(), 8, DType::kBF16);
  if (placement.device >= 0) {
    for (int other = 0; other < node->world() && local_problem.empty(); ++other) {
      if (other != node->rank() && std::memcmp(&all[8 * other], uuid, sizeof uuid) == 0)
        local_problem = detail::concat("shares GPU ", placement.device, " with node-local rank ",
                                       other, " (", node->world(), " ranks on this node, ", count,
                                       " GPUs visible to this rank)");
    }
  }

  // Every rank must agree, or some would start NCCL and others MPI.
  std::vector<double> without_gpu(static_cast<size_t>(world.world()), 0.0);
  without_gpu[world.rank()] = local_problem.empty() ? 0.0 : 1.0;
  world.all_reduce_sum(without_gpu.data(), world.world(), DType::kF64);
  int missing = 0, first = -1;
  for (int r = 0; r < world.world(); ++r) {
    if (without_gpu[r] == 0.0) continue;
    ++missing;
    if (first < 0) first = r;
  }
  placement.every_rank_owns_a_gpu = missing == 0;
  if (missing > 0) {
    placement.problem = detail::concat(missing, " of ", world.world(),
                                       " ranks have no GPU of their own (first: rank ", first, ")");
    if (!local_problem.empty()) placement.problem += "; rank " + std::to_string(world.rank()) + " " + local_problem;
  }
  return placement;
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<MpiCommunicator> bootstrap,
                                   const GpuPlacement& placement)
    : bootstrap_(std::move(bootstrap)) {
  LADDER_CHECK(bootstrap_ != nullptr, "NcclCommunicator needs an MPI communicator to bootstrap");
  rank_ = bootstrap_->rank();
  world_ = bootstrap_->world();
  timeout_s_ = bootstrap_->timeout_s();
  device_ = placement.device;
  LADDER_CHECK_USAGE(placement.every_rank_owns_a_gpu,
                     "comm.backend = nccl needs one GPU per rank: ", placement.problem);

  LADDER_CUDA_CHECK(cudaSetDevice(device_));
  cudaStream_t stream = nullptr;
  LADDER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_.reset(stream);
  cudaEvent_t event = nullptr;
  LADDER_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  done_.reset(event);
  LADDER_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  producer_ready_.reset(event);
  void* word = nullptr;
  LADDER_CUDA_CHECK(cudaMalloc(&word, sizeof(float)));
  barrier_word_.reset(word);
  LADDER_CUDA_CHECK(cudaMemset(word, 0, sizeof(float)));

  // Rank 0 makes the unique id and broadcasts it with a status word, so that a failure on
  // rank 0 ends every rank with a message instead of leaving them waiting.
  static constexpr const char* kSetup = "NCCL set-up";
  struct {
    ncclUniqueId id;
    int32_t failed;
    int32_t padding;
  } hello{};
  static_assert(sizeof hello % 2 == 0, "sent as 2-byte words");
  ncclResult_t made = ncclSuccess;
  if (rank_ == 0) {
    made = ncclGetUniqueId(&hello.id);
    hello.failed = made != ncclSuccess;
  }
  bootstrap_->broadcast(&hello, sizeof hello / 2, DType::kBF16, 0);
  if (hello.failed)
    fail(kSetup, rank_ == 0 ? detail::concat("ncclGetUniqueId failed: ", ncclGetErrorString(made))
                            : std::string("rank 0 could not make the NCCL unique id"));

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // calls return at once; completion is polled (timeouts)
  LADDER_NCCL_CALL(kSetup, ncclCommInitRankConfig(&comm_, world_, hello.id, rank_, &config));
  await_state(deadline_after(timeout_s_), kSetup, -1, DType::kF32);
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ == nullptr) return;
  // Finalize flushes outstanding work; bounded wait, then abort (destructors never hang).
  ncclResult_t flushing = ncclCommFinalize(comm_);
  bool finalized = flushing == ncclSuccess || flushing == ncclInProgress;
  if (finalized) {
    auto until = Clock::now() + std::chrono::seconds(10);
    ncclResult_t state = ncclInProgress;
    while (ncclCommGetAsyncError(comm_, &state) == ncclSuccess && state == ncclInProgress &&
           Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    finalized = state == ncclSuccess;
  }
  if (finalized)
    ncclCommDestroy(comm_);
  else
    ncclCommAbort(comm_);
  comm_ = nullptr;
}

void NcclCommunicator::abort_comm() noexcept {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
}

void NcclCommunicator::fail(const char* op, const std::string& why) {
  abort_comm();
  if (broken_by_.empty()) broken_by_ = op;
  LADDER_FAIL("rank ", rank_, ": ", op, ": ", why);
}

void NcclCommunicator::time_out(const char* op, int64_t count, DType dtype) {
  abort_comm();
  broken_by_ = op;
  std::string what = count < 0 ? std::string() : detail::concat(" of ", count, " ", dtype_name(dtype));
  LADDER_FAIL("rank ", rank_, ": collective ", op, what, " did not complete within ", timeout_s_,
              " s (a peer failed or is stuck); NCCL communicator aborted");
}

void NcclCommunicator::check_usable(const char* op) const {
  if (!broken_by_.empty() || comm_ == nullptr)
    LADDER_FAIL("rank ", rank_, ": collective ", op,
                " refused: the NCCL communicator was aborted after ", broken_by_, " failed");
}

void NcclCommunicator::await_state(Clock::time_point deadline, const char* op, int64_t count,
                                   DType dtype) {
  Backoff backoff;
  for (;;) {
    ncclResult_t state = ncclInProgress;
    LADDER_NCCL_CALL(op, ncclCommGetAsyncError(comm_, &state));
    if (state == ncclSuccess) return;
    if (state != ncclInProgress)
      fail(op, detail::concat("NCCL reports ", ncclGetErrorString(state), " (",
                              ncclGetLastError(comm_), ")"));
    if (Clock::now() >= deadline) time_out(op, count, dtype);
    backoff.pause();
  }
}

void NcclCommunicator::complete(ncclResult_t issued, const char* op, int64_t count, DType dtype) {
  const auto deadline = deadline_after(timeout_s_);
  enqueued(issued, op, count, dtype, deadline);
  await_stream(op, count, dtype, deadline);
}

void NcclCommunicator::enqueued(ncclResult_t issued, const char* op, int64_t count, DType dtype,
                                Clock::time_point deadline) {
  if (issued != ncclSuccess && issued != ncclInProgress)
    fail(op, detail::concat("NCCL call failed: ", ncclGetErrorString(issued), " (",
                            ncclGetLastError(comm_), ")"));
  await_state(deadline, op, count, dtype);  // the collective is now on the stream
}

void NcclCommunicator::await_stream(const char* op, int64_t count, DType dtype,
                                    Clock::time_point deadline) {
  LADDER_CUDA_CHECK(cudaEventRecord(done_.get(), stream_.get()));
  Backoff backoff;
  for (;;) {
    cudaError_t reached = cudaEventQuery(done_.get());
    if (reached == cudaSuccess) return;
    if (reached == cudaErrorNotReady) (void)cudaGetLastError();  // not an error: clear it (CudaEvent::done)
    if (reached != cudaErrorNotReady)
      fail(op, detail::concat("CUDA reports ", cudaGetErrorName(reached), " (",
                              cudaGetErrorString(reached), ")"));
    ncclResult_t state = ncclSuccess;
    LADDER_NCCL_CALL(op, ncclCommGetAsyncError(comm_, &state));
    if (state != ncclSuccess && state != ncclInProgress)
      fail(op, detail::concat("NCCL reports ", ncclGetErrorString(state), " (",
                              ncclGetLastError(comm_), ")"));
    if (Clock::now() >= deadline) time_out(op, count, dtype);
    backoff.pause();
  }
}

void NcclCommunicator::all_reduce_sum(void* data, int64_t count, DType dtype) {
  static constexpr const char* kOp = "all_reduce_sum";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, data, data);
  if (count == 0) return;
  complete(ncclAllReduce(data, data, static_cast<size_t>(count), nccl_type(dtype), ncclSum, comm_,
                         stream_.get()),
           kOp, count, dtype);
}

void NcclCommunicator::reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) {
  static constexpr const char* kOp = "reduce_scatter_sum";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, send, recv);
  if (count == 0) return;
  complete(ncclReduceScatter(send, recv, static_cast<size_t>(count), nccl_type(dtype), ncclSum,
                             comm_, stream_.get()),
           kOp, count, dtype);
}

void NcclCommunicator::all_gather(const void* send, void* recv, int64_t count, DType dtype) {
  static constexpr const char* kOp = "all_gather";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, send, recv);
  if (count == 0) return;
  // In place when send == recv + rank·count: NCCL recognises it.
  complete(ncclAllGather(send, recv, static_cast<size_t>(count), nccl_type(dtype), comm_,
                         stream_.get()),
           kOp, count, dtype);
}

void NcclCommunicator::broadcast(void* data, int64_t count, DType dtype, int root) {
  static constexpr const char* kOp = "broadcast";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, data, data);
  detail::check_broadcast_root(rank_, root, world_);
  if (count == 0) return;
  complete(ncclBroadcast(data, data, static_cast<size_t>(count), nccl_type(dtype), root, comm_,
                         stream_.get()),
           kOp, count, dtype);
}

void NcclCommunicator::barrier() {
  static constexpr const char* kOp = "barrier";
  check_usable(kOp);
  // NCCL has no barrier: a one-element all-reduce on the collective stream serves.
  complete(ncclAllReduce(barrier_word_.get(), barrier_word_.get(), 1, ncclFloat32, ncclSum, comm_,
                         stream_.get()),
           kOp, -1, DType::kF32);
}

void NcclCommunicator::reduce_scatter_sum_after(void* producer, const void* send, void* recv,
                                                int64_t count, DType dtype) {
  static constexpr const char* kOp = "reduce_scatter_sum (stream-ordered)";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, send, recv);
  if (count == 0) return;
  auto* producer_stream = static_cast<cudaStream_t>(producer);
  LADDER_CUDA_CHECK(cudaEventRecord(producer_ready_.get(), producer_stream));
  LADDER_CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), producer_ready_.get(), 0));
  enqueued(ncclReduceScatter(send, recv, static_cast<size_t>(count), nccl_type(dtype), ncclSum,
                             comm_, stream_.get()),
           kOp, count, dtype, deadline_after(timeout_s_));
}

void NcclCommunicator::order_before(void* consumer) {
  check_usable("order_before");
  LADDER_CUDA_CHECK(cudaEventRecord(done_.get(), stream_.get()));
  LADDER_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(consumer), done_.get(), 0));
}

void NcclCommunicator::wait_enqueued() {
  static constexpr const char* kOp = "the enqueued collectives";
  check_usable(kOp);
  await_stream(kOp, -1, DType::kF32, deadline_after(timeout_s_));
}

}  // namespace ladder

#endif  // LADDER_WITH_NCCL && LADDER_WITH_MPI
