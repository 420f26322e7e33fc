"""semrec.TfidfEncoder against scikit-learn's TfidfVectorizer (the independent reference), and
its use as item features for the cold-item map."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec.datasets import synthetic
from semrec.text import TfidfEncoder

sklearn_text = pytest.importorskip(
    "sklearn.feature_extraction.text", reason="scikit-learn is not installed (pip install .[test])"
)

CORPUS = [
    "Toy Story (1995) — Animation, Children's, Comedy. A film by John Lasseter.",
    "GoldenEye (1995) — Action, Adventure, Thriller. A James Bond film starring Pierce Brosnan.",
    "Four Rooms (1995) — Thriller. An anthology comedy film by Quentin Tarantino and others.",
    "Get Shorty (1995) — Action, Comedy, Drama. A comedy film by Barry Sonnenfeld.",
    "Copycat (1995) — Crime, Drama, Thriller. A thriller film starring Sigourney Weaver.",
    "Amélie (2001) — Comedy, Romance. A French romantic comedy film; Amélie Poulain, Paris.",
    "Pulp Fiction (1994) — Crime, Drama. A crime film by Quentin Tarantino, Tarantino's 2nd.",
    "The World Is Not Enough (1999) — Action. A James Bond film with Pierce Brosnan as Bond.",
    "",
    "!!! ??? 1 a",
]


def reference(corpus, **kw):
    kw.setdefault("min_df", 2)
    kw.setdefault("sublinear_tf", True)
    return sklearn_text.TfidfVectorizer(**kw).fit(corpus)


@pytest.mark.parametrize(
    "params",
    [
        dict(min_df=2, sublinear_tf=True, ngrams=1),
        dict(min_df=1, sublinear_tf=False, ngrams=1),
        dict(min_df=1, sublinear_tf=True, ngrams=2),
        dict(min_df=2, sublinear_tf=False, ngrams=2),
    ],
)
def test_vocabulary_and_weights_equal_scikit_learn(params):
    ours = TfidfEncoder(max_features=None, **params).fit(CORPUS)
    theirs = reference(
        CORPUS, min_df=params["min_df"], sublinear_tf=params["sublinear_tf"],
        ngram_range=(1, params["ngrams"]),
    )  # fmt: skip
    assert ours.vocabulary_ == list(theirs.get_feature_names_out())
    np.testing.assert_allclose(ours.idf_, theirs.idf_, rtol=1e-12)
    queries = [*CORPUS, "a new bond film by tarantino in paris", "nothing known here"]
    got = ours.transform(queries)
    assert isinstance(got, sp.csr_array) and got.dtype == np.float32
    np.testing.assert_allclose(got.toarray(), theirs.transform(queries).toarray(), atol=1e-6)


def test_max_features_keeps_the_most_frequent_words():
    ours = TfidfEncoder(min_df=1, max_features=5).fit(CORPUS)
    counts = sklearn_text.CountVectorizer().fit(CORPUS)
    totals = np.asarray(counts.transform(CORPUS).sum(axis=0)).ravel()
    words = counts.get_feature_names_out()
    top = sorted(zip(-totals, words, strict=True))[:5]  # most frequent, ties by the word
    assert ours.vocabulary_ == sorted(w for _, w in top)
    # the idf still counts documents over the whole corpus
    theirs = reference(CORPUS, min_df=1, vocabulary=ours.vocabulary_)
    np.testing.assert_allclose(ours.idf_, theirs.idf_, rtol=1e-12)


class FixedEncoder:
    """An encoder whose vector of a text is its length and a constant."""

    dim = 2

    def __init__(self):
        self.calls = []

    def encode(self, texts, **kwargs):
        self.calls.append(kwargs)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_encode_appends_the_weighted_tfidf_to_the_encoders_vectors():
    encoder = FixedEncoder()
    ours = TfidfEncoder(encoder, weight=0.5, min_df=1).fit(CORPUS)
    texts = (t for t in ["pierce brosnan", "nothing known"])  # a generator: read once
    got = ours.encode(texts, batch_size=7)
    assert (
        got.dtype == np.float32
        and got.shape == (2, ours.dim)
        and ours.dim == 2 + len(ours.vocabulary_)
    )
    np.testing.assert_array_equal(got[:, :2], [[14, 1], [13, 1]])
    expected = 0.5 * reference(CORPUS, min_df=1).transform(["pierce brosnan", "nothing known"])
    np.testing.assert_allclose(got[:, 2:], expected.toarray(), atol=1e-6)
    assert encoder.calls == [{"batch_size": 7}]
    assert np.linalg.norm(got[0, 2:]) == pytest.approx(0.5, rel=1e-6)
    assert not got[1, 2:].any()  # no known word: a zero TF-IDF part


def test_encode_items_keeps_item_ids_and_follows_a_renumbering():
    data = synthetic(30, 40, 300, random_state=0)
    tfidf = TfidfEncoder(min_df=2).fit(data.item_text)
    emb = tfidf.encode_items(data)
    assert emb.item_ids.tolist() == list(data.item_ids)
    np.testing.assert_array_equal(np.asarray(emb), tfidf.encode(data.item_text))
    shuffled = data.permute_items(random_state=3)
    np.testing.assert_array_equal(
        np.asarray(emb.aligned_to(shuffled)), tfidf.encode(shuffled.item_text)
    )


def test_save_load_round_trip(tmp_path):
    ours = TfidfEncoder(weight=2.0, min_df=1, ngrams=2, sublinear_tf=False).fit(CORPUS)
    ours.save(tmp_path / "w.npz")
    back = TfidfEncoder.load(tmp_path / "w.npz", encoder=FixedEncoder())
    assert back.vocabulary_ == ours.vocabulary_
    assert (back.weight, back.ngrams, back.sublinear_tf) == (2.0, 2, False)
    np.testing.assert_array_equal(back.idf_, ours.idf_)
    np.testing.assert_array_equal(back.encode(CORPUS)[:, 2:], ours.encode(CORPUS))
    (tmp_path / "bad.npz").write_bytes((tmp_path / "w.npz").read_bytes()[:-40])
    with pytest.raises(semrec.FormatError):
        TfidfEncoder.load(tmp_path / "bad.npz")
    saved = (tmp_path / "w.npz").read_bytes()
    ours.ngrams = 3  # set after fit: neither encoded as 1 nor saved over the good file
    for call in (lambda: ours.save(tmp_path / "w.npz"), lambda: ours.encode(CORPUS)):
        with pytest.raises(ValueError, match="ngrams must be 1"):
            call()
    assert (tmp_path / "w.npz").read_bytes() == saved
    ours.ngrams = 1  # valid, but the vocabulary holds pairs: encoding would zero them
    for call in (lambda: ours.save(tmp_path / "w.npz"), lambda: ours.encode(CORPUS)):
        with pytest.raises(ValueError, match="fitted with ngrams=2; set it back or fit again"):
            call()
    assert (tmp_path / "w.npz").read_bytes() == saved
    ours.ngrams = 2
    np.testing.assert_array_equal(back.encode(CORPUS)[:, 2:], ours.encode(CORPUS))


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: TfidfEncoder().fit([]), ValueError, "texts is empty"),
        (lambda: TfidfEncoder(min_df=3).fit(["a b", "cd ef"]), ValueError, "lower min_df"),
        (lambda: TfidfEncoder().fit("one text"), ValueError, "no word occurs"),
        (lambda: TfidfEncoder().fit([b"bytes"]), TypeError, "texts[0] must be str"),
        (lambda: TfidfEncoder().fit(["ok", 3]), TypeError, "texts[1] must be str"),
        (lambda: TfidfEncoder().fit(None), TypeError, "got None"),
        (lambda: TfidfEncoder(min_df=0).fit(CORPUS), ValueError, "min_df"),
        (lambda: TfidfEncoder(ngrams=3).fit(CORPUS), ValueError, "ngrams must be 1"),
        (lambda: TfidfEncoder(weight=-1.0).fit(CORPUS), ValueError, "weight"),
        (lambda: TfidfEncoder(weight=float("nan")).fit(CORPUS), ValueError, "weight"),
        (lambda: TfidfEncoder(max_features=0).fit(CORPUS), ValueError, "max_features"),
        (lambda: TfidfEncoder(encoder="all-MiniLM").fit(CORPUS), TypeError, "encoder"),
        (lambda: TfidfEncoder().encode(["x"]), semrec.NotFittedError, "fit(texts) first"),
        (lambda: TfidfEncoder(min_df=1).fit(CORPUS).encode_items([1]), TypeError, "Dataset"),
    ],
)
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)


def test_the_words_help_the_cold_item_map_find_planted_names():
    """Items whose only shared signal is a rare name: the embedding below cannot see it, the
    TF-IDF part can. Users like one of two 'directors'; the cold items' director is in their
    text only. The map fitted on [embedding, TF-IDF] ranks each user's director's cold items
    first far more often than the embedding alone."""
    rng = np.random.default_rng(0)
    n_items, n_users = 200, 300
    director = rng.integers(0, 2, n_items)
    names = np.array(["kowalczyk", "okonkwo"])
    texts = [f"a film by {names[d]} number {i}" for i, d in enumerate(director)]
    likes = rng.integers(0, 2, n_users)
    rows, cols = [], []
    for u in range(n_users):
        pool = np.flatnonzero(director[:150] == likes[u])
        for i in rng.choice(pool, 10, replace=False):
            rows.append(u)
            cols.append(i)
    m = sp.csr_array((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    blind = rng.standard_normal((n_items, 8)).astype(np.float32)  # knows nothing of names
    tfidf = TfidfEncoder(min_df=2).fit(texts)
    features = np.hstack([blind, tfidf.encode(texts)])
    cold = np.arange(150, n_items)

    def hits(emb):
        als = semrec.ALS(4, iterations=10, random_state=0, show_progress=False).fit(m)
        model = semrec.ColdStartALS(als, emb, regularization=1.0).fit()
        top = model.score(np.arange(n_users), cold).argmax(axis=1)
        return float(np.mean(director[cold[top]] == likes))

    assert hits(blind) < 0.75  # near a coin flip
    assert hits(features) > 0.95
