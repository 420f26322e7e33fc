// A small check harness for the sanitizer build of the kernels (no test framework to install:
// the executable is the whole test). Every check compares a kernel with a plain re-implementation
// in double precision written here, or expects a documented exception type.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "semrec/als.hpp"
#include "semrec/similarity.hpp"

namespace checks {

using Rng = std::mt19937_64;

void expect(bool ok, const std::string& what, const char* file, int line);
// |a - b| <= tol * (1 + |b|), with NaN equal to NaN and infinities equal to themselves.
bool near(double a, double b, double tol);

#define EXPECT(cond, what) ::checks::expect((cond), (what), __FILE__, __LINE__)

// Runs stmt and expects it to throw Exception (a subclass counts) and nothing else.
#define EXPECT_THROWS(Exception, stmt, what)                                                     \
  do {                                                                                           \
    bool thrown_ = false;                                                                        \
    try {                                                                                        \
      stmt;                                                                                      \
    } catch (const Exception&) {                                                                 \
      thrown_ = true;                                                                            \
    } catch (...) {                                                                              \
    }                                                                                            \
    ::checks::expect(thrown_, std::string(what) + ": expected " #Exception, __FILE__, __LINE__); \
  } while (0)

// A CSR matrix owned by the test: rows' indices sorted ascending, no duplicates.
struct Csr {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int32_t> indices;
  std::vector<float> values;

  semrec::CsrView view() const { return {indptr.data(), indices.data(), rows, cols}; }
  semrec::CsrValuesView values_view() const {
    return {indptr.data(), indices.data(), values.data(), rows, cols};
  }
  bool contains(std::int64_t row, std::int32_t col) const;
};

// Each entry present with probability `density`; values uniform in [low, high).
Csr random_csr(Rng& rng, std::int64_t rows, std::int64_t cols, double density, float low,
               float high);
// rows x cols standard normal floats, row-major.
std::vector<float> random_matrix(Rng& rng, std::int64_t rows, std::int64_t cols);
semrec::MatrixView view(const std::vector<float>& m, std::int64_t rows, std::int64_t cols);
// Row-wise L2-normalised copy (zero rows stay zero).
std::vector<float> unit_rows(std::vector<float> m, std::int64_t rows, std::int64_t cols);
double dot(const float* a, const float* b, std::int64_t n);

// Checks one top-k row against reference scores (-inf marks an ineligible item): as many results
// as eligible items up to k, each eligible and distinct with its reference score, best first,
// ties by the lower id, padding (-1, -inf) after, and nothing left out that beats the last one.
void check_topk_row(const std::vector<double>& reference, const std::int32_t* ids,
                    const float* scores, int k, double tol, const std::string& label);

void check_similarity(Rng& rng);
void check_eager_tasks(Rng& rng);
void check_knn(Rng& rng);
void check_als(Rng& rng);
void check_interest(Rng& rng);
void check_rerank(Rng& rng);
void check_metrics(Rng& rng);
void check_pq(Rng& rng);
void check_gelu(Rng& rng);
void check_blend(Rng& rng);

}  // namespace checks
