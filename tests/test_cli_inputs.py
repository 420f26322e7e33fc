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


# -- item tables without a header line, and items without text ---------------------------------

# Rows shaped like MovieLens-100k's u.item: id|title|date|video date|url|genre flags.
U_ITEM = """1|Toy Story (1995)|01-Jan-1995||http://imdb/1|0|1
2|GoldenEye (1995)|01-Jan-1995||http://imdb/2|1|0
3|Metisse (Caf\xe9 au Lait) (1993)|01-Jan-1993||http://imdb/3|0|1
"""
U_ITEM_NAMES = "item,title,released,video_released,url,action,comedy"


def test_items_without_a_header_line_take_items_column_names(tmp_path, capsys) -> None:
    items = tmp_path / "u.item"
    items.write_bytes(U_ITEM.encode("latin-1"))  # as MovieLens writes it
    data = _write(tmp_path / "u.data", "7\t1\t5\t100\n7\t2\t3\t200\n8\t3\t4\t300\n")
    argv = ["--interactions", str(data), "--sep", "tab", "--column-names", "user,item,w,t"]
    argv += ["--items", str(items), "--items-sep", "|", "--text-column", "title"]
    argv += ["--items-encoding", "latin-1"]
    ds = _io.load_dataset(_parsed(tmp_path, *argv, "--items-column-names", U_ITEM_NAMES))
    # The reference: the file's own fields; the first row is an item, not a header.
    fields = [line.split("|") for line in U_ITEM.splitlines()]
    assert ds.item_ids.tolist() == [int(f[0]) for f in fields]
    assert list(ds.item_text) == [f[1] for f in fields]
    # Without the names, the missing-column error says where they go.
    out = str(tmp_path / "o.csv")
    assert main(["recommend", *argv, "--model", "popular", "--out", out, "-q"]) == 1
    err = capsys.readouterr().err
    assert "its columns are '1', 'Toy Story (1995)'" in err
    assert err.rstrip().endswith("name its columns with --items-column-names")
    # Too few names: how many fields a row has (not "malformed rows").
    short = [*argv, "--items-column-names", "item,title", "--model", "popular"]
    assert main(["recommend", *short, "--out", out, "-q"]) == 1
    err = capsys.readouterr().err
    assert f"has {len(fields[0])} fields per row, but --items-column-names names 2" in err
    # A Latin-1 file read as UTF-8 names the option that reads it.
    names = ["--items-column-names", U_ITEM_NAMES, "--model", "popular"]
    assert main(["recommend", *argv[:-2], *names, "--out", out, "-q"]) == 1
    err = capsys.readouterr().err
    assert "not a readable CSV file" in err
    assert err.rstrip().endswith("name its encoding with --items-encoding, e.g. latin-1")
    # --column-names stays --interactions' own: a headed --items file is read by its header.
    headed = _write(tmp_path / "items.csv", "item,title\n1,a\n2,b\n3,c\n")
    argv[argv.index(str(items))] = str(headed)
    argv = argv[: argv.index("--items-sep")] + argv[argv.index("--text-column") :]
    assert list(_io.load_dataset(_parsed(tmp_path, *argv)).item_text) == ["a", "b", "c"]


@pytest.mark.slow
def test_the_guides_u_item_command_runs_on_movielens(movielens_dir, tmp_path) -> None:
    """The command docs/guides/cli.md shows for u.data and u.item, as printed."""
    import shlex

    guide = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "cli.md").read_text()
    block = guide.split("```bash\n", 1)[1].split("```", 1)[0]
    block = block.replace("\\\n", " ")  # bash joins the lines; shlex would keep a "\n"
    argv = shlex.split(block.replace("ml-100k/", f"{movielens_dir}/"))
    assert argv[:2] == ["semrec", "recommend"] and "--items-column-names" in argv
    out = tmp_path / "recs.csv"
    argv[argv.index("--out") + 1] = str(out)
    ds = _io.load_dataset(build_parser().parse_args(argv[1:]))
    assert argv[argv.index("--items-encoding") + 1] == "latin-1"  # the library reads it so
    lines = (movielens_dir / "u.item").read_text(encoding="latin-1").splitlines()
    titles = {int(f[0]): f[1] for f in (line.split("|") for line in lines)}
    assert dict(zip(ds.item_ids.tolist(), ds.item_text, strict=True)) == titles  # Toy Story too
    assert main([*argv[1:], "-q"]) == 0
    recs = pd.read_csv(out)
    ratings = (movielens_dir / "u.data").read_text().splitlines()
    users = {int(line.split("\t")[0]) for line in ratings}
    assert set(recs["user"]) == users and recs.groupby("user").size().eq(20).all()


def _content_reference(ratings: pd.DataFrame, text: dict, items: list) -> dict:
    """Cosine of each user's summed item vectors with each unseen item, in float64: an item
    without text has a zero vector (scores 0, adds nothing to a profile)."""
    from semrec.text import TextEncoder

    with_text = [i for i in items if text.get(i, "").strip()]
    vectors = TextEncoder().encode([text[i] for i in with_text]).astype(np.float64)
    emb = {i: np.zeros(vectors.shape[1]) for i in items}
    emb.update({i: v / np.linalg.norm(v) for i, v in zip(with_text, vectors, strict=True)})
    scores = {}
    for user, seen in ratings.groupby("user")["item"]:
        profile = sum(emb[i] for i in seen)
        norm = np.linalg.norm(profile)
        profile = profile / norm if norm > 0 else profile
        scores.update({(user, j): float(profile @ emb[j]) for j in items if j not in set(seen)})
    return scores


def test_items_without_text_get_no_text_vector_and_a_warning(tmp_path, capsys) -> None:
    rows = [("ann", "shoe"), ("ann", "boot"), ("bob", "voucher"), ("cat", "cake")]
    rows += [("dan", "card"), ("eve", "shoe"), ("eve", "voucher")]
    data = tmp_path / "r.csv"
    ratings = pd.DataFrame(rows, columns=["user", "item"])
    ratings.to_csv(data, index=False)
    # voucher: an empty cell; gift: a blank one; card: not listed at all.
    catalogue = {"shoe": "red running shoe", "boot": "leather hiking boot", "voucher": "",
                 "cake": "chocolate cake", "pie": "apple pie", "gift": "   "}  # fmt: skip
    items = tmp_path / "items.csv"
    pd.DataFrame({"item": list(catalogue), "text": list(catalogue.values())}).to_csv(
        items, index=False
    )
    out = tmp_path / "recs.csv"
    argv = ["recommend", "--interactions", str(data), "--items", str(items)]
    argv += ["--text-column", "text", "--model", "content", "--k", "10", "--out", str(out)]
    assert main([*argv, "-q"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"semrec recommend: warning: 3 of 7 items have no text (1 not listed in --items {items}, "
        "2 with an empty --text-column 'text' cell): they get no text vector (a zero row), "
        "which text models score 0"
    ]
    recs = pd.read_csv(out, keep_default_na=False)
    got = {(u, i): s for u, i, s in zip(recs["user"], recs["item"], recs["score"], strict=True)}
    want = _content_reference(ratings, catalogue, sorted({*catalogue, "card"}))
    assert got.keys() == want.keys()  # every unseen item (k = 10 > 7)
    for pair, score in want.items():
        assert got[pair] == pytest.approx(score, abs=1e-4), pair
    # No text, no match: "" is not a text that every such item shares.
    assert all(got[(u, i)] == 0 for u in ("bob", "dan") for i in ("card", "gift", "voucher")
               if (u, i) in got)  # fmt: skip
    # evaluate (the diversity metric's vectors) warns alike.
    many = tmp_path / "many.csv"
    pd.DataFrame(
        [(u, i) for u in range(6) for i in ("shoe", "boot", "voucher", "cake", "card")],
        columns=["user", "item"],
    ).to_csv(many, index=False)
    argv = ["evaluate", "--interactions", str(many), "--items", str(items), "--text-column"]
    assert main([*argv, "text", "--models", "popular", "--split", "random", "-q"]) == 0
    captured = capsys.readouterr()
    assert "diversity" in captured.out and "3 of 7 items have no text" in captured.err
    # No text anywhere is a mistake (e.g. the wrong --text-column), not a content model.
    blank = _write(tmp_path / "blank.csv", "item,text\nshoe,\nboot, \n")
    argv = ["recommend", "--interactions", str(data), "--items", str(blank)]
    argv += ["--text-column", "text", "--model", "content", "--out", str(out), "-q"]
    assert main(argv) == 1
    assert "no item has text: --text-column 'text'" in capsys.readouterr().err
