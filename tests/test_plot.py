"""Figures render to PNG without a display and show the data they were given."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib", reason="semrec.plot needs the optional matplotlib (plot extra)")

from semrec import plot

PNG = b"\x89PNG\r\n\x1a\n"


def _png(fig, tmp_path, name="fig.png") -> bytes:
    path = tmp_path / name
    plot.save(fig, path)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 2_000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    return data


def _compare_table() -> pd.DataFrame:
    index = pd.MultiIndex.from_product([["ALS", "MostPopular"], [5, 10, 20]], names=["model", "k"])
    return pd.DataFrame(
        {"ndcg": [0.2, 0.25, 0.3, 0.1, 0.12, 0.15], "recall": [0.1, 0.2, 0.4, 0.05, 0.1, 0.2]},
        index=index,
    )


def test_metrics_vs_k_draws_one_line_per_model_and_panel(tmp_path) -> None:
    table = _compare_table()
    fig = plot.metrics_vs_k(table, ["ndcg", "recall"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["ndcg", "recall"]
    for ax, metric in zip(fig.axes, ["ndcg", "recall"], strict=True):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"ALS", "MostPopular"}
        for model, line in lines.items():
            np.testing.assert_array_equal(line.get_xdata(), [5, 10, 20])
            np.testing.assert_allclose(line.get_ydata(), table.loc[model, metric])
    _png(fig, tmp_path)
    # A dict of evaluate tables works the same way.
    by_model = {name: table.loc[name] for name in ("ALS", "MostPopular")}
    assert len(plot.metrics_vs_k(by_model, "ndcg").axes[0].get_lines()) == 2
    with pytest.raises(ValueError, match="no column 'map'"):
        plot.metrics_vs_k(table, "map")


def test_metrics_vs_k_draws_k_in_increasing_order() -> None:
    """evaluate keeps the order k was given in (20, 5, 10): the line still runs along k."""
    table = pd.DataFrame({"recall": [0.4, 0.1, 0.2]}, index=pd.Index([20, 5, 10], name="k"))
    line = plot.metrics_vs_k({"m": table}, "recall").axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [5, 10, 20])
    np.testing.assert_array_equal(line.get_ydata(), [0.1, 0.2, 0.4])


def test_diversity_tradeoff_plots_the_sweep(tmp_path) -> None:
    sweep = pd.DataFrame(
        {
            "lambda": [1.0, 0.0, 0.5],
            "ndcg": [0.2, 0.3, 0.28],
            "diversity": [0.8, 0.4, 0.6],
            "coverage": [0.3, 0.1, 0.2],
        }
    )
    fig = plot.diversity_tradeoff(sweep)
    left, right = fig.axes
    (curve,) = left.get_lines()
    np.testing.assert_allclose(curve.get_xdata(), [0.4, 0.6, 0.8])  # sorted by lambda
    np.testing.assert_allclose(curve.get_ydata(), [0.3, 0.28, 0.2])
    assert [t.get_text() for t in left.texts] == ["0", "0.5", "1"]
    assert {line.get_label() for line in right.get_lines()} == {"ndcg", "diversity", "coverage"}
    _png(fig, tmp_path)
    with pytest.raises(ValueError, match="no column 'lambda'"):
        plot.diversity_tradeoff(sweep.rename(columns={"lambda": "mu"}))


def test_pca_matches_the_covariance_eigenvectors(rng) -> None:
    x = rng.standard_normal((300, 6)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    x = x @ np.linalg.qr(rng.standard_normal((6, 6)))[0]
    got = plot.pca_2d(x.astype(np.float32))
    centred = x - x.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    want = centred @ vectors[:, ::-1][:, :2]
    for j in range(2):  # eigenvectors are defined up to sign
        sign = np.sign(got[:, j] @ want[:, j])
        np.testing.assert_allclose(got[:, j], sign * want[:, j], atol=1e-3)
    assert got[:, 0].var() > got[:, 1].var()


def test_embedding_map_marks_history_and_recommendations(rng, tmp_path) -> None:
    centres = rng.standard_normal((3, 16)) * 4
    labels = np.repeat(["space", "noir", "comedy"], 40)
    emb = (centres[np.repeat(np.arange(3), 40)] + rng.standard_normal((120, 16))).astype(np.float32)
    fig = plot.embedding_map(emb, labels, history=[0, 1, 2], recommended=[50, 60])
    ax = fig.axes[0]
    points = plot.pca_2d(emb)
    by_label = {c.get_label(): c for c in ax.collections}
    assert {"space", "noir", "comedy", "history", "recommended"} <= set(by_label)
    np.testing.assert_allclose(by_label["history"].get_offsets(), points[[0, 1, 2]])
    np.testing.assert_allclose(by_label["recommended"].get_offsets(), points[[50, 60]])
    np.testing.assert_allclose(by_label["noir"].get_offsets(), points[40:80])
    _png(fig, tmp_path)
    many = plot.embedding_map(emb, labels=np.arange(120))  # beyond 20 labels: a colour map
    _png(many, tmp_path, "many.png")
    with pytest.raises(IndexError):
        plot.embedding_map(emb, recommended=[500])
    with pytest.raises(ValueError, match="one label per item"):
        plot.embedding_map(emb, labels=["a", "b"])


def test_training_loss_from_the_als_callback(tmp_path) -> None:
    import scipy.sparse as sp

    import semrec

    clicks = sp.random_array((60, 40), density=0.2, format="csr", rng=0, dtype=np.float32)
    losses: list[float] = []
    model = semrec.ALS(factors=4, iterations=6, calculate_training_loss=True, random_state=0)
    model.show_progress = False
    model.fit(clicks, callback=lambda it, seconds, loss: losses.append(loss))
    fig = plot.training_loss(losses)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 7))
    np.testing.assert_allclose(line.get_ydata(), losses)
    _png(fig, tmp_path)
    with pytest.raises(ValueError, match="calculate_training_loss"):
        plot.training_loss([None, None])


def test_save_takes_the_format_from_the_name(tmp_path) -> None:
    fig = plot.training_loss([3.0, 2.0, 1.5])
    plot.save(fig, tmp_path / "loss.svg")
    assert (tmp_path / "loss.svg").read_text().lstrip().startswith("<?xml")
    plot.save(fig, tmp_path / "loss")
    assert (tmp_path / "loss").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"path .*'\.v2'.*\.png"):
        plot.save(fig, tmp_path / "loss.v2")
    assert not (tmp_path / "loss.v2").exists()


def test_missing_matplotlib_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'semrec\[plot\]'"):
        plot.training_loss([1.0, 0.5])


# -- bad input: a clear error naming the argument, never a blank figure or a raw message ------


def _evaluate_table() -> pd.DataFrame:
    return _compare_table().loc["ALS"]  # index "k", as semrec.evaluate returns


def test_metrics_vs_k_refuses_tables_without_rows() -> None:
    table = _compare_table()
    with pytest.raises(ValueError, match="results has no rows"):
        plot.metrics_vs_k(table.iloc[:0])  # e.g. a .loc filter that matched nothing
    with pytest.raises(ValueError, match=r"results\['m'\] has no rows"):
        plot.metrics_vs_k({"m": _evaluate_table().iloc[:0]})
    with pytest.raises(ValueError, match="results has no rows"):
        plot.metrics_vs_k(pd.DataFrame(columns=["ndcg", "recall"]))


def test_metrics_vs_k_refuses_tables_not_indexed_by_k() -> None:
    per_user = pd.DataFrame(  # the shape of evaluate(..., per_user=True)[1]
        {"user": [0, 1, 2], "k": [10, 10, 10], "ndcg": [0.1, 0.3, 0.2], "recall": [0.2, 0.1, 0.0]}
    )
    with pytest.raises(ValueError, match=r"results is not indexed by the cutoff k.*per-user"):
        plot.metrics_vs_k(per_user)
    with pytest.raises(ValueError, match=r"results\['m'\] is not indexed by the cutoff k"):
        plot.metrics_vs_k({"m": _evaluate_table().set_axis(["a", "b", "c"])})
    with pytest.raises(ValueError, match="not indexed by the cutoff k"):
        plot.metrics_vs_k(_evaluate_table().rename_axis(None))
    # A table of one's own works once its index is the cutoffs, named k.
    own = pd.DataFrame({"ndcg": [0.1, 0.2]}, index=[5, 10]).rename_axis("k")
    np.testing.assert_array_equal(
        plot.metrics_vs_k(own, "ndcg").axes[0].lines[0].get_xdata(), [5, 10]
    )


def test_metrics_vs_k_checks_its_arguments() -> None:
    table = _compare_table()
    with pytest.raises(TypeError, match=r"metrics must be a column name.*got NoneType"):
        plot.metrics_vs_k(table, None)
    with pytest.raises(TypeError, match=r"metrics must be a column name.*got int"):
        plot.metrics_vs_k(table, ["ndcg", 3])
    with pytest.raises(TypeError, match=r"results\['a'\] must be a DataFrame.*got int"):
        plot.metrics_vs_k({"a": 3})
    with pytest.raises(TypeError, match=r"results must be a semrec\.compare table"):
        plot.metrics_vs_k([table])
    with pytest.raises(TypeError, match=r"column 'ndcg' .* must hold numbers"):
        plot.metrics_vs_k(table.assign(ndcg="x"), "ndcg")


def test_diversity_tradeoff_needs_numeric_columns() -> None:
    sweep = pd.DataFrame(
        {
            "lambda": ["low", "mid", "high"],
            "ndcg": [0.3, 0.28, 0.2],
            "diversity": [0.4, 0.6, 0.8],
            "coverage": [0.1, 0.2, 0.3],
        }
    )
    with pytest.raises(TypeError, match=r"sweep column 'lambda' \(parameter\) must hold numbers"):
        plot.diversity_tradeoff(sweep)
    numeric = sweep.assign(**{"lambda": [0.0, 0.5, 1.0]})
    with pytest.raises(TypeError, match=r"sweep column 'ndcg' \(accuracy\) must hold numbers"):
        plot.diversity_tradeoff(numeric.assign(ndcg=list("abc")))
    with pytest.raises(TypeError, match="parameter must be a column name"):
        plot.diversity_tradeoff(numeric, parameter=None)
    assert len(plot.diversity_tradeoff(numeric, coverage=None).axes) == 2


def _colours(ax) -> list[tuple[float, ...]]:
    return [tuple(np.round(c.get_facecolor()[0][:3], 4)) for c in ax.collections]


@pytest.mark.parametrize("n_labels", [3, 10, 11, 15, 20])
def test_embedding_map_gives_each_label_its_own_colour(rng, n_labels) -> None:
    emb = rng.standard_normal((200, 8))
    ax = plot.embedding_map(emb, labels=np.arange(200) % n_labels).axes[0]
    assert [c.get_label() for c in ax.collections] == [str(i) for i in range(n_labels)]
    assert len(set(_colours(ax))) == n_labels


def test_embedding_map_draws_missing_labels_as_one_group(rng) -> None:
    emb = rng.standard_normal((30, 5))
    labels = ["a"] * 10 + ["b"] * 10 + [None] * 5 + [float("nan")] * 5
    ax = plot.embedding_map(emb, labels=labels).axes[0]
    groups = {c.get_label(): c for c in ax.collections}
    assert list(groups) == ["a", "b", "missing"]
    points = plot.pca_2d(emb)
    np.testing.assert_allclose(groups["missing"].get_offsets(), points[20:])
    np.testing.assert_allclose(groups["a"].get_offsets(), points[:10])
    # Beyond 20 labels (a colour map), missing labels are still their own grey group.
    many = plot.embedding_map(emb, labels=[*range(25), *[None] * 5]).axes[0]
    assert [c.get_label() for c in many.collections][-1] == "missing"
    np.testing.assert_allclose(many.collections[-1].get_offsets(), points[25:])
    with pytest.raises(TypeError, match="labels mix types"):  # an object column of str and int
        plot.embedding_map(emb, labels=pd.Series(["a"] * 29 + [1], dtype=object))


def test_training_loss_and_save_check_their_arguments(tmp_path) -> None:
    with pytest.raises(TypeError, match=r"losses must be a sequence of numbers.*got float"):
        plot.training_loss(3.0)
    with pytest.raises(TypeError, match=r"losses must be a sequence of numbers.*got str"):
        plot.training_loss("123")
    with pytest.raises(TypeError, match=r"losses\[1\] is str"):
        plot.training_loss([1.0, "a"])
    np.testing.assert_allclose(  # NumPy scalars (and arrays) are numbers too
        plot.training_loss(np.array([2.0, 1.0], np.float32)).axes[0].lines[0].get_ydata(), [2, 1]
    )
    path = tmp_path / "f.png"
    for bad in ("not a figure", None):
        with pytest.raises(TypeError, match=r"fig must be a matplotlib Figure"):
            plot.save(bad, path)
    with pytest.raises(TypeError, match="dpi must be an int"):
        plot.save(plot.training_loss([1.0, 0.5]), path, dpi="high")
    assert list(tmp_path.iterdir()) == []


# -- session 44 audit ----------------------------------------------------------------------------
def test_plot_inputs_get_clear_errors_and_padding_is_dropped() -> None:
    import warnings

    import scipy.sparse as sp

    table = pd.DataFrame({"ndcg": [0.1, 0.2], "recall": [0.2, 0.3]},
                         index=pd.Index([5, 10], name="k"))  # fmt: skip
    sweep = pd.DataFrame({"lambda": [0.0, 0.5, 1.0], "ndcg": [0.3, 0.28, 0.2],
                          "diversity": [0.4, 0.6, 0.8], "coverage": [0.1, 0.2, 0.3]})  # fmt: skip
    with pytest.raises(ValueError, match=r"'ndcg' .* appears more than once"):
        plot.metrics_vs_k(pd.concat([table, table[["ndcg"]]], axis=1))
    with pytest.raises(ValueError, match=r"'ndcg' .* appears more than once"):
        plot.diversity_tradeoff(pd.concat([sweep, sweep[["ndcg"]]], axis=1))
    with pytest.raises(ValueError, match="must hold integer cutoffs, got float64"):
        plot.metrics_vs_k(table.set_axis(pd.Index([5.0, 10.0], name="k")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning either
        with pytest.raises(TypeError, match="must hold real numbers, got dtype complex128"):
            plot.metrics_vs_k(table.assign(ndcg=[1 + 1j, 2j]))
        x = np.random.default_rng(0).standard_normal((30, 5)).astype(np.float32)
        with pytest.raises(TypeError, match="item_embeddings must be a dense array"):
            plot.embedding_map(sp.csr_array(x))
        with pytest.raises(TypeError, match="item_embeddings must be a 2-D array of real"):
            plot.embedding_map(x.astype(np.complex64))
    with pytest.raises(ValueError, match="item_embeddings contains NaN"):
        plot.embedding_map(np.full((3, 3), np.nan, np.float32))
    # recommend's output, padded with -1 past the items left, is drawn without the padding
    padded = np.array([4, 7, 1, -1, -1])
    fig = plot.embedding_map(x, history=[2, 3, -1], recommended=padded)
    points = plot.pca_2d(x)
    marks = {c.get_label(): c.get_offsets() for c in fig.axes[0].collections}
    np.testing.assert_allclose(marks["recommended"], points[[4, 7, 1]])
    np.testing.assert_allclose(marks["history"], points[[2, 3]])
    with pytest.raises(IndexError, match="recommended holds item id -2"):
        plot.embedding_map(x, recommended=[1, -2])


def test_save_over_a_file_keeps_its_permissions(tmp_path) -> None:
    import os
    import stat

    path = tmp_path / "fig.png"
    plot.save(plot.metrics_vs_k(_compare_table(), "ndcg"), path)
    os.chmod(path, 0o600)
    plot.save(plot.metrics_vs_k(_compare_table(), "recall"), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
