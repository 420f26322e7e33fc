# Type stubs for the kernel modules semrec._core_{generic,avx2,avx512} (one file per variant).
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

isa: str

def max_threads() -> int: ...
def topk(
    queries: npt.NDArray[np.float32],
    items: npt.NDArray[np.float32],
    k: int,
    metric: str,
    exclude_indptr: npt.NDArray[np.int64] | None,
    exclude_indices: npt.NDArray[np.int32] | None,
    num_threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...
def topk_candidates(
    queries: npt.NDArray[np.float32],
    items: npt.NDArray[np.float32],
    cand_indptr: npt.NDArray[np.int64],
    cand_indices: npt.NDArray[np.int32],
    k: int,
    metric: str,
    exclude_indptr: npt.NDArray[np.int64] | None,
    exclude_indices: npt.NDArray[np.int32] | None,
    num_threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...
class PreparedItems:
    def __init__(self, dim: int, metric: str, storage: str) -> None: ...
    def append(self, rows: npt.NDArray[np.float32], num_threads: int) -> None: ...
    @property
    def size(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

def topk_prepared(
    queries: npt.NDArray[np.float32],
    items: PreparedItems,
    rows: npt.NDArray[np.float32],
    k: int,
    exclude_indptr: npt.NDArray[np.int64] | None,
    exclude_indices: npt.NDArray[np.int32] | None,
    num_threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...
def topk_candidates_prepared(
    queries: npt.NDArray[np.float32],
    items: PreparedItems,
    rows: npt.NDArray[np.float32],
    cand_indptr: npt.NDArray[np.int64],
    cand_indices: npt.NDArray[np.int32],
    k: int,
    exclude_indptr: npt.NDArray[np.int64] | None,
    exclude_indices: npt.NDArray[np.int32] | None,
    num_threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...
def kernel_description() -> str: ...
def ranking_metrics(
    recs: npt.NDArray[np.int32],
    rel_indptr: npt.NDArray[np.int64],
    rel_indices: npt.NDArray[np.int32],
    n_items: int,
    cutoffs: list[int],
    num_threads: int,
) -> npt.NDArray[np.float64]: ...
def distinct_items(recs: npt.NDArray[np.int32], k: int, n_items: int) -> int: ...
def mean_item_value(
    recs: npt.NDArray[np.int32],
    k: int,
    item_value: npt.NDArray[np.float64],
    num_threads: int,
) -> npt.NDArray[np.float64]: ...
def intra_list_diversity(
    recs: npt.NDArray[np.int32],
    k: int,
    embeddings: npt.NDArray[np.float32],
    num_threads: int,
) -> npt.NDArray[np.float64]: ...
def error_sums(
    predicted: npt.NDArray[np.float32], actual: npt.NDArray[np.float32]
) -> tuple[float, float]: ...
def csr_transpose(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    values: npt.NDArray[np.float32],
    cols: int,
    num_threads: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...
def als_gram(other: npt.NDArray[np.float32], dims: int, num_threads: int) -> npt.NDArray[np.float64]: ...
def als_solve(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    values: npt.NDArray[np.float32],
    other: npt.NDArray[np.float32],
    gram: npt.NDArray[np.float64] | None,
    factors: npt.NDArray[np.float32],
    implicit: bool,
    solve_dims: int,
    regularization: float,
    solver: str,
    cg_steps: int,
    num_threads: int,
) -> None: ...
def als_loss(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    values: npt.NDArray[np.float32],
    factors: npt.NDArray[np.float32],
    other: npt.NDArray[np.float32],
    gram: npt.NDArray[np.float64] | None,
    implicit: bool,
    num_threads: int,
) -> float: ...
def interest_profiles(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
    times: npt.NDArray[np.int64] | npt.NDArray[np.float64] | None,
    items: npt.NDArray[np.float32],
    half_life: float,
    num_threads: int,
) -> npt.NDArray[np.float32]: ...

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
    def reset(self, users: npt.NDArray[np.int64]) -> None: ...
    def add(
        self, items: npt.NDArray[np.float32], user: int, item: int, weight: float, t: float
    ) -> None: ...
    def add_many(
        self,
        items: npt.NDArray[np.float32],
        users: npt.NDArray[np.int64],
        ids: npt.NDArray[np.int32],
        weights: npt.NDArray[np.float32] | None,
        times: npt.NDArray[np.int64] | npt.NDArray[np.float64] | None,
    ) -> None: ...
    def add_rows(
        self,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int32],
        weights: npt.NDArray[np.float32],
        times: npt.NDArray[np.int64] | npt.NDArray[np.float64] | None,
        items: npt.NDArray[np.float32],
        first_user: int,
        num_threads: int,
    ) -> None: ...
    def profiles(self, users: npt.NDArray[np.int64], num_threads: int) -> npt.NDArray[np.float32]: ...
    def raw(self, user: int) -> tuple[npt.NDArray[np.float32], float, float, int]: ...
def mmr(
    ids: npt.NDArray[np.int32],
    relevance: npt.NDArray[np.float32],
    embeddings: npt.NDArray[np.float32],
    k: int,
    lambda_: float,
    num_threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.int32]]: ...
def knn_graph(
    q_indptr: npt.NDArray[np.int64],
    q_indices: npt.NDArray[np.int32],
    q_values: npt.NDArray[np.float32],
    t_indptr: npt.NDArray[np.int64],
    t_indices: npt.NDArray[np.int32],
    t_values: npt.NDArray[np.float32],
    n_targets: int,
    query_norms: npt.NDArray[np.float32],
    target_norms: npt.NDArray[np.float32],
    self: npt.NDArray[np.int32] | None,
    target_ids: npt.NDArray[np.int32] | None,
    k: int,
    shrink: float,
    num_threads: int,
    progress: Callable[[int], object] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...
def knn_topk(
    h_indptr: npt.NDArray[np.int64],
    h_indices: npt.NDArray[np.int32],
    h_values: npt.NDArray[np.float32],
    g_indptr: npt.NDArray[np.int64],
    g_indices: npt.NDArray[np.int32],
    g_values: npt.NDArray[np.float32],
    n_items: int,
    k: int,
    exclude_indptr: npt.NDArray[np.int64] | None,
    exclude_indices: npt.NDArray[np.int32] | None,
    candidates: npt.NDArray[np.int32] | None,
    num_threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...
