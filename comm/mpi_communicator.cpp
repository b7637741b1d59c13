// Why this file exists: the MPI implementation of the Communicator. Every collective is the
// blocking MPI call (the fastest Open MPI has: its non-blocking collectives cost 2-3x from 1M
// floats on, docs/PERFORMANCE.md), armed with the watchdog for comm.timeout_s, so a peer that
// died or never arrives ends the job with an error naming this rank and the operation
// instead of a hang. MPI counts are int, so buffers above max_chunk elements go in pieces.
#ifdef LADDER_WITH_MPI

#include "comm/mpi_communicator.h"

#include <algorithm>
#include <cstring>

#include "core/bf16.h"
#include "core/check.h"
#include "core/context.h"

namespace ladder {
namespace {

// Throws with the MPI error text; `what` is the call as written.
void check_mpi(int code, int rank, const char* op, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  MPI_Error_string(code, text, &length);
  LADDER_FAIL("rank ", rank, ": ", op, ": ", what, " failed: ", std::string(text, length));
}

#define LADDER_MPI_CALL(op, call) check_mpi((call), rank_, (op), #call)

// The bf16 reduction (an MPI_User_function): add in float, round back to bf16.
void bf16_sum(void* in, void* inout, int* length, MPI_Datatype* /*type*/) {
  const auto* a = static_cast<const bf16*>(in);
  auto* b = static_cast<bf16*>(inout);
  for (int i = 0; i < *length; ++i) b[i] = bf16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

char* at(void* base, int64_t element, DType dtype) {
  return static_cast<char*>(base) + element * dtype_bytes(dtype);
}
const char* at(const void* base, int64_t element, DType dtype) {
  return static_cast<const char*>(base) + element * dtype_bytes(dtype);
}

MPI_Comm dup_world() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized)
    LADDER_FAIL("MpiCommunicator: MPI is not running (an MpiSession must live in main())");
  MPI_Comm comm = MPI_COMM_NULL;
  int code = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  check_mpi(code, ProcessContext::get().rank(), "MpiCommunicator", "MPI_Comm_dup(MPI_COMM_WORLD)");
  return comm;
}

}  // namespace

MpiCommunicator::MpiCommunicator(double timeout_s, int64_t max_chunk)
    : MpiCommunicator(dup_world(), timeout_s, max_chunk) {}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, double timeout_s, int64_t max_chunk)
    : comm_(comm), timeout_s_(timeout_s), max_chunk_(max_chunk) {
  try {
    LADDER_CHECK(timeout_s > 0, "comm timeout must be > 0 s (got ", timeout_s, ")");
    LADDER_CHECK(max_chunk >= 1 && max_chunk <= kMaxChunk, "bad MPI chunk size ", max_chunk);
    // Errors come back as codes (thrown as ladder::Error) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &world_);
    LADDER_MPI_CALL("MpiCommunicator", MPI_Type_contiguous(2, MPI_BYTE, &bf16_type_));
    LADDER_MPI_CALL("MpiCommunicator", MPI_Type_commit(&bf16_type_));
    LADDER_MPI_CALL("MpiCommunicator", MPI_Op_create(&bf16_sum, /*commute=*/1, &bf16_sum_));
    watchdog_ = std::make_unique<CollectiveWatchdog>(rank_, timeout_s_);
  } catch (...) {
    if (bf16_sum_ != MPI_OP_NULL) MPI_Op_free(&bf16_sum_);
    if (bf16_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&bf16_type_);
    MPI_Comm_free(&comm_);
    throw;
  }
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;  // nothing can be freed after MPI_Finalize
  if (bf16_sum_ != MPI_OP_NULL) MPI_Op_free(&bf16_sum_);
  if (bf16_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&bf16_type_);
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

MPI_Datatype MpiCommunicator::mpi_type(DType dtype) const {
  switch (dtype) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kF64: return MPI_DOUBLE;
    case DType::kBF16: return bf16_type_;
  }
  LADDER_FAIL("rank ", rank_, ": unknown dtype");
}

int64_t MpiCommunicator::chunk(DType dtype) const {
  return std::min(max_chunk_, kMaxChunkBytes / dtype_bytes(dtype));
}

MPI_Op MpiCommunicator::sum_op(DType dtype) const {
  return dtype == DType::kBF16 ? bf16_sum_ : MPI_SUM;
}

void MpiCommunicator::all_reduce_sum(void* data, int64_t count, DType dtype) {
  static constexpr const char* kOp = "all_reduce_sum";
  detail::check_collective_buffers(rank_, kOp, count, data, data);
  CollectiveWatchdog::Armed armed(*watchdog_, kOp, count, dtype);
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    LADDER_MPI_CALL(kOp, MPI_Allreduce(MPI_IN_PLACE, at(data, offset, dtype), n, mpi_type(dtype),
                                       sum_op(dtype), comm_));
  }
}

void MpiCommunicator::reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) {
  static constexpr const char* kOp = "reduce_scatter_sum";
  detail::check_collective_buffers(rank_, kOp, count, send, recv);
  if (count == 0) return;
  CollectiveWatchdog::Armed armed(*watchdog_, kOp, count, dtype);
  if (count <= chunk(dtype) / world_) {
    LADDER_MPI_CALL(kOp, MPI_Reduce_scatter_block(send, recv, static_cast<int>(count),
                                                  mpi_type(dtype), sum_op(dtype), comm_));
    return;
  }
  // Too large for one int-counted call: piece by piece, one reduce to each owning rank.
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    for (int root = 0; root < world_; ++root) {
      void* target = root == rank_ ? at(recv, offset, dtype) : nullptr;
      LADDER_MPI_CALL(kOp, MPI_Reduce(at(send, int64_t{root} * count + offset, dtype), target, n,
                                      mpi_type(dtype), sum_op(dtype), root, comm_));
    }
  }
}

void MpiCommunicator::all_gather(const void* send, void* recv, int64_t count, DType dtype) {
  static constexpr const char* kOp = "all_gather";
  detail::check_collective_buffers(rank_, kOp, count, send, recv);
  if (count == 0) return;
  CollectiveWatchdog::Armed armed(*watchdog_, kOp, count, dtype);
  char* mine = at(recv, int64_t{rank_} * count, dtype);
  bool in_place = send == mine;
  if (count <= chunk(dtype) / world_) {
    int n = static_cast<int>(count);
    LADDER_MPI_CALL(kOp, MPI_Allgather(in_place ? MPI_IN_PLACE : send, n, mpi_type(dtype), recv,
                                       n, mpi_type(dtype), comm_));
    return;
  }
  // Too large for one int-counted call: each rank broadcasts its block piece by piece.
  if (!in_place) std::memmove(mine, send, static_cast<size_t>(count * dtype_bytes(dtype)));
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    for (int root = 0; root < world_; ++root)
      LADDER_MPI_CALL(kOp, MPI_Bcast(at(recv, int64_t{root} * count + offset, dtype), n,
                                     mpi_type(dtype), root, comm_));
  }
}

void MpiCommunicator::broadcast(void* data, int64_t count, DType dtype, int root) {
  static constexpr const char* kOp = "broadcast";
  detail::check_collective_buffers(rank_, kOp, count, data, data);
  detail::check_broadcast_root(rank_, root, world_);
  CollectiveWatchdog::Armed armed(*watchdog_, kOp, count, dtype);
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    LADDER_MPI_CALL(kOp, MPI_Bcast(at(data, offset, dtype), n, mpi_type(dtype), root, comm_));
  }
}

void MpiCommunicator::barrier() {
  static constexpr const char* kOp = "barrier";
  CollectiveWatchdog::Armed armed(*watchdog_, kOp, -1, DType::kF32);
  LADDER_MPI_CALL(kOp, MPI_Barrier(comm_));
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_node_local() const {
  MPI_Comm node = MPI_COMM_NULL;
  CollectiveWatchdog::Armed armed(*watchdog_, "split_node_local", -1, DType::kF32);
  LADDER_MPI_CALL("split_node_local",
                  MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(node, timeout_s_, max_chunk_));
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(int color) const {
  MPI_Comm group = MPI_COMM_NULL;
  CollectiveWatchdog::Armed armed(*watchdog_, "split", -1, DType::kF32);
  LADDER_MPI_CALL("split", MPI_Comm_split(comm_, color, rank_, &group));
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(group, timeout_s_, max_chunk_));
}

}  // namespace ladder

#endif  // LADDER_WITH_MPI
