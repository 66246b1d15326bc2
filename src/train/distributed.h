#pragma once
// Data-parallel training across processes: each rank runs the same model on its share of the
// global batch and the gradients are summed over ranks (MPI all-reduce) before the optimizer
// step, so every rank holds the same weights. Without MPI (a build without it, or a process not
// started by mpirun) there is one rank and every call is a no-op.
#include <cstddef>

namespace camelid::train {

class Comm {
 public:
  // The process group this program was started in: MPI_COMM_WORLD under mpirun (MPI is
  // initialised on first use and finalised at exit), else a group of one. Throws Error when
  // started by mpirun with several ranks but built without MPI.
  static Comm& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // In place: data[i] = sum over ranks of data[i].
  void allreduce_sum(float* data, size_t n);
  void allreduce_sum(double* data, size_t n);
  // Root's bytes to every rank.
  void broadcast(void* data, size_t bytes, int root = 0);
  void barrier();
  // Ends every rank of the job (a failure on one rank would otherwise leave the others waiting
  // in a collective); a plain exit with one rank.
  [[noreturn]] void abort(int code);

  ~Comm();

 private:
  Comm();
  int rank_ = 0, size_ = 1;
  bool mpi_ = false;
};

// Whether this binary was built with MPI.
bool built_with_mpi();

}  // namespace camelid::train
