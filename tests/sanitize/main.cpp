// The kernels' checks under AddressSanitizer and UndefinedBehaviorSanitizer (make sanitize):
// every kernel in cpp/semrec on many shapes, edge cases and invalid inputs. Any sanitizer report
// aborts the run; a failed comparison is counted and printed.
#include <cstdio>
#include <exception>

#include "harness.hpp"

namespace checks {
extern long g_passed;
extern long g_failed;
}  // namespace checks

int main() {
  checks::Rng rng(20260101);
  const struct {
    const char* name;
    void (*run)(checks::Rng&);
  } suites[] = {{"similarity", checks::check_similarity},
                {"eager tasks", checks::check_eager_tasks},
                {"knn", checks::check_knn},
                {"als", checks::check_als},
                {"interest", checks::check_interest},
                {"rerank", checks::check_rerank},
                {"metrics", checks::check_metrics},
                {"pq", checks::check_pq},
                {"gelu", checks::check_gelu},
                {"blend", checks::check_blend}};
  for (const auto& suite : suites) {
    try {
      suite.run(rng);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FAIL %s: unexpected exception: %s\n", suite.name, e.what());
      ++checks::g_failed;
    }
  }
  std::printf("kernel checks: %ld passed, %ld failed\n", checks::g_passed, checks::g_failed);
  return checks::g_failed == 0 ? 0 : 1;
}
