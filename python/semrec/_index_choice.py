"""How ``recommend`` searches a dot-product model's items, as users choose it: exactly (the
default) or through an approximate index. :class:`semrec._base.Recommender` inherits the
verb from :class:`IndexChoice`; the state behind it is a :class:`semrec._search.ItemSearch`,
which the model tells when its item vectors change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semrec._model_lock import changes_model

# ``_vectors(NO_USERS)[1]``: a dot-product model's item vectors alone.
NO_USERS = np.empty(0, dtype=np.int64)


class IndexChoice:
    """``use_index`` and ``item_index_`` of a model, and ``_items_changed``, the hook by which a
    model tells its index that item vectors changed. They rely on the model's own hooks
    (``docs/model_contract.md``): ``_is_dot_product``, ``_vectors``, ``_item_search``,
    ``_check_fitted``, ``_unsupported``, ``_threads`` and ``_FITTED_BY``."""

    @changes_model
    def use_index(self, kind: str = "exact", *, storage: str | None = None, **params: int) -> Any:
        """Choose how ``recommend`` searches the items: exactly (the default) or approximately.

        Parameters
        ----------
        kind : {"exact", "hnsw", "pq"}
            ``"exact"`` scores every item (vectors packed once: a :class:`semrec.ItemIndex`).
            ``"hnsw"`` / ``"pq"``: a :class:`semrec.HNSWIndex` / :class:`semrec.PQIndex` (extra
            ``semrec[ann]``) proposes items; returned scores are exact, seen items and
            ``items=`` honoured, but some true top k may be missed (recall: benchmarks/README.md).
            Checked now; built now (unfitted: at the first ``recommend``), grown by
            ``add_items``, rebuilt when the item vectors change, saved with the model.
        storage : {"float32", "float16", "int8"}, optional
            The exact index's packed copy (see :class:`semrec.ItemIndex`): answers are exact
            either way; one user's query streams 1/2 (float16) or 1/4 (int8). Default: ``"int8"``
            for :class:`semrec.ContentRecommender` (unit vectors), ``"float32"`` otherwise.
        **params : int
            ``"hnsw"``: ``m``, ``ef_construction``, ``ef_search``; ``"pq"``: ``m``, ``rerank``.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
        >>> clicks = sp.eye_array(2, 500, format="csr")
        >>> model = semrec.ContentRecommender(emb, show_progress=False).fit(clicks)
        >>> exact = model.recommend(0, k=5)[0]
        >>> approx = model.use_index("hnsw", ef_search=64).recommend(0, k=5)[0]
        >>> len(set(exact) & set(approx)) >= 4
        True
        """
        if not self._is_dot_product():
            raise self._unsupported("use_index")
        search, fitted = self._item_search(), self._FITTED_BY in vars(self)  # fitted: build now
        search.use(kind, storage, params, (lambda: self.item_index_) if fitted else None)
        return self

    @property
    def item_index_(self) -> Any:
        """The index ``recommend`` searches: a :class:`semrec.ItemIndex`, or the approximate
        index chosen with :meth:`use_index` (dot-product models)."""
        self._check_fitted()
        if not self._is_dot_product():
            raise self._unsupported("use_index")
        return self._item_search().index_for(self._vectors(NO_USERS)[1], self._threads)

    def _items_changed(self, first: int = 0, items: np.ndarray | None = None) -> None:
        """A model that changes its item vectors in place, or appends rows (``first`` = the old
        count) to make ``items``, says so here; an array replaced by another one is noticed."""
        self._item_search().changed(first, items)
