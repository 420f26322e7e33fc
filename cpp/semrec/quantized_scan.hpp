// Int8 item panels and their integer dot products with int16 queries: the approximate first
// pass of an exact single-query search (similarity.cpp re-scores its candidates in float32).
//
// Each item is stored as 8-bit codes times one scale of its own; a query is rounded to 16-bit
// codes (vpmaddwd multiplies 16-bit pairs exactly into 32-bit sums, on AVX2 as on AVX-512, so
// no instruction saturates and an approximate score is an exact integer times two scales). The
// rounding errors are measured (the residual norms), which bounds |approximate - exact| per item.
#pragma once

#include <cstdint>
#include <vector>

namespace semrec::quantized {

// Items per panel (every instruction set: one 64-byte line holds a pair of terms of 32 items).
constexpr std::int64_t kPanel = 32;

// Bytes of one panel of `dim`-term items (terms padded to an even count).
inline std::int64_t panel_bytes(std::int64_t dim) { return (dim + 1) / 2 * 2 * kPanel; }

// The rounding of one row: row ~= scale * code, |row - scale * code|_2 <= residual.
struct RowCode {
  double scale = 0.0;
  double residual = 0.0;
};

// Writes row (dim floats) as item `slot` of the panels at `panels` (panel slot / kPanel, lane
// slot % kPanel); codes in [-127, 127], scale = max |row| / 127.
RowCode pack_row(const float* row, std::int64_t dim, std::int8_t* panels, std::int64_t slot);

// A query as the kernel reads it: pairs of 16-bit codes, each pair in one 32-bit word.
struct Query {
  std::vector<std::int32_t> pairs;  // (code[2j], code[2j + 1]), low half first
  double scale = 0.0;               // query ~= scale * code
  double code_norm = 0.0;           // |scale * code|_2
  double residual = 0.0;            // |query - scale * code|_2
};

// Codes bounded so that no 32-bit sum over `dim` terms can overflow (16383 up to 1032 terms).
Query quantize_query(const float* q, std::int64_t dim);

// Integer dot products of `nq` (1 or 2) queries with the `panels` consecutive panels at `x`:
// out[r * ld + j] for item j of the panels (lane order), exact.
void dots(const Query* const* queries, int nq, const std::int8_t* x, std::int64_t panels,
          std::int64_t dim, std::int32_t* out, std::int64_t ld);

}  // namespace semrec::quantized
