"""The command line, end to end on small sizes."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semrec
from semrec import ALS
from semrec.cli import main
from semrec.cli.models import MODELS
from semrec.datasets import Dataset, synthetic


def test_console_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "semrec.cli", "demo", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--size" in result.stdout and "--data-dir" in result.stdout
    # The sizes in the help are the ones the demo runs.
    from semrec.cli.demo import SIZES

    text = " ".join(result.stdout.split())
    assert "tiny ({} users x {} items, {:,} interactions".format(*SIZES["tiny"]) in text


def test_bad_argument_is_a_one_line_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "semrec.cli", "demo", "--size", "huge"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "invalid choice: 'huge'" in result.stderr


# -- the pipeline commands on small files written from semrec.datasets.synthetic ----------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ratings.csv (string user ids, integer item ids), movies.csv, their Parquet twins."""
    d = tmp_path_factory.mktemp("cli")
    ds = synthetic(80, 120, 1_500, random_state=1)
    m = ds.interactions.tocoo()
    ratings = pd.DataFrame(
        {
            "userId": [f"u{r}" for r in m.row],
            "movieId": m.col + 1000,
            "rating": m.data,
            "ts": ds.timestamps,
        }
    )
    movies = pd.DataFrame({"movieId": np.arange(120) + 1000, "title": ds.items["text"]})
    paths = {
        "ratings": d / "ratings.csv",
        "movies": d / "movies.csv",
        "ratings_pq": d / "ratings.parquet",
    }
    ratings.to_csv(paths["ratings"], index=False)
    movies.to_csv(paths["movies"], index=False)
    ratings.to_parquet(paths["ratings_pq"], index=False)
    return paths


RATING_COLUMNS = ["--user-column", "userId", "--item-column", "movieId"]


def _recommend(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "recommend",
        "--interactions",
        str(files["ratings"]),
        *RATING_COLUMNS,
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def _popular_reference(ratings: pd.DataFrame, k: int) -> pd.DataFrame:
    """Most popular unseen items per user, ties to the smaller item id, written with pandas."""
    counts = ratings.groupby("movieId").size()
    order = sorted(counts.index, key=lambda i: (-counts[i], i))
    rows = []
    for user, seen in ratings.groupby("userId")["movieId"]:
        recs = [i for i in order if i not in set(seen)][:k]
        rows += [(user, i, rank, float(counts[i])) for rank, i in enumerate(recs, 1)]
    return pd.DataFrame(rows, columns=["user", "item", "rank", "score"])


def test_recommend_popular_matches_a_pandas_reference(files, tmp_path, capsys) -> None:
    out = tmp_path / "recs.csv"
    assert main(_recommend(files, out, "--model", "popular", "--k", "7")) == 0
    got = pd.read_csv(out).sort_values(["user", "rank"]).reset_index(drop=True)
    want = _popular_reference(pd.read_csv(files["ratings"]), 7)
    want = want.sort_values(["user", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert capsys.readouterr().err == ""  # --quiet


def test_recommend_als_writes_raw_ids_unseen_and_sorted(files, tmp_path) -> None:
    out = tmp_path / "recs.parquet"
    args = _recommend(files, out, "--model", "als", "--k", "5", "--param", "factors=8")
    assert main([*args, "--param", "als.iterations=4", "--weight-column", "rating"]) == 0
    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["user", "item", "rank", "score"]
    ratings = pd.read_csv(files["ratings"])
    assert set(recs["user"]) == set(ratings["userId"])
    assert recs.groupby("user").size().eq(5).all()
    assert recs.groupby("user")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    assert recs.groupby("user")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    seen = set(zip(ratings["userId"], ratings["movieId"], strict=True))
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"], strict=True))
    # The same seed and parameters give the library's model, mapped back to raw ids.
    ds = Dataset.from_pandas(ratings, "userId", "movieId", "rating")
    model = ALS(factors=8, iterations=4, random_state=0, show_progress=False)
    ids, _ = model.fit(ds.interactions).recommend(np.arange(ds.n_users), k=5)
    first = recs[recs["user"] == ds.user_ids[0]].sort_values("rank")["item"].tolist()
    assert first == ds.item_ids[ids[0]].tolist()


@pytest.mark.parametrize("name", ["itemknn", "userknn", "content", "hybrid"])
def test_recommend_with_each_registered_model_equals_the_library(files, tmp_path, name) -> None:
    out = tmp_path / "recs.csv"
    text = [
        "--items",
        str(files["movies"]),
        "--text-column",
        "title",
        "--item-id-column",
        "movieId",
    ]
    args = _recommend(files, out, "--model", name, "--k", "4", "--weight-column", "rating")
    args += ["--param", "als.factors=8", "--param", "als.iterations=3"] if name == "hybrid" else []
    assert main(args + (text if name in ("content", "hybrid") else [])) == 0
    recs = pd.read_csv(out)
    ratings = pd.read_csv(files["ratings"])
    ds = Dataset.from_pandas(ratings, "userId", "movieId", "rating")
    if name in ("itemknn", "userknn"):
        cls = semrec.ItemKNN if name == "itemknn" else semrec.UserKNN
        model = cls(show_progress=False).fit(ds.interactions)
    else:
        titles = pd.read_csv(files["movies"]).set_index("movieId").loc[ds.item_ids, "title"]
        emb = semrec.TextEncoder().encode(list(titles), show_progress=False)
        content = semrec.ContentRecommender(emb, show_progress=False).fit(ds.interactions)
        model = content
        if name == "hybrid":
            als = ALS(factors=8, iterations=3, random_state=0, show_progress=False)
            model = semrec.Hybrid([(als.fit(ds.interactions), 0.7), (content, 0.3)])
    ids, _ = model.recommend(np.arange(ds.n_users), k=4)
    for u in (0, 5, 17):
        got = recs[recs["user"] == ds.user_ids[u]].sort_values("rank")["item"].tolist()
        assert got == ds.item_ids[ids[u][ids[u] >= 0]].tolist()


def test_recommend_from_parquet_for_listed_users(files, tmp_path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u3\nu10\n")
    with_header = tmp_path / "users.csv"
    with_header.write_text("userId,note\nu10,x\nu3,y\n")
    outs = []
    for i, listing in enumerate((users, with_header)):
        out = tmp_path / f"recs{i}.csv"
        args = _recommend(files, out, "--model", "popular", "--k", "4", "--users", str(listing))
        args[2] = str(files["ratings_pq"])
        assert main(args) == 0
        outs.append(pd.read_csv(out).sort_values(["user", "rank"]).reset_index(drop=True))
    want = _popular_reference(pd.read_csv(files["ratings"]), 4)
    want = want[want["user"].isin(["u3", "u10"])].sort_values(["user", "rank"])
    for got in outs:
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)


def _warm_popular_reference(ratings: pd.DataFrame, k: int) -> tuple[float, float]:
    """Recall@k and hit rate@k of most-popular on the warm split, written with pandas."""
    ratings = ratings.sort_values(["userId", "ts", "movieId"])
    test_parts, train_parts = [], []
    for _, events in ratings.groupby("userId"):
        n_test = min(max(1, int(np.floor(0.2 * len(events)))), len(events) - 1)
        train_parts.append(events.iloc[: len(events) - n_test])
        test_parts.append(events.iloc[len(events) - n_test :])
    train, test = pd.concat(train_parts), pd.concat(test_parts)
    counts = train.groupby("movieId").size()
    catalogue = sorted(ratings["movieId"].unique())
    order = sorted(catalogue, key=lambda i: (-counts.get(i, 0), i))
    recalls, hits = [], []
    for user, events in test.groupby("userId"):
        seen = set(train.loc[train["userId"] == user, "movieId"])
        recs = [i for i in order if i not in seen][:k]
        n_hits = len(set(recs) & set(events["movieId"]))
        recalls.append(n_hits / len(events))
        hits.append(n_hits > 0)
    return float(np.mean(recalls)), float(np.mean(hits))


def test_evaluate_prints_a_table_matching_a_pandas_reference(files, tmp_path, capsys) -> None:
    out = tmp_path / "metrics.csv"
    args = ["evaluate", "--interactions", str(files["ratings"]), *RATING_COLUMNS]
    args += ["--timestamp-column", "ts", "--models", "popular,als,random", "--k", "5,10"]
    args += ["--param", "factors=16", "--out", str(out), "-q"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "warm split" in printed and "ndcg" in printed
    for name in ("popular", "als", "random"):
        assert name in printed
    table = pd.read_csv(out).set_index(["model", "k"])
    recall, hit_rate = _warm_popular_reference(pd.read_csv(files["ratings"]), 10)
    assert table.loc[("popular", 10), "recall"] == pytest.approx(recall, rel=1e-5)
    assert table.loc[("popular", 10), "hit_rate"] == pytest.approx(hit_rate, rel=1e-5)
    # The catalogue is topical: factorisation beats guessing by far.
    assert table.loc[("als", 10), "ndcg"] > 2 * table.loc[("random", 10), "ndcg"]


def test_evaluate_random_split_with_item_text_adds_diversity(files, capsys) -> None:
    args = ["evaluate", "--interactions", str(files["ratings"]), *RATING_COLUMNS, "-q"]
    args += ["--items", str(files["movies"]), "--text-column", "title"]
    args += ["--models", "popular,random", "--split", "random", "--k", "10"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "random split" in printed and "diversity" in printed


def test_encode_npy_and_parquet_match_the_encoder(files, tmp_path) -> None:
    from semrec.text import TextEncoder

    titles = pd.read_csv(files["movies"])["title"].tolist()
    want = TextEncoder(precision="fp32").encode(titles)
    npy = tmp_path / "emb.npy"
    base = ["encode", "--items", str(files["movies"]), "--text-column", "title", "-q"]
    base += ["--precision", "fp32"]
    assert main([*base, "--out", str(npy), "--batch-size", "16"]) == 0
    np.testing.assert_allclose(np.load(npy), want, atol=1e-5)
    pq = tmp_path / "emb.parquet"
    assert main([*base, "--id-column", "movieId", "--out", str(pq)]) == 0
    table = pd.read_parquet(pq)
    assert table["movieId"].tolist() == list(range(1000, 1120))
    np.testing.assert_allclose(np.stack(table["embedding"]), want, atol=1e-5)


@pytest.mark.parametrize(
    ("flags", "precision"),
    [([], "auto"), (["--bf16"], "bf16"), (["--precision", "int8"], "int8")],
)
def test_encode_precision_flags_choose_the_encoders_precision(files, tmp_path, flags, precision):
    from semrec.text import TextEncoder

    titles = pd.read_csv(files["movies"])["title"].tolist()
    with warnings.catch_warnings():  # bf16 warns once on a CPU without native bf16
        warnings.simplefilter("ignore")
        want = TextEncoder(precision=precision).encode(titles, batch_size=32)
        out = tmp_path / "emb.npy"
        args = ["encode", "--items", str(files["movies"]), "--text-column", "title", "-q"]
        assert main([*args, "--out", str(out), *flags]) == 0
    np.testing.assert_allclose(np.load(out), want, atol=1e-6)


# -- failures: one line, non-zero, nothing written or damaged -----------------------------------


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


BAD_INPUTS = {
    "missing file": (lambda d, f: ["--interactions", str(d / "nope.csv")], "not found"),
    "unknown column": (
        lambda d, f: ["--weight-column", "stars"],
        "has no column 'stars' (from --weight-column)",
    ),
    "ragged rows": (
        lambda d, f: ["--interactions", str(_write(d / "r.csv", "userId,movieId\na,1,9\nb,2\n"))],
        "malformed",
    ),
    "missing ids": (
        lambda d, f: ["--interactions", str(_write(d / "m.csv", "userId,movieId\na,1\nb,\n"))],
        "missing ids",
    ),
    "binary file": (
        lambda d, f: ["--interactions", str(_write(d / "b.csv", bytes(range(128, 256)) * 8))],
        "not a readable CSV file",
    ),
    "empty file": (
        lambda d, f: ["--interactions", str(_write(d / "e.csv", ""))],
        "not a readable CSV file",
    ),
    "unknown model": (lambda d, f: ["--model", "deepfm"], "unknown model 'deepfm'"),
    "unknown parameter": (lambda d, f: ["--param", "factorz=8"], "parameter 'factorz'"),
    "bad parameter value": (lambda d, f: ["--param", "factors=-3"], "factors"),
    "unknown user": (
        lambda d, f: ["--users", str(_write(d / "u.txt", "u1\nnobody\n"))],
        "'nobody'",
    ),
    "text without items": (lambda d, f: ["--text-column", "title"], "needs --items"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_the_output_untouched(
    case, files, tmp_path, capsys
) -> None:
    make_args, message = BAD_INPUTS[case]
    out = _write(tmp_path / "recs.csv", "precious previous result\n")
    code = main(_recommend(files, out, "--model", "als", *make_args(tmp_path, files)))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("semrec recommend: error:") and err.count("\n") == 1, err
    assert message in err
    assert out.read_text() == "precious previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_failure_while_writing_keeps_the_old_file_and_no_debris(
    files, tmp_path, monkeypatch, capsys
) -> None:
    out = _write(tmp_path / "recs.csv", "precious previous result\n")

    def half_write(self, path, **kwargs):
        Path(path).write_text("user,item,rank,score\nu0,")
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_write)
    assert main(_recommend(files, out, "--model", "popular")) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "precious previous result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["recs.csv"]


def test_bad_output_and_split_options_fail_before_any_work(files, tmp_path, capsys) -> None:
    assert main(_recommend(files, tmp_path / "recs.txt")) == 1
    assert "--out must end with one of" in capsys.readouterr().err
    assert main(_recommend(files, tmp_path / "no" / "recs.csv")) == 1
    assert "does not exist" in capsys.readouterr().err
    args = ["evaluate", "--interactions", str(files["ratings"]), *RATING_COLUMNS, "-q"]
    assert main(args) == 1  # warm split without timestamps
    assert "--timestamp-column" in capsys.readouterr().err
    assert main([*args, "--split", "random", "--models", "als,fm"]) == 1
    assert "unknown model 'fm'" in capsys.readouterr().err
    encode = ["encode", "--items", str(files["movies"]), "--text-column", "title"]
    assert main([*encode, "--id-column", "movieId", "--out", str(tmp_path / "e.npy")]) == 1
    assert "needs a .parquet output" in capsys.readouterr().err
    assert main([*encode[:-1], "plot", "--out", str(tmp_path / "e.npy")]) == 1
    assert "no column 'plot'" in capsys.readouterr().err


def test_errors_in_a_real_process_have_no_traceback(files, tmp_path) -> None:
    args = [*_recommend(files, tmp_path / "r.csv"), "--user-column", "who"]
    result = subprocess.run(
        [sys.executable, "-m", "semrec.cli", *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"semrec recommend: error: {files['ratings']} has no column 'who' (from --user-column); "
        "its columns are 'userId', 'movieId', 'rating', 'ts'"
    ]


def test_help_lists_models_and_examples(capsys) -> None:
    for command in ("recommend", "evaluate", "encode"):
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text and f"semrec {command} --" in text
        if command != "encode":
            assert all(name in text for name in MODELS)


def test_headerless_tsv_input_and_gzip_output(files, tmp_path) -> None:
    ratings = pd.read_csv(files["ratings"])
    tsv = tmp_path / "u.data"
    ratings.to_csv(tsv, sep="\t", header=False, index=False)
    out = tmp_path / "recs.csv.gz"
    args = _recommend(files, out, "--model", "popular", "--k", "3")
    args[2] = str(tsv)
    assert main([*args, "--sep", "tab", "--column-names", "userId,movieId,rating,ts"]) == 0
    got = pd.read_csv(out).sort_values(["user", "rank"]).reset_index(drop=True)
    want = _popular_reference(ratings, 3).sort_values(["user", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


# -- options that must reach what they name, and data the files spell differently -------------


def _recommend_popular(files: dict[str, Path], out: Path, *extra: str) -> pd.DataFrame:
    assert main(_recommend(files, out, "--model", "popular", *extra)) == 0
    return pd.read_csv(out).sort_values(["user", "rank"]).reset_index(drop=True)


def _reference(files: dict[str, Path], k: int) -> pd.DataFrame:
    want = _popular_reference(pd.read_csv(files["ratings"]), k)
    return want.sort_values(["user", "rank"]).reset_index(drop=True)


@pytest.mark.parametrize(
    ("param", "message"),
    [
        (
            "hybrid.als_wieght=0.0",
            "model 'hybrid' has no parameter 'als_wieght'; it takes als_weight",
        ),
        ("hybrid.factors=2", "'factors' belongs to its als member: --param als.factors=..."),
        ("content.factors=2", "model 'content' has no parameter 'factors'"),
    ],
)
def test_model_parameters_are_checked_before_any_work(files, tmp_path, capsys, param, message):
    out = tmp_path / "recs.csv"
    args = _recommend(files, out, "--model", "hybrid", "--param", param)
    args += ["--items", str(files["movies"]), "--text-column", "title"]
    args += ["--item-id-column", "movieId"]
    assert main(args) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_messages_speak_the_command_lines_language(files, tmp_path, capsys) -> None:
    dup = _write(tmp_path / "dup.csv", "userId,movieId\n1,7\n1,7\n2,8\n")
    args = _recommend(files, tmp_path / "r.csv", "--duplicates", "raise")
    args[2] = str(dup)
    assert main(args) == 1
    err = capsys.readouterr().err
    # The ids as the dataset shows them (1, or '1'), then the flags' advice.
    assert re.search(
        r"e\.g\. user '?1'?, item '?7'?; pass --duplicates sum or --duplicates last", err
    )
    assert "np." not in err and "duplicates='" not in err
    assert (
        main(_recommend(files, tmp_path / "r.csv", "--model", "popular", "--param", "popular.n=3"))
        == 1
    )
    assert capsys.readouterr().err.rstrip().endswith("it takes no parameters")


def test_sep_is_for_interactions_and_items_sep_for_items(files, tmp_path) -> None:
    tsv = tmp_path / "u.data"
    pd.read_csv(files["ratings"]).to_csv(tsv, sep="\t", header=False, index=False)
    piped = tmp_path / "movies.txt"
    pd.read_csv(files["movies"]).to_csv(piped, sep="|", index=False)
    args = ["--sep", "tab", "--column-names", "userId,movieId,rating,ts", "--k", "5"]
    for items in (["--items", str(files["movies"])], ["--items", str(piped), "--items-sep", "|"]):
        out = tmp_path / "recs.csv"
        argv = _recommend(files, out, "--model", "popular", *args, *items)
        argv[2] = str(tsv)
        assert main(argv) == 0
        got = pd.read_csv(out).sort_values(["user", "rank"]).reset_index(drop=True)
        # The items add nothing unseen (every movie has a rating): the plain reference.
        pd.testing.assert_frame_equal(got, _reference(files, 5), check_dtype=False)


def test_missing_column_message_quotes_the_columns(files, tmp_path, capsys) -> None:
    items = _write(tmp_path / "items.csv", "movieId;title\n1000;x\n")
    args = _recommend(files, tmp_path / "r.csv", "--items", str(items))
    assert main(args) == 1
    assert "has no column 'movieId' (from --item-column); its columns are 'movieId;title'" in (
        capsys.readouterr().err
    )


def test_evaluate_parses_datetime_text_as_its_timestamps(files, tmp_path, capsys) -> None:
    ratings = pd.read_csv(files["ratings"])
    iso = ratings.assign(
        ts=pd.to_datetime(ratings["ts"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    iso_csv = tmp_path / "iso.csv"
    iso.to_csv(iso_csv, index=False)
    tables = []
    for path in (files["ratings"], iso_csv):
        out = tmp_path / "metrics.csv"
        args = ["evaluate", "--interactions", str(path), *RATING_COLUMNS, "-q", "--out", str(out)]
        assert main([*args, "--timestamp-column", "ts", "--models", "popular", "--k", "5"]) == 0
        tables.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    capsys.readouterr()
    bad = _write(tmp_path / "bad.csv", "userId,movieId,ts\na,1,2020-01-01\na,2,soon\n")
    args = ["evaluate", "--interactions", str(bad), *RATING_COLUMNS, "--timestamp-column", "ts"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--timestamp-column 'ts'" in err and "'soon' (data row 2)" in err


def test_item_ids_written_as_1_and_1_0_are_one_item(files, tmp_path, capsys) -> None:
    movies = pd.read_csv(files["movies"])
    as_float = tmp_path / "movies_float.csv"
    # Float ids, plus one movie nobody rated.
    extra = pd.DataFrame({"movieId": [5000], "title": ["an unrated film"]})
    pd.concat([movies, extra]).astype({"movieId": float}).to_csv(as_float, index=False)
    assert pd.read_csv(as_float)["movieId"].dtype == np.float64
    got = _recommend_popular(files, tmp_path / "r.csv", "--k", "500", "--items", str(as_float))
    want = _reference(files, 500)
    assert got["item"].dtype == np.int64
    # Each user gets the reference list, then the unrated movie (score 0) last.
    assert (got.groupby("user")["item"].last() == 5000).all()
    pd.testing.assert_frame_equal(
        got[got["item"] != 5000].reset_index(drop=True), want, check_dtype=False
    )
    other = _write(tmp_path / "other.csv", "movieId,title\nm1,x\nm2,y\n")
    assert main(_recommend(files, tmp_path / "r.csv", "--items", str(other))) == 1
    err = capsys.readouterr().err
    assert "no item id of --interactions" in err and "appears in --items" in err


def test_huge_k_is_the_whole_catalogue(files, tmp_path) -> None:
    got = _recommend_popular(files, tmp_path / "r.csv", "--k", "99999999999999999999")
    pd.testing.assert_frame_equal(got, _reference(files, 10**6), check_dtype=False)


def test_encode_embeds_the_text_as_written(tmp_path) -> None:
    from semrec.text import TextEncoder

    texts = ["007", "1e3", "None", "NA", "nan", "  padded  ", "True"]
    table = tmp_path / "codes.csv"
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_csv(table, index=False)
    out = tmp_path / "codes.npy"
    argv = ["encode", "--items", str(table), "--text-column", "text", "--out", str(out), "-q"]
    assert main([*argv, "--precision", "fp32"]) == 0
    want = TextEncoder(precision="fp32").encode(texts)
    np.testing.assert_allclose(np.load(out), want, atol=1e-5)


def test_item_text_is_read_as_written_and_ids_keep_their_types(tmp_path) -> None:
    """--items' text column is the text in the file ("None", "007"), while its id column keeps
    pandas' number types and a blank id stays missing (never an item called "")."""
    from semrec.cli import _io, build_parser

    table = _write(tmp_path / "items.csv", "movieId,title\n1000,None\n1001,007\n1002,NA\n")
    ratings = _write(tmp_path / "r.csv", "userId,movieId\na,1000\nb,1001\nb,1002\n")
    args = build_parser().parse_args(
        ["recommend", "--interactions", str(ratings), *RATING_COLUMNS, "--items", str(table),
         "--text-column", "title", "--out", str(tmp_path / "o.csv")]
    )  # fmt: skip
    data = _io.load_dataset(args)
    assert [str(t) for t in data.item_text] == ["None", "007", "NA"]
    assert list(data.item_ids) == [1000, 1001, 1002]
    blank = _write(tmp_path / "blank.csv", "movieId,title\n,x\n1000,y\n")
    frame = _io.read_table(str(blank), "--items", text_columns=["title"])
    assert frame["movieId"].isna().tolist() == [True, False] and frame["title"].tolist() == [
        "x",
        "y",
    ]


def test_python_dash_m_semrec_is_the_semrec_command(capsys) -> None:
    import tomllib

    import semrec.__main__ as dash_m

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    script = tomllib.loads(pyproject.read_text())["project"]["scripts"]["semrec"]
    assert script == "semrec.cli:main" and dash_m.main is main  # the console script's target
    with pytest.raises(SystemExit):
        main(["recommend", "--help"])
    want = capsys.readouterr().out
    for argv in (["recommend", "--help"], ["--version"]):
        result = subprocess.run(
            [sys.executable, "-m", "semrec", *argv], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == (
            want if argv[0] == "recommend" else f"semrec {semrec.__version__}\n"
        )
