// Why this file exists: MPI start-up and shutdown behind one small class.
#include "comm/mpi_session.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <thread>

#include "core/context.h"

#ifdef LADDER_WITH_MPI
#include <mpi.h>
#endif

namespace ladder {

MpiSession::MpiSession(int* argc, char*** argv) {
#ifdef LADDER_WITH_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    owns_mpi_ = true;
  }
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ProcessContext::get().set_topology(rank, world);
#else
  (void)argc;
  (void)argv;
#endif
}

MpiSession::~MpiSession() {
#ifdef LADDER_WITH_MPI
  if (owns_mpi_) MPI_Finalize();
#endif
}

int MpiSession::node_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return 0;
}

void MpiSession::abort_all(int exit_code) {
#ifdef LADDER_WITH_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized && ProcessContext::get().world() > 1) {
    // mpirun forwards our stderr asynchronously and may drop what is still in flight when it
    // tears the job down: give the error line a moment to arrive before aborting.
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
#endif
  std::exit(exit_code);
}

}  // namespace ladder
