// Why this file exists: the communication benchmark, in the style of nccl-tests: run under
// mpirun, the Communicator's all-reduce, reduce-scatter and all-gather at 1K..16M floats,
// each beside the same blocking MPI call on MPI_COMM_WORLD, so that the table shows what the
// communicator's timeout guard (comm.timeout_s) costs: ratio = communicator / blocking MPI.
// The two are timed in alternating rounds; a time is the best round's mean per call on the
// slowest rank (on a shared machine other work only ever adds time, so the best of many
// rounds is what the call itself costs). Results are verified exactly.
//   mpirun -np 2 ./build/bench/bench_comm        (launch/local.sh sets the root/oversubscribe flags)
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"

using namespace ladder;

namespace {

constexpr int kRounds = 21;

// Mean seconds per call over `iterations` calls, as the slowest rank saw it.
template <class Call>
double time_calls(Call& call, int iterations) {
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) call();
  double local = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
                 iterations;
  double slowest = 0;
  MPI_Allreduce(&local, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

struct Times {
  double comm, mpi;
  double ratio() const { return comm / mpi; }
};

// The communicator's call against the blocking MPI call: a warm-up each, then kRounds rounds,
// the order swapped every round so that neither always runs first.
template <class Ours, class Blocking>
Times compare(Ours ours, Blocking blocking, int iterations) {
  ours();
  blocking();
  Times best{1e30, 1e30};
  for (int round = 0; round < kRounds; ++round) {
    if (round % 2 == 0) best.comm = std::min(best.comm, time_calls(ours, iterations));
    best.mpi = std::min(best.mpi, time_calls(blocking, iterations));
    if (round % 2 == 1) best.comm = std::min(best.comm, time_calls(ours, iterations));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession session(&argc, &argv);
  MpiCommunicator comm(60);
  const int rank = comm.rank(), world = comm.world();
  if (rank == 0)
    std::printf("bench_comm: %d ranks, f32, microseconds per call (best of %d alternating rounds,\n"
                "slowest rank); ratio = communicator / blocking MPI; busbw of the communicator's\n"
                "all-reduce as nccl-tests defines it\n\n"
                "%9s | %10s %10s %6s %6s | %10s %10s %6s | %10s %10s %6s\n",
                world, kRounds, "floats", "all_reduce", "Allreduce", "ratio", "GB/s", "red_scat",
                "Red_sc_blk", "ratio", "all_gather", "Allgather", "ratio");
  bool exact = true;
  double worst = 0;
  for (int64_t count : {int64_t(1) << 10, int64_t(1) << 14, int64_t(1) << 18, int64_t(1) << 20,
                        int64_t(1) << 22, int64_t(1) << 24}) {
    const int64_t padded = (count + world - 1) / world * world, each = padded / world;
    const int n = static_cast<int>(padded), m = static_cast<int>(each);
    std::vector<float> data(padded), shard(each), gathered(padded);
    const int iterations = static_cast<int>(std::clamp<int64_t>((int64_t(1) << 22) / count, 1, 1000));
    // Timed on zeros (sums of zeros stay zero, however many calls), verified below.
    Times all_reduce = compare(
        [&] { comm.all_reduce_sum(data.data(), padded, DType::kF32); },
        [&] { MPI_Allreduce(MPI_IN_PLACE, data.data(), n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); },
        iterations);
    Times reduce_scatter = compare(
        [&] { comm.reduce_scatter_sum(data.data(), shard.data(), each, DType::kF32); },
        [&] { MPI_Reduce_scatter_block(data.data(), shard.data(), m, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); },
        iterations);
    Times all_gather = compare(
        [&] { comm.all_gather(shard.data(), gathered.data(), each, DType::kF32); },
        [&] { MPI_Allgather(shard.data(), m, MPI_FLOAT, gathered.data(), m, MPI_FLOAT, MPI_COMM_WORLD); },
        iterations);
    worst = std::max({worst, all_reduce.ratio(), reduce_scatter.ratio(), all_gather.ratio()});

    // Exact: rank r contributes (r+1)·(i mod 7). Reduce-scatter then all-gather must rebuild
    // the all-reduce.
    const float ranks_sum = float(world * (world + 1) / 2);
    auto fill = [&] {
      for (int64_t i = 0; i < padded; ++i) data[i] = float((rank + 1) * (i % 7));
    };
    fill();
    comm.reduce_scatter_sum(data.data(), shard.data(), each, DType::kF32);
    comm.all_gather(shard.data(), gathered.data(), each, DType::kF32);
    comm.all_reduce_sum(data.data(), padded, DType::kF32);
    for (int64_t i = 0; i < padded; ++i)
      exact &= data[i] == ranks_sum * float(i % 7) && gathered[i] == data[i];

    const double busbw = double(padded) * 4 / all_reduce.comm * 2.0 * (world - 1) / world / 1e9;
    if (rank == 0)
      std::printf("%9lld | %10.1f %10.1f %6.3f %6.2f | %10.1f %10.1f %6.3f | %10.1f %10.1f %6.3f\n",
                  (long long)padded, all_reduce.comm * 1e6, all_reduce.mpi * 1e6, all_reduce.ratio(),
                  busbw, reduce_scatter.comm * 1e6, reduce_scatter.mpi * 1e6, reduce_scatter.ratio(),
                  all_gather.comm * 1e6, all_gather.mpi * 1e6, all_gather.ratio());
  }
  int mine = exact ? 1 : 0, everywhere = 0;
  MPI_Allreduce(&mine, &everywhere, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("\nworst ratio %.3f; results %s\n", worst, everywhere ? "exact on every rank" : "WRONG");
  return everywhere ? 0 : 1;
}
