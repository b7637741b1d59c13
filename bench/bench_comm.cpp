// Why this file exists: the communication benchmark, in the style of nccl-tests: run under
// mpirun, each collective of the Communicator at several sizes, rank 0 prints a table of
// time and bus bandwidth, with results verified exactly (sums of small integers). It also
// times plain blocking MPI_Allreduce at the same sizes, to show what the communicator's
// timeout machinery (non-blocking calls polled against comm.timeout_s) costs.
//   mpirun -np 2 ./build/bench/bench_comm        (launch/local.sh sets the root/oversubscribe flags)
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "core/check.h"

using namespace ladder;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Median-free simple timing: a warm-up call, then `iterations` calls; the slowest rank's time.
template <class Call>
double time_call(Call&& call, int iterations) {
  call();
  MPI_Barrier(MPI_COMM_WORLD);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) call();
  double local = seconds_since(start) / iterations, slowest = 0;
  MPI_Allreduce(&local, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession session(&argc, &argv);
  MpiCommunicator comm(60);
  const int rank = comm.rank(), world = comm.world();
  if (rank == 0)
    std::printf("bench_comm: %d ranks, f32; bus bandwidth as nccl-tests defines it\n\n"
                "%10s %12s %12s %12s %12s %14s\n", world, "floats", "allreduce", "busbw GB/s",
                "MPI blocking", "red.scatter", "allgather");
  bool all_exact = true;
  for (int64_t count : {int64_t(1) << 10, int64_t(1) << 14, int64_t(1) << 18, int64_t(1) << 20,
                        int64_t(1) << 22, int64_t(1) << 24}) {
    const int64_t padded = (count + world - 1) / world * world;
    std::vector<float> data(padded), shard(padded / world), gathered(padded);
    const int iterations = count >= (1 << 22) ? 5 : 20;
    auto fill = [&] {
      for (int64_t i = 0; i < padded; ++i) data[i] = float((rank + 1) * (i % 7));
    };
    fill();
    double all_reduce = time_call([&] { comm.all_reduce_sum(data.data(), padded, DType::kF32); }, iterations);
    // Verify one fresh all-reduce exactly: Σ_r (r+1)·(i mod 7).
    fill();
    comm.all_reduce_sum(data.data(), padded, DType::kF32);
    const float ranks_sum = float(world * (world + 1) / 2);
    for (int64_t i = 0; i < padded; ++i) all_exact &= data[i] == ranks_sum * float(i % 7);
    fill();
    double blocking = time_call([&] {
      MPI_Allreduce(MPI_IN_PLACE, data.data(), int(padded), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }, iterations);
    double reduce_scatter = time_call(
        [&] { comm.reduce_scatter_sum(data.data(), shard.data(), padded / world, DType::kF32); }, iterations);
    double all_gather = time_call(
        [&] { comm.all_gather(shard.data(), gathered.data(), padded / world, DType::kF32); }, iterations);
    const double bytes = double(padded) * 4;
    const double busbw = bytes / all_reduce * 2.0 * (world - 1) / world / 1e9;
    if (rank == 0)
      std::printf("%10lld %10.3f ms %12.2f %9.3f ms %9.3f ms %11.3f ms\n", (long long)padded,
                  all_reduce * 1e3, busbw, blocking * 1e3, reduce_scatter * 1e3, all_gather * 1e3);
  }
  int exact = all_exact ? 1 : 0, everywhere = 0;
  MPI_Allreduce(&exact, &everywhere, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rank == 0) std::printf("\nresults %s\n", everywhere ? "exact on every rank" : "WRONG");
  return everywhere ? 0 : 1;
}
