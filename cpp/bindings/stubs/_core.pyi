# Type stubs for the kernel modules semrec._core_{generic,avx2,avx512} (one file per variant).
# Parameters are grouped by meaning, one group a line: a CSR matrix's indptr, indices (and
# values) together, an exclusion list's pair together, num_threads last.
# fmt: off
from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

F32: TypeAlias = npt.NDArray[np.float32]
F64: TypeAlias = npt.NDArray[np.float64]
I32: TypeAlias = npt.NDArray[np.int32]
I64: TypeAlias = npt.NDArray[np.int64]
U8: TypeAlias = npt.NDArray[np.uint8]
Bool: TypeAlias = npt.NDArray[np.bool_]
Times: TypeAlias = I64 | F64 | None  # seconds or any monotonic integer clock; None: no decay
TopK: TypeAlias = tuple[I32, F32]  # ids (-1 pads) and scores (-inf pads), best first
Csr: TypeAlias = tuple[I64, I32, F32]  # indptr, indices, values

isa: str

def max_threads() -> int: ...
def kernel_description() -> str: ...

# similarity
def topk(
    queries: F32, items: F32, k: int, metric: str,
    exclude_indptr: I64 | None, exclude_indices: I32 | None, num_threads: int,
) -> TopK: ...
def dot_products(queries: F32, items: F32, num_threads: int) -> F32: ...
def topk_candidates(
    queries: F32, items: F32, cand_indptr: I64, cand_indices: I32, k: int, metric: str,
    exclude_indptr: I64 | None, exclude_indices: I32 | None, num_threads: int,
) -> TopK: ...
class PreparedItems:
    def __init__(self, dim: int, metric: str, storage: str) -> None: ...
    def append(self, rows: F32, num_threads: int) -> None: ...
    @property
    def size(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

def expect_query(items: PreparedItems, num_threads: int) -> None: ...
def topk_prepared(
    queries: F32, items: PreparedItems, rows: F32, k: int,
    exclude_indptr: I64 | None, exclude_indices: I32 | None, num_threads: int,
) -> TopK: ...
def topk_candidates_prepared(
    queries: F32, items: PreparedItems, rows: F32, cand_indptr: I64, cand_indices: I32, k: int,
    exclude_indptr: I64 | None, exclude_indices: I32 | None, num_threads: int,
) -> TopK: ...
def padded_lists(ids: I32, n_items: int) -> tuple[I64, I32]: ...

# metrics
def ranking_metrics(
    recs: I32, rel_indptr: I64, rel_indices: I32, n_items: int, cutoffs: list[int],
    num_threads: int,
) -> F64: ...
def distinct_items(recs: I32, k: int, n_items: int) -> int: ...
def mean_item_value(recs: I32, k: int, item_value: F64, num_threads: int) -> F64: ...
def intra_list_diversity(
    recs: I32, k: int, embeddings: F32, inverse_norms: F64, num_threads: int
) -> F64: ...

# als
def csr_transpose(indptr: I64, indices: I32, values: F32, cols: int, num_threads: int) -> Csr: ...
def als_gram(other: F32, dims: int, num_threads: int) -> F64: ...
def als_solve(
    indptr: I64, indices: I32, values: F32,
    other: F32, gram: F64 | None, factors: F32,
    implicit: bool, solve_dims: int, regularization: float, solver: str, cg_steps: int,
    num_threads: int,
) -> None: ...
def als_loss(
    indptr: I64, indices: I32, values: F32,
    factors: F32, other: F32, gram: F64 | None, implicit: bool, num_threads: int,
) -> float: ...

# interest
def interest_profiles(
    indptr: I64, indices: I32, weights: F32, times: Times,
    items: F32, half_life: float, num_threads: int,
) -> F32: ...

class SumOverflow(ValueError):  # args (user, peak): an event refused, nothing was applied
    ...

class InterestState:
    def __init__(self, dim: int, half_life: float) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def n_users(self) -> int: ...
    @property
    def half_life(self) -> float: ...
    @property
    def latest(self) -> float: ...
    def grow(self, n_users: int) -> None: ...
    def reset(self, users: I64) -> None: ...
    def add(self, items: F32, user: int, item: int, weight: float, t: float) -> None: ...
    def add_many(
        self, items: F32, users: I64, ids: I32, weights: F32 | None, times: Times,
        reset: I64 | None, item_norm: float,
    ) -> None: ...
    def add_rows(
        self, indptr: I64, indices: I32, weights: F32, times: Times,
        items: F32, first_user: int, num_threads: int,
    ) -> None: ...
    def profiles(self, users: I64, num_threads: int) -> F32: ...
    def raw(self, user: int) -> tuple[F32, float, float, int]: ...

# rerank
def mmr(
    ids: I32, relevance: F32, embeddings: F32, k: int, lambda_: float, num_threads: int
) -> tuple[I32, F32, I32]: ...

# knn
def knn_graph(
    q_indptr: I64, q_indices: I32, q_values: F32,
    t_indptr: I64, t_indices: I32, t_values: F32, n_targets: int,
    query_norms: F32, target_norms: F32, self: I32 | None, target_ids: I32 | None,
    k: int, shrink: float, num_threads: int, progress: Callable[[int], object] | None = None,
) -> Csr: ...
def knn_topk(
    h_indptr: I64, h_indices: I32, h_values: F32,
    g_indptr: I64, g_indices: I32, g_values: F32, n_items: int, k: int,
    exclude_indptr: I64 | None, exclude_indices: I32 | None, candidates: I32 | None,
    num_threads: int,
) -> TopK: ...

def knn_scores(
    h_indptr: I64, h_indices: I32, h_values: F32,
    g_indptr: I64, g_indices: I32, g_values: F32, n_items: int, num_threads: int,
) -> F32: ...

# product-quantised codes (semrec.PQIndex)
def pq_blocks_bytes(n_items: int, subspaces: int) -> int: ...
def pq_pack(codes: U8, blocks: U8, first: int) -> None: ...
def pq_unpack(blocks: U8, first: int, n: int, subspaces: int) -> U8: ...
def pq_encode(rows: F32, centroids: F32, num_threads: int) -> U8: ...
def pq_search(
    queries: F32, centroids: F32, blocks: U8, n_items: int, depth: int, num_threads: int
) -> I32: ...
def pq_query(
    scan_queries: F32, centroids: F32, blocks: U8, n_items: int, depth: int,
    queries: F32, items: PreparedItems, rows: F32, k: int,
    exclude_indptr: I64 | None, exclude_indices: I32 | None, num_threads: int,
) -> TopK: ...

# Hybrid's blend (semrec.hybrid.normalize_rows, semrec._scoring.select_topk); float32 or float64
def add_normalized_rows(
    scores: F32 | F64, how: str, weight: float, total: F64, num_threads: int
) -> bool: ...
def topk_dense_rows(
    scores: F32 | F64, k: int,
    exclude_indptr: I64 | None, exclude_indices: I32 | None, allowed: Bool | None,
    num_threads: int,
) -> TopK: ...
