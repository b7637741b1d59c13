// Why this file exists: the program behind CTest comm_stuck_peer (driven by
// comm_stuck_peer.py under real mpirun). Every rank but one calls one collective of the MPI
// communicator; the other rank is stuck (sleeps far past the timeout before it calls) or
// dead (kills itself). The collective's watchdog must end the job within the timeout, with
// exit code 1 and the error line naming the rank and the operation.
//   comm_stuck_peer OP TIMEOUT_S PEER stuck|dead
// OP: all_reduce_sum | reduce_scatter_sum | all_gather | broadcast (from PEER) | barrier.
// Each waiting rank prints "rank R enters OP at T" (T: steady_clock seconds, the clock of
// Python's time.monotonic()) just before the call.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "core/bf16.h"
#include "core/check.h"

namespace {

void run(ladder::MpiCommunicator& comm, const std::string& op, int peer) {
  const int world = comm.world();
  std::vector<float> f32(static_cast<size_t>(6 * world), 1.0f);
  std::vector<double> f64(static_cast<size_t>(4 * world), 1.0);
  std::vector<ladder::bf16> bf16s(static_cast<size_t>(3 * world), ladder::bf16(1.0f));
  if (op == "all_reduce_sum") {
    comm.all_reduce_sum(f32.data(), 5, ladder::DType::kF32);
  } else if (op == "reduce_scatter_sum") {
    std::vector<ladder::bf16> shard(3);
    comm.reduce_scatter_sum(bf16s.data(), shard.data(), 3, ladder::DType::kBF16);
  } else if (op == "all_gather") {
    std::vector<double> mine(4, 2.0);
    comm.all_gather(mine.data(), f64.data(), 4, ladder::DType::kF64);
  } else if (op == "broadcast") {
    comm.broadcast(f32.data(), 6, ladder::DType::kF32, peer);
  } else if (op == "barrier") {
    comm.barrier();
  } else {
    LADDER_FAIL("unknown operation ", op);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ladder::MpiSession session(&argc, &argv);
  if (argc != 5) {
    std::fprintf(stderr, "usage: comm_stuck_peer OP TIMEOUT_S PEER stuck|dead\n");
    return 2;
  }
  const std::string op = argv[1], mode = argv[4];
  const double timeout_s = std::atof(argv[2]);
  const int peer = std::atoi(argv[3]);
  ladder::MpiCommunicator comm(timeout_s);
  comm.barrier();  // everyone is up before the clock starts
  if (comm.rank() == peer) {
    if (mode == "dead") raise(SIGKILL);
    // Stuck: arrives, but far too late (if the watchdog failed, the job would still end,
    // with exit 0 after this sleep, and the driver would report it).
    std::this_thread::sleep_for(std::chrono::duration<double>(20 * timeout_s));
  } else {
    const double now = std::chrono::duration<double>(
                           std::chrono::steady_clock::now().time_since_epoch()).count();
    std::printf("rank %d enters %s at %.6f\n", comm.rank(), op.c_str(), now);
    std::fflush(stdout);
  }
  run(comm, op, peer);
  std::printf("rank %d completed %s\n", comm.rank(), op.c_str());
  return 0;
}
