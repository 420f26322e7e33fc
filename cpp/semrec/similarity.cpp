#include "semrec/similarity.hpp"

#include <Eigen/Core>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "semrec/eager_tasks.hpp"
#include "semrec/quantized_scan.hpp"
#include "semrec/topk_selector.hpp"

namespace semrec {
namespace {

using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------------
// Dot products with one fixed summation order.
//
// Every score is q[0]*x[0] + q[1]*x[1] + ... accumulated left to right, one fused multiply-add
// per term where the instruction set has FMA (explicit intrinsics; the core is built with
// -ffp-contract=off so the compiler never fuses on its own), multiply then add elsewhere. Every
// path below follows that order exactly, so a score is bitwise the same whichever path, block
// position, batch size or thread computed it: identical items tie exactly and the tie goes to
// the lower id. (Eigen's GEMM sums in different orders for edge rows, which broke that.)
//
// Items are packed into panels of kPanel items laid out [term][item], so the vector lanes run
// over items: a register tile is kTileQueries queries (broadcast) x kPanel items (kPanelVecs
// vectors), like the micro-kernel of a BLAS GEMM, and a single query streams the panels at
// memory speed with the same sums.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr int kPanelVecs = 2;
constexpr int kTileQueries = 12;  // 12 x 2 accumulators (of 32 zmm): 24 FMAs per 14 loads
#define SEMREC_KERNEL "avx512f fma"
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
constexpr int kPanelVecs = 2;
constexpr int kTileQueries = 6;  // 6 x 2 accumulators (of 16 ymm)
#define SEMREC_KERNEL "avx2 fma"
#else
constexpr int kLanes = 4;
constexpr int kPanelVecs = 2;
constexpr int kTileQueries = 6;  // 6 x 2 accumulators (of 16 xmm), multiply then add
#define SEMREC_KERNEL "sse2"
#endif
constexpr std::int64_t kPanel = kPanelVecs * kLanes;  // items per panel

typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
// The same vector, for loads and stores at any float-aligned address.
typedef float VecMem __attribute__((vector_size(kLanes * sizeof(float)), aligned(4), may_alias));

inline float half_to_float(std::uint16_t h) {
  return static_cast<float>(std::bit_cast<_Float16>(h));
}
inline std::uint16_t float_to_half(float f) {
  return std::bit_cast<std::uint16_t>(static_cast<_Float16>(f));
}

inline Vec load(const float* p) { return *reinterpret_cast<const VecMem*>(p); }
inline Vec load(const std::uint16_t* p) {
#if defined(__AVX512F__)
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(__AVX2__) && defined(__F16C__)
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
  Vec v;
  for (int i = 0; i < kLanes; ++i) v[i] = half_to_float(p[i]);
  return v;
#endif
}
inline void store(float* p, Vec v) { *reinterpret_cast<VecMem*>(p) = v; }

// c + a * b, rounded once where the CPU has FMA; a is broadcast to every lane.
inline Vec madd(float a, Vec b, Vec c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c);
#elif defined(__AVX2__) && defined(__FMA__)
  return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c);
#else
  return c + a * b;
#endif
}

// s[r * lds + g * kPanel + lane] (+)= dot(query r, item lane of panel g) over `depth` terms, for
// R queries (a packed tile, q[term * R + r]) and G panels (panel g at x + g * stride). With
// `accumulate` the sums continue from s, so splitting the depth keeps the left-to-right order.
template <int R, int G, class T>
inline void micro_kernel(const float* q, const T* x, std::int64_t stride, std::int64_t depth,
                         bool accumulate, float* s, std::int64_t lds) {
  constexpr int V = G * kPanelVecs;
  Vec acc[R][V];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) {
      const std::int64_t at = r * lds + (v / kPanelVecs) * kPanel + (v % kPanelVecs) * kLanes;
      acc[r][v] = accumulate ? load(s + at) : Vec{};
    }
  }
  for (std::int64_t kk = 0; kk < depth; ++kk) {
    Vec b[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      b[v] = load(x + (v / kPanelVecs) * stride + kk * kPanel + (v % kPanelVecs) * kLanes);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float a = q[kk * R + r];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] = madd(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) {
      store(s + r * lds + (v / kPanelVecs) * kPanel + (v % kPanelVecs) * kLanes, acc[r][v]);
    }
  }
}

// One query tile of R queries against `panels` consecutive panels. Few queries leave registers
// free: several panels go through at once, so enough independent sums hide the FMA latency.
template <int R, class T>
void tile_panels(const float* q, const T* x, std::int64_t stride, std::int64_t panels,
                 std::int64_t depth, bool accumulate, float* s, std::int64_t lds) {
  constexpr int G = R == 1 ? 4 : R <= 3 ? 2 : 1;
  std::int64_t p = 0;
  for (; p + G <= panels; p += G) {
    micro_kernel<R, G>(q, x + p * stride, stride, depth, accumulate, s + p * kPanel, lds);
  }
  for (; p < panels; ++p) {
    micro_kernel<R, 1>(q, x + p * stride, stride, depth, accumulate, s + p * kPanel, lds);
  }
}

template <class T, int... Rs>
void tile_dispatch(int r, const float* q, const T* x, std::int64_t stride, std::int64_t panels,
                   std::int64_t depth, bool accumulate, float* s, std::int64_t lds,
                   std::integer_sequence<int, Rs...>) {
  ((r == Rs + 1 ? tile_panels<Rs + 1, T>(q, x, stride, panels, depth, accumulate, s, lds) : void()),
   ...);
}

// A tile of r <= kTileQueries queries.
template <class T>
void tile(int r, const float* q, const T* x, std::int64_t stride, std::int64_t panels,
          std::int64_t depth, bool accumulate, float* s, std::int64_t lds) {
  tile_dispatch<T>(r, q, x, stride, panels, depth, accumulate, s, lds,
                   std::make_integer_sequence<int, kTileQueries>{});
}

// ---------------------------------------------------------------------------------------------
// Scaling by powers of two, so that no norm or product overflows or underflows. Multiplying by
// 2^e is exact, so for vectors of ordinary magnitude every score keeps the same bits.

// The power of two 2^e as a float, for e in [-126, 127].
inline float pow2(int e) { return std::bit_cast<float>(static_cast<std::uint32_t>(e + 127) << 23); }

// The e that brings max |row| into [1, 2); 0 for a zero (or non-finite) row.
int unit_exponent(const float* row, std::int64_t dim) {
  float m = 0.0f;
  for (std::int64_t kk = 0; kk < dim; ++kk) m = std::max(m, std::fabs(row[kk]));
  if (!(m > 0.0f) || !std::isfinite(m)) return 0;
  return -std::ilogb(m);
}

void scale_row(const float* src, std::int64_t dim, int e, float* dst) {
  if (e == 0) {
    std::copy(src, src + dim, dst);
  } else if (e >= -126 && e <= 127) {
    const float f = pow2(e);
    for (std::int64_t kk = 0; kk < dim; ++kk) dst[kk] = src[kk] * f;
  } else {
    for (std::int64_t kk = 0; kk < dim; ++kk) dst[kk] = std::ldexp(src[kk], e);
  }
}

float inverse_norm(const float* row, std::int64_t dim) {
  const float norm = ConstVectorMap(row, dim).norm();
  return norm > 0.0f ? 1.0f / norm : 0.0f;
}

// Float16 keeps 11 significant bits; rows are scaled to a maximum in [2^14, 2^15) first, so
// that the range (up to 65504) is used and small components stay normal numbers.
constexpr int kHalfShift = 14;
// Relative error of an approximate (float16) score: 2^-11 from rounding the items, twice the
// float32 summation error of `dim` terms, and a margin for the final products.
double half_error(std::int64_t dim) {
  return 1.05 * (std::ldexp(1.0, -11) + static_cast<double>(2 * dim + 8) * std::ldexp(1.0, -24));
}

// The smallest float >= v (v >= 0, finite or not).
inline float round_up(double v) {
  const auto f = static_cast<float>(v);
  return static_cast<double>(f) < v ? std::nextafter(f, std::numeric_limits<float>::infinity()) : f;
}

template <class T>
inline T convert(float v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    return float_to_half(v);
  }
}

#if defined(__AVX2__)
// Rows r[0..7] become columns: r[t] holds element t of each of the eight rows.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    const int a = 4 * h;
    s[a] = _mm256_shuffle_ps(t[a], t[a + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[a + 1] = _mm256_shuffle_ps(t[a], t[a + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[a + 2] = _mm256_shuffle_ps(t[a + 1], t[a + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[a + 3] = _mm256_shuffle_ps(t[a + 1], t[a + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

// One whole panel of float32 rows (each times its factor f[r], a power of two): eight rows by
// eight terms at a time through an in-register transpose, so that a query against a raw
// matrix costs little more than streaming it.
void pack_panel(const float* const* src, const float* f, std::int64_t dim, float* dst) {
  std::int64_t kk = 0;
  for (; kk + 8 <= dim; kk += 8) {
    for (std::int64_t r0 = 0; r0 < kPanel; r0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        r[i] = _mm256_mul_ps(_mm256_loadu_ps(src[r0 + i] + kk), _mm256_set1_ps(f[r0 + i]));
      }
      transpose8(r);
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(dst + (kk + t) * kPanel + r0, r[t]);
    }
  }
  for (; kk < dim; ++kk) {
    for (std::int64_t r = 0; r < kPanel; ++r) dst[kk * kPanel + r] = src[r][kk] * f[r];
  }
}
#endif

// Writes rows i0 .. i0 + n - 1 of `rows`, row i scaled by 2^(exponent[i] + shift) when exponent
// is given, into `panels` as items first .. first + n - 1 (panel (first + j) / kPanel, lane
// (first + j) % kPanel).
template <class T>
void pack_rows(MatrixView rows, std::int64_t i0, std::int64_t n, const std::int16_t* exponent,
               int shift, T* panels, std::int64_t first, float* scratch) {
  const std::int64_t dim = rows.cols;
  std::int64_t j = 0;
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    // Whole panels whose factors are normal floats (every row of ordinary magnitude).
    for (; (first + j) % kPanel == 0 && j + kPanel <= n; j += kPanel) {
      const float* src[kPanel];
      float f[kPanel];
      bool plain = true;
      for (std::int64_t r = 0; r < kPanel; ++r) {
        src[r] = rows.row(i0 + j + r);
        const int e = exponent ? exponent[i0 + j + r] + shift : 0;
        plain = plain && e >= -126 && e <= 127;
        f[r] = plain ? pow2(e) : 1.0f;
      }
      if (!plain) break;
      pack_panel(src, f, dim, panels + ((first + j) / kPanel) * dim * kPanel);
    }
  }
#endif
  for (; j < n; ++j) {
    const std::int64_t slot = first + j;
    T* dst = panels + (slot / kPanel) * dim * kPanel + slot % kPanel;
    const float* src = rows.row(i0 + j);
    if (exponent != nullptr) {
      scale_row(src, dim, exponent[i0 + j] + shift, scratch);
      src = scratch;
    }
    for (std::int64_t kk = 0; kk < dim; ++kk) dst[kk * kPanel] = convert<T>(src[kk]);
  }
}

// ---------------------------------------------------------------------------------------------
// Selection

// Feeds scores s[0..n) of items id(0), id(1), ... (increasing ids) to the selector. Most scores
// fall below the threshold, so 16 at a time are tested with one vectorised comparison first.
template <class Id>
void select_scores(const float* s, std::int64_t n, Id id, TopKSelector& top) {
  std::int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const float thr = top.threshold();
    int any = 0;
    for (int t = 0; t < 16; ++t) any |= static_cast<int>(s[j + t] > thr);
    if (!any) continue;
    for (int t = 0; t < 16; ++t) {
      if (s[j + t] > top.threshold()) top.push(s[j + t], id(j + t));
    }
  }
  for (; j < n; ++j) {
    if (s[j] > top.threshold()) top.push(s[j], id(j));
  }
}

// [0, n) cut into blocks of a fixed width (the last one shorter). Widths depend on the input
// sizes only, never on the thread count.
struct Blocks {
  std::int64_t n = 0, width = 1, count = 0;
  Blocks(std::int64_t n_, std::int64_t width_)
      : n(n_), width(width_), count((n_ + width_ - 1) / width_) {}
  std::int64_t begin(std::int64_t b) const { return b * width; }
  std::int64_t end(std::int64_t b) const { return std::min(n, (b + 1) * width); }
};

// Splits each row of tasks into chunks of item blocks when there are too few rows of tasks to
// keep every thread busy; the per-chunk top-k lists are merged afterwards, exactly.
std::int64_t chunk_count(std::int64_t row_tasks, std::int64_t max_chunks, int num_threads) {
  if (row_tasks >= 2 * num_threads) return 1;
  return std::max<std::int64_t>(
      1, std::min(max_chunks, (4 * num_threads + row_tasks - 1) / row_tasks));
}

constexpr std::int64_t kGatherBlock = 64;  // queries per task in the per-query loops

// parallel_tasks, but a single task (or a single thread) runs on the calling thread: a fork/join
// costs tens of microseconds, as much as a small search itself. Same results either way.
template <class Fn>
void run_tasks(std::int64_t n_tasks, int num_threads, const StopCheck& stop, Fn&& fn) {
  if (n_tasks > 1 && usable_threads(num_threads) > 1) {
    return parallel_tasks(n_tasks, num_threads, stop, std::forward<Fn>(fn));
  }
  for (std::int64_t task = 0; task < n_tasks; ++task) {
    if (stop && stop()) throw Interrupted();
    fn(task);
  }
}

// Each query's per-chunk lists (chunks x k, in id order, padded) merged into its final k. Chunk
// c covers lower ids than chunk c + 1, so the lists arrive in increasing id order.
void merge_chunks(std::int64_t nq, int k, std::int64_t chunks, const std::vector<std::int32_t>& ids,
                  const std::vector<float>& scores, int num_threads, const StopCheck& stop,
                  TopKOutput out) {
  parallel_tasks((nq + kGatherBlock - 1) / kGatherBlock, num_threads, stop, [&](std::int64_t t) {
    AscendingTopK top(k);
    for (std::int64_t q = t * kGatherBlock; q < std::min(nq, (t + 1) * kGatherBlock); ++q) {
      for (std::int64_t c = 0; c < chunks; ++c) {
        const std::int64_t off = (q * chunks + c) * k;
        std::int64_t n = 0;
        while (n < k && ids[off + n] >= 0) ++n;
        top.offer(scores.data() + off, ids.data() + off, n);
      }
      top.write(out.ids + q * k, out.scores + q * k);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Checks (the Python layer validates with friendlier messages; these keep direct calls safe)

void check_common(MatrixView queries, MatrixView items, int k, CsrView exclude, TopKOutput out) {
  if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
  if (queries.rows < 0 || items.rows < 0 || queries.cols < 0) {
    throw std::invalid_argument("negative matrix size");
  }
  if (queries.cols != items.cols) {
    throw std::invalid_argument("queries have " + std::to_string(queries.cols) +
                                " columns but items have " + std::to_string(items.cols));
  }
  if (items.rows > std::numeric_limits<std::int32_t>::max()) {
    throw std::invalid_argument("more than 2^31 - 1 items");
  }
  if (queries.rows > 0 && (out.ids == nullptr || out.scores == nullptr)) {
    throw std::invalid_argument("output buffers are missing");
  }
  check_csr(exclude, queries.rows, items.rows, "exclude");
}

void fill_padding(std::int64_t rows, int k, TopKOutput out) {
  std::fill(out.ids, out.ids + rows * k, -1);
  std::fill(out.scores, out.scores + rows * k, kNegInf);
}

template <class T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const CacheAligned<U>&) const {
    return true;
  }
};
template <class T>
using AlignedVector = std::vector<T, CacheAligned<T>>;

// ---------------------------------------------------------------------------------------------
// Per-item and per-query scaling

// Cosine: each row's exponent (max |x 2^e| in [1, 2)) and the inverse norm of the scaled row.
void unit_scaling(MatrixView m, std::int64_t first, std::int16_t* exponent, float* inv_norm,
                  int num_threads, const StopCheck& stop) {
  constexpr std::int64_t kRows = 1024;
  run_tasks((m.rows + kRows - 1) / kRows, num_threads, stop, [&](std::int64_t t) {
    std::vector<float> scaled(static_cast<std::size_t>(m.cols));
    for (std::int64_t i = t * kRows; i < std::min(m.rows, (t + 1) * kRows); ++i) {
      const int e = unit_exponent(m.row(i), m.cols);
      exponent[first + i] = static_cast<std::int16_t>(e);
      if (inv_norm != nullptr) {
        scale_row(m.row(i), m.cols, e, scaled.data());
        inv_norm[first + i] = inverse_norm(scaled.data(), m.cols);
      }
    }
  });
}

// The queries as the kernel reads them: scaled copies and their inverse norms for cosine, the
// caller's rows otherwise.
struct Queries {
  MatrixView m;
  std::vector<float> scaled;
  std::vector<float> inv_norm;  // empty for dot
};

Queries prepare_queries(MatrixView q, bool cosine, int num_threads, const StopCheck& stop) {
  Queries out;
  out.m = q;
  if (!cosine) return out;
  out.scaled.resize(static_cast<std::size_t>(q.rows * q.cols));
  out.inv_norm.resize(static_cast<std::size_t>(q.rows));
  std::vector<std::int16_t> exponent(static_cast<std::size_t>(q.rows));
  unit_scaling(q, 0, exponent.data(), nullptr, num_threads, stop);
  for (std::int64_t i = 0; i < q.rows; ++i) {
    float* dst = out.scaled.data() + i * q.cols;
    scale_row(q.row(i), q.cols, exponent[i], dst);
    out.inv_norm[i] = inverse_norm(dst, q.cols);
  }
  out.m = {out.scaled.data(), q.rows, q.cols};
  return out;
}

// Bytes of the int8 panels of n items: what one query over them streams.
std::int64_t int8_panel_bytes(std::int64_t n, std::int64_t dim) {
  return (n + quantized::kPanel - 1) / quantized::kPanel * quantized::panel_bytes(dim);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Prepared items

struct PreparedItems::Data {
  std::int64_t n = 0;
  AlignedVector<float> panels32;
  AlignedVector<std::uint16_t> panels16;
  AlignedVector<std::int8_t> panels8;  // quantized::kPanel items per panel
  std::vector<std::int16_t> exponent;  // max |x 2^e| in [1, 2); cosine or float16
  std::vector<float> inv_norm;         // cosine: 1 / |x 2^e|
  std::vector<float> approx_scale;     // float16, int8: turns a panel dot product into a score
  std::vector<float> code_error;       // int8: |x - approx_scale * code| in score units, upward
  double max_norm = 0.0;               // float16, int8, dot: the largest |x| (the error bound)
  bool exotic = false;                 // int8: a scale outside float's comfortable range
};

PreparedItems::PreparedItems(std::int64_t dim, Metric metric, ItemStorage storage)
    : dim_(dim), metric_(metric), storage_(storage), data_(std::make_unique<Data>()) {
  if (dim < 0) throw std::invalid_argument("dim must be >= 0");
}

PreparedItems::~PreparedItems() = default;

std::int64_t PreparedItems::bytes() const {
  std::shared_lock lock(mutex_);
  const Data& d = *data_;
  return static_cast<std::int64_t>(
      d.panels32.capacity() * sizeof(float) + d.panels16.capacity() * sizeof(std::uint16_t) +
      d.panels8.capacity() + d.exponent.capacity() * sizeof(std::int16_t) +
      (d.inv_norm.capacity() + d.approx_scale.capacity() + d.code_error.capacity()) *
          sizeof(float));
}

void PreparedItems::append(MatrixView rows, int num_threads, const StopCheck& stop) {
  if (rows.cols != dim_) {
    throw std::invalid_argument("rows have " + std::to_string(rows.cols) +
                                " columns, prepared items have " + std::to_string(dim_));
  }
  std::unique_lock lock(mutex_);
  Data& d = *data_;
  const std::int64_t n0 = d.n, n1 = n0 + rows.rows;
  if (n1 > std::numeric_limits<std::int32_t>::max()) {
    throw std::invalid_argument("more than 2^31 - 1 items");
  }
  const bool cosine = metric_ == Metric::cosine, half = storage_ == ItemStorage::float16;
  const bool int8 = storage_ == ItemStorage::int8;
  const auto grow = [](auto& v, std::int64_t size) {
    if (static_cast<std::size_t>(size) > v.capacity()) {
      v.reserve(std::max(static_cast<std::size_t>(size), 2 * v.capacity()));
    }
    v.resize(static_cast<std::size_t>(size));
  };
  if (cosine || half) grow(d.exponent, n1);
  if (cosine) grow(d.inv_norm, n1);
  if (half || int8) grow(d.approx_scale, n1);
  if (int8) grow(d.code_error, n1);
  if (cosine || half) {
    unit_scaling(rows, n0, d.exponent.data(), cosine ? d.inv_norm.data() : nullptr, num_threads,
                 stop);
  }
  const std::int64_t panel_floats = ((n1 + kPanel - 1) / kPanel) * dim_ * kPanel;
  if (int8) {
    grow(d.panels8, int8_panel_bytes(n1, dim_));
  } else if (half) {
    grow(d.panels16, panel_floats);
  } else {
    grow(d.panels32, panel_floats);
  }
  // Cosine panels hold the unit-scaled rows, float16 ones the rows scaled into its range.
  const std::int16_t* exponent = cosine || half ? d.exponent.data() : nullptr;
  const int shift = half ? kHalfShift : 0;
  constexpr std::int64_t kRows = 4 * kPanel;
  // Tasks own whole panels: the first task also completes the panel left partial before.
  const std::int64_t start = n0 - n0 % kPanel;
  const std::int64_t tasks = (n1 - start + kRows - 1) / kRows;
  std::vector<double> norms(static_cast<std::size_t>(tasks), 0.0);
  std::vector<unsigned char> exotic(static_cast<std::size_t>(tasks), 0);
  parallel_tasks(tasks, num_threads, stop, [&](std::int64_t t) {
    const std::int64_t a = std::max(n0, start + t * kRows),
                       b = std::min(n1, start + (t + 1) * kRows);
    std::vector<float> scratch(static_cast<std::size_t>(dim_));
    const std::int16_t* row_exponent = exponent ? exponent + n0 : nullptr;  // row i: item n0 + i
    if (int8) {
      for (std::int64_t i = a; i < b; ++i) {
        const float* row = rows.row(i - n0);
        if (cosine) {  // the unit-scaled row, whose inverse norm turns its dot into a cosine
          scale_row(row, dim_, d.exponent[i], scratch.data());
          row = scratch.data();
        }
        const quantized::RowCode code = quantized::pack_row(row, dim_, d.panels8.data(), i);
        const double factor = cosine ? d.inv_norm[i] : 1.0;
        d.approx_scale[i] = static_cast<float>(code.scale * factor);
        d.code_error[i] = round_up(code.residual * factor);
        const double s = code.scale * factor;
        exotic[t] |= static_cast<unsigned char>(s != 0.0 && !(s > 0x1p-100 && s < 0x1p100));
        if (!cosine) {
          double sq = 0.0;
          for (std::int64_t kk = 0; kk < dim_; ++kk) sq += static_cast<double>(row[kk]) * row[kk];
          norms[t] = std::max(norms[t], std::sqrt(sq));
        }
      }
    } else if (half) {
      pack_rows(rows, a - n0, b - a, row_exponent, shift, d.panels16.data(), a, scratch.data());
      for (std::int64_t i = a; i < b; ++i) {
        const int e = d.exponent[i] + kHalfShift;
        d.approx_scale[i] = cosine ? std::ldexp(d.inv_norm[i], -kHalfShift)
                                   : static_cast<float>(std::ldexp(1.0, -e));
        if (!cosine) {
          const float* row = rows.row(i - n0);
          double sq = 0.0;
          for (std::int64_t kk = 0; kk < dim_; ++kk) sq += static_cast<double>(row[kk]) * row[kk];
          norms[t] = std::max(norms[t], std::sqrt(sq));
        }
      }
    } else {
      pack_rows(rows, a - n0, b - a, row_exponent, shift, d.panels32.data(), a, scratch.data());
    }
  });
  for (const double v : norms) d.max_norm = std::max(d.max_norm, v);
  for (const unsigned char e : exotic) d.exotic = d.exotic || e != 0;
  d.n = n1;
  size_.store(n1, std::memory_order_release);
}

namespace {

// ---------------------------------------------------------------------------------------------
// The scan: blocks of queries x blocks of items, each block's scores selected while in cache.

// Block shapes: up to 42 query tiles are packed once per task; an item block of 512 items is
// packed (or, prepared, read in place) and, within a depth block of 128 terms, stays in L2 while
// one query tile (in L1) meets every panel; its scores (query block x 512) are then selected.
constexpr std::int64_t kQueryBlock = (512 / kTileQueries) * kTileQueries;
constexpr std::int64_t kItemBlock = 512;
constexpr std::int64_t kDepthBlock = 128;
static_assert(kItemBlock % kPanel == 0);

// What one scan reads. Items come either as float32 rows, packed block by block (scaled by
// 2^exponent when exponent is set), or as prepared panels.
template <class T>
struct Scan {
  const float* const* query_rows = nullptr;  // one pointer per query (a gathered subset allowed)
  std::int64_t nq = 0, dim = 0, n_items = 0;
  const float* query_scale = nullptr;  // per query: multiplies every score (cosine), or null
  MatrixView rows;                     // when panels is null
  const std::int16_t* exponent = nullptr;
  const T* panels = nullptr;
  const float* item_scale = nullptr;          // per item: multiplies every score, or null
  CsrView exclude;                            // rows follow query order (exclude_row maps them)
  const std::int64_t* exclude_row = nullptr;  // query i's row of exclude (null: row i)
  int k = 1;
};

// One query's scores of the item block i0 .. i0 + n - 1 into its list: scaled (cosine, float16
// panels), its excluded items (from *cursor up to cursor_end; cursor null: none) set to -inf,
// then selected.
// A block of scores (ids i0 ..) into a list: the general selector, or the batch scan's
// AscendingTopK, which takes the block whole.
inline void offer_block(const float* row, std::int64_t n, std::int64_t i0, TopKSelector& top) {
  select_scores(row, n, [&](std::int64_t j) { return static_cast<std::int32_t>(i0 + j); }, top);
}
inline void offer_block(const float* row, std::int64_t n, std::int64_t i0, AscendingTopK& top) {
  top.offer(row, n, static_cast<std::int32_t>(i0));
}

template <class T, class Top>
void select_block(const Scan<T>& s, std::int64_t query, float* row, std::int64_t i0, std::int64_t n,
                  std::int64_t* cursor, std::int64_t cursor_end, Top& top) {
  if (s.item_scale != nullptr) {
    const float* is = s.item_scale + i0;
    if (s.query_scale != nullptr) {
      const float qs = s.query_scale[query];
      for (std::int64_t j = 0; j < n; ++j) row[j] *= qs * is[j];
    } else {
      for (std::int64_t j = 0; j < n; ++j) row[j] *= is[j];
    }
  }
  if (cursor != nullptr) {
    std::int64_t& p = *cursor;
    for (; p < cursor_end && s.exclude.indices[p] < i0 + n; ++p) {
      row[s.exclude.indices[p] - i0] = kNegInf;
    }
  }
  offer_block(row, n, i0, top);
}

template <class T>
void scan(const Scan<T>& s, int num_threads, const StopCheck& stop, TopKOutput out) {
  const std::int64_t nq = s.nq, dim = s.dim, k = s.k;
  const Blocks qblocks(nq, kQueryBlock), iblocks(s.n_items, kItemBlock);
  const std::int64_t chunks = chunk_count(qblocks.count, iblocks.count, num_threads);
  std::vector<std::int32_t> part_ids;
  std::vector<float> part_scores;
  if (chunks > 1) {
    part_ids.resize(static_cast<std::size_t>(nq * chunks * k));
    part_scores.resize(part_ids.size());
  }
  const std::int64_t stride = dim * kPanel;  // floats (or halves) per panel
  // A task may span the whole catalogue (seconds at millions of items): Ctrl-C is polled per
  // item block on the thread that released the GIL, and every thread then leaves its task.
  std::atomic<bool> stopped{false};

  parallel_tasks(qblocks.count * chunks, num_threads, stop, [&](std::int64_t task) {
    const std::int64_t qb = task / chunks, chunk = task % chunks;
    const std::int64_t q0 = qblocks.begin(qb), nqb = qblocks.end(qb) - q0;
    const std::int64_t tiles = (nqb + kTileQueries - 1) / kTileQueries;
    const std::int64_t b0 = chunk * iblocks.count / chunks;
    const std::int64_t b1 = (chunk + 1) * iblocks.count / chunks;

    // Query tiles, packed [term][query]; the last one may be narrower.
    std::vector<float> packed(static_cast<std::size_t>(nqb * dim));
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t r0 = t * kTileQueries, w = std::min<std::int64_t>(kTileQueries, nqb - r0);
      float* dst = packed.data() + r0 * dim;
      for (std::int64_t r = 0; r < w; ++r) {
        const float* src = s.query_rows[q0 + r0 + r];
        for (std::int64_t kk = 0; kk < dim; ++kk) dst[kk * w + r] = src[kk];
      }
    }

    std::vector<AscendingTopK> tops(static_cast<std::size_t>(nqb),
                                    AscendingTopK(static_cast<int>(k)));
    std::vector<std::int64_t> cursor, cursor_end;  // next exclusion entry of each query
    if (s.exclude.present()) {
      cursor.resize(static_cast<std::size_t>(nqb));
      cursor_end.resize(static_cast<std::size_t>(nqb));
      const auto first = static_cast<std::int32_t>(iblocks.begin(b0));
      for (std::int64_t q = 0; q < nqb; ++q) {
        const std::int64_t row = s.exclude_row ? s.exclude_row[q0 + q] : q0 + q;
        const std::int32_t* a = s.exclude.indices + s.exclude.indptr[row];
        const std::int32_t* b = s.exclude.indices + s.exclude.indptr[row + 1];
        cursor[q] = std::lower_bound(a, b, first) - s.exclude.indices;
        cursor_end[q] = s.exclude.indptr[row + 1];
      }
    }

    AlignedVector<float> S(static_cast<std::size_t>(nqb * kItemBlock));  // S[query][item]
    AlignedVector<T> own_panels;
    std::vector<float> scratch;
    if (s.panels == nullptr) {
      own_panels.resize(static_cast<std::size_t>(kItemBlock * dim));
      scratch.resize(static_cast<std::size_t>(dim));
    }
    const std::int64_t depth_block = tiles == 1 ? std::max<std::int64_t>(dim, 1) : kDepthBlock;
    for (std::int64_t ib = b0; ib < b1; ++ib) {
      if (stopped.load(std::memory_order_relaxed)) return;
      if (stop && omp_get_thread_num() == 0 && stop()) {  // the poll itself costs ~20 ns
        stopped = true;
        throw Interrupted();
      }
      const std::int64_t i0 = iblocks.begin(ib), n = iblocks.end(ib) - i0;
      const std::int64_t n_panels = (n + kPanel - 1) / kPanel;
      const T* panels = s.panels ? s.panels + (i0 / kPanel) * stride : own_panels.data();
      if (s.panels == nullptr) {
        pack_rows(s.rows, i0, n, s.exponent, 0, own_panels.data(), 0, scratch.data());
      }
      if (dim == 0) std::fill(S.begin(), S.end(), 0.0f);
      // Depth blocks keep the item block's slice in L2 while each query tile meets it.
      for (std::int64_t k0 = 0; k0 < dim; k0 += depth_block) {
        const std::int64_t depth = std::min(depth_block, dim - k0);
        for (std::int64_t t = 0; t < tiles; ++t) {
          const std::int64_t r0 = t * kTileQueries;
          const int w = static_cast<int>(std::min<std::int64_t>(kTileQueries, nqb - r0));
          tile<T>(w, packed.data() + r0 * dim + k0 * w, panels + k0 * kPanel, stride, n_panels,
                  depth, k0 > 0, S.data() + r0 * kItemBlock, kItemBlock);
        }
      }
      for (std::int64_t q = 0; q < nqb; ++q) {
        const bool ex = s.exclude.present();
        select_block(s, q0 + q, S.data() + q * kItemBlock, i0, n, ex ? &cursor[q] : nullptr,
                     ex ? cursor_end[q] : 0, tops[q]);
      }
    }

    for (std::int64_t q = 0; q < nqb; ++q) {
      const std::int64_t off = chunks == 1 ? (q0 + q) * k : ((q0 + q) * chunks + chunk) * k;
      if (chunks == 1) {
        tops[q].write(out.ids + off, out.scores + off);
      } else {
        tops[q].write_unranked(part_ids.data() + off, part_scores.data() + off);
      }
    }
  });
  if (chunks > 1) {
    merge_chunks(nq, static_cast<int>(k), chunks, part_ids, part_scores, num_threads, stop, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Few queries over prepared panels: a click, one user's profile against the whole catalogue.
//
// The batch scan's query blocks buy nothing here, and its separate parallel regions (scan,
// merge) each cost a fork/join. Instead the catalogue is cut into ranges of whole item blocks
// that the calling thread starts on at once and helpers join when they wake
// (run_eager_tasks), and the ranges' lists are merged on the calling thread. Every score goes
// through the same micro-kernel over the whole depth, so it is bitwise what the batch scan
// computes.
constexpr std::int64_t kFewQueries = 8;
// Bytes of panels per thread (a second thread from 3 MiB on). Unlike an OpenMP region, whose
// join waited for a helper that a busy core had not scheduled yet (a 20k x 384 click took
// 7.8 ms on two threads against 2.5 ms on one on a Zen 3 running another process), the caller
// never waits for a helper that has not started; but waking one costs the caller a system
// call (~35 us in a 2-core VM), about what one core streams of 1 MiB. Measured there, one
// query on two threads against one: 2.2 MiB of panels 1.04-1.09x the time, 3 MiB 0.42-0.89x,
// 7.5 MiB 0.77x.
constexpr std::int64_t kBytesPerThread = std::int64_t{3} << 19;
// Ranges per thread, so that the caller and the helpers share the work however late the
// helpers come, and at most this many bytes per range (Ctrl-C is polled between ranges).
constexpr std::int64_t kRangesPerThread = 4;
constexpr std::int64_t kMaxRangeBytes = std::int64_t{16} << 20;

// Threads and item ranges (of whole blocks) for a few-query scan of `bytes` of panels.
struct Ranges {
  std::int64_t threads, ranges;
};
std::int64_t scan_threads(std::int64_t bytes, int num_threads) {
  return std::clamp<std::int64_t>(bytes / kBytesPerThread, 1, usable_threads(num_threads));
}
Ranges scan_ranges(std::int64_t bytes, const Blocks& iblocks, int num_threads) {
  const std::int64_t threads = scan_threads(bytes, num_threads);
  if (threads == 1) return {1, 1};
  return {threads,
          std::min(iblocks.count, std::max(kRangesPerThread * threads,
                                           (bytes + kMaxRangeBytes - 1) / kMaxRangeBytes))};
}

template <class T>
void few_scan(const Scan<T>& s, int num_threads, const StopCheck& stop, TopKOutput out) {
  const std::int64_t nq = s.nq, dim = s.dim, k = s.k;
  const Blocks iblocks(s.n_items, kItemBlock);
  const auto [threads, ranges] =
      scan_ranges(s.n_items * dim * static_cast<std::int64_t>(sizeof(T)), iblocks, num_threads);
  const std::int64_t stride = dim * kPanel;

  // Query tiles, packed [term][query] once for every range.
  const std::int64_t tiles = (nq + kTileQueries - 1) / kTileQueries;
  std::vector<float> packed(static_cast<std::size_t>(nq * dim));
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t r0 = t * kTileQueries, w = std::min<std::int64_t>(kTileQueries, nq - r0);
    float* dst = packed.data() + r0 * dim;
    for (std::int64_t r = 0; r < w; ++r) {
      const float* src = s.query_rows[r0 + r];
      for (std::int64_t kk = 0; kk < dim; ++kk) dst[kk * w + r] = src[kk];
    }
  }
  // One list per query and range: [range][query][k].
  std::vector<std::int32_t> part_ids;
  std::vector<float> part_scores;
  if (ranges > 1) {
    part_ids.resize(static_cast<std::size_t>(ranges * nq * k));
    part_scores.resize(part_ids.size());
  }

  // Clicks on one catalogue back to back are a stream (run_eager_tasks): keyed by its panels.
  run_eager_tasks(ranges, static_cast<int>(threads), stop, s.panels, [&](std::int64_t range) {
    const std::int64_t b0 = range * iblocks.count / ranges;
    const std::int64_t b1 = (range + 1) * iblocks.count / ranges;
    thread_local AlignedVector<float> S;  // S[query][item] of one item block
    S.resize(static_cast<std::size_t>(nq * kItemBlock));
    std::vector<AscendingTopK> tops(static_cast<std::size_t>(nq),
                                    AscendingTopK(static_cast<int>(k)));
    std::int64_t cursor[kFewQueries], cursor_end[kFewQueries];  // next exclusion of each query
    if (s.exclude.present()) {
      const auto first = static_cast<std::int32_t>(iblocks.begin(b0));
      for (std::int64_t q = 0; q < nq; ++q) {
        const std::int64_t row = s.exclude_row ? s.exclude_row[q] : q;
        const std::int32_t* a = s.exclude.indices + s.exclude.indptr[row];
        const std::int32_t* b = s.exclude.indices + s.exclude.indptr[row + 1];
        cursor[q] = std::lower_bound(a, b, first) - s.exclude.indices;
        cursor_end[q] = s.exclude.indptr[row + 1];
      }
    }
    for (std::int64_t ib = b0; ib < b1; ++ib) {
      const std::int64_t i0 = iblocks.begin(ib), n = iblocks.end(ib) - i0;
      const std::int64_t n_panels = (n + kPanel - 1) / kPanel;
      const T* panels = s.panels + (i0 / kPanel) * stride;
      if (dim == 0) std::fill(S.begin(), S.end(), 0.0f);
      for (std::int64_t t = 0; t < tiles && dim > 0; ++t) {
        const std::int64_t r0 = t * kTileQueries;
        const int w = static_cast<int>(std::min<std::int64_t>(kTileQueries, nq - r0));
        tile<T>(w, packed.data() + r0 * dim, panels, stride, n_panels, dim, false,
                S.data() + r0 * kItemBlock, kItemBlock);
      }
      for (std::int64_t q = 0; q < nq; ++q) {
        const bool ex = s.exclude.present();
        select_block(s, q, S.data() + q * kItemBlock, i0, n, ex ? &cursor[q] : nullptr,
                     ex ? cursor_end[q] : 0, tops[q]);
      }
    }
    for (std::int64_t q = 0; q < nq; ++q) {
      if (ranges == 1) {
        tops[q].write(out.ids + q * k, out.scores + q * k);
      } else {
        const std::int64_t off = (range * nq + q) * k;
        tops[q].write_unranked(part_ids.data() + off, part_scores.data() + off);
      }
    }
  });
  if (ranges == 1) return;
  TopKSelector top(static_cast<int>(k));
  for (std::int64_t q = 0; q < nq; ++q) {
    for (std::int64_t r = 0; r < ranges; ++r) {
      const std::int64_t off = (r * nq + q) * k;
      for (std::int64_t i = 0; i < k && part_ids[off + i] >= 0; ++i) {
        top.push(part_scores[off + i], part_ids[off + i]);
      }
    }
    top.write(out.ids + q * k, out.scores + q * k);
  }
}

// The batch scan, or the few-query path when the items are prepared panels.
template <class T>
void scan_prepared(const Scan<T>& s, int num_threads, const StopCheck& stop, TopKOutput out) {
  if (s.nq <= kFewQueries && s.panels != nullptr) return few_scan(s, num_threads, stop, out);
  scan(s, num_threads, stop, out);
}

std::vector<const float*> row_pointers(MatrixView m) {
  std::vector<const float*> p(static_cast<std::size_t>(m.rows));
  for (std::int64_t i = 0; i < m.rows; ++i) p[i] = m.row(i);
  return p;
}

// Exact scores of one query against a list of items (the candidates path and the re-scoring of
// float16 candidates): the listed rows are packed into panels and go through the same kernel.
// The listed rows are scattered over the catalogue, so the next panel's rows are prefetched
// while this one is packed and scored.
class RowScorer {
 public:
  RowScorer(std::int64_t dim) : dim_(dim), panel_(static_cast<std::size_t>(dim * kPanel)) {
    scratch_.resize(static_cast<std::size_t>(dim));
  }

  // out[i] = dot(query, row ids[i] scaled by 2^exponent[ids[i]]) (exponent may be null).
  void score(const float* query, MatrixView rows, const std::int32_t* ids, std::int64_t n,
             const std::int16_t* exponent, float* out) {
    float lane_scores[kPanel];
    prefetch(rows, ids, std::min<std::int64_t>(kPanel, n));
    for (std::int64_t j0 = 0; j0 < n; j0 += kPanel) {
      const std::int64_t m = std::min<std::int64_t>(kPanel, n - j0);
      prefetch(rows, ids + j0 + m, std::min<std::int64_t>(kPanel, n - j0 - m));
      if (!pack_whole(rows, ids + j0, m, exponent)) {
        for (std::int64_t j = 0; j < m; ++j) {
          const std::int32_t id = ids[j0 + j];
          const float* src = rows.row(id);
          if (exponent != nullptr) {
            scale_row(src, dim_, exponent[id], scratch_.data());
            src = scratch_.data();
          }
          for (std::int64_t kk = 0; kk < dim_; ++kk) panel_[kk * kPanel + j] = src[kk];
        }
      }
      micro_kernel<1, 1>(query, panel_.data(), 0, dim_, false, lane_scores, kPanel);
      std::copy(lane_scores, lane_scores + m, out + j0);
    }
  }

 private:
  void prefetch(MatrixView rows, const std::int32_t* ids, std::int64_t n) const {
    for (std::int64_t j = 0; j < n; ++j) {
      const char* p = reinterpret_cast<const char*>(rows.row(ids[j]));
      for (std::int64_t b = 0; b < dim_ * static_cast<std::int64_t>(sizeof(float)); b += 64) {
        __builtin_prefetch(p + b);
      }
    }
  }

  // A panel (a part one padded with its last row) through pack_panel's in-register transpose
  // when every factor is a normal power of two (the same products as scale_row's, so the same
  // bits); false otherwise.
  bool pack_whole(MatrixView rows, const std::int32_t* ids, std::int64_t m,
                  const std::int16_t* exponent) {
#if defined(__AVX2__)
    const float* src[kPanel];
    float f[kPanel];
    for (std::int64_t r = 0; r < kPanel; ++r) {
      const std::int32_t id = ids[std::min(r, m - 1)];  // a part panel repeats its last row
      src[r] = rows.row(id);
      const int e = exponent != nullptr ? exponent[id] : 0;
      if (e < -126 || e > 127) return false;
      f[r] = pow2(e);
    }
    pack_panel(src, f, dim_, panel_.data());
    return true;
#else
    (void)rows, (void)ids, (void)m, (void)exponent;
    return false;
#endif
  }

  std::int64_t dim_;
  AlignedVector<float> panel_;
  std::vector<float> scratch_;
};

struct ItemScaling {  // cosine: per item exponent and inverse norm
  const std::int16_t* exponent = nullptr;
  const float* inv_norm = nullptr;
};

// Query i's distinct, non-excluded candidates, in increasing id order, into ids.
void listed_ids(CsrView candidates, CsrView exclude, std::int64_t i,
                std::vector<std::int32_t>& ids) {
  ids.clear();
  std::int64_t e = exclude.present() ? exclude.indptr[i] : 0;
  const std::int64_t e_end = exclude.present() ? exclude.indptr[i + 1] : 0;
  for (std::int64_t p = candidates.indptr[i]; p < candidates.indptr[i + 1]; ++p) {
    const std::int32_t j = candidates.indices[p];
    if (!ids.empty() && ids.back() == j) continue;
    while (e < e_end && exclude.indices[e] < j) ++e;
    if (e < e_end && exclude.indices[e] == j) continue;
    ids.push_back(j);
  }
}

// A query's candidates per task when one query's list is split over threads (whole panels).
constexpr std::int64_t kListSlice = 8 * kPanel;

void candidates_search(const Queries& q, MatrixView items, ItemScaling scaling, CsrView candidates,
                       int k, CsrView exclude, int num_threads, TopKOutput out,
                       const StopCheck& stop) {
  const std::int64_t nq = q.m.rows, dim = q.m.cols;
  const bool cosine = !q.inv_norm.empty();
  // The scores of one query (its candidates ids, in order) into s; any split of the list gives
  // the same scores, each summed alone.
  auto score = [&](std::int64_t i, const std::vector<std::int32_t>& ids, std::int64_t j0,
                   std::int64_t j1, RowScorer& scorer, float* s) {
    scorer.score(q.m.row(i), items, ids.data() + j0, j1 - j0, scaling.exponent, s + j0);
    if (cosine) {
      const float iq = q.inv_norm[i];
      for (std::int64_t j = j0; j < j1; ++j) s[j] *= iq * scaling.inv_norm[ids[j]];
    }
  };
  auto select = [&](std::int64_t i, const std::vector<std::int32_t>& ids, const float* s,
                    TopKSelector& top) {
    select_scores(
        s, static_cast<std::int64_t>(ids.size()), [&](std::int64_t j) { return ids[j]; }, top);
    top.write(out.ids + i * k, out.scores + i * k);
  };
  if (nq < usable_threads(num_threads)) {
    // Fewer queries than threads (a single query re-scoring an approximate index's proposals):
    // each query's list is scored on every thread, a slice each, the rows being scattered reads.
    TopKSelector top(k);
    std::vector<std::int32_t> ids;
    std::vector<float> s;
    for (std::int64_t i = 0; i < nq; ++i) {
      listed_ids(candidates, exclude, i, ids);
      const auto n = static_cast<std::int64_t>(ids.size());
      s.resize(ids.size());
      run_tasks((n + kListSlice - 1) / kListSlice, num_threads, stop, [&](std::int64_t t) {
        RowScorer scorer(dim);
        score(i, ids, t * kListSlice, std::min(n, (t + 1) * kListSlice), scorer, s.data());
      });
      select(i, ids, s.data(), top);
    }
    return;
  }
  run_tasks((nq + kGatherBlock - 1) / kGatherBlock, num_threads, stop, [&](std::int64_t t) {
    TopKSelector top(k);
    RowScorer scorer(dim);
    std::vector<std::int32_t> ids;
    std::vector<float> s;
    for (std::int64_t i = t * kGatherBlock; i < std::min(nq, (t + 1) * kGatherBlock); ++i) {
      listed_ids(candidates, exclude, i, ids);
      const auto n = static_cast<std::int64_t>(ids.size());
      s.resize(ids.size());
      score(i, ids, 0, n, scorer, s.data());
      select(i, ids, s.data(), top);
    }
  });
}

// Raw rows, cosine: exponents and inverse norms computed for this call.
struct RawScaling {
  std::vector<std::int16_t> exponent;
  std::vector<float> inv_norm;
  ItemScaling view() const { return {exponent.data(), inv_norm.data()}; }
};

RawScaling raw_scaling(MatrixView items, int num_threads, const StopCheck& stop) {
  RawScaling out;
  out.exponent.resize(static_cast<std::size_t>(items.rows));
  out.inv_norm.resize(static_cast<std::size_t>(items.rows));
  unit_scaling(items, 0, out.exponent.data(), out.inv_norm.data(), num_threads, stop);
  return out;
}

// The float32 scan over rows (packed block by block).
void exact_scan(const Queries& q, const std::vector<const float*>& query_rows, MatrixView items,
                ItemScaling scaling, CsrView exclude, const std::int64_t* exclude_row, int k,
                int num_threads, TopKOutput out, const StopCheck& stop) {
  Scan<float> s;
  s.query_rows = query_rows.data();
  s.nq = static_cast<std::int64_t>(query_rows.size());
  s.dim = items.cols;
  s.n_items = items.rows;
  s.rows = items;
  s.exponent = scaling.exponent;
  if (!q.inv_norm.empty()) {
    s.query_scale = q.inv_norm.data();
    s.item_scale = scaling.inv_norm;
  }
  s.exclude = exclude;
  s.exclude_row = exclude_row;
  s.k = k;
  scan(s, num_threads, stop, out);
}

// Up to this many queries a float16 scan streams half the bytes and wins (it is memory-bound);
// beyond, the tile reuses each item across queries and the float32 scan is faster (measured:
// 500 queries over 20k x 384, float16 panels 1.2x slower than float32 rows).
constexpr std::int64_t kHalfQueries = 8;

void search_again(const Queries& q, MatrixView rows, ItemScaling scaling, CsrView exclude,
                  const std::vector<unsigned char>& redo, int k, int num_threads, TopKOutput out,
                  const StopCheck& stop);

// Float16 panels: an approximate scan keeps the best `wide` candidates of each query; they are
// re-scored exactly from the float32 rows. The k best of them are the exact answer when the k-th
// exact score beats every other item's upper bound (its approximate score plus the error bound);
// queries that cannot be certified are searched again exactly.
void half_search(const Queries& q, const std::vector<float>& query_scale,
                 const PreparedItems& items, MatrixView rows, CsrView exclude, int k,
                 int num_threads, TopKOutput out, const StopCheck& stop) {
  const PreparedItems::Data& d = items.data();
  const std::int64_t nq = q.m.rows, dim = q.m.cols, n = rows.rows;
  const bool cosine = items.metric() == Metric::cosine;
  const int wide = static_cast<int>(std::min<std::int64_t>(n, 2 * std::int64_t{k} + 32));
  const std::vector<const float*> query_rows = row_pointers(q.m);
  std::vector<std::int32_t> cand_ids(static_cast<std::size_t>(nq * wide));
  std::vector<float> cand_scores(cand_ids.size());
  {
    Scan<std::uint16_t> s;
    s.query_rows = query_rows.data();
    s.nq = nq;
    s.dim = dim;
    s.n_items = n;
    s.panels = d.panels16.data();
    s.query_scale = cosine ? query_scale.data() : nullptr;
    s.item_scale = d.approx_scale.data();
    s.exclude = exclude;
    s.k = wide;
    scan_prepared(s, num_threads, stop, {cand_ids.data(), cand_scores.data()});
  }
  const double rel = half_error(dim);
  std::vector<unsigned char> redo(static_cast<std::size_t>(nq), 0);
  const ItemScaling scaling{cosine ? d.exponent.data() : nullptr,
                            cosine ? d.inv_norm.data() : nullptr};
  run_tasks((nq + kGatherBlock - 1) / kGatherBlock, num_threads, stop, [&](std::int64_t t) {
    TopKSelector top(k);
    RowScorer scorer(dim);
    std::vector<float> exact(static_cast<std::size_t>(wide));
    for (std::int64_t i = t * kGatherBlock; i < std::min(nq, (t + 1) * kGatherBlock); ++i) {
      const std::int32_t* ids = cand_ids.data() + i * wide;
      const float* approx = cand_scores.data() + i * wide;
      std::int64_t m = 0;
      while (m < wide && ids[m] >= 0) ++m;
      scorer.score(q.m.row(i), rows, ids, m, scaling.exponent, exact.data());
      if (cosine) {
        for (std::int64_t j = 0; j < m; ++j) exact[j] *= q.inv_norm[i] * scaling.inv_norm[ids[j]];
      }
      for (std::int64_t j = 0; j < m; ++j) top.push(exact[j], ids[j]);
      top.write(out.ids + i * k, out.scores + i * k);
      // The bound on |approximate - exact|, in score units; negative when the approximate
      // scores may have overflowed or underflowed (the query is then searched exactly).
      double bound = rel;
      if (!cosine) {
        double qn = 0.0;
        for (std::int64_t kk = 0; kk < dim; ++kk) {
          qn += static_cast<double>(q.m.row(i)[kk]) * q.m.row(i)[kk];
        }
        qn = std::sqrt(qn);
        const double reach =
            qn * std::max(d.max_norm, std::sqrt(static_cast<double>(dim)) * 65536.0);
        bound = reach < 1e30 && qn * d.max_norm > 1e-30 ? rel * qn * d.max_norm : -1.0;
      }
      if (bound >= 0.0 && (m < wide || wide == n)) continue;  // every eligible item was scored
      // Certified when no item outside the candidates can reach the k-th exact score.
      const double kth = out.scores[i * k + k - 1];
      const double outside = static_cast<double>(approx[wide - 1]) + bound;
      if (!(bound >= 0.0 && std::isfinite(kth) && std::isfinite(outside) && kth > outside)) {
        redo[i] = 1;
      }
    }
  });
  search_again(q, rows, scaling, exclude, redo, k, num_threads, out, stop);
}

// A lower bound on a query's k-th best score that the threads of one search raise together.
class SharedBar {
 public:
  // Raises the bar to `bar` if that is higher; returns the bar now.
  float raise(float bar) {
    float now = value_.load(std::memory_order_relaxed);
    while (bar > now && !value_.compare_exchange_weak(now, bar, std::memory_order_relaxed)) {
    }
    return std::max(bar, now);
  }

 private:
  std::atomic<float> value_{kNegInf};
};

// Int8 panels (quantized_scan.hpp): up to this many queries, in tiles of two.
constexpr std::int64_t kInt8Queries = 4;

// One query's constants for approximate int8 scores and their error bounds, in score units.
struct Int8Query {
  quantized::Query code;
  double to_score = 0.0;  // integer dot * to_score * approx_scale[i] = approximate score
  double err_coef = 0.0;  // bound = err_coef * code_error[i] + slack
  double slack = 0.0;
  bool usable = false;  // false: searched exactly (a zero query, extreme magnitudes)
};

// |q x - Q X| <= |Q| |x - X| + |q - Q| |x| (Cauchy-Schwarz) for the codes Q, X of q and x; then
// the float32 summation of the exact score (dim terms, each rounding by at most 2^-24 of
// |q| |x|) and the few roundings of the approximate score and its bounds.
Int8Query int8_query(const float* row, std::int64_t dim, double inv_q, bool cosine,
                     double max_norm) {
  Int8Query out;
  out.code = quantized::quantize_query(row, dim);
  double qn = 0.0;
  for (std::int64_t kk = 0; kk < dim; ++kk) qn += static_cast<double>(row[kk]) * row[kk];
  qn = std::sqrt(qn);
  const double u = std::ldexp(1.0, -24), n = static_cast<double>(dim);
  const double f = cosine ? inv_q * (1.0 + 2.0 * (n + 4.0) * u) : 1.0;  // inv_q |q'| <= that
  const double nx = cosine ? 1.0 + 2.0 * (n + 4.0) * u : max_norm;      // |x| in score units
  out.to_score = out.code.scale * (cosine ? inv_q : 1.0);
  out.err_coef = 1.01 * out.code.code_norm * f;
  out.slack = 1.01 * f * (out.code.residual * nx + (2.0 * n + 32.0) * u * qn * nx);
  const double reach = f * qn * nx;  // no score, approximate or exact, exceeds it
  out.usable = out.code.code_norm > 0.0 && reach > 1e-30 && reach < 1e30 &&
               out.to_score > 0x1p-100 && out.to_score < 0x1p100;
  return out;
}

// Int8 panels: integer dot products give every item an approximate score and a rigorous bound
// on its error. L, the k-th best lower bound, is at most the k-th best exact score, so every
// item of the exact top k has an upper bound >= L: those candidates are re-scored exactly from
// the float32 rows and the k best of them are the answer (no certificate can fail). Queries
// whose bounds cannot be formed, or leave too many candidates, are searched exactly.
void int8_search(const Queries& q, const PreparedItems& items, MatrixView rows, CsrView exclude,
                 int k, int num_threads, TopKOutput out, const StopCheck& stop) {
  const PreparedItems::Data& d = items.data();
  const std::int64_t nq = q.m.rows, dim = q.m.cols, n = rows.rows;
  const bool cosine = items.metric() == Metric::cosine;
  std::vector<Int8Query> iq;
  std::vector<unsigned char> redo(static_cast<std::size_t>(nq), 0);
  for (std::int64_t i = 0; i < nq; ++i) {
    iq.push_back(int8_query(q.m.row(i), dim, cosine ? q.inv_norm[i] : 1.0, cosine, d.max_norm));
    redo[i] = !iq.back().usable || d.exotic;
  }
  std::vector<std::int64_t> active;  // the queries scanned here
  for (std::int64_t i = 0; i < nq; ++i) {
    if (!redo[i]) active.push_back(i);
  }
  const auto na = static_cast<std::int64_t>(active.size());
  const Blocks iblocks(n, kItemBlock);
  const std::int64_t stride = quantized::panel_bytes(dim);
  const auto [threads, ranges] = scan_ranges(int8_panel_bytes(n, dim), iblocks, num_threads);
  // Per range and active query: the k best lower bounds, and the candidates (id, upper bound).
  std::vector<std::int32_t> low_ids(static_cast<std::size_t>(ranges * na * k));
  std::vector<float> low_scores(low_ids.size());
  std::vector<std::vector<ScoredId>> found(static_cast<std::size_t>(ranges * na));
  // Per active query: the best k-th lower bound any range has seen so far. It is at most L, so a
  // range keeps only the candidates that reach it too (fewer to merge than its own bar keeps).
  std::vector<SharedBar> shared(static_cast<std::size_t>(na));
  const std::int64_t tasks = na == 0 ? 0 : ranges;
  const std::int8_t* panels = d.panels8.data();  // a stream's key, as in few_scan
  run_eager_tasks(tasks, static_cast<int>(threads), stop, panels, [&](std::int64_t range) {
    const std::int64_t b0 = range * iblocks.count / ranges;
    const std::int64_t b1 = (range + 1) * iblocks.count / ranges;
    std::vector<std::int32_t> dots(static_cast<std::size_t>(2 * kItemBlock));
    std::vector<float> lower(static_cast<std::size_t>(kItemBlock)), upper(lower.size());
    for (std::int64_t t0 = 0; t0 < na; t0 += 2) {
      const int w = static_cast<int>(std::min<std::int64_t>(2, na - t0));
      const quantized::Query* codes[2] = {&iq[active[t0]].code, &iq[active[t0 + w - 1]].code};
      AscendingTopK tops[2] = {AscendingTopK(k), AscendingTopK(k)};
      std::int64_t cursor[2] = {0, 0}, cursor_end[2] = {0, 0};
      for (int r = 0; r < w && exclude.present(); ++r) {
        const std::int64_t row = active[t0 + r];
        const std::int32_t* a = exclude.indices + exclude.indptr[row];
        const std::int32_t* b = exclude.indices + exclude.indptr[row + 1];
        cursor[r] =
            std::lower_bound(a, b, static_cast<std::int32_t>(iblocks.begin(b0))) - exclude.indices;
        cursor_end[r] = exclude.indptr[row + 1];
      }
      for (std::int64_t ib = b0; ib < b1; ++ib) {
        const std::int64_t i0 = iblocks.begin(ib), m = iblocks.end(ib) - i0;
        quantized::dots(codes, w, d.panels8.data() + (i0 / quantized::kPanel) * stride,
                        (m + quantized::kPanel - 1) / quantized::kPanel, dim, dots.data(),
                        kItemBlock);
        for (int r = 0; r < w; ++r) {
          const Int8Query& c = iq[active[t0 + r]];
          const std::int32_t* dr = dots.data() + r * kItemBlock;
          const float* scale = d.approx_scale.data() + i0;
          const float* err = d.code_error.data() + i0;
          for (std::int64_t j = 0; j < m; ++j) {
            const double a = dr[j] * (c.to_score * scale[j]);
            const double b = c.err_coef * err[j] + c.slack;
            lower[j] = static_cast<float>(a - b);
            upper[j] = static_cast<float>(a + b);
          }
          for (std::int64_t& p = cursor[r]; p < cursor_end[r] && exclude.indices[p] < i0 + m; ++p) {
            lower[exclude.indices[p] - i0] = upper[exclude.indices[p] - i0] = kNegInf;
          }
          offer_block(lower.data(), m, i0, tops[r]);
          const float bar = shared[t0 + r].raise(tops[r].threshold());
          std::vector<ScoredId>& list = found[range * na + t0 + r];
          for (std::int64_t j = 0; j < m; ++j) {
            if (upper[j] >= bar && upper[j] > kNegInf) {
              list.push_back({upper[j], static_cast<std::int32_t>(i0 + j)});
            }
          }
        }
      }
      for (int r = 0; r < w; ++r) {
        const std::int64_t off = (range * na + t0 + r) * k;
        tops[r].write_unranked(low_ids.data() + off, low_scores.data() + off);
      }
    }
  });
  // Per query: L over every range, then the exact scores of the candidates that can reach it.
  const ItemScaling scaling{cosine ? d.exponent.data() : nullptr,
                            cosine ? d.inv_norm.data() : nullptr};
  TopKSelector low(k), top(k);
  RowScorer scorer(dim);
  std::vector<std::int32_t> ids;
  std::vector<float> exact;
  for (std::int64_t a = 0; a < na; ++a) {
    const std::int64_t i = active[a];
    for (std::int64_t r = 0; r < ranges; ++r) {
      const std::int64_t off = (r * na + a) * k;
      for (std::int64_t j = 0; j < k && low_ids[off + j] >= 0; ++j) {
        low.push(low_scores[off + j], low_ids[off + j]);
      }
    }
    const std::vector<ScoredId>& kept = low.finish();
    const float bar = static_cast<std::int64_t>(kept.size()) < k ? kNegInf : kept[k - 1].score;
    low.reset();
    ids.clear();
    for (std::int64_t r = 0; r < ranges; ++r) {
      for (const ScoredId& c : found[r * na + a]) {
        if (c.score >= bar) ids.push_back(c.id);
      }
    }
    if (static_cast<std::int64_t>(ids.size()) > std::max<std::int64_t>(256, n / 8)) {
      redo[i] = 1;  // near-ties everywhere: the float32 scan is cheaper
      continue;
    }
    exact.resize(ids.size());
    scorer.score(q.m.row(i), rows, ids.data(), static_cast<std::int64_t>(ids.size()),
                 scaling.exponent, exact.data());
    for (std::size_t j = 0; j < ids.size(); ++j) {
      const float e = cosine ? exact[j] * (q.inv_norm[i] * scaling.inv_norm[ids[j]]) : exact[j];
      top.push(e, ids[j]);
    }
    top.write(out.ids + i * k, out.scores + i * k);
  }
  search_again(q, rows, scaling, exclude, redo, k, num_threads, out, stop);
}

// The queries marked in `redo`, searched exactly over the float32 rows.
void search_again(const Queries& q, MatrixView rows, ItemScaling scaling, CsrView exclude,
                  const std::vector<unsigned char>& redo, int k, int num_threads, TopKOutput out,
                  const StopCheck& stop) {
  const std::int64_t nq = q.m.rows;
  const bool cosine = !q.inv_norm.empty();
  std::vector<const float*> again;
  std::vector<std::int64_t> again_rows;
  for (std::int64_t i = 0; i < nq; ++i) {
    if (redo[i]) {
      again.push_back(q.m.row(i));
      again_rows.push_back(i);
    }
  }
  if (again.empty()) return;
  std::vector<std::int32_t> ids(again.size() * k);
  std::vector<float> scores(ids.size());
  Queries sub;
  sub.m = q.m;
  if (cosine) {
    for (const std::int64_t i : again_rows) sub.inv_norm.push_back(q.inv_norm[i]);
  }
  exact_scan(sub, again, rows, scaling, exclude, again_rows.data(), k, num_threads,
             {ids.data(), scores.data()}, stop);
  for (std::size_t j = 0; j < again.size(); ++j) {
    std::copy(ids.begin() + j * k, ids.begin() + (j + 1) * k, out.ids + again_rows[j] * k);
    std::copy(scores.begin() + j * k, scores.begin() + (j + 1) * k, out.scores + again_rows[j] * k);
  }
}

}  // namespace

void topk(MatrixView queries, MatrixView items, int k, Metric metric, CsrView exclude,
          int num_threads, TopKOutput out, const StopCheck& stop) {
  check_common(queries, items, k, exclude, out);
  if (queries.rows == 0) return;
  if (items.rows == 0) return fill_padding(queries.rows, k, out);
  const bool cosine = metric == Metric::cosine;
  const Queries q = prepare_queries(queries, cosine, num_threads, stop);
  RawScaling scaling;
  if (cosine) scaling = raw_scaling(items, num_threads, stop);
  exact_scan(q, row_pointers(q.m), items, cosine ? scaling.view() : ItemScaling{}, exclude, nullptr,
             k, num_threads, out, stop);
}

void expect_query(const PreparedItems& items, int num_threads) {
  const std::int64_t n = items.size(), dim = items.dim();
  std::int64_t bytes = n * dim * static_cast<std::int64_t>(sizeof(float));  // what one query reads
  if (items.storage() == ItemStorage::float16) bytes /= 2;
  if (items.storage() == ItemStorage::int8) bytes = int8_panel_bytes(n, dim);
  const std::int64_t threads = scan_threads(bytes, num_threads);
  if (threads > 1) wake_eager_helpers(static_cast<int>(threads));
}

void topk(MatrixView queries, const PreparedItems& items, MatrixView rows, int k, CsrView exclude,
          int num_threads, TopKOutput out, const StopCheck& stop) {
  check_common(queries, rows, k, exclude, out);
  if (rows.cols != items.dim()) throw std::invalid_argument("rows do not match the prepared items");
  std::shared_lock lock(items.mutex());
  const PreparedItems::Data& d = items.data();
  if (rows.rows > d.n) throw std::invalid_argument("rows has more items than were prepared");
  if (queries.rows == 0) return;
  if (rows.rows == 0) return fill_padding(queries.rows, k, out);
  const bool cosine = items.metric() == Metric::cosine;
  const Queries q = prepare_queries(queries, cosine, num_threads, stop);
  if (items.storage() != ItemStorage::float32) {
    if (items.storage() == ItemStorage::float16 && q.m.rows <= kHalfQueries) {
      return half_search(q, q.inv_norm, items, rows, exclude, k, num_threads, out, stop);
    }
    if (items.storage() == ItemStorage::int8 && q.m.rows <= kInt8Queries) {
      return int8_search(q, items, rows, exclude, k, num_threads, out, stop);
    }
    // Many queries make the scan compute-bound: the float32 rows (the same sums) are faster
    // than float16 panels plus re-scoring.
    const ItemScaling scaling =
        cosine ? ItemScaling{d.exponent.data(), d.inv_norm.data()} : ItemScaling{};
    return exact_scan(q, row_pointers(q.m), rows, scaling, exclude, nullptr, k, num_threads, out,
                      stop);
  }
  const std::vector<const float*> query_rows = row_pointers(q.m);
  Scan<float> s;
  s.query_rows = query_rows.data();
  s.nq = q.m.rows;
  s.dim = q.m.cols;
  s.n_items = rows.rows;
  s.panels = d.panels32.data();
  if (cosine) {
    s.query_scale = q.inv_norm.data();
    s.item_scale = d.inv_norm.data();
  }
  s.exclude = exclude;
  s.k = k;
  scan_prepared(s, num_threads, stop, out);
}

void dot_products(MatrixView queries, MatrixView items, int num_threads, float* out,
                  const StopCheck& stop) {
  if (queries.cols != items.cols) {
    throw std::invalid_argument("queries and items differ in dimension");
  }
  const std::int64_t nq = queries.rows, dim = queries.cols, n = items.rows;
  if (nq == 0 || n == 0) return;
  // The scan's blocks without its selection: each task packs one block of queries and one of
  // items and writes their scores out whole.
  const Blocks qblocks(nq, kQueryBlock), iblocks(n, kItemBlock);
  const std::int64_t stride = dim * kPanel;
  parallel_tasks(qblocks.count * iblocks.count, num_threads, stop, [&](std::int64_t task) {
    const std::int64_t q0 = qblocks.begin(task / iblocks.count);
    const std::int64_t nqb = qblocks.end(task / iblocks.count) - q0;
    const std::int64_t i0 = iblocks.begin(task % iblocks.count);
    const std::int64_t ni = iblocks.end(task % iblocks.count) - i0;
    const std::int64_t tiles = (nqb + kTileQueries - 1) / kTileQueries;
    std::vector<float> packed(static_cast<std::size_t>(nqb * dim));  // [term][query] per tile
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t r0 = t * kTileQueries, w = std::min<std::int64_t>(kTileQueries, nqb - r0);
      for (std::int64_t r = 0; r < w; ++r) {
        const float* src = queries.row(q0 + r0 + r);
        for (std::int64_t kk = 0; kk < dim; ++kk) packed[r0 * dim + kk * w + r] = src[kk];
      }
    }
    AlignedVector<float> panels(static_cast<std::size_t>(kItemBlock * dim));
    std::vector<float> scratch(static_cast<std::size_t>(dim));
    pack_rows(items, i0, ni, nullptr, 0, panels.data(), 0, scratch.data());
    AlignedVector<float> S(static_cast<std::size_t>(nqb * kItemBlock), 0.0f);  // S[query][item]
    const std::int64_t n_panels = (ni + kPanel - 1) / kPanel;
    const std::int64_t depth_block = tiles == 1 ? std::max<std::int64_t>(dim, 1) : kDepthBlock;
    for (std::int64_t k0 = 0; k0 < dim; k0 += depth_block) {
      const std::int64_t depth = std::min(depth_block, dim - k0);
      for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t r0 = t * kTileQueries;
        const int w = static_cast<int>(std::min<std::int64_t>(kTileQueries, nqb - r0));
        tile<float>(w, packed.data() + r0 * dim + k0 * w, panels.data() + k0 * kPanel, stride,
                    n_panels, depth, k0 > 0, S.data() + r0 * kItemBlock, kItemBlock);
      }
    }
    for (std::int64_t q = 0; q < nqb; ++q) {
      std::copy_n(S.data() + q * kItemBlock, ni, out + (q0 + q) * n + i0);
    }
  });
}

void topk_candidates(MatrixView queries, MatrixView items, CsrView candidates, int k, Metric metric,
                     CsrView exclude, int num_threads, TopKOutput out, const StopCheck& stop) {
  check_common(queries, items, k, exclude, out);
  if (!candidates.present()) throw std::invalid_argument("candidates are missing");
  check_csr(candidates, queries.rows, items.rows, "candidates");
  const bool cosine = metric == Metric::cosine;
  const Queries q = prepare_queries(queries, cosine, num_threads, stop);
  RawScaling scaling;
  if (cosine) scaling = raw_scaling(items, num_threads, stop);
  candidates_search(q, items, cosine ? scaling.view() : ItemScaling{}, candidates, k, exclude,
                    num_threads, out, stop);
}

void topk_candidates(MatrixView queries, const PreparedItems& items, MatrixView rows,
                     CsrView candidates, int k, CsrView exclude, int num_threads, TopKOutput out,
                     const StopCheck& stop) {
  check_common(queries, rows, k, exclude, out);
  if (!candidates.present()) throw std::invalid_argument("candidates are missing");
  check_csr(candidates, queries.rows, rows.rows, "candidates");
  if (rows.cols != items.dim()) throw std::invalid_argument("rows do not match the prepared items");
  std::shared_lock lock(items.mutex());
  const PreparedItems::Data& d = items.data();
  if (rows.rows > d.n) throw std::invalid_argument("rows has more items than were prepared");
  const bool cosine = items.metric() == Metric::cosine;
  const Queries q = prepare_queries(queries, cosine, num_threads, stop);
  const ItemScaling scaling =
      cosine ? ItemScaling{d.exponent.data(), d.inv_norm.data()} : ItemScaling{};
  candidates_search(q, rows, scaling, candidates, k, exclude, num_threads, out, stop);
}

PaddedLists padded_lists(const std::int32_t* ids, std::int64_t rows, std::int64_t width,
                         std::int64_t n_items) {
  PaddedLists out;
  out.n_items = n_items;
  out.indptr.assign(static_cast<std::size_t>(rows + 1), 0);
  out.indices.reserve(static_cast<std::size_t>(rows * width));
  for (std::int64_t i = 0; i < rows; ++i) {
    const std::size_t first = out.indices.size();
    for (std::int64_t j = 0; j < width; ++j) {
      const std::int32_t id = ids[i * width + j];
      if (id < -1 || id >= n_items) {
        throw std::out_of_range("candidates hold item id " + std::to_string(id) + ", outside [0, " +
                                std::to_string(n_items) + ") (-1 marks an empty slot)");
      }
      if (id >= 0) out.indices.push_back(id);
    }
    std::sort(out.indices.begin() + static_cast<std::ptrdiff_t>(first), out.indices.end());
    out.indptr[static_cast<std::size_t>(i + 1)] = static_cast<std::int64_t>(out.indices.size());
  }
  return out;
}

const char* kernel_description() {
  static const std::string text = std::string(SEMREC_KERNEL) + ", register tile " +
                                  std::to_string(kTileQueries) + " queries x " +
                                  std::to_string(kPanel) + " items";
  return text.c_str();
}

}  // namespace semrec
