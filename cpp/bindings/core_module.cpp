// The torch-free kernel module, compiled once per instruction set (_core_generic, _core_avx2,
// _core_avx512); semrec._native imports the best one this CPU can run.
#include <omp.h>

#include "bindings/register.hpp"

namespace py = pybind11;

PYBIND11_MODULE(SEMREC_MODULE_NAME, m) {
  m.doc() = "semrec kernels (" SEMREC_ISA ")";
  m.attr("isa") = SEMREC_ISA;
  m.def(
      "max_threads", [] { return omp_get_num_procs(); },
      "Number of processors OpenMP sees (what num_threads=0 means).");
  semrec::bindings::register_similarity(m);
  semrec::bindings::register_metrics(m);
  semrec::bindings::register_als(m);
  semrec::bindings::register_interest(m);
  semrec::bindings::register_rerank(m);
  semrec::bindings::register_knn(m);
  semrec::bindings::register_pq(m);
  semrec::bindings::register_blend(m);
}
