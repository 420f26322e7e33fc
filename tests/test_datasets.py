"""Dataset construction, MovieLens parsing and download, synthetic data."""

from __future__ import annotations

import copy
import hashlib
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import semrec
from semrec.datasets import Dataset, ItemEmbeddings, movielens, synthetic, synthetic_size


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": ["b", "a", "a", "c"],
            "item": [20, 10, 30, 10],
            "rating": [4.0, 5.0, 0.0, 3.0],
            "time": [5, 3, 4, 1],
        }
    )


def test_from_pandas_builds_sorted_csr_with_aligned_timestamps() -> None:
    items = pd.DataFrame({"item": [10, 20, 30, 40], "title": ["x", "y", "z", "w"]})
    ds = Dataset.from_pandas(
        frame(), "user", "item", "rating", "time", items=items, item_text="title"
    )
    assert ds.user_ids.tolist() == ["a", "b", "c"]
    assert ds.item_ids.tolist() == [10, 20, 30, 40]  # item 40 from the table joins the catalogue
    m = ds.interactions
    assert isinstance(m, sp.csr_array) and m.dtype == np.float32
    # the explicit zero (a, 30) is kept with its timestamp: it is an interaction (issue 13)
    expected = np.array([[5, 0, 0, 0], [0, 4, 0, 0], [3, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(m.toarray(), expected)
    assert m.indices.tolist() == [0, 2, 1, 0] and m.data.tolist() == [5, 0, 4, 3]
    assert ds.timestamps.tolist() == [3, 4, 5, 1]
    assert ds.item_text == ["x", "y", "z", "w"]
    assert ds.user_index(["c", "a"]).tolist() == [2, 0]
    assert ds.item_index(40) == 3
    with pytest.raises(KeyError, match="unknown user"):
        ds.user_index(["zz"])
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 4, 4)
    assert "3 users x 4 items" in repr(ds)
    assert ds.summary()["density"] == pytest.approx(4 / 12)


def test_duplicates_rejected_or_combined() -> None:
    df = pd.DataFrame({"u": [1, 1, 2], "i": [7, 7, 7], "w": [1.0, 2.0, 5.0], "t": [10, 20, 5]})
    with pytest.raises(ValueError, match="duplicate"):
        Dataset.from_pandas(df, "u", "i", "w", "t")
    summed = Dataset.from_pandas(df, "u", "i", "w", "t", duplicates="sum")
    assert summed.interactions.toarray().ravel().tolist() == [3.0, 5.0]
    assert summed.timestamps.tolist() == [20, 5]
    last = Dataset.from_pandas(df, "u", "i", "w", "t", duplicates="last")
    assert last.interactions.toarray().ravel().tolist() == [2.0, 5.0]
    dup = sp.csr_array((np.ones(2, np.float32), np.array([1, 1]), np.array([0, 2])), shape=(1, 2))
    with pytest.raises(ValueError, match="duplicate"):
        Dataset(dup)


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no column 'rating_'"):
        Dataset.from_pandas(frame(), "user", "item", "rating_")
    with pytest.raises(ValueError, match="empty"):
        Dataset.from_pandas(frame().iloc[:0], "user", "item")
    with pytest.raises(TypeError, match="CSR"):
        Dataset(np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        Dataset(sp.csr_array(np.array([[np.nan, 1.0]])))
    with pytest.raises(FileNotFoundError):
        Dataset.from_csv(tmp_path / "missing.csv", "u", "i")
    path = tmp_path / "r.csv"
    frame().to_csv(path, index=False)
    ds = Dataset.from_csv(path, "user", "item", "rating", "time")
    assert ds.n_interactions == 4


def test_movielens_100k_counts(movielens_dir: Path) -> None:
    ml = movielens("100k", path=movielens_dir)
    assert (ml.n_users, ml.n_items, ml.n_interactions) == (943, 1682, 100_000)
    assert ml.timestamps is not None and ml.timestamps.shape == (100_000,)
    assert set(np.unique(ml.interactions.data)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ml.item_text[0].startswith("Toy Story (1995) — Animation, Children's, Comedy")
    with_wiki = sum(". " in t for t in ml.item_text)
    assert with_wiki > 0.8 * ml.n_items  # the protocol expects about 90 % matched titles
    # independent check against the raw file: user 196 rated item 242 with 3
    assert ml.interactions[ml.user_index(196), ml.item_index(242)] == 3.0
    raw = np.loadtxt(movielens_dir / "u.data", dtype=np.int64)
    assert ml.interactions.sum() == raw[:, 2].sum()


def test_movielens_malformed_and_missing(tmp_path: Path, movielens_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download=True"):
        movielens("100k", path=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="variant"):
        movielens("10k", path=tmp_path)
    broken = tmp_path / "ml-100k"
    shutil.copytree(movielens_dir, broken, ignore=shutil.ignore_patterns("movie_wiki.csv"))
    (broken / "u.data").write_text("196\t242\tthree\t881250949\n")
    with pytest.raises(semrec.FormatError, match=r"malformed|integer|lack|numbers"):
        movielens("100k", path=broken)


def make_archive(src: Path, dest: Path) -> str:
    with zipfile.ZipFile(dest, "w") as zf:
        for name in ("u.data", "u.item", "u.genre", "u.user"):
            zf.write(src / name, f"ml-100k/{name}")
    return hashlib.md5(dest.read_bytes()).hexdigest()


def test_movielens_download_from_file_url(
    tmp_path: Path, movielens_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5 = make_archive(movielens_dir, mirror / "ml-100k.zip")
    (mirror / "ml-100k.zip.md5").write_text(f"MD5 (ml-100k.zip) = {md5}\n")
    monkeypatch.setenv("SEMREC_DATA", str(tmp_path / "cache"))
    ml = movielens("100k", download=True, base_url=mirror.as_uri(), show_progress=False)
    assert (ml.n_users, ml.n_items, ml.n_interactions) == (943, 1682, 100_000)
    assert (tmp_path / "cache" / "ml-100k" / "u.data").exists()

    # a corrupted archive fails the checksum and leaves nothing behind
    monkeypatch.setenv("SEMREC_DATA", str(tmp_path / "cache2"))
    (mirror / "ml-100k.zip.md5").write_text("0" * 32 + "\n")
    with pytest.raises(semrec.FormatError, match="checksum"):
        movielens("100k", download=True, base_url=mirror.as_uri(), show_progress=False)
    assert not (tmp_path / "cache2" / "ml-100k.zip").exists()


def test_movielens_download_never_touches_a_neighbouring_folder(
    tmp_path: Path, movielens_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive unpacks into a folder of its own: a user's folder named like the archive's
    (ml-100k) beside the target keeps its files, and a non-empty target is refused."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5 = make_archive(movielens_dir, mirror / "ml-100k.zip")
    (mirror / "ml-100k.zip.md5").write_text(f"MD5 (ml-100k.zip) = {md5}\n")
    monkeypatch.setenv("SEMREC_DATA", str(tmp_path / "cache"))
    data = tmp_path / "data"
    mine = data / "ml-100k"
    mine.mkdir(parents=True)
    (mine / "u.data").write_text("my edited ratings\n")
    (mine / "my_notes.txt").write_text("notes\n")
    ml = movielens("100k", path=data / "fresh", download=True, base_url=mirror.as_uri())
    assert ml.n_interactions == 100_000
    assert (mine / "u.data").read_text() == "my edited ratings\n"
    assert sorted(p.name for p in data.iterdir()) == ["fresh", "ml-100k"]  # no leftovers
    assert sorted(p.name for p in mine.iterdir()) == ["my_notes.txt", "u.data"]
    (data / "full").mkdir()
    (data / "full" / "keep.txt").write_text("mine\n")
    with pytest.raises(FileExistsError, match=r"full is not empty but holds no u\.data"):
        movielens("100k", path=data / "full", download=True, base_url=mirror.as_uri())
    assert [p.name for p in (data / "full").iterdir()] == ["keep.txt"]
    (data / "empty").mkdir()
    movielens("100k", path=data / "empty", download=True, base_url=mirror.as_uri())
    assert (data / "empty" / "u.data").exists()


def test_synthetic_is_seeded_and_has_the_protocol_shape() -> None:
    a = synthetic(300, 500, 6_000, random_state=1)
    b = synthetic(300, 500, 6_000, random_state=1)
    c = synthetic(300, 500, 6_000, random_state=2)
    assert (a.interactions != b.interactions).nnz == 0
    assert (a.timestamps == b.timestamps).all()
    assert a.item_text == b.item_text
    assert (a.interactions != c.interactions).nnz > 0
    assert a.n_interactions == 6_000
    assert a.interactions.has_canonical_format
    # power-law popularity: the top 10 % of items hold far more than 10 % of interactions
    pop = np.sort(np.bincount(a.interactions.indices, minlength=500))[::-1]
    assert pop[:50].sum() > 0.3 * pop.sum()
    # topics drive behaviour: most high ratings fall on items of the user's topic
    coo = a.interactions.tocoo()
    same = a.items["topic"].to_numpy()[coo.col] == a.users["topic"].to_numpy()[coo.row]
    assert same.mean() > 0.4  # chance is 1/20; duplicate draws dilute the 0.8 affinity
    assert (coo.data[same] >= 4).all() and (coo.data[~same] <= 3).all()
    # and item text carries the topic: items of one topic share vocabulary
    t0 = [t for t, k in zip(a.item_text, a.items["topic"], strict=True) if k == 0]
    assert all(
        any(w in t for w in ("galaxy", "starship", "planet", "orbit", "astronaut")) for t in t0
    )


def test_synthetic_size_s() -> None:
    s = synthetic_size("S")
    assert (s.n_users, s.n_items, s.n_interactions) == (1_000, 2_000, 100_000)
    with pytest.raises(ValueError, match="size"):
        synthetic_size("XL")


def test_movielens_1m_and_latest_small_formats(tmp_path: Path) -> None:
    one_m = tmp_path / "ml-1m"
    one_m.mkdir()
    (one_m / "ratings.dat").write_text("1::10::5::978300760\n2::10::3::978302109\n2::20::4::9783\n")
    (one_m / "movies.dat").write_text(
        "10::Heat: The Sequel (1995)::Action|Crime\n20::Toy Story (1995)::Animation\n",
        encoding="latin-1",
    )
    (one_m / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ml = movielens("1m", path=one_m)
    assert ml.interactions.toarray().tolist() == [[5.0, 0.0], [3.0, 4.0]]
    assert ml.timestamps.tolist() == [978300760, 978302109, 9783]
    assert ml.item_text == [
        "Heat: The Sequel (1995) — Action, Crime",
        "Toy Story (1995) — Animation",
    ]
    assert ml.users["age"].tolist() == [1, 56]

    small = tmp_path / "ml-latest-small"
    small.mkdir()
    (small / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.5,964982703\n")
    (small / "movies.csv").write_text(
        'movieId,title,genres\n1,"Toy Story (1995)",(no genres listed)\n'
    )
    latest = movielens("latest-small", path=small)
    assert latest.interactions.toarray().tolist() == [[4.5]]
    assert latest.item_text == ["Toy Story (1995)"]


def write_latest_small(folder: Path) -> None:
    """A tiny ml-latest-small: half-star ratings, a movie nobody rated, user tags."""
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.5,10\n1,2,2.5,11\n2,1,3.0,12\n2,3,0.5,13\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,Heat (1995),Crime\n"
        "3,Up (2009),(no genres listed)\n4,Nobody Rated This (2001),Drama\n"
    )
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,1,pixar,5\n2,1,funny,6\n3,1,pixar,7\n2,1,toys,8\n"
        "1,2,heist,9\n1,4,  ,9\n"
    )


def test_latest_small_unrated_items_half_stars_and_tags(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "ml-latest-small"
    write_latest_small(folder)
    with caplog.at_level("WARNING", logger="semrec"):
        ml = movielens("latest-small", path=folder)
    assert "1 of 4 movies have no rating" in caplog.text and "drop_unrated=True" in caplog.text
    assert ml.item_ids.tolist() == [1, 2, 3, 4] and ml.n_interactions == 4
    assert ml.interactions.toarray().tolist() == [[4.5, 2.5, 0, 0], [3.0, 0, 0.5, 0]]
    caplog.clear()
    with caplog.at_level("WARNING", logger="semrec"):
        dropped = movielens("latest-small", path=folder, drop_unrated=True)
        kept = movielens("latest-small", path=folder, drop_unrated=False)
    assert caplog.text == ""
    assert dropped.item_ids.tolist() == [1, 2, 3] and kept.n_items == 4
    tagged = movielens("latest-small", path=folder, tags=True, drop_unrated=True)
    assert tagged.item_text == [
        "Toy Story (1995) — Animation, Comedy. Tags: pixar, funny, toys",
        "Heat (1995) — Crime. Tags: heist",
        "Up (2009)",
    ]
    two = movielens("latest-small", path=folder, tags=2, drop_unrated=True)
    assert two.item_text[0] == "Toy Story (1995) — Animation, Comedy. Tags: pixar, funny"
    with pytest.raises(ValueError, match="no user tags"):
        movielens("100k", path=tmp_path, tags=True)
    with pytest.raises(TypeError, match="tags"):
        movielens("latest-small", path=folder, tags="yes")


def test_item_embeddings_follow_their_items(tmp_path: Path) -> None:
    from semrec.datasets import ItemEmbeddings

    ds = synthetic(30, 40, 300, random_state=2)
    vectors = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    emb = ItemEmbeddings(vectors, ds.item_ids)
    assert np.asarray(emb) is emb.vectors and emb.shape == (40, 6) and len(emb) == 40
    shuffled = ds.permute_items(4)
    perm = shuffled.split_info["item_permutation"]
    aligned = emb.aligned_to(shuffled)
    np.testing.assert_array_equal(aligned.vectors, vectors[perm])
    assert emb.aligned_to(ds) is emb
    aligned.check_aligned(shuffled)
    with pytest.raises(ValueError, match=r"not aligned.*aligned_to"):
        emb.check_aligned(shuffled)
    with pytest.raises(ValueError, match="no embedding"):
        ItemEmbeddings(vectors[:10], ds.item_ids[:10]).aligned_to(ds)
    with pytest.raises(ValueError, match="unique"):
        ItemEmbeddings(vectors[:2], [1, 1])
    with pytest.raises(ValueError, match="one id per row"):
        ItemEmbeddings(vectors, ds.item_ids[:3])
    # Models given both a Dataset and id-carrying embeddings check them.
    with pytest.raises(ValueError, match="not aligned"):
        semrec.ContentRecommender(emb, show_progress=False).fit(shuffled)
    model = semrec.ContentRecommender.from_dataset(shuffled, emb, show_progress=False)
    np.testing.assert_allclose(
        model.item_embeddings_,
        vectors[perm] / np.linalg.norm(vectors[perm], axis=1)[:, None],
        rtol=1e-6,
    )
    als = semrec.ALS(factors=2, iterations=2, random_state=0, show_progress=False)
    with pytest.raises(ValueError, match="not aligned"):
        semrec.ColdStartALS(als, emb).fit(shuffled)
    semrec.ColdStartALS(als, aligned).fit(shuffled)
    with pytest.raises(ValueError, match="not aligned"):
        semrec.evaluate(
            model,
            shuffled,
            shuffled,
            k=5,
            metrics=["diversity"],
            item_embeddings=emb,
            relevance_threshold=None,
        )


@pytest.mark.parametrize(
    ("seed", "error"), [(1.5, TypeError), (True, TypeError), ("0", TypeError), (-1, ValueError)]
)
def test_bad_random_state_is_refused_naming_it(seed, error) -> None:
    ds = Dataset(sp.csr_array(np.eye(3, dtype=np.float32)))
    with pytest.raises(error, match="random_state"):
        ds.permute_items(random_state=seed)
    with pytest.raises(error, match="random_state"):
        synthetic(10, 10, 20, random_state=seed)


def test_permute_items_takes_numpy_ints_and_generators() -> None:
    ds = Dataset(sp.csr_array(np.eye(5, dtype=np.float32)))
    same = ds.permute_items(np.int32(2)).split_info["item_permutation"]
    np.testing.assert_array_equal(same, ds.permute_items(2).split_info["item_permutation"])
    assert ds.permute_items(np.random.default_rng(0)).n_items == 5
    assert ds.permute_items(None).n_items == 5


# -- audit s40: synthetic parameters ----------------------------------------------------------
def test_synthetic_output_for_valid_parameters_is_pinned() -> None:
    # Values of the seeded generator before the parameter checks were added: unchanged.
    d = synthetic(30, 40, 300, random_state=2)
    assert int(d.interactions.indices.sum()) == 6330 and float(d.interactions.data.sum()) == 754
    assert int(d.timestamps.sum()) == 478042393222
    d = synthetic(
        20, 20, 200, n_topics=4, topic_affinity=0.9, popularity_exponent=1.5,
        activity_sigma=2.0, random_state=5,
    )  # fmt: skip
    assert int(d.interactions.indices.sum()) == 1893 and float(d.interactions.data.sum()) == 609
    assert int(d.timestamps.sum()) == 318760176721


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"activity_sigma": -1.0}, ValueError),
        ({"activity_sigma": float("nan")}, ValueError),
        ({"activity_sigma": 50.0}, ValueError),
        ({"popularity_exponent": float("nan")}, ValueError),
        ({"popularity_exponent": -1.0}, ValueError),
        ({"topic_affinity": float("nan")}, ValueError),
        ({"topic_affinity": 1.5}, ValueError),
        ({"topic_affinity": "0.5"}, TypeError),
    ],
)
def test_synthetic_float_parameters_are_checked_by_name(kwargs, error) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        synthetic(50, 80, 500, **kwargs)


def test_synthetic_raises_instead_of_looping_when_pairs_run_out() -> None:
    # Each user only reaches its topic's ~10 items: 5000 distinct pairs cannot exist.
    with pytest.raises(ValueError, match=r"topic_affinity=1 .* n_interactions=5000"):
        synthetic(100, 200, 5_000, topic_affinity=1.0)
    # Nearly all popularity on a few items: the fill loop stops making progress.
    with pytest.raises(ValueError, match=r"cannot place 100 distinct .* popularity_exponent"):
        synthetic(10, 20, 100, popularity_exponent=10.0)
    assert synthetic(20, 30, 100, topic_affinity=1.0, n_topics=2).n_interactions == 100


# -- audit s40: MovieLens file checks -----------------------------------------------------------
def write_100k(folder: Path, files: dict[str, str] | None = None) -> Path:
    """A tiny ml-100k folder (2 genres, 2 movies, 2 users); ``files`` replaces a file."""
    folder.mkdir()
    content = {
        "u.data": "1\t1\t5\t881250949\n2\t1\t3\t881250950\n2\t2\t4\t881250951\n",
        "u.item": "1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n"
        "2|Heat (1995)|01-Jan-1995||http://y|1|0\n",
        "u.genre": "unknown|0\nComedy|1\n",
        "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n",
        "movie_wiki.csv": "movie_title,wiki_summary\nToy Story (1995),A toy film. More.\n",
    }
    content.update(files or {})
    for name, text in content.items():
        (folder / name).write_text(text, encoding="latin-1")
    return folder


_ROCKY = "Rocky is a film directed by John G. Avildsen."
_CRUMB = "Crumb is about the cartoonist R. Crumb and his family."
_PATTON = "Patton is a film about U.S. General George S. Patton."
_MOREAU = "The Island of Dr. Moreau is a 1996 film."


@pytest.mark.parametrize(
    ("summary", "first"),
    [
        (_ROCKY, _ROCKY),
        (f"{_CRUMB} It won a prize.", _CRUMB),
        (f"{_PATTON} It stars George C. Scott.", _PATTON),
        (
            "Rajakumaran (transl. Prince) is a 1994 film.",
            "Rajakumaran (transl. Prince) is a 1994 film.",
        ),
        (f"{_MOREAU} Marlon Brando stars!", _MOREAU),
        (
            "A film by Mr. Smith, Jr. and St. John. Really? Yes.",
            "A film by Mr. Smith, Jr. and St. John.",
        ),
        ("Sentence one! Sentence two.", "Sentence one!"),
        ("Ends with a number 1. 2 follows.", "Ends with a number 1."),
    ],
)
def test_wiki_first_sentence_keeps_initials_and_abbreviations(
    tmp_path: Path, summary: str, first: str
) -> None:
    """The summary is cut after its first sentence, not at an initial or "Dr." inside it."""
    wiki = f'movie_title,wiki_summary\nToy Story (1995),"{summary}"\n'
    ml = movielens("100k", path=write_100k(tmp_path / "ml", {"movie_wiki.csv": wiki}))
    assert ml.item_text[0] == f"Toy Story (1995) — Comedy. {first}"


def test_tiny_100k_folder_loads(tmp_path: Path) -> None:
    ml = movielens("100k", path=write_100k(tmp_path / "ok"))
    assert ml.interactions.toarray().tolist() == [[5.0, 0.0], [3.0, 4.0]]
    assert ml.item_text == ["Toy Story (1995) — Comedy. A toy film.", "Heat (1995)"]


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"u.data": "1\t1\t5\t881250949\t7\n"}, r"u\.data, line 1: expected 4 .* found 5"),
        ({"u.item": "1|Toy Story (1995)|01-Jan-1995||http://x|0|1|0\n"}, r"u\.item, line 1"),
        ({"u.user": "1|24|M|technician|85711\n2|53|F|other\n"}, r"u\.user, line 2: .* found 4"),
        ({"u.user": "1,24,M,technician,85711\n2,53,F,other,94043\n"}, r"u\.user, line 1"),
        ({"u.genre": ""}, r"u\.genre is empty"),
    ],
)
def test_movielens_wrong_field_count_names_file_and_line(tmp_path: Path, files, match) -> None:
    with pytest.raises(semrec.FormatError, match=match):
        movielens("100k", path=write_100k(tmp_path / "ml", files))


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"u.data": "1\t1\t5\t881250949\n1\t1\t4\t881250950\n"}, r"u\.data: user 1 rates item 1"),
        ({"u.item": "1|A (1995)|||x|0|1\n1|B (1995)|||y|1|0\n2|C|||z|0|1\n"}, r"u\.item: item_id"),
        ({"u.user": "1|24|M|t|1\n1|24|M|t|1\n2|5|F|o|2\n"}, r"u\.user: user_id 1"),
        ({"u.data": "1\t1\t5\t1\n1\t9\t5\t2\n"}, r"u\.data holds 1 ratings of movies .*u\.item"),
        ({"u.data": "1\t1\t5\t1\n7\t1\t5\t2\n"}, r"u\.data holds 1 ratings by users .*u\.user"),
    ],
)
def test_movielens_inconsistent_files_name_the_file(tmp_path: Path, files, match) -> None:
    with pytest.raises(semrec.FormatError, match=match) as info:
        movielens("100k", path=write_100k(tmp_path / "ml", files))
    assert "duplicates=" not in str(info.value)  # movielens() takes no such argument


def test_movielens_unusable_wiki_file_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad_bytes = write_100k(tmp_path / "latin1")
    wiki = bad_bytes / "movie_wiki.csv"
    wiki.write_bytes(wiki.read_bytes() + "Heat (1995),Caf\u00e9.\n".encode("latin-1"))
    wrong_cols = write_100k(
        tmp_path / "cols", {"movie_wiki.csv": "title,summary\nHeat (1995),A.\n"}
    )
    for folder in (bad_bytes, wrong_cols):
        caplog.clear()
        with caplog.at_level("WARNING", logger="semrec"):
            ml = movielens("100k", path=folder)
        assert str(folder / "movie_wiki.csv") in caplog.text
        assert ml.item_text == ["Toy Story (1995) — Comedy", "Heat (1995)"]
    repeated = write_100k(
        tmp_path / "dup",
        {"movie_wiki.csv": "movie_title,wiki_summary\nHeat (1995),One.\nHeat (1995),Two.\n"},
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="semrec"):
        ml = movielens("100k", path=repeated)
    assert "more than once" in caplog.text and "'Heat (1995)'" in caplog.text
    assert ml.item_text[1] == "Heat (1995). Two."


# -- audit s40: ids, item text, weights, timestamps -------------------------------------------
def test_mixed_type_ids_stay_distinct() -> None:
    from semrec.datasets import ItemEmbeddings

    by_str = Dataset.from_pandas(pd.DataFrame({"u": ["1", "2"], "i": [1, 2]}), "u", "i")
    with pytest.raises(KeyError, match=r"unknown user id\(s\) \[1\]"):
        by_str.user_index([1, "2"])  # the int 1 is not the string "1"
    assert by_str.user_index(["2", "1"]).tolist() == [1, 0]
    by_int = Dataset.from_pandas(pd.DataFrame({"u": [1, 2], "i": [1, 2]}), "u", "i")
    with pytest.raises(KeyError, match=r"id\(s\) \['x'\] \(1 missing\)"):
        by_int.user_index([1, "x"])
    mixed = Dataset(sp.csr_array([[1.0, 0, 1]]), item_ids=[10, "b", 30])
    assert mixed.item_ids.tolist() == [10, "b", 30]
    assert mixed.item_index([30, 10, "b"]).tolist() == [2, 0, 1]
    with pytest.raises(KeyError):
        mixed.item_index("10")
    emb = ItemEmbeddings(np.eye(3, dtype=np.float32), [10, "b", 30])
    assert emb.item_ids.tolist() == [10, "b", 30]
    emb.check_aligned(mixed)
    np.testing.assert_array_equal(emb.aligned_to([30, 10]).vectors, np.eye(3)[[2, 0]])


def test_tuple_ids_are_refused_everywhere() -> None:
    from semrec.datasets import ItemEmbeddings

    with pytest.raises(TypeError, match=r"interactions\['u'\] holds tuple ids"):
        Dataset.from_pandas(pd.DataFrame({"u": [(1, 2), (3, 4)], "i": [1, 2]}), "u", "i")
    with pytest.raises(TypeError, match="item_ids holds a tuple id"):
        Dataset(sp.csr_array([[1.0, 1.0]]), item_ids=[(1, 2), (3, 4)])
    with pytest.raises(TypeError, match="item_ids holds a tuple id"):
        ItemEmbeddings(np.eye(2, dtype=np.float32), [(1, 2), (3, 4)])
    ds = Dataset(sp.csr_array([[1.0, 1.0]]), item_ids=[1, 2])
    assert ds.item_index((2, 1)).tolist() == [1, 0]  # a tuple is a sequence of ids


def test_item_text_is_always_a_list_of_str() -> None:
    ds = Dataset(sp.csr_array([[1.0, 0, 1]]), items=pd.DataFrame({"text": ["a", None, np.nan]}))
    assert ds.item_text == ["a", "", ""]
    inter = pd.DataFrame({"u": [1, 1, 2], "i": ["a", "b", "c"]})
    items = pd.DataFrame({"i": ["a", "b"], "text": ["Alien", "Brazil"], "title": ["Alien", "B"]})
    raw = Dataset.from_pandas(inter, "u", "i", items=items, item_text=None)
    assert raw.item_text == ["Alien", "Brazil", ""]
    seen = []

    def describe(row: pd.Series) -> str:
        seen.append(row["i"])
        return f"{row['title']}!"

    made = Dataset.from_pandas(inter, "u", "i", items=items, item_text=describe)
    assert made.item_text == ["Alien!", "B!", ""] and seen == ["a", "b"]  # not run for "c"


def test_weights_beyond_float32_and_complex_weights_are_refused() -> None:
    with pytest.raises(ValueError, match=r"interactions\['w'\] holds weights up to 1e\+39"):
        Dataset.from_pandas(pd.DataFrame({"u": [1, 2], "i": [1, 2], "w": [1e39, 1]}), "u", "i", "w")
    over = pd.DataFrame({"u": [1, 1], "i": [1, 1], "w": [3e38, 3e38]})
    with pytest.raises(ValueError, match=r"summed interactions\['w'\].*float32"):
        Dataset.from_pandas(over, "u", "i", "w", duplicates="sum")
    cplx = pd.DataFrame({"u": [1, 2], "i": [1, 2], "w": [1 + 5j, 2]})
    with pytest.raises(TypeError, match=r"interactions\['w'\] holds complex"):
        Dataset.from_pandas(cplx, "u", "i", "w")
    fits = pd.DataFrame({"u": [1, 1], "i": [1, 1], "w": [1e38, 1e38]})
    ok = Dataset.from_pandas(fits, "u", "i", "w", duplicates="sum")
    assert ok.interactions.data.tolist() == [np.float32(2e38)]


def test_constructor_timestamps_beyond_int64_are_refused() -> None:
    big = np.array([2**64 - 1, 1], dtype=np.uint64)
    with pytest.raises(ValueError, match="timestamps holds values beyond int64"):
        Dataset(sp.csr_array([[1.0, 2.0]]), timestamps=big)
    ds = Dataset(sp.csr_array([[1.0, 2.0]]), timestamps=np.array([5, 1], dtype=np.uint64))
    assert ds.timestamps.tolist() == [5, 1] and ds.timestamps.dtype == np.int64


# -- audit s40: permutations and splits -------------------------------------------------------
def test_second_permutation_composes_with_the_first() -> None:
    ds = Dataset(sp.csr_array([[1.0, 0, 2.0, 0, 1.0]]), item_ids=list("abcde"))
    vectors = np.arange(5, dtype=np.float32)[:, None]  # row r belongs to item r of ds
    twice = ds.permute_items(1).permute_items(2)
    first = np.random.default_rng(1).permutation(5)
    second = np.random.default_rng(2).permutation(5)
    perm = twice.split_info["item_permutation"]
    np.testing.assert_array_equal(perm, first[second])  # NumPy reference
    assert (twice.item_ids == ds.item_ids[perm]).all()
    np.testing.assert_array_equal(vectors[perm][:, 0], np.arange(5)[perm])
    np.testing.assert_array_equal(twice.interactions.toarray(), ds.interactions.toarray()[:, perm])
    # a split of a permuted dataset keeps the record, so permuting it again still composes
    split_then = ds.permute_items(1).subset(np.ones(3, dtype=bool)).permute_items(2)
    np.testing.assert_array_equal(split_then.split_info["item_permutation"], first[second])


def test_splits_do_not_share_editable_tables_with_their_parent() -> None:
    ds = Dataset(
        sp.csr_array([[1.0, 2.0], [3.0, 0.0]]),
        items=pd.DataFrame({"genre": ["x", "y"]}),
        users=pd.DataFrame({"age": [20, 30]}),
    )
    train = ds.subset(ds.interactions.data > 1.5)
    test = ds.subset(ds.interactions.data <= 1.5)
    train.items["genre"] = "EDITED"
    train.users.loc[0, "age"] = -1
    permuted = ds.permute_items(1)
    permuted.users.loc[1, "age"] = -99
    assert ds.items["genre"].tolist() == test.items["genre"].tolist() == ["x", "y"]
    assert ds.users["age"].tolist() == [20, 30]
    assert train.item_ids is ds.item_ids  # shared, and read-only so the lookup stays right
    with pytest.raises(ValueError, match="read-only"):
        train.item_ids[0] = 99
    with pytest.raises(ValueError, match="read-only"):
        ds.user_ids[0] = 99
    mine = np.array([7, 8])
    Dataset(sp.csr_array([[1.0, 2.0]]), item_ids=mine)
    mine[0] = 9  # the caller's array is copied, never frozen


# -- audit s40: messages ------------------------------------------------------------------------
def test_datasets_messages_name_the_argument(tmp_path: Path) -> None:
    from semrec.datasets import ItemEmbeddings

    twice = pd.DataFrame([[1, 2, 3]], columns=["u", "i", "i"])
    with pytest.raises(ValueError, match="more than one column named 'i'"):
        Dataset.from_pandas(twice, "u", "i")
    ds = Dataset.from_pandas(pd.DataFrame({"u": ["a", "b"], "i": [1, 2]}), "u", "i")
    with pytest.raises(TypeError, match="got a set"):
        ds.user_index({"a"})
    with pytest.raises(TypeError, match=r"dataset must be a Dataset .* got NoneType"):
        ItemEmbeddings(np.eye(3, dtype=np.float32), [1, 2, 3]).aligned_to(None)
    with pytest.raises(ValueError, match=r"^item_ids must be unique, 10 repeats$"):
        ItemEmbeddings(np.eye(3, dtype=np.float32), np.array([10, 10, 30]))
    with pytest.raises(ValueError, match=r"^item_ids must be unique, 10 appears more"):
        Dataset(sp.csr_array([[1.0, 0, 1]]), item_ids=np.array([10, 10, 30]))
    with pytest.raises(KeyError, match=r"unknown item id\(s\) \[5\]"):
        ds.item_index(np.array([5]))
    with pytest.raises(IsADirectoryError, match="path must be a CSV file"):
        Dataset.from_csv(tmp_path, "u", "i")


def test_from_pandas_names_the_table_that_repeats_an_id() -> None:
    df = pd.DataFrame({"u": ["a", "b"], "i": [1, 2]})
    items = pd.DataFrame({"i": [1, 1], "text": ["x", "y"]})
    with pytest.raises(ValueError, match=r"the 'i' column of the items table lists 1 more than"):
        Dataset.from_pandas(df, "u", "i", items=items)
    with pytest.raises(ValueError, match=r"the 'u' column of the users table lists 'a' more"):
        Dataset.from_pandas(df, "u", "i", users=pd.DataFrame({"u": ["a", "a"]}))


def test_dataset_and_item_embeddings_keep_no_reference_to_the_callers_arrays():
    """Editing the arrays given after construction changes nothing: the timestamps are
    copied, and the embeddings' ids (whose lookup is built once) refuse edits."""
    from semrec.datasets import ItemEmbeddings

    ts = np.array([5, 6, 7], dtype=np.int64)
    ds = Dataset(sp.csr_array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), timestamps=ts)
    ts[:] = 0
    assert ds.timestamps.tolist() == [5, 6, 7]
    emb = ItemEmbeddings(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    with pytest.raises(ValueError, match="read-only"):
        emb.item_ids[0] = "z"
    assert emb.item_ids.tolist() == ["a", "b", "c"]


# -- session 48: ids that cannot be matched, copies, argument order ------------------------------
@pytest.mark.parametrize("missing", [np.nan, None, float("nan")])
def test_missing_ids_are_refused(missing) -> None:
    """A NaN id never equals itself, so no lookup or alignment check could ever match it."""
    m = sp.csr_array(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match=r"item_ids holds a missing id .* at index 0"):
        Dataset(m, item_ids=[missing, 1.0])
    with pytest.raises(ValueError, match=r"user_ids holds a missing id .* at index 0"):
        Dataset(m, user_ids=[missing])
    with pytest.raises(ValueError, match=r"item_ids holds a missing id .* at index 1"):
        ItemEmbeddings(np.eye(2, dtype=np.float32), ["a", missing])


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copied_datasets_keep_their_ids_read_only(how) -> None:
    """The id arrays back the lookups: a copy must refuse edits in place as the original does."""
    data = synthetic(20, 30, 100, random_state=0)
    emb = ItemEmbeddings(np.ones((30, 2), np.float32), data.item_ids)
    copy_ = copy.deepcopy if how == "deepcopy" else lambda x: pickle.loads(pickle.dumps(x))
    for copied in (copy_(data), copy_(emb)):
        with pytest.raises(ValueError, match="read-only"):
            copied.item_ids[0] = 99
    copied = copy_(data)
    with pytest.raises(ValueError, match="read-only"):
        copied.user_ids[0] = 99
    assert copied.item_index(data.item_ids[3]) == 3


def test_synthetic_checks_with_text_before_any_work(monkeypatch) -> None:
    """A bad with_text is refused before the data is generated (minutes at size L)."""
    import semrec.datasets._synthetic as generator

    def no_work(*args, **kwargs):
        raise AssertionError("the generator ran before the arguments were checked")

    monkeypatch.setattr(generator.np.random, "default_rng", no_work)
    with pytest.raises(TypeError, match="with_text"):
        synthetic(20, 30, 100, with_text="no")


# -- session 48: from_csv options, item rows, ids in messages, bytes ids -------------------------
def test_from_csv_gives_the_item_file_only_format_options(tmp_path: Path) -> None:
    """nrows and usecols are for the interactions file; sep reaches both files."""
    import re

    ratings, item_file = tmp_path / "r.csv", tmp_path / "it.csv"
    ratings.write_text("u;i;w\n1;10;5\n2;20;4\n3;30;3\n")
    item_file.write_text("i;text\n30;thirty\n20;twenty\n10;ten\n")
    ds = Dataset.from_csv(ratings, "u", "i", items=item_file, sep=";", nrows=2, usecols=["u", "i"])
    assert ds.n_interactions == 2  # the first two rows of r.csv only
    assert ds.item_ids.tolist() == [10, 20, 30]  # item 30 joins from the item table
    assert ds.item_text == ["ten", "twenty", "thirty"]
    with pytest.raises(
        ValueError, match=rf"cannot read path='{re.escape(str(ratings))}' .*Usecols do not"
    ):
        Dataset.from_csv(ratings, "u", "i", items=item_file, sep=";", usecols=["u", "x"])
    item_file.write_text("i;text\n10;ten\n20;twenty;extra\n")  # a field too many
    with pytest.raises(
        semrec.FormatError, match=rf"^{re.escape(str(item_file))} is not a readable"
    ):
        Dataset.from_csv(ratings, "u", "i", items=item_file, sep=";")


def test_callable_item_text_sees_the_values_of_the_items_table() -> None:
    """Not the rows of the reindexed table, where an item without a row turned ints to floats,
    nor iterrows, which turns every value of an all-numeric row into a float."""
    events = pd.DataFrame({"user": [1, 1, 2], "item": ["a", "b", "c"]})
    items = pd.DataFrame({"item": ["b", "a"], "year": [2001, 1995]})
    rows = []

    def describe(row: pd.Series) -> str:
        rows.append(row)
        return f"year {row['year']}"

    ds = Dataset.from_pandas(events, "user", "item", items=items, item_text=describe)
    assert ds.item_text == ["year 1995", "year 2001", ""]
    assert [type(r["year"]) for r in rows] == [int, int]
    assert [r.name for r in rows] == [0, 1] and rows[0].tolist() == ["b", 2001]
    by_column = Dataset.from_pandas(events, "user", "item", items=items, item_text="year")
    assert by_column.item_text == ["1995", "2001", ""]
    numeric = pd.DataFrame({"item": [10, 20], "year": [1995, 2001], "score": [0.5, 1.5]})
    events = pd.DataFrame({"user": [1, 2], "item": [10, 30]})
    ds = Dataset.from_pandas(
        events, "user", "item", items=numeric, item_text=lambda r: f"{r['item']}/{r['year']}"
    )
    assert ds.item_text == ["10/1995", "20/2001", ""]


def test_duplicate_pairs_message_shows_each_id_as_it_is() -> None:
    """1 and "1" are different ids: the message must not show them alike."""
    ints = pd.DataFrame({"u": [1, 1], "i": [2, 2]})
    with pytest.raises(ValueError, match=r"e\.g\. user 1, item 2; pass"):
        Dataset.from_pandas(ints, "u", "i")
    strings = pd.DataFrame({"u": ["1", "1"], "i": ["2", "2"]})
    with pytest.raises(ValueError, match=r"e\.g\. user '1', item '2'; pass"):
        Dataset.from_pandas(strings, "u", "i")


def test_bytes_and_str_ids_stay_distinct() -> None:
    """b"a" is not "a": np.asarray would decode it into a second "a"."""
    ds = Dataset(sp.csr_array([[1.0, 0.0, 1.0]]), item_ids=[b"a", "a", 3])
    assert ds.item_ids.tolist() == [b"a", "a", 3]
    assert ds.item_index(["a", b"a", 3]).tolist() == [1, 0, 2]
    two = Dataset(sp.csr_array([[1.0, 1.0]]), item_ids=[b"a", "a"])
    assert two.item_ids.tolist() == [b"a", "a"] and two.item_index(b"a") == 0
    emb = ItemEmbeddings(np.eye(2, dtype=np.float32), ["a", b"a"])
    np.testing.assert_array_equal(emb.aligned_to(two).vectors, np.eye(2)[[1, 0]])
