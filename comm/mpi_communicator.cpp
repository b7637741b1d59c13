// Why this file exists: the MPI implementation of the Communicator. Every collective is
// issued in its non-blocking form and polled against a deadline, so that a peer that died or
// never arrives turns into an exception naming this rank and the operation (comm.timeout_s)
// instead of a hang. MPI counts are int, so buffers above max_chunk elements go in pieces.
#ifdef LADDER_WITH_MPI

#include "comm/mpi_communicator.h"

#include <algorithm>
#include <cstring>
#include <thread>

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
  } catch (...) {
    if (bf16_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&bf16_type_);
    MPI_Comm_free(&comm_);
    throw;
  }
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;  // nothing can be freed after MPI_Finalize
  // Give operations abandoned by a timeout a short, bounded chance to finish (the peer may
  // have arrived late), so that they are released before MPI_Finalize; never wait longer.
  if (!abandoned_.empty()) {
    auto until = Clock::now() + std::chrono::seconds(1);
    int done = 0;
    while (MPI_Testall(static_cast<int>(abandoned_.size()), abandoned_.data(), &done,
                       MPI_STATUSES_IGNORE) == MPI_SUCCESS &&
           !done && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
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

void MpiCommunicator::check_usable(const char* op) const {
  if (!broken_by_.empty())
    LADDER_FAIL("rank ", rank_, ": collective ", op, " refused: the MPI communicator is unusable after ",
                broken_by_, " timed out");
}

void MpiCommunicator::wait_all(std::vector<MPI_Request>& requests, Clock::time_point deadline,
                               const char* op, int64_t count, DType dtype) {
  // Spin (yielding the core) for the first milliseconds: small collectives finish in
  // microseconds, and MPI_Test is what drives the progress of non-blocking collectives, so
  // polling often matters. Past that, short sleeps leave the cores to ranks still computing.
  const auto spin_until = Clock::now() + std::chrono::milliseconds(2);
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    int done = 0;
    LADDER_MPI_CALL(op, MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done,
                                    MPI_STATUSES_IGNORE));
    if (done) return;
    if (Clock::now() >= deadline) {
      for (MPI_Request request : requests)
        if (request != MPI_REQUEST_NULL) abandoned_.push_back(request);
      requests.clear();
      broken_by_ = op;
      std::string what = count < 0 ? std::string()
                                   : detail::concat(" of ", count, " ", dtype_name(dtype));
      LADDER_FAIL("rank ", rank_, ": collective ", op, what, " did not complete within ",
                  timeout_s_, " s (a peer failed or is stuck)");
    }
    if (Clock::now() < spin_until) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(200));
    }
  }
}

namespace {
std::chrono::steady_clock::time_point deadline_after(double seconds) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(seconds));
}
}  // namespace

void MpiCommunicator::all_reduce_sum(void* data, int64_t count, DType dtype) {
  static constexpr const char* kOp = "all_reduce_sum";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, data, data);
  auto deadline = deadline_after(timeout_s_);
  std::vector<MPI_Request> requests(1);
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    LADDER_MPI_CALL(kOp, MPI_Iallreduce(MPI_IN_PLACE, at(data, offset, dtype), n, mpi_type(dtype),
                                        sum_op(dtype), comm_, &requests[0]));
    wait_all(requests, deadline, kOp, count, dtype);
  }
}

void MpiCommunicator::reduce_scatter_sum(const void* send, void* recv, int64_t count, DType dtype) {
  static constexpr const char* kOp = "reduce_scatter_sum";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, send, recv);
  if (count == 0) return;
  auto deadline = deadline_after(timeout_s_);
  if (count <= chunk(dtype) / world_) {
    std::vector<MPI_Request> requests(1);
    LADDER_MPI_CALL(kOp, MPI_Ireduce_scatter_block(send, recv, static_cast<int>(count),
                                                   mpi_type(dtype), sum_op(dtype), comm_,
                                                   &requests[0]));
    wait_all(requests, deadline, kOp, count, dtype);
    return;
  }
  // Too large for one int-counted call: piece by piece, one reduce to each owning rank.
  std::vector<MPI_Request> requests(world_);
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    for (int root = 0; root < world_; ++root) {
      void* target = root == rank_ ? at(recv, offset, dtype) : nullptr;
      LADDER_MPI_CALL(kOp, MPI_Ireduce(at(send, int64_t{root} * count + offset, dtype), target, n,
                                       mpi_type(dtype), sum_op(dtype), root, comm_,
                                       &requests[root]));
    }
    wait_all(requests, deadline, kOp, count, dtype);
  }
}

void MpiCommunicator::all_gather(const void* send, void* recv, int64_t count, DType dtype) {
  static constexpr const char* kOp = "all_gather";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, send, recv);
  if (count == 0) return;
  auto deadline = deadline_after(timeout_s_);
  char* mine = at(recv, int64_t{rank_} * count, dtype);
  bool in_place = send == mine;
  if (count <= chunk(dtype) / world_) {
    std::vector<MPI_Request> requests(1);
    int n = static_cast<int>(count);
    LADDER_MPI_CALL(kOp, MPI_Iallgather(in_place ? MPI_IN_PLACE : send, n, mpi_type(dtype), recv,
                                        n, mpi_type(dtype), comm_, &requests[0]));
    wait_all(requests, deadline, kOp, count, dtype);
    return;
  }
  // Too large for one int-counted call: each rank broadcasts its block piece by piece.
  if (!in_place) std::memmove(mine, send, static_cast<size_t>(count * dtype_bytes(dtype)));
  std::vector<MPI_Request> requests(world_);
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    for (int root = 0; root < world_; ++root)
      LADDER_MPI_CALL(kOp, MPI_Ibcast(at(recv, int64_t{root} * count + offset, dtype), n,
                                      mpi_type(dtype), root, comm_, &requests[root]));
    wait_all(requests, deadline, kOp, count, dtype);
  }
}

void MpiCommunicator::broadcast(void* data, int64_t count, DType dtype, int root) {
  static constexpr const char* kOp = "broadcast";
  check_usable(kOp);
  detail::check_collective_buffers(rank_, kOp, count, data, data);
  detail::check_broadcast_root(rank_, root, world_);
  auto deadline = deadline_after(timeout_s_);
  std::vector<MPI_Request> requests(1);
  for (int64_t offset = 0; offset < count; offset += chunk(dtype)) {
    int n = static_cast<int>(std::min(chunk(dtype), count - offset));
    LADDER_MPI_CALL(kOp, MPI_Ibcast(at(data, offset, dtype), n, mpi_type(dtype), root, comm_,
                                    &requests[0]));
    wait_all(requests, deadline, kOp, count, dtype);
  }
}

void MpiCommunicator::barrier() {
  static constexpr const char* kOp = "barrier";
  check_usable(kOp);
  std::vector<MPI_Request> requests(1);
  LADDER_MPI_CALL(kOp, MPI_Ibarrier(comm_, &requests[0]));
  wait_all(requests, deadline_after(timeout_s_), kOp, -1, DType::kF32);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_node_local() const {
  check_usable("split_node_local");
  MPI_Comm node = MPI_COMM_NULL;
  LADDER_MPI_CALL("split_node_local",
                  MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(node, timeout_s_, max_chunk_));
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(int color) const {
  check_usable("split");
  MPI_Comm group = MPI_COMM_NULL;
  LADDER_MPI_CALL("split", MPI_Comm_split(comm_, color, rank_, &group));
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(group, timeout_s_, max_chunk_));
}

}  // namespace ladder

#endif  // LADDER_WITH_MPI
