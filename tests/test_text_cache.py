"""EmbeddingCache: clear errors for bad files and directories, checksums, atomic writes; fuzzed."""

from __future__ import annotations

import hashlib
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
        # The big write's transaction has begun once its pages spill to the write-ahead log
        # (the rollback journal where the filesystem refuses WAL).
        journal, wal = (path.with_name(path.name + suffix) for suffix in ("-journal", "-wal"))
        committed = wal.stat().st_size if wal.exists() else 0

        def writing() -> bool:
            return journal.exists() or (wal.exists() and wal.stat().st_size > committed + 65536)

        deadline = time.monotonic() + 120
        while not writing() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.001)
        assert writing(), "the child never began its big write"
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


def test_models_differing_only_in_pooling_do_not_share_vectors(tiny, tmp_path):
    """The identity covers the pooling: a model switched from CLS to mean pooling (or two such
    folders) must not be served the other's vectors by a shared cache."""
    import json
    import shutil

    mean_dir = tmp_path / "mean"
    shutil.copytree(tiny, mean_dir)
    (mean_dir / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
            }
        )
    )
    cls, mean = TextEncoder(tiny, precision="fp32"), TextEncoder(mean_dir, precision="fp32")
    assert cls.identity != mean.identity
    cls_truth, mean_truth = cls.encode(TEXTS), mean.encode(TEXTS)
    assert not np.allclose(cls_truth, mean_truth, atol=1e-3)  # the pooling does matter
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(cls, path) as cache:
        np.testing.assert_array_equal(cache.encode(TEXTS), cls_truth)
    with EmbeddingCache(mean, path) as cache:
        np.testing.assert_array_equal(cache.encode(TEXTS), mean_truth)
        assert len(cache) == 6  # three texts, two models
    with EmbeddingCache(cls, path) as cache:
        np.testing.assert_array_equal(cache.encode(TEXTS), cls_truth)


def test_a_busy_writer_elsewhere_costs_the_cache_not_the_vectors(
    encoder, tmp_path, monkeypatch, caplog
):
    """Another process holding the write lock longer than the busy timeout: reads go on (WAL)
    and the new vectors come back, with a warning, instead of an OSError losing the encode."""
    from semrec.text import cache as cache_module

    monkeypatch.setattr(cache_module, "_BUSY_TIMEOUT", 0.2)
    path = tmp_path / "emb.sqlite"
    cache = EmbeddingCache(encoder, path)
    cache.encode(TEXTS[:2])
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other.execute("BEGIN EXCLUSIVE")
        other.execute("DELETE FROM vectors")  # uncommitted: the cache still sees its rows
        with caplog.at_level("WARNING", logger="semrec"):
            got = cache.encode(TEXTS)
        np.testing.assert_array_equal(got, encoder.encode(TEXTS))
        assert "could not store 1 new vectors" in caplog.text and "locked" in caplog.text
        assert len(cache) == 2  # read while the other holds the lock
        other.execute("ROLLBACK")
        caplog.clear()
        with caplog.at_level("WARNING", logger="semrec"):
            np.testing.assert_array_equal(cache.encode(TEXTS), encoder.encode(TEXTS))
        assert not caplog.text and len(cache) == 3  # stored once the lock is free
    finally:
        other.close()
        cache.close()


def test_a_failed_store_is_rolled_back_and_the_cache_stays_usable(encoder, tmp_path, caplog):
    """Any sqlite error while storing (here: disk full) is a warning; the partial write goes."""
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(encoder, path) as cache:
        cache.encode(TEXTS[:1])
        other = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            # A trigger failing the second row stands in for a disk filling up mid-write.
            other.execute(
                "CREATE TRIGGER full BEFORE INSERT ON vectors WHEN (SELECT COUNT(*) FROM "
                "vectors) >= 2 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
            with caplog.at_level("WARNING", logger="semrec"):
                got = cache.encode(TEXTS)
            np.testing.assert_array_equal(got, encoder.encode(TEXTS))
            assert "could not store 2 new vectors" in caplog.text and "disk is full" in caplog.text
            assert len(cache) == 1
            other.execute("BEGIN IMMEDIATE")  # the cache holds no lock after the failure
            other.execute("DROP TRIGGER full")
            other.execute("COMMIT")
        finally:
            other.close()
        np.testing.assert_array_equal(cache.encode(TEXTS), got)
        assert len(cache) == 3


_OPENER = """
import sys, semrec
enc = semrec.TextEncoder({model!r}, precision="fp32")
print("ready", flush=True)
for line in sys.stdin:  # blocked until the test writes the path to both processes at once
    try:
        with semrec.EmbeddingCache(enc, line.strip()) as cache:
            cache.encode(["the space war"])
        print("ok", flush=True)
    except Exception as exc:
        print(type(exc).__name__, str(exc).replace("\\n", " "), flush=True)
"""


@pytest.mark.slow  # two interpreters loading torch
def test_processes_creating_one_new_cache_at_once_all_succeed(tiny, tmp_path):
    """Creating the tables is one transaction under sqlite's write lock: a second process
    creating the same file waits, then finds the cache made (no 'table meta already exists')."""
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER.format(model=str(tiny))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for trial in range(12):
            for proc in procs:
                proc.stdin.write(f"{tmp_path / f'emb{trial}.sqlite'}\n")
                proc.stdin.flush()
            answers = [proc.stdout.readline().strip() for proc in procs]
            assert answers == ["ok", "ok"], f"trial {trial}: {answers}"
        for proc in procs:
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


def test_a_failure_while_creating_leaves_no_half_made_cache(encoder, tmp_path, monkeypatch):
    """A crash or full disk at the first INSERT of a new cache rolls the creation back: the
    next open makes the cache, instead of refusing the file forever."""
    real = sqlite3.connect

    class Failing(sqlite3.Connection):
        def executemany(self, *args):
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, factory=Failing, **k))
    path = tmp_path / "emb.sqlite"
    with pytest.raises(OSError, match="disk I/O error"):
        EmbeddingCache(encoder, path)
    monkeypatch.setattr(sqlite3, "connect", real)
    with EmbeddingCache(encoder, path) as cache:
        np.testing.assert_array_equal(cache.encode(TEXTS), encoder.encode(TEXTS))
        assert len(cache) == 3


def test_a_refused_sqlite_file_is_left_unchanged(encoder, tmp_path):
    """A file with a lone 'emb' table that is not a version-1 cache: refused, and not altered
    (its adoption is rolled back) nor switched to another journal mode."""
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE emb (id INTEGER, name TEXT)")
        db.execute("INSERT INTO emb VALUES (1, 'x')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(semrec.FormatError, match="not a usable semrec embedding cache"):
        EmbeddingCache(encoder, path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("path", ["", ":memory:"])
def test_temporary_sqlite_databases_are_refused(encoder, path):
    """sqlite opens a temporary database for "" and ":memory:": a cache that stores nothing."""
    with pytest.raises(ValueError, match="give the cache's file"):
        EmbeddingCache(encoder, path)


def _stored(path):
    """(model, text hash) of every stored row, read with sqlite itself."""
    db = sqlite3.connect(path)
    try:
        return set(db.execute("SELECT model, key FROM vectors"))
    finally:
        db.close()


def test_prune_keeps_the_given_texts_under_every_model(encoder, tmp_path):
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(encoder, path) as cache:
        first = cache.encode(TEXTS)
        cache.encode(TEXTS, normalize=False)  # a second model key
        assert len(cache) == 6
        kept = TEXTS[1]
        assert cache.prune(iter([kept, "never stored"])) == 4
        digest = hashlib.sha256(kept.encode()).hexdigest()
        assert {key for _, key in _stored(path)} == {digest}
        assert len(_stored(path)) == 2 and len(cache) == 2
        assert cache.prune([kept]) == 0  # nothing left to remove
    calls = []

    class Counting(TextEncoder):
        def encode(self, texts, *args, **kwargs):
            calls.append(list(texts))
            return super().encode(texts, *args, **kwargs)

    with EmbeddingCache(Counting(encoder.model_path, precision="fp32"), path) as again:
        np.testing.assert_array_equal(again.encode(kept), first[1:2])  # read back
        assert not calls
        np.testing.assert_array_equal(again.encode(TEXTS), first)  # the others encoded anew
        assert calls == [[TEXTS[0], TEXTS[2]]]


def test_clear_removes_every_vector_and_shrinks_the_file(encoder, tmp_path):
    path = tmp_path / "emb.sqlite"
    texts = [f"text number {i}" for i in range(400)]
    with EmbeddingCache(encoder, path) as cache:
        cache.encode(texts)
        full = path.stat().st_size + (tmp_path / "emb.sqlite-wal").stat().st_size
        assert cache.clear() == 400 and len(cache) == 0 and not _stored(path)
        wal = tmp_path / "emb.sqlite-wal"
        assert path.stat().st_size + wal.stat().st_size < full / 4  # shrunk while open
        assert cache.clear() == 0
        cache.encode(texts[:1])  # still usable
        assert len(cache) == 1


def test_prune_is_all_or_nothing_and_checks_its_argument(encoder, tmp_path):
    path = tmp_path / "emb.sqlite"
    cache = EmbeddingCache(encoder, path)
    cache.encode(TEXTS)
    for bad, kind in [(None, TypeError), (5, TypeError), (b"x", TypeError), (["a", 3], TypeError)]:
        with pytest.raises(kind, match="keep"):
            cache.prune(bad)
    assert len(cache) == 3
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        # A trigger failing the second deletion stands in for a disk filling up mid-way.
        other.execute(
            "CREATE TRIGGER full BEFORE DELETE ON vectors WHEN (SELECT COUNT(*) FROM vectors) "
            "<= 2 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        with pytest.raises(OSError, match=r"cannot prune the embedding cache.*disk is full"):
            cache.prune([])
        assert len(cache) == 3  # the first deletion rolled back
        other.execute("DROP TRIGGER full")
    finally:
        other.close()
    assert cache.prune([]) == 3 and len(cache) == 0
    cache.close()
    with pytest.raises(ValueError, match="closed"):
        cache.prune(TEXTS)
    with pytest.raises(ValueError, match="closed"):
        cache.clear()
