// Why this file exists: proves the communicators under real mpirun (1..4 ranks, CTest
// comm_npN). In the nccl-tests style every rank fills values it can predict for every other
// rank, and results are checked exactly: all-reduce, reduce-scatter, all-gather (also in
// place), broadcast from a non-zero root and barrier, for f32/bf16/f64 and odd counts, through
// both the one-call and the chunked (int-count) MPI paths; then the NCCL communicator on
// device buffers where each rank owns a GPU. (A peer that never arrives ends the whole job,
// so that is a test of whole jobs: comm_stuck_peer.py.) The program has its own main(): MPI
// session, one gtest report (rank 0; other ranks print only failures), results combined
// over all ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "core/bf16.h"
#include "core/check.h"
#include "core/context.h"

#ifdef LADDER_WITH_NCCL
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#endif

namespace ladder {
namespace {

const DType kDTypes[] = {DType::kF32, DType::kBF16, DType::kF64};
const int64_t kCounts[] = {1, 7, 1025, 1000003};
// Small enough that 1025 (reduce-scatter, all-gather on 4 ranks) and 1000003 take the
// chunked path; the default chunk takes one call for all of them.
constexpr int64_t kSmallChunk = 4096;

// A value every rank can predict for (rank, index), exact in the dtype and in sums over up to
// four ranks: small integers (bf16 holds integers exactly up to 256).
double pattern(DType dtype, int rank, int64_t index) {
  if (dtype == DType::kBF16) return rank * 16 + index % 16;
  return rank * 1000 + index % 1048576;
}

double sum_over_ranks(DType dtype, int world, int64_t index) {
  double total = 0;
  for (int r = 0; r < world; ++r) total += pattern(dtype, r, index);
  return total;
}

// A typed buffer on the host, mirrored on the device when the communicator wants device
// pointers (fill on the host, upload, run, download, check on the host).
class Buffer {
 public:
  Buffer(DType dtype, int64_t count, bool device)
      : dtype_(dtype), count_(count), host_(static_cast<size_t>(count * dtype_bytes(dtype))) {
#ifdef LADDER_WITH_NCCL
    if (device && !host_.empty()) LADDER_CUDA_CHECK(cudaMalloc(&device_, host_.size()));
#else
    if (device) LADDER_FAIL("device buffers in a build without CUDA");
#endif
  }
  ~Buffer() {
#ifdef LADDER_WITH_NCCL
    if (device_ != nullptr) cudaFree(device_);
#endif
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void set(int64_t i, double value) {
    char* at = host_.data() + i * dtype_bytes(dtype_);
    if (dtype_ == DType::kF32) {
      float v = static_cast<float>(value);
      std::memcpy(at, &v, sizeof v);
    } else if (dtype_ == DType::kBF16) {
      bf16 v(static_cast<float>(value));
      std::memcpy(at, &v, sizeof v);
    } else {
      std::memcpy(at, &value, sizeof value);
    }
  }
  double get(int64_t i) const {
    const char* at = host_.data() + i * dtype_bytes(dtype_);
    if (dtype_ == DType::kF32) {
      float v;
      std::memcpy(&v, at, sizeof v);
      return v;
    }
    if (dtype_ == DType::kBF16) {
      bf16 v;
      std::memcpy(&v, at, sizeof v);
      return static_cast<float>(v);
    }
    double v;
    std::memcpy(&v, at, sizeof v);
    return v;
  }
  int64_t count() const { return count_; }
  // The pointer the communicator gets (device when mirrored), offset by `element`.
  void* data(int64_t element = 0) {
    char* base = device_ != nullptr ? static_cast<char*>(device_) : host_.data();
    return base + element * dtype_bytes(dtype_);
  }
  void upload() {
#ifdef LADDER_WITH_NCCL
    if (device_ != nullptr)
      LADDER_CUDA_CHECK(cudaMemcpy(device_, host_.data(), host_.size(), cudaMemcpyHostToDevice));
#endif
  }
  void download() {
#ifdef LADDER_WITH_NCCL
    if (device_ != nullptr)
      LADDER_CUDA_CHECK(cudaMemcpy(host_.data(), device_, host_.size(), cudaMemcpyDeviceToHost));
#endif
  }

 private:
  DType dtype_;
  int64_t count_;
  std::vector<char> host_;
  void* device_ = nullptr;
};

// "" when buffer[i] == expected(i) for every i; else the number of mismatches and the first.
template <class Expected>
std::string mismatches(const Buffer& buffer, Expected expected) {
  int64_t wrong = 0, first = -1;
  for (int64_t i = 0; i < buffer.count(); ++i) {
    if (buffer.get(i) != expected(i)) {
      if (first < 0) first = i;
      ++wrong;
    }
  }
  if (wrong == 0) return "";
  std::ostringstream os;
  os << wrong << " of " << buffer.count() << " wrong; first at " << first << ": got "
     << buffer.get(first) << ", want " << expected(first);
  return os.str();
}

std::string context(const Communicator& comm, const char* op, DType dtype, int64_t count) {
  std::ostringstream os;
  os << comm.backend() << " rank " << comm.rank() << "/" << comm.world() << ": " << op << " of "
     << count << " " << dtype_name(dtype);
  return os.str();
}

void check_all_reduce(Communicator& comm, DType dtype, int64_t count) {
  Buffer data(dtype, count, comm.device_buffers());
  for (int64_t i = 0; i < count; ++i) data.set(i, pattern(dtype, comm.rank(), i));
  data.upload();
  comm.all_reduce_sum(data.data(), count, dtype);
  data.download();
  EXPECT_EQ(mismatches(data, [&](int64_t i) { return sum_over_ranks(dtype, comm.world(), i); }), "")
      << context(comm, "all_reduce_sum", dtype, count);
}

void check_reduce_scatter(Communicator& comm, DType dtype, int64_t count) {
  const int world = comm.world(), rank = comm.rank();
  Buffer send(dtype, world * count, comm.device_buffers());
  Buffer recv(dtype, count, comm.device_buffers());
  for (int64_t j = 0; j < world * count; ++j) send.set(j, pattern(dtype, rank, j));
  for (int64_t i = 0; i < count; ++i) recv.set(i, -1);
  send.upload();
  recv.upload();
  comm.reduce_scatter_sum(send.data(), recv.data(), count, dtype);
  recv.download();
  EXPECT_EQ(mismatches(recv, [&](int64_t i) { return sum_over_ranks(dtype, world, rank * count + i); }),
            "")
      << context(comm, "reduce_scatter_sum", dtype, count);
}

void check_all_gather(Communicator& comm, DType dtype, int64_t count, bool in_place) {
  const int world = comm.world(), rank = comm.rank();
  Buffer recv(dtype, world * count, comm.device_buffers());
  Buffer send(dtype, in_place ? 0 : count, comm.device_buffers());
  for (int64_t j = 0; j < world * count; ++j) recv.set(j, -1);
  if (in_place) {
    for (int64_t i = 0; i < count; ++i) recv.set(rank * count + i, pattern(dtype, rank, i));
  } else {
    for (int64_t i = 0; i < count; ++i) send.set(i, pattern(dtype, rank, i));
    send.upload();
  }
  recv.upload();
  const void* source = in_place ? recv.data(rank * count) : send.data();
  comm.all_gather(source, recv.data(), count, dtype);
  recv.download();
  EXPECT_EQ(mismatches(recv, [&](int64_t j) { return pattern(dtype, static_cast<int>(j / count), j % count); }),
            "")
      << context(comm, in_place ? "all_gather (in place)" : "all_gather", dtype, count);
}

void check_broadcast(Communicator& comm, DType dtype, int64_t count) {
  const int root = comm.world() - 1;  // non-zero whenever there is more than one rank
  Buffer data(dtype, count, comm.device_buffers());
  for (int64_t i = 0; i < count; ++i) data.set(i, pattern(dtype, comm.rank(), i));
  data.upload();
  comm.broadcast(data.data(), count, dtype, root);
  data.download();
  EXPECT_EQ(mismatches(data, [&](int64_t i) { return pattern(dtype, root, i); }), "")
      << context(comm, "broadcast from the last rank", dtype, count);
}

void check_every_collective(Communicator& comm) {
  for (DType dtype : kDTypes) {
    for (int64_t count : kCounts) {
      check_all_reduce(comm, dtype, count);
      check_reduce_scatter(comm, dtype, count);
      check_all_gather(comm, dtype, count, /*in_place=*/false);
      check_all_gather(comm, dtype, count, /*in_place=*/true);
      check_broadcast(comm, dtype, count);
    }
  }
  comm.barrier();
}

// Rank 0 arrives late; everyone else must wait for it in the barrier.
void check_barrier_waits(Communicator& comm) {
  using Clock = std::chrono::steady_clock;
  comm.barrier();
  auto start = Clock::now();
  if (comm.rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  comm.barrier();
  double waited = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GE(waited, 0.25) << comm.backend() << " rank " << comm.rank()
                          << " left the barrier before rank 0 arrived";
}

int world_size() { return ProcessContext::get().world(); }
int my_rank() { return ProcessContext::get().rank(); }

TEST(Comm, MpiTopologyMatchesTheProcess) {
  MpiCommunicator comm(60);
  EXPECT_EQ(comm.rank(), my_rank());
  EXPECT_EQ(comm.world(), world_size());
  EXPECT_EQ(comm.backend(), "mpi");
  EXPECT_FALSE(comm.device_buffers());
  auto node = comm.split_node_local();
  EXPECT_EQ(node->world(), world_size());  // mpirun here runs every rank on this node
  EXPECT_EQ(node->rank(), my_rank());
}

TEST(Comm, MpiExactResultsOneCallPerCollective) {
  MpiCommunicator comm(60);
  check_every_collective(comm);
}

TEST(Comm, MpiExactResultsInChunks) {
  MpiCommunicator comm(60, kSmallChunk);
  check_every_collective(comm);
}

TEST(Comm, MpiBarrierWaitsForTheLastRank) {
  if (world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  MpiCommunicator comm(60);
  check_barrier_waits(comm);
}

// The timeout is per collective, however long the run: rank 0 arrives 0.3 s late at each of
// five barriers under a 1 s timeout (1.5 s in all). A watchdog that fired would end the job.
TEST(Comm, MpiTimeoutIsPerCollective) {
  using Clock = std::chrono::steady_clock;
  MpiCommunicator comm(1.0);
  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) {
    if (comm.rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    comm.barrier();
  }
  float value = 1;
  comm.all_reduce_sum(&value, 1, DType::kF32);
  EXPECT_EQ(value, static_cast<float>(comm.world()));
  EXPECT_GE(std::chrono::duration<double>(Clock::now() - start).count(), 1.5);
}

TEST(Comm, MpiZeroCountsAndBadArguments) {
  MpiCommunicator comm(60);
  comm.all_reduce_sum(nullptr, 0, DType::kF32);
  comm.reduce_scatter_sum(nullptr, nullptr, 0, DType::kBF16);
  comm.all_gather(nullptr, nullptr, 0, DType::kF64);
  comm.broadcast(nullptr, 0, DType::kF32, 0);
  float value = 1;
  // Checked locally on every rank before anything is sent, so no rank is left waiting.
  EXPECT_THROW(comm.broadcast(&value, 1, DType::kF32, world_size()), Error);
  EXPECT_THROW(comm.all_reduce_sum(&value, -1, DType::kF32), Error);
  comm.barrier();
}

// bf16 sums round to nearest even after each addition, like the GPU.
TEST(Comm, MpiBf16SumRoundsToNearest) {
  MpiCommunicator comm(60);
  // 256 + 1 per other rank: 257 is not representable and ties to 256, so the sum of two
  // ranks stays 256; with three or four, the order decides, but every rank must agree.
  std::vector<bf16> data(3);
  data[0] = bf16(comm.rank() == 0 ? 256.0f : 1.0f);
  data[1] = bf16(0.5f);
  data[2] = bf16(-1.0f * comm.rank());
  comm.all_reduce_sum(data.data(), 3, DType::kBF16);
  if (comm.world() == 2) {
    EXPECT_EQ(static_cast<float>(data[0]), 256.0f);
  }
  EXPECT_EQ(static_cast<float>(data[1]), 0.5f * comm.world());
  EXPECT_EQ(static_cast<float>(data[2]), -0.5f * comm.world() * (comm.world() - 1));
  // Every rank holds the same bits.
  std::vector<bf16> gathered(static_cast<size_t>(comm.world()));
  comm.all_gather(&data[0], gathered.data(), 1, DType::kBF16);
  for (const bf16& other : gathered) EXPECT_EQ(other.bits, data[0].bits);
}

TEST(Comm, MakeCommunicatorChoosesTheBackend) {
  CommSettings settings;
  settings.timeout_s = 60;
  settings.backend = "mpi";
  EXPECT_EQ(make_communicator(settings)->backend(), "mpi");
  settings.backend = "auto";  // CPU ranks: MPI
  auto automatic = make_communicator(settings);
  EXPECT_EQ(automatic->backend(), "mpi");
  EXPECT_EQ(automatic->world(), world_size());

  settings.backend = "nccl";  // NCCL for CPU ranks is a usage error (any build)
  EXPECT_THROW(make_communicator(settings), UsageError);
  settings.backend = "gloo";
  EXPECT_THROW(make_communicator(settings), UsageError);
  settings.backend = "mpi";
  settings.timeout_s = 0;
  EXPECT_THROW(make_communicator(settings), UsageError);
}

TEST(Comm, MakeCommunicatorForGpuRanks) {
  CommSettings settings;
  settings.timeout_s = 60;
  settings.cuda_ranks = true;
  settings.backend = "nccl";
#ifdef LADDER_WITH_NCCL
  // NCCL when every rank owns a GPU; otherwise a usage error on every rank alike.
  try {
    auto comm = make_communicator(settings);
    EXPECT_EQ(comm->backend(), "nccl");
    EXPECT_TRUE(comm->device_buffers());
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("needs one GPU per rank"), std::string::npos) << e.what();
  }
  settings.backend = "auto";  // never fails for want of GPUs: falls back to MPI
  std::string backend = make_communicator(settings)->backend();
  EXPECT_TRUE(backend == "nccl" || backend == "mpi") << backend;
#else
  try {
    make_communicator(settings);
    ADD_FAILURE() << "comm.backend = nccl accepted without CUDA";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("needs a CUDA build"), std::string::npos) << e.what();
  }
  settings.backend = "auto";
  EXPECT_EQ(make_communicator(settings)->backend(), "mpi");
#endif
}

// Buffers past 2^31 elements (MPI counts are int). Opt-in: LADDER_TEST_HUGE_COMM=1 (about
// 4.3 GB of host memory per rank, seconds per collective); the chunked path itself is also
// covered above with a small chunk.
TEST(Comm, MpiBeyondIntCounts) {
  const char* flag = std::getenv("LADDER_TEST_HUGE_COMM");
  if (flag == nullptr || std::string(flag) != "1") {
    GTEST_SKIP() << "set LADDER_TEST_HUGE_COMM=1 to run";
  }
  MpiCommunicator comm(600);
  const int64_t count = (int64_t{1} << 31) + 3;
  std::vector<bf16> data(static_cast<size_t>(count), bf16(1.0f));
  data[count - 1] = bf16(static_cast<float>(comm.rank()));
  comm.all_reduce_sum(data.data(), count, DType::kBF16);
  int64_t wrong = 0;
  for (int64_t i = 0; i + 1 < count; ++i) wrong += static_cast<float>(data[i]) != comm.world();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(static_cast<float>(data[count - 1]), 0.5f * comm.world() * (comm.world() - 1));
  // All-gather in place of (2^31 + 3) / world elements per rank, tagged by rank at both ends.
  const int64_t each = count / comm.world();
  std::fill(data.begin(), data.end(), bf16(-1.0f));
  data[comm.rank() * each] = bf16(static_cast<float>(comm.rank()));
  data[comm.rank() * each + each - 1] = bf16(static_cast<float>(comm.rank()));
  comm.all_gather(&data[comm.rank() * each], data.data(), each, DType::kBF16);
  for (int r = 0; r < comm.world(); ++r) {
    EXPECT_EQ(static_cast<float>(data[r * each]), static_cast<float>(r));
    EXPECT_EQ(static_cast<float>(data[r * each + each - 1]), static_cast<float>(r));
  }
}

#ifdef LADDER_WITH_NCCL
// Runs only where every rank owns a GPU (e.g. one rank on a GPU machine); skipped elsewhere
// (the decision is collective, so all ranks skip or run alike).
TEST(Comm, NcclExactResultsOnDeviceBuffers) {
  CommSettings settings;
  settings.timeout_s = 60;
  settings.cuda_ranks = true;
  settings.backend = "auto";
  auto comm = make_communicator(settings);
  if (comm->backend() != "nccl") {
    GTEST_SKIP() << "no GPU of its own for every rank";
  }
  check_every_collective(*comm);
  if (comm->world() >= 2) check_barrier_waits(*comm);
}
#endif

}  // namespace
}  // namespace ladder
