#include "semrec/pq_scan.hpp"

#include <optional>
#include <vector>

#include "bindings/common.hpp"
#include "bindings/register.hpp"
#include "semrec/similarity.hpp"

namespace semrec::bindings {

namespace {

// The blocks holding n_items of m sub-spaces: a 1-D uint8 array at least that long.
void check_blocks(const CArray<std::uint8_t>& blocks, std::int64_t n_items, std::int64_t m) {
  const std::int64_t need = pq::blocks_bytes(n_items, m);
  if (blocks.ndim() != 1 || blocks.shape(0) < need) {
    throw std::invalid_argument("blocks must be a 1-D uint8 array of at least " +
                                std::to_string(need) + " bytes");
  }
}

pq::Codebook codebook(const CArray<float>& centroids) {
  if (centroids.ndim() != 3 || centroids.shape(0) < 1 || centroids.shape(1) != pq::kCentroids ||
      centroids.shape(2) < 1) {
    throw std::invalid_argument("centroids must be (sub-spaces, 16, sub-dimensions)");
  }
  return {centroids.data(), centroids.shape(0), centroids.shape(2)};
}

// The checked arguments of a scan: the codebook, and the queries' and depth's shapes.
pq::Codebook scan_arguments(const CArray<float>& queries, const CArray<float>& centroids,
                            const CArray<std::uint8_t>& blocks, std::int64_t n_items,
                            std::int64_t depth) {
  const pq::Codebook book = codebook(centroids);
  if (queries.ndim() != 2 || queries.shape(1) != book.m * book.dsub) {
    throw std::invalid_argument("queries must be 2-D with sub-spaces x sub-dimensions columns");
  }
  if (n_items < 0 || n_items > INT32_MAX || depth < 1) {
    throw std::invalid_argument("n_items must be in [0, 2**31), depth >= 1");
  }
  check_blocks(blocks, n_items, book.m);
  return book;
}

}  // namespace

void register_pq(py::module_& m) {
  m.def(
      "pq_blocks_bytes",
      [](std::int64_t n_items, std::int64_t subspaces) {
        if (n_items < 0 || subspaces < 1) {
          throw std::invalid_argument("n_items must be >= 0, subspaces >= 1");
        }
        return pq::blocks_bytes(n_items, subspaces);
      },
      py::arg("n_items"), py::arg("subspaces"),
      "Bytes of the scan's blocks that hold n_items codes of `subspaces` sub-spaces.");

  m.def(
      "pq_pack",
      [](const CArray<std::uint8_t>& codes, CArray<std::uint8_t>& blocks, std::int64_t first) {
        if (codes.ndim() != 2 || first < 0) {
          throw std::invalid_argument("codes must be 2-D (items x sub-spaces), first >= 0");
        }
        const std::int64_t n = codes.shape(0), subspaces = codes.shape(1);
        check_blocks(blocks, first + n, subspaces);
        pq::pack(codes.data(), n, subspaces, blocks.mutable_data(), first);
      },
      py::arg("codes").noconvert(), py::arg("blocks").noconvert(), py::arg("first"),
      "Writes 4-bit codes (items x sub-spaces) into the scan's blocks from item `first` on.");

  m.def(
      "pq_unpack",
      [](const CArray<std::uint8_t>& blocks, std::int64_t first, std::int64_t n,
         std::int64_t subspaces) {
        if (first < 0 || n < 0 || subspaces < 1) {
          throw std::invalid_argument("first and n must be >= 0, subspaces >= 1");
        }
        check_blocks(blocks, first + n, subspaces);
        CArray<std::uint8_t> codes({n, subspaces});
        pq::unpack(blocks.data(), first, n, subspaces, codes.mutable_data());
        return codes;
      },
      py::arg("blocks").noconvert(), py::arg("first"), py::arg("n"), py::arg("subspaces"),
      "The codes of items [first, first + n) of the blocks (pq_pack's inverse).");

  m.def(
      "pq_encode",
      [](const CArray<float>& rows, const CArray<float>& centroids, ThreadCount num_threads) {
        const pq::Codebook book = codebook(centroids);
        if (rows.ndim() != 2 || rows.shape(1) != book.m * book.dsub) {
          throw std::invalid_argument("rows must be 2-D with sub-spaces x sub-dimensions columns");
        }
        const std::int64_t n = rows.shape(0);
        CArray<std::uint8_t> codes({n, book.m});
        std::uint8_t* out = codes.mutable_data();
        without_gil([&](const StopCheck& stop) {
          pq::encode(rows.data(), n, book, num_threads, out, stop);
        });
        return codes;
      },
      py::arg("rows").noconvert(), py::arg("centroids").noconvert(), py::arg("num_threads"),
      "Each row's nearest centroid per sub-space (items x sub-spaces uint8).");

  m.def(
      "pq_search",
      [](const CArray<float>& queries, const CArray<float>& centroids,
         const CArray<std::uint8_t>& blocks, std::int64_t n_items, std::int64_t depth,
         ThreadCount num_threads) {
        const pq::Codebook book = scan_arguments(queries, centroids, blocks, n_items, depth);
        const std::int64_t nq = queries.shape(0);
        CArray<std::int32_t> ids({nq, depth});
        std::int32_t* out = ids.mutable_data();
        without_gil([&](const StopCheck& stop) {
          pq::search(queries.data(), nq, book, blocks.data(), n_items, depth, num_threads, out,
                     stop);
        });
        return ids;
      },
      py::arg("queries").noconvert(), py::arg("centroids").noconvert(),
      py::arg("blocks").noconvert(), py::arg("n_items"), py::arg("depth"), py::arg("num_threads"),
      "Ids of each query's `depth` best items by approximate (table) score; see "
      "semrec.PQIndex.");

  // pq_search, then the exact top-k of its proposals (topk_candidates_prepared), in one call:
  // right after a scan of a large catalogue each Python step between them runs on cold caches.
  m.def(
      "pq_query",
      [](const CArray<float>& scan_queries, const CArray<float>& centroids,
         const CArray<std::uint8_t>& blocks, std::int64_t n_items, std::int64_t depth,
         const CArray<float>& queries, const PreparedItems& items, const CArray<float>& rows, int k,
         std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices, ThreadCount num_threads) {
        const pq::Codebook book = scan_arguments(scan_queries, centroids, blocks, n_items, depth);
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(rows, "rows");
        if (q.rows != scan_queries.shape(0) || n_items > x.rows) {
          throw std::invalid_argument("queries must match scan_queries, n_items <= len(rows)");
        }
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, x.rows, "exclude");
        TopKOutput out;
        py::tuple result = topk_result(q.rows, k, out);
        without_gil([&](const StopCheck& stop) {
          std::vector<std::int32_t> found(static_cast<std::size_t>(q.rows * depth));
          pq::search(scan_queries.data(), q.rows, book, blocks.data(), n_items, depth, num_threads,
                     found.data(), stop);
          const PaddedLists lists = padded_lists(found.data(), q.rows, depth, x.rows);
          const CsrView proposed{lists.indptr.data(), lists.indices.data(), q.rows, x.rows};
          topk_candidates(q, items, x, proposed, k, ex, num_threads, out, stop);
        });
        return result;
      },
      py::arg("scan_queries").noconvert(), py::arg("centroids").noconvert(),
      py::arg("blocks").noconvert(), py::arg("n_items"), py::arg("depth"),
      py::arg("queries").noconvert(), py::arg("items"), py::arg("rows").noconvert(), py::arg("k"),
      py::arg("exclude_indptr").noconvert(), py::arg("exclude_indices").noconvert(),
      py::arg("num_threads"),
      "pq_search's proposals re-scored exactly (topk_candidates_prepared) in one call; see "
      "semrec.PQIndex.");
}

}  // namespace semrec::bindings
