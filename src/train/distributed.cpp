#include "train/distributed.h"

#include <climits>
#include <cstdlib>

#include "core/error.h"

#ifdef CAMELID_HAVE_MPI
#include <mpi.h>
#endif

namespace camelid::train {

namespace {
// Ranks mpirun (Open MPI, MPICH/Hydra, PMIx) says this process belongs to; 1 when not under mpirun.
int launcher_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  return 1;
}
}  // namespace

bool built_with_mpi() {
#ifdef CAMELID_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Comm& Comm::world() {
  static Comm comm;
  return comm;
}

Comm::Comm() {
  const int n = launcher_size();
  if (n <= 1) return;
#ifdef CAMELID_HAVE_MPI
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);  // OpenMP threads never call MPI
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  mpi_ = true;
#else
  fail("started by mpirun with ", n, " ranks, but this camelid was built without MPI (Debian: libopenmpi-dev)");
#endif
}

Comm::~Comm() {
#ifdef CAMELID_HAVE_MPI
  if (mpi_) MPI_Finalize();
#endif
}

// MPI counts are ints: large buffers go in chunks.
void Comm::allreduce_sum(float* data, size_t n) {
#ifdef CAMELID_HAVE_MPI
  if (!mpi_) return;
  for (size_t i = 0; i < n; i += INT_MAX / 2)
    MPI_Allreduce(MPI_IN_PLACE, data + i, int(std::min(n - i, size_t(INT_MAX / 2))), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
#endif
}

void Comm::allreduce_sum(double* data, size_t n) {
#ifdef CAMELID_HAVE_MPI
  if (!mpi_) return;
  for (size_t i = 0; i < n; i += INT_MAX / 2)
    MPI_Allreduce(MPI_IN_PLACE, data + i, int(std::min(n - i, size_t(INT_MAX / 2))), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#endif
}

void Comm::broadcast(void* data, size_t bytes, int root) {
#ifdef CAMELID_HAVE_MPI
  if (!mpi_) return;
  auto* p = static_cast<char*>(data);
  for (size_t i = 0; i < bytes; i += INT_MAX / 2)
    MPI_Bcast(p + i, int(std::min(bytes - i, size_t(INT_MAX / 2))), MPI_BYTE, root, MPI_COMM_WORLD);
#endif
}

void Comm::barrier() {
#ifdef CAMELID_HAVE_MPI
  if (mpi_) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void Comm::abort(int code) {
#ifdef CAMELID_HAVE_MPI
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

}  // namespace camelid::train
