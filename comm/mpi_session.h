// Why this file exists: RAII for the MPI runtime. Constructed once in main(): initialises MPI
// (when built with it), records rank and world in the process context, finalises on exit.
// A plain `ladder train` without mpirun runs as a singleton world of one.
#pragma once

namespace ladder {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Ends every rank now (an error on one rank must not leave the others hanging).
  [[noreturn]] static void abort_all(int exit_code);

  // This rank's index among the ranks of its node (mpirun and Slurm say it), for the choice
  // of GPU; 0 when launched otherwise.
  static int node_local_rank();

 private:
  bool owns_mpi_ = false;
};

}  // namespace ladder
