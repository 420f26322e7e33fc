"""EmbeddingCache: clear errors for bad files and directories, checksums, atomic writes; fuzzed."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest
from fuzzing import corruptions
from interrupts import child
from text_helpers import write_tiny_bert

import semrec
from semrec import EmbeddingCache, TextEncoder

pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning"
)
TEXTS = ["the space war", "a love story!", "bad films", "the space war"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny") / "model"
    write_tiny_bert(directory)
    return directory


@pytest.fixture(scope="module")
def encoder(tiny):
    return TextEncoder(tiny, precision="fp32")


def test_vectors_round_trip_and_are_reused(encoder, tmp_path):
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(encoder, path) as cache:
        first = cache.encode(TEXTS)
        assert len(cache) == 3
    np.testing.assert_array_equal(first, encoder.encode(TEXTS))  # fp32: deterministic
    calls = []

    class Counting(TextEncoder):
        def encode(self, *args, **kwargs):
            calls.append(args)
            return super().encode(*args, **kwargs)

    counting = Counting(encoder.model_path, precision="fp32")
    with EmbeddingCache(counting, path) as again:
        np.testing.assert_array_equal(again.encode(TEXTS[:2]), first[:2])
    assert not calls
    cache = EmbeddingCache(encoder, path)
    cache.close()
    with pytest.raises(ValueError, match="closed"):
        cache.encode("x")


def test_arguments_are_checked_on_a_warm_cache_too(encoder, tmp_path):
    """A call that a cold cache would refuse is refused when every text is stored as well."""
    with EmbeddingCache(encoder, tmp_path / "emb.sqlite") as cache:
        stored = cache.encode(TEXTS, batch_size=2, num_threads=1)
        np.testing.assert_array_equal(stored, encoder.encode(TEXTS))
        for kwargs, error, match in [
            ({"batch_size": 0}, ValueError, "batch_size"),
            ({"batch_size": "8"}, TypeError, "batch_size"),
            ({"show_progress": "yes"}, TypeError, "show_progress"),
            ({"normalize": 1.5}, TypeError, "normalize"),
            ({"num_threads": -1}, ValueError, "num_threads"),
            ({"batch_sise": 8}, TypeError, "batch_sise"),
        ]:
            with pytest.raises(error, match=match):
                cache.encode(TEXTS, **kwargs)  # every text is stored: no encoding needed
        raw = cache.encode(TEXTS[:1], normalize=False)  # another key: encoded, then stored
        np.testing.assert_array_equal(raw, encoder.encode(TEXTS[:1], normalize=False))


def test_bad_paths_and_files_give_clear_errors(encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"directory .*nowhere.* does not exist"):
        EmbeddingCache(encoder, tmp_path / "nowhere" / "emb.sqlite")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        EmbeddingCache(encoder, tmp_path)
    with pytest.raises(TypeError, match="path must be"):
        EmbeddingCache(encoder, 3)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(semrec.FormatError, match=r"garbage\.sqlite is not a usable semrec"):
        EmbeddingCache(encoder, garbage)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    sqlite3.connect(other).close()
    with pytest.raises(semrec.FormatError, match="not a semrec embedding cache"):
        EmbeddingCache(encoder, other)
    with pytest.raises(ValueError, match=r"texts\[1\] holds a lone surrogate U\+D800"):
        EmbeddingCache(encoder, tmp_path / "ok.sqlite").encode(["fine", "abc\ud800"])


def test_version_1_cache_is_adopted(encoder, tmp_path):
    import hashlib

    path = tmp_path / "v1.sqlite"
    vec = encoder.encode(TEXTS[:1])[0]
    key = hashlib.sha256(TEXTS[0].encode()).hexdigest()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE emb (model TEXT, key TEXT, vec BLOB, PRIMARY KEY (model, key))")
    db.execute("INSERT INTO emb VALUES (?, ?, ?)", (f"{encoder.identity}:1", key, vec.tobytes()))
    db.commit()
    db.close()
    with EmbeddingCache(encoder, path) as cache:
        assert len(cache) == 1
        np.testing.assert_array_equal(cache.encode(TEXTS[0])[0], vec)


def test_a_flipped_vector_byte_is_detected(encoder, tmp_path):
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(encoder, path) as cache:
        cache.encode(TEXTS)
    db = sqlite3.connect(path)
    (rowid, vec) = db.execute("SELECT rowid, vec FROM vectors LIMIT 1").fetchone()
    damaged = bytearray(vec)
    damaged[5] ^= 0x10
    db.execute("UPDATE vectors SET vec = ? WHERE rowid = ?", (bytes(damaged), rowid))
    db.commit()
    db.close()
    with EmbeddingCache(encoder, path) as cache, pytest.raises(semrec.FormatError, match="damaged"):
        cache.encode(TEXTS)


@pytest.mark.fuzz
def test_fuzzed_cache_file(encoder, tmp_path):
    # sqlite pages carry no checksum; the cache's own per-vector checksum makes every damaged
    # vector an error, and a damaged key only makes that text a cache miss (re-encoded).
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(encoder, path) as cache:
        original = cache.encode(TEXTS)
    blob = path.read_bytes()
    refused = 0
    for description, damaged in corruptions(blob):
        target = tmp_path / "fuzzed.sqlite"
        target.write_bytes(damaged)
        try:
            with EmbeddingCache(encoder, target) as cache:
                got = cache.encode(TEXTS)
        except semrec.FormatError:
            refused += 1
            continue
        np.testing.assert_array_equal(got, original, err_msg=description)
    assert refused > 0


@pytest.mark.slow
def test_killed_mid_write_leaves_the_previous_cache(tiny, tmp_path):
    path = tmp_path / "emb.sqlite"
    code = (
        "import sys, semrec\n"
        f"enc = semrec.TextEncoder({str(tiny)!r}, precision='fp32')\n"
        f"cache = semrec.EmbeddingCache(enc, {str(path)!r})\n"
        "cache.encode(['the space war', 'a love story!'])\n"
        "print('committed', flush=True)\n"
        "cache.encode([f'film {i}' for i in range(300_000)], batch_size=512)\n"
        "print('finished', flush=True)\n"
    )
    with child(code, ready="committed") as proc:
        journal = path.with_name(path.name + "-journal")
        deadline = time.monotonic() + 120
        while not journal.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.001)  # the big write's transaction has begun
        assert journal.exists(), "the child never began its big write"
        proc.kill()
    with EmbeddingCache(TextEncoder(tiny, precision="fp32"), path) as cache:
        assert len(cache) == 2
        np.testing.assert_array_equal(
            cache.encode(["the space war", "a love story!"]),
            cache.encoder.encode(["the space war", "a love story!"]),
        )


def test_a_retrained_model_of_the_same_layout_is_not_served_stale_vectors(tiny, tmp_path):
    """The cache key hashes the weights' bytes, not only their header: a model retrained and
    saved in place keeps its layout, and must not get the old model's vectors back."""
    torch = pytest.importorskip("torch")

    def retrain(model):
        with torch.no_grad():
            model.encoder.layer[1].output.dense.weight.mul_(0.5)

    write_tiny_bert(tmp_path / "retrained", edit=retrain)
    old, new = (
        TextEncoder(tiny, precision="fp32"),
        TextEncoder(tmp_path / "retrained", precision="fp32"),
    )
    truth = new.encode(TEXTS)
    assert not np.allclose(truth, old.encode(TEXTS), atol=1e-3)  # the weights do differ
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(old, path) as cache:
        cache.encode(TEXTS)
    with EmbeddingCache(new, path) as cache:
        np.testing.assert_array_equal(cache.encode(TEXTS), truth)


def test_threads_share_one_cache(encoder, tmp_path):
    """A thread pool (a web server, an executor) encodes through the cache its owner opened:
    sqlite's same-thread check must not surface as 'not a usable cache; delete it'."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"film number {i}" for i in range(40)]
    with EmbeddingCache(encoder, tmp_path / "emb.sqlite") as cache:
        with ThreadPoolExecutor(4) as pool:
            parts = list(pool.map(lambda i: cache.encode(texts[i : i + 10]), range(0, 40, 10)))
        np.testing.assert_array_equal(np.vstack(parts), encoder.encode(texts))
        assert len(cache) == 40
