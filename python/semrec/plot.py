"""Figures for evaluations and models (matplotlib, an optional extra: ``pip install
'semrec[plot]'``).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so nothing
depends on a display or on global state: it renders in a notebook, in a script on a server,
or through :func:`save` to a PNG file.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _files as files
from semrec import _validation as check

# Categorical colours up to this many labels (matplotlib's tab20 past the 10 default colours);
# more labels share a continuous colour map.
_MAX_CATEGORIES = 20
# The legend entry of the items whose label is missing (None or NaN).
_MISSING = "missing"


def _figure(**kwargs: Any) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "semrec.plot needs matplotlib: pip install 'semrec[plot]' (or pip install matplotlib)"
        ) from None
    return Figure(layout="constrained", **kwargs)


def metrics_vs_k(
    results: pd.DataFrame | Mapping[str, pd.DataFrame],
    metrics: str | Sequence[str] = ("ndcg", "recall"),
) -> Any:
    """One panel per metric: its value against the cutoff ``k``, one line per model.

    Parameters
    ----------
    results : DataFrame or dict of str -> DataFrame
        The table of :func:`semrec.compare` (index ``(model, k)``), or ``{name: table}`` of
        :func:`semrec.evaluate` tables (index ``k``), each with at least one row. A table of
        one's own works once its index holds the cutoffs and is named ``k``; the per-user
        table of ``evaluate(..., per_user=True)`` (one row per user) is refused.
    metrics : str or sequence of str
        Columns to plot (numeric).

    Raises
    ------
    TypeError
        ``results`` is not such a table or dict, ``metrics`` not column names, or a column
        does not hold real numbers.
    ValueError
        A table has no rows, its index is not the cutoffs ``k`` (integers >= 1), it lacks a
        metric or has a metric's column twice.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import semrec, semrec.plot
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import last_fraction
    >>> train, test = last_fraction(synthetic(200, 300, 4_000))
    >>> table = semrec.compare({}, train, test, k=(5, 10, 20))
    >>> fig = semrec.plot.metrics_vs_k(table, "ndcg")
    >>> fig.axes[0].get_ylabel()
    'ndcg'
    """
    names = _column_names(metrics)
    tables = _by_model(results)
    for model, table in tables.items():
        missing = [m for m in names if m not in table.columns]
        if missing:
            raise ValueError(
                f"results for {model!r} have no column {missing[0]!r}; they have "
                f"{list(table.columns)}"
            )
        for metric in names:
            _numeric(table, metric, f"the column {metric!r} of the results for {model!r}")
    fig = _figure(figsize=(4.2 * len(names), 3.4))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, metric in zip(axes, names, strict=True):
        for model, table in tables.items():
            table = table.sort_index()  # evaluate keeps the order k was given in
            ks = np.asarray(table.index, dtype=float)
            ax.plot(ks, table[metric].to_numpy(dtype=float), marker="o", label=str(model))
        ax.set_xlabel("k")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}@k")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    return fig


def diversity_tradeoff(
    sweep: pd.DataFrame,
    *,
    parameter: str = "lambda",
    accuracy: str = "ndcg",
    diversity: str = "diversity",
    coverage: str | None = "coverage",
) -> Any:
    """The accuracy / diversity trade-off of a re-ranking sweep (e.g. the MMR ``lambda``).

    Left: accuracy against diversity, each point labelled with its parameter value. Right:
    every measure against the parameter.

    Parameters
    ----------
    sweep : DataFrame
        One row per parameter value with columns ``parameter``, ``accuracy``, ``diversity``
        (and ``coverage`` unless None), all numeric.
    parameter, accuracy, diversity, coverage : str
        The names of those columns (``coverage=None``: no coverage curve).

    Raises
    ------
    TypeError
        ``sweep`` is not a DataFrame, a column name is not a str, or a column does not hold
        real numbers (e.g. ``"low"/"high"`` parameter labels: map them to the swept values).
    ValueError
        ``sweep`` has no rows, lacks one of the columns or has one twice.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd, semrec.plot
    >>> sweep = pd.DataFrame({"lambda": [0.0, 0.5, 1.0], "ndcg": [0.30, 0.28, 0.2],
    ...                       "diversity": [0.4, 0.6, 0.8], "coverage": [0.1, 0.2, 0.3]})
    >>> len(semrec.plot.diversity_tradeoff(sweep).axes)
    2
    """
    if not isinstance(sweep, pd.DataFrame):
        raise TypeError(f"sweep must be a pandas DataFrame, got {type(sweep).__name__}")
    roles = {"parameter": parameter, "accuracy": accuracy, "diversity": diversity}
    if coverage is not None:
        roles["coverage"] = coverage
    for role, column in roles.items():
        if not isinstance(column, str):
            raise TypeError(
                f"{role} must be a column name (str) of sweep, got {type(column).__name__}"
                + ("; pass coverage=None for no coverage curve" if role == "coverage" else "")
            )
    columns = list(roles.values())
    missing = [c for c in columns if c not in sweep.columns]
    if missing:
        raise ValueError(
            f"sweep has no column {missing[0]!r}; it has {list(sweep.columns)} (rename, or "
            "pass parameter=, accuracy=, diversity=, coverage=)"
        )
    if len(sweep) == 0:
        raise ValueError("sweep is empty: it needs one row per parameter value")
    for role, column in roles.items():
        _numeric(sweep, column, f"sweep column {column!r} ({role})")
    data = sweep.sort_values(parameter)
    fig = _figure(figsize=(9, 3.6))
    left, right = fig.subplots(1, 2)
    x = data[diversity].to_numpy(dtype=float)
    y = data[accuracy].to_numpy(dtype=float)
    left.plot(x, y, marker="o", color="C0")
    for value, xi, yi in zip(data[parameter], x, y, strict=True):
        left.annotate(f"{value:g}", (xi, yi), textcoords="offset points", xytext=(4, 4),
                      fontsize="small")  # fmt: skip
    left.set_xlabel(diversity)
    left.set_ylabel(accuracy)
    left.set_title(f"{accuracy} vs {diversity} (labels: {parameter})")
    left.grid(alpha=0.3)
    p = data[parameter].to_numpy(dtype=float)
    for column in columns[1:]:
        right.plot(p, data[column].to_numpy(dtype=float), marker="o", label=column)
    right.set_xlabel(parameter)
    right.set_title(f"measures vs {parameter}")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    return fig


def pca_2d(vectors: np.ndarray, name: str = "vectors") -> np.ndarray:
    """The first two principal components of ``vectors`` (rows), by an SVD of the centred
    data; each component's sign is fixed so its largest-magnitude loading is positive.
    ``name`` is what error messages call ``vectors`` (a caller's own argument).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.plot import pca_2d
    >>> pca_2d(np.random.default_rng(0).standard_normal((10, 5))).shape
    (10, 2)
    """
    if sp.issparse(vectors):
        raise TypeError(f"{name} must be a dense array, got a scipy.sparse matrix; pass "
                        f"{name}.toarray()")  # fmt: skip
    try:
        if np.iscomplexobj(vectors):  # the cast would keep the real part, with a warning
            raise TypeError
        x = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a 2-D array of real numbers (one row per item), got "
            f"{type(vectors).__name__} that does not convert to one"
        ) from None
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"{name} must be a 2-D array of at least 2 x 2, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    flip = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    return x @ (axes * flip[:, None]).T


def embedding_map(
    item_embeddings: np.ndarray,
    labels: Sequence[Any] | np.ndarray | None = None,
    history: Sequence[int] | np.ndarray | None = None,
    recommended: Sequence[int] | np.ndarray | None = None,
    *,
    title: str = "item embeddings (PCA)",
) -> Any:
    """A 2-D PCA map of item embeddings coloured by label (genre, topic), with one user's
    history and recommendations marked.

    Parameters
    ----------
    item_embeddings : array, shape (n_items, dim)
    labels : sequence, optional
        One label per item, all of one sortable type (e.g. str or int). Up to 20 distinct
        labels get their own colour and legend entry (matplotlib's default colours up to 10,
        the ``tab20`` colours up to 20); more labels share the ``viridis`` colour map, without
        legend entries. Missing labels (None or NaN) are drawn as grey crosses, one legend
        entry named ``"missing"``.
    history, recommended : sequence of int, optional
        Item indices to mark (history: black circles; recommendations: red stars). ``-1``
        entries (the padding of a top-k list, e.g. ``model.recommend(user, k)[0]``) are
        dropped.
    title : str, default "item embeddings (PCA)"
        The axes' title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, semrec.plot
    >>> x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    >>> fig = semrec.plot.embedding_map(x, labels=np.arange(50) % 3, history=[0, 1],
    ...                                 recommended=[2, 3])
    >>> fig.axes[0].get_title()
    'item embeddings (PCA)'
    """
    points = pca_2d(item_embeddings, "item_embeddings")
    n = points.shape[0]
    fig = _figure(figsize=(6.4, 5.2))
    ax = fig.subplots()
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, color="0.6", alpha=0.6, linewidths=0)
    else:
        _draw_labels(ax, points, labels)
    for ids, name, style in (
        (history, "history", {"marker": "o", "facecolors": "none", "edgecolors": "black"}),
        (recommended, "recommended", {"marker": "*", "color": "red"}),
    ):
        if ids is None:
            continue
        chosen = np.asarray(ids)
        if chosen.ndim == 1 and np.issubdtype(chosen.dtype, np.integer):
            chosen = chosen[chosen != -1]  # a top-k list's padding
        chosen = check.item_ids(chosen, name, n)
        ax.scatter(points[chosen, 0], points[chosen, 1], s=90, linewidths=1.4, label=name,
                   zorder=3, **style)  # fmt: skip
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small", markerscale=1.5, loc="best", ncols=2)
    return fig


def training_loss(losses: Sequence[float] | np.ndarray) -> Any:
    """Training loss per iteration (e.g. ALS with ``calculate_training_loss=True``).

    Parameters
    ----------
    losses : sequence of float
        One value per iteration, e.g. collected by ``fit``'s ``callback``; a sequence of
        numbers (not a single number), each finite.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec, semrec.plot
    >>> clicks = sp.random_array((50, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> losses = []
    >>> model = semrec.ALS(factors=4, iterations=5, calculate_training_loss=True,
    ...                    random_state=0, show_progress=False)
    >>> _ = model.fit(clicks, callback=lambda it, seconds, loss: losses.append(loss))
    >>> semrec.plot.training_loss(losses).axes[0].get_xlabel()
    'iteration'
    """
    if isinstance(losses, str | bytes | Mapping) or not hasattr(losses, "__iter__"):
        raise TypeError(
            "losses must be a sequence of numbers, one per iteration (e.g. collected by fit's "
            f"callback), got {type(losses).__name__}"
        )
    items = list(losses)
    for i, v in enumerate(items):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
            raise TypeError(
                f"losses must hold numbers (one loss per iteration); losses[{i}] is "
                f"{type(v).__name__}"
            )
    values = np.asarray([np.nan if v is None else v for v in items], dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("losses must be a non-empty 1-D sequence, one value per iteration")
    if not np.isfinite(values).all():
        raise ValueError(
            "losses holds None, NaN or inf; fit ALS with calculate_training_loss=True to get "
            "a loss per iteration"
        )
    fig = _figure(figsize=(5, 3.4))
    ax = fig.subplots()
    ax.plot(np.arange(1, values.size + 1), values, marker="o")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_title("training loss")
    if values.min() > 0 and values.max() / values.min() > 100:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    return fig


def save(fig: Any, path: str | os.PathLike[str], *, dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` through a temporary file renamed over the target, so a
    failure leaves no partial image.

    The format follows the name's ending (``.png``, ``.svg``, ``.pdf``, ``.jpg``, ...: any
    that matplotlib writes); a name without one is written as PNG. ``fig`` must be a
    :class:`matplotlib.figure.Figure` (what the functions here return), else a TypeError.

    Examples
    --------
    >>> import os, tempfile, semrec.plot
    >>> path = os.path.join(tempfile.mkdtemp(), "loss.png")
    >>> semrec.plot.save(semrec.plot.training_loss([3.0, 2.0, 1.5]), path)
    >>> os.path.getsize(path) > 0
    True
    """
    if not _is_figure(fig):
        raise TypeError(
            "fig must be a matplotlib Figure (what the semrec.plot functions return), got "
            f"{type(fig).__name__}"
        )
    dpi = check.positive_int(dpi, "dpi")
    target = files.writable_path(path)
    ext = os.path.splitext(target)[1].lower().lstrip(".") or "png"
    formats = fig.canvas.get_supported_filetypes()
    if ext not in formats:
        raise ValueError(
            f"path {os.fspath(path)!r} ends in '.{ext}', which is no image format matplotlib "
            f"writes; end it in one of {', '.join('.' + f for f in sorted(formats))}"
        )
    tmp = files.temporary_beside(target)
    try:
        fig.savefig(tmp, dpi=dpi, format=ext)
        files.replace(tmp, target)  # an existing file's permission bits kept
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _is_figure(fig: Any) -> bool:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # without matplotlib nothing is a Figure
        return False
    return isinstance(fig, Figure)


def _by_model(results: Any) -> dict[str, pd.DataFrame]:
    """``{model name: evaluate table}`` from a compare table or a dict of evaluate tables,
    each checked to have rows and to be indexed by the cutoffs ``k``."""
    if isinstance(results, pd.DataFrame):
        if len(results) == 0:
            raise ValueError(_NO_ROWS.format(where="results"))
        if results.index.nlevels == 2:
            level = results.index.names[0] or 0
            tables = {
                str(name): table.droplevel(0)
                for name, table in results.groupby(level=level, sort=False)
            }
            for table in tables.values():
                _indexed_by_k(table, "results")
            return tables
        _indexed_by_k(results, "results")
        return {"model": results}
    if isinstance(results, Mapping):
        if not results:
            raise ValueError("results is empty: pass at least one model's table")
        for name, table in results.items():
            where = f"results[{name!r}]"
            if not isinstance(table, pd.DataFrame):
                raise TypeError(
                    f"{where} must be a DataFrame (the table of semrec.evaluate), got "
                    f"{type(table).__name__}"
                )
            if len(table) == 0:
                raise ValueError(_NO_ROWS.format(where=where))
            _indexed_by_k(table, where)
        return {str(name): table for name, table in results.items()}
    raise TypeError(
        "results must be a semrec.compare table or a dict of model name -> semrec.evaluate "
        f"table, got {type(results).__name__}"
    )


_NO_ROWS = (
    "{where} has no rows (e.g. a filter that matched nothing); pass the table of "
    "semrec.evaluate / semrec.compare, one row per cutoff k"
)


def _indexed_by_k(table: pd.DataFrame, where: str) -> None:
    """Refuse a table whose index is not the cutoffs: a per-user table (row numbers would be
    drawn as k) or any other index."""
    index = table.index
    if index.name == "k":
        if not pd.api.types.is_integer_dtype(index.dtype):
            raise ValueError(
                f"{where} is indexed by k, but its index must hold integer cutoffs, got "
                f"{index.dtype}; e.g. table.set_axis(table.index.astype(int))"
            )
        if bool((index.to_numpy() >= 1).all()):
            return
        raise ValueError(f"{where} is indexed by k, but its cutoffs must be >= 1")
    hint = "; it looks like the per-user table" if "k" in table.columns else ""
    raise ValueError(
        f"{where} is not indexed by the cutoff k (its index is named {index.name!r}{hint}); "
        "pass the table of semrec.evaluate / semrec.compare, not the per-user table of "
        "evaluate(..., per_user=True) (a table of your own: make its index the cutoffs, "
        "named 'k', e.g. table.rename_axis('k'))"
    )


def _column_names(metrics: Any) -> list[str]:
    if isinstance(metrics, str):
        return [metrics]
    if isinstance(metrics, Mapping) or not hasattr(metrics, "__iter__"):
        raise TypeError(
            "metrics must be a column name or a sequence of column names, e.g. "
            f"('ndcg', 'recall'), got {type(metrics).__name__}"
        )
    names = list(metrics)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                "metrics must be a column name or a sequence of column names, e.g. "
                f"('ndcg', 'recall'), got {type(name).__name__} in it"
            )
    if not names:
        raise ValueError("metrics is empty; name at least one column, e.g. 'ndcg'")
    return names


def _numeric(table: pd.DataFrame, column: str, what: str) -> None:
    if list(table.columns).count(column) > 1:
        raise ValueError(
            f"{what} appears more than once; drop the repeats, e.g. "
            "table.loc[:, ~table.columns.duplicated()]"
        )
    dtype = table[column].dtype
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        raise TypeError(f"{what} must hold numbers, got dtype {dtype}")
    if pd.api.types.is_complex_dtype(dtype):  # plotted, it would lose its imaginary part
        raise TypeError(f"{what} must hold real numbers, got dtype {dtype}")


def _draw_labels(ax: Any, points: np.ndarray, labels: Any) -> None:
    """Scatter ``points`` coloured by label (see :func:`embedding_map`)."""
    values = np.asarray(labels)
    n = points.shape[0]
    if values.shape != (n,):
        raise ValueError(f"labels must hold one label per item ({n}), got {values.shape}")
    missing = np.asarray(pd.isna(values), dtype=bool)
    try:
        kinds, codes = np.unique(values[~missing], return_inverse=True)
    except TypeError:  # np.unique sorts: mixed str / int labels cannot be ordered
        raise TypeError(
            "labels mix types that cannot be sorted (e.g. str and int); pass labels of one "
            "type, e.g. [str(label) for label in labels]"
        ) from None
    shown = points[~missing]
    if kinds.size <= _MAX_CATEGORIES:
        if kinds.size <= 10:
            colours = [f"C{code}" for code in range(kinds.size)]
        else:
            from matplotlib import colormaps

            colours = list(colormaps["tab20"].colors)
        for code, kind in enumerate(kinds):
            mine = codes == code
            ax.scatter(shown[mine, 0], shown[mine, 1], s=8, alpha=0.6, linewidths=0,
                       color=colours[code], label=str(kind))  # fmt: skip
    elif kinds.size:
        ax.scatter(shown[:, 0], shown[:, 1], s=8, c=codes, cmap="viridis", alpha=0.6,
                   linewidths=0)  # fmt: skip
    if missing.any():  # crosses: grey alone would be confused with tab20's greys
        ax.scatter(points[missing, 0], points[missing, 1], s=10, marker="x", color="0.45",
                   linewidths=0.8, alpha=0.6, label=_MISSING)  # fmt: skip
