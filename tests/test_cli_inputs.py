"""The command line's reading of input files and its checks before any work: ids as written,
separators, item tables, timestamps, --out, parameters and flags named in messages."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semrec.cli import _io, build_parser, main
from semrec.cli import models as registry

# Ids that pandas would change or merge: zero-padded, float-looking, NA words.
IDS_CSV = """user,item
007,0123
7,0123
NA,0123
007,123
7,123
8,1e5
null,1e5
8,100000
None,None
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _as_written(path: Path) -> pd.DataFrame:
    """The reference: every cell as text, no NA words."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the data (the start of the work) fails the test: checks must come first."""

    def fail(args):
        pytest.fail("the data was read before the options were checked")

    monkeypatch.setattr(_io, "load_dataset", fail)


def test_recommend_writes_each_id_as_written_and_keeps_them_apart(tmp_path) -> None:
    data = _write(tmp_path / "z.csv", IDS_CSV)
    out = tmp_path / "recs.csv"
    argv = ["recommend", "--interactions", str(data), "--model", "popular", "--include-seen"]
    assert main([*argv, "--k", "9", "--out", str(out), "-q"]) == 0
    got = _as_written(out)
    ref = _as_written(data)
    assert sorted(set(got["user"])) == sorted(set(ref["user"]))  # 6 users: 007 is not 7
    counts = ref.groupby("item").size()  # popularity: 0123 x3 (not 5 with 123), 1e5 x2 ...
    for _, recs in got.groupby("user"):
        assert dict(zip(recs["item"], recs["score"].astype(float), strict=True)) == {
            i: float(c) for i, c in counts.items()
        }
    # --users names them as written too: 007 is there, 7 is a different user.
    users = _write(tmp_path / "users.txt", "007\nNA\n")
    assert main([*argv, "--users", str(users), "--k", "2", "--out", str(out), "-q"]) == 0
    assert sorted(set(_as_written(out)["user"])) == ["007", "NA"]


def test_evaluate_counts_ids_as_written(tmp_path, capsys) -> None:
    users, items = ["007", "7", "NA", "null", "None", "8"], ["0123", "123", "1e5", "100000"]
    rows = [f"{u},{items[(n + j) % 4]}\n" for n, u in enumerate(users) for j in range(3)]
    data = _write(tmp_path / "z.csv", "user,item\n" + "".join(rows))
    argv = ["evaluate", "--interactions", str(data), "--models", "popular", "--split", "random"]
    assert main([*argv, "--k", "2", "--test-fraction", "0.4", "-q"]) == 0
    ref = _as_written(data)
    n_users, n_items = ref["user"].nunique(), ref["item"].nunique()
    assert (n_users, n_items) == (6, 4)
    assert f"{n_users:,} users x {n_items:,} items" in capsys.readouterr().out


def test_plain_integer_ids_stay_numbers(tmp_path) -> None:
    """A column of plain integers is read as int64 (its text written back unchanged)."""
    table = _write(tmp_path / "t.csv", "user,item,w\n-3,0,1\n12,7,2\n")
    frame = _io.read_table(str(table), "--interactions", id_columns=["user", "item"])
    assert frame["user"].tolist() == [-3, 12] and frame["item"].dtype == np.int64
    padded = _write(tmp_path / "p.csv", "user,item\n1,07\n2,\n")
    frame = _io.read_table(str(padded), "--interactions", id_columns=["user", "item"])
    assert frame["item"].iloc[0] == "07" and pd.isna(frame["item"].iloc[1])  # blank: missing


def test_encode_keeps_the_id_column_as_written(tmp_path) -> None:
    items = _write(tmp_path / "e.csv", "sku,title\n0042,red shoe\n42,blue hat\nNA,green\n")
    out = tmp_path / "e.parquet"
    argv = ["encode", "--items", str(items), "--text-column", "title", "--id-column", "sku"]
    assert main([*argv, "--out", str(out), "-q"]) == 0
    assert pd.read_parquet(out)["sku"].tolist() == _as_written(items)["sku"].tolist()


def test_a_separator_of_several_characters(tmp_path) -> None:
    """MovieLens-1M's ratings.dat: "::" between fields, no header line."""
    dat = _write(tmp_path / "r.dat", "1::10::5::100\n2::10::3::200\n2::20::4::300\n3::30::1::5\n")
    out = tmp_path / "recs.csv"
    argv = ["recommend", "--interactions", str(dat), "--sep", "::", "--model", "popular"]
    argv += ["--column-names", "user,item,rating,t", "--k", "1", "--out", str(out), "-q"]
    assert main(argv) == 0
    fields = [line.split("::") for line in dat.read_text().splitlines()]
    # Item 10 is the most popular; ties go to the smaller id: 1 gets 20, 2 gets 30, 3 gets 10.
    assert pd.Series([int(f[1]) for f in fields]).value_counts().to_dict() == {10: 2, 20: 1, 30: 1}
    got = pd.read_csv(out)
    assert dict(zip(got["user"], got["item"], strict=True)) == {1: 20, 2: 30, 3: 10}


def _parsed(tmp_path: Path, *argv: str):
    return build_parser().parse_args(["recommend", *argv, "--out", str(tmp_path / "o.csv")])


def test_items_with_a_column_named_like_the_item_column(tmp_path) -> None:
    data = _write(tmp_path / "i.csv", "user,item\n1,10\n2,20\n3,10\n")
    items = _write(tmp_path / "items.csv", "id,item,text\n10,apple,apple pie\n20,pear,pear tart\n")
    args = _parsed(tmp_path, "--interactions", str(data), "--items", str(items))
    args.item_id_column, args.text_column = "id", "text"
    ds = _io.load_dataset(args)
    assert ds.item_ids.tolist() == [10, 20]  # the id column, not the one called "item"
    assert [str(t) for t in ds.item_text] == ["apple pie", "pear tart"]


def test_item_text_comes_only_from_text_column(tmp_path, monkeypatch, capsys) -> None:
    data = _write(tmp_path / "i.csv", "user,item\n1,10\n2,20\n3,10\n")
    items = _write(tmp_path / "items.csv", "item,title,text\n10,apple pie,zzz\n20,pear tart,zzz\n")
    args = _parsed(tmp_path, "--interactions", str(data), "--items", str(items))
    assert _io.load_dataset(args).item_text is None
    args.text_column = "title"
    assert [str(t) for t in _io.load_dataset(args).item_text] == ["apple pie", "pear tart"]
    # A model that needs text says so before reading anything.
    _no_work(monkeypatch)
    argv = ["recommend", "--interactions", str(data), "--items", str(items), "-q"]
    for model in ("content", "hybrid"):
        assert main([*argv, "--model", model, "--out", str(tmp_path / "o.csv")]) == 1
        assert f"model {model!r} needs item text" in capsys.readouterr().err
    argv = ["evaluate", "--interactions", str(data), "--split", "random", "-q"]
    assert main([*argv, "--models", "als,content"]) == 1
    assert "model 'content' needs item text" in capsys.readouterr().err


def test_timestamp_error_names_the_value_that_fails(tmp_path, capsys) -> None:
    dates = ["01/02/2020", "01/31/2020", "31/01/2020", "02/01/2020"]
    rows = "".join(f"1,{i},{d}\n" for i, d in enumerate(dates))
    data = _write(tmp_path / "t.csv", "user,item,t\n" + rows)
    argv = ["evaluate", "--interactions", str(data), "--timestamp-column", "t", "-q"]
    assert main([*argv, "--models", "popular"]) == 1
    # The column's format is the first value's (month/day/year); the third is no such date.
    parsed = pd.to_datetime(pd.Series(dates), format="%m/%d/%Y", errors="coerce")
    row = int(np.flatnonzero(parsed.isna())[0])
    assert f"e.g. {dates[row]!r} (data row {row + 1})" in capsys.readouterr().err


def _links(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    null = tmp_path / "null.csv"
    null.symlink_to("/dev/null")
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "missing" / "recs.csv")
    return {"fifo": fifo, "null": null, "dangling": dangling}


@pytest.mark.parametrize("case", ["fifo", "null", "dangling"])
def test_out_that_cannot_be_written_is_found_first(tmp_path, monkeypatch, capsys, case) -> None:
    out = _links(tmp_path)[case]
    data = _write(tmp_path / "i.csv", "user,item\n1,10\n2,20\n")
    _no_work(monkeypatch)
    assert main(["recommend", "--interactions", str(data), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("semrec recommend: error: --out ")
    assert ("does not exist" if case == "dangling" else "not a regular file") in err


def test_existing_output_keeps_its_permissions(tmp_path) -> None:
    data = _write(tmp_path / "i.csv", "user,item\n1,10\n2,20\n")
    out = _write(tmp_path / "keep.csv", "old\n")
    os.chmod(out, 0o600)
    assert main(["recommend", "--interactions", str(data), "--model", "popular", "--out",
                 str(out), "-q"]) == 0  # fmt: skip
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_text() != "old\n"


@pytest.mark.parametrize("weight", ["abc", "1.5", "true"])
def test_hybrid_weight_is_checked_first(tmp_path, monkeypatch, capsys, weight) -> None:
    _no_work(monkeypatch)
    argv = ["recommend", "--interactions", "i.csv", "--model", "hybrid", "--items", "m.csv"]
    argv += ["--text-column", "t", "--param", f"hybrid.als_weight={weight}"]
    assert main([*argv, "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "--param hybrid.als_weight must be a number in [0, 1], got" in err
    assert "could not convert" not in err


def test_encode_refuses_an_id_column_named_embedding(tmp_path, monkeypatch, capsys) -> None:
    import semrec.text

    def no_encoder(*args, **kwargs):
        pytest.fail("the encoder was loaded before the options were checked")

    monkeypatch.setattr(semrec.text, "TextEncoder", no_encoder)
    items = _write(tmp_path / "e.csv", "embedding,title\n1,red\n")
    argv = ["encode", "--items", str(items), "--text-column", "title"]
    out = tmp_path / "e.parquet"
    assert main([*argv, "--id-column", "embedding", "--out", str(out)]) == 1
    assert "--id-column 'embedding'" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_checks_k_and_names_flags(tmp_path, monkeypatch, capsys) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 30, 400), "item": rng.integers(0, 40, 400)})
    data = tmp_path / "b.csv"
    frame.drop_duplicates().to_csv(data, index=False)
    n_items = frame["item"].nunique()

    def no_fit(args, train):
        pytest.fail("a model was fitted before --k was checked")

    monkeypatch.setitem(registry.MODELS, "popular", no_fit)
    argv = ["evaluate", "--interactions", str(data), "--split", "random", "--models", "popular"]
    assert main([*argv, "--k", "1000000000", "-q"]) == 1
    err = capsys.readouterr().err
    assert "--k 1000000000" in err and f"pass --k <= {n_items}" in err and "k=" not in err
    monkeypatch.undo()
    # The library's keywords, as the flags that set them.
    for flag, value in (("--seed", "-1"), ("--threads", "-5"), ("--relevance-threshold", "nan")):
        assert main([*argv, flag, value, "-q"]) == 1
        err = capsys.readouterr().err
        assert f"error: {flag} must be" in err, err
        assert "random_state" not in err and "num_threads" not in err
