"""Dataset construction, MovieLens parsing and download, synthetic data."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import semrec
from semrec.datasets import Dataset, movielens, synthetic, synthetic_size


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
