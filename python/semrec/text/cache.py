"""``EmbeddingCache``: on-disk store of text embeddings keyed by model identity and text hash."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator

import numpy as np

from semrec._threads import resolve_num_threads
from semrec._validation import flag, positive_int
from semrec.errors import FormatError
from semrec.text.encoder import TextEncoder, checked_texts

_FORMAT = "semrec-embedding-cache"
_VERSION = "2"
# sqlite messages that say the file cannot be used (rather than that it is corrupt).
_ACCESS = ("unable to open", "readonly", "locked", "disk i/o", "permission", "disk is full")
# Seconds a call waits for another process's write (sqlite's default, 5, is shorter than a
# large catalogue's write).
_BUSY_TIMEOUT = 60.0
_log = logging.getLogger("semrec")


def _checksum(model: str, key: str, vec: bytes) -> bytes:
    """Ties a row's vector to its key: sqlite stores pages without checksums of its own."""
    return hashlib.blake2b(
        b"%s\0%s\0%s" % (model.encode(), key.encode(), vec), digest_size=16
    ).digest()


class EmbeddingCache:
    """Re-encoding a catalogue costs nothing: vectors are stored in a SQLite file.

    Keys are (model identity, SHA-256 of the text, normalize): a different model, precision
    or weights file never returns a stale vector. Each stored vector carries a checksum, so a
    damaged file raises :class:`semrec.FormatError` instead of returning a wrong vector, and
    each ``encode`` writes its new vectors in one transaction: a crash mid-write leaves the
    cache as it was before that call (sqlite's journal rolls the partial write back).

    Several processes may share one file: it is opened in sqlite's WAL mode where the
    filesystem allows it (readers then never wait for a writer), a write waits up to 60 s for
    another one, and a write that still fails is logged as a warning on the ``"semrec"``
    logger while ``encode`` returns its vectors all the same (they are just not stored).

    Parameters
    ----------
    encoder : TextEncoder
    path : str or path-like
        SQLite file (created when absent; its directory must exist). Not ``""`` nor
        ``":memory:"`` (sqlite's temporary databases, which would store nothing).

    Examples
    --------
    >>> import tempfile, os
    >>> from semrec import EmbeddingCache, TextEncoder
    >>> cache = EmbeddingCache(TextEncoder(), os.path.join(tempfile.mkdtemp(), "emb.sqlite"))
    >>> cache.encode(["a space opera"]).shape
    (1, 384)
    """

    def __init__(self, encoder: TextEncoder, path: str | os.PathLike) -> None:
        if not isinstance(encoder, TextEncoder):
            raise TypeError(f"encoder must be a TextEncoder, got {type(encoder).__name__}")
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
        self.encoder = encoder
        self.path = os.fspath(path)
        if self.path in ("", ":memory:"):  # sqlite would open a temporary database
            raise ValueError(
                f"path is {'empty' if not self.path else repr(self.path)}; give the cache's "
                "file, e.g. 'emb.sqlite' (sqlite would use a temporary database, lost on close)"
            )
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"cannot create the embedding cache {self.path!r}: directory {directory!r} does "
                "not exist"
            )
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"embedding cache path {self.path!r} is a directory")
        self._db: sqlite3.Connection | None = None
        # One connection shared by every thread that encodes through this cache (a thread pool
        # serving requests), each access under the lock: sqlite's own check would refuse them.
        self._lock = threading.Lock()
        try:
            with self._errors("open"):
                # Autocommit: _open and _store begin and end their own transactions.
                self._db = sqlite3.connect(
                    self.path, timeout=_BUSY_TIMEOUT, isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
                self._open()
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """sqlite errors as the exception a user can act on, naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            message = str(exc)
            if any(s in message.lower() for s in _ACCESS):
                raise OSError(
                    f"cannot {action} the embedding cache {self.path!r}: {message}"
                ) from None
            raise FormatError(
                f"{self.path} is not a usable semrec embedding cache ({message}); delete it to "
                "start a new one"
            ) from None

    def _tables(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (the write lock, waiting for another writer) ... COMMIT, or ROLLBACK
        on any error: all or nothing, even when interrupted."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise

    def _open(self) -> None:
        db = self._db
        tables = self._tables()
        if not tables or tables == {"emb"}:
            # A new cache, or a version-1 cache (no checksums) adopted, in one transaction that
            # also holds off another process creating the same file: it re-reads the schema.
            with self._transaction():
                tables = self._tables()
                if not tables or tables == {"emb"}:
                    self._create(migrate=bool(tables))
            tables = self._tables()
        meta = dict(db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if meta.get("format") != _FORMAT or "vectors" not in tables:
            raise FormatError(f"{self.path} is an sqlite file but not a semrec embedding cache")
        if meta.get("version") != _VERSION:
            raise FormatError(
                f"{self.path}: embedding cache format version {meta.get('version')!r}; this "
                f"semrec reads version {_VERSION} (delete the file to rebuild it)"
            )
        # Only on a file known to be a cache (WAL is a lasting property of the file): readers
        # then never wait for a writer. Where the filesystem refuses it, the default journal.
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA journal_mode=WAL")

    def _create(self, migrate: bool) -> None:
        db = self._db
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)", [("format", _FORMAT), ("version", _VERSION)]
        )
        db.execute(
            "CREATE TABLE vectors (model TEXT, key TEXT, vec BLOB, checksum BLOB, "
            "PRIMARY KEY (model, key))"
        )
        if migrate:
            rows = db.execute("SELECT model, key, vec FROM emb").fetchall()
            db.executemany(
                "INSERT INTO vectors VALUES (?, ?, ?, ?)",
                [(m, k, v, _checksum(m, k, v)) for m, k, v in rows],
            )
            db.execute("DROP TABLE emb")

    def _store(self, rows: list[tuple[str, str, bytes]]) -> None:
        """Store the rows, all or none; a failure (another process writing for longer than
        the busy timeout, a full disk) is a warning: the caller has its vectors anyway."""
        rows = [(m, k, v, _checksum(m, k, v)) for m, k, v in rows]
        with self._lock:
            try:
                with self._transaction() as db:
                    db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
            except sqlite3.Error as exc:
                _log.warning(
                    "could not store %d new vectors in the embedding cache %r (%s); they are "
                    "returned but not cached",
                    len(rows), self.path, exc,
                )  # fmt: skip

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError(f"the embedding cache {self.path!r} is closed")
        return self._db

    def encode(
        self,
        texts: str | Iterable[str],
        *,
        batch_size: int = 32,
        show_progress: bool = False,
        normalize: bool = True,
        num_threads: int | None = None,
    ) -> np.ndarray:
        """Like ``TextEncoder.encode`` (same arguments); only texts not yet stored are encoded.

        Every argument is checked even when all the texts are stored, so a call that works on
        a warm cache works on a cold one too.
        """
        self._connection()  # closed: refused before any work
        texts = list(checked_texts(texts))
        if not texts:
            raise ValueError("texts is empty; pass at least one string")
        options = {
            "batch_size": positive_int(batch_size, "batch_size"),
            "show_progress": flag(show_progress, "show_progress"),
            "normalize": flag(normalize, "normalize"),
            "num_threads": None if num_threads is None else resolve_num_threads(num_threads),
        }
        model = f"{self.encoder.identity}:{int(options['normalize'])}"
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        dim = self.encoder.dim
        with self._lock, self._errors("read"):
            db = self._connection()
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT key, vec, checksum FROM vectors WHERE model = ? AND key IN ({marks})",
                    [model, *part],
                )
                for key, vec, checksum in rows:
                    if (
                        not isinstance(vec, bytes)
                        or len(vec) != 4 * dim
                        or checksum != _checksum(model, str(key), vec)
                    ):
                        raise FormatError(
                            f"{self.path}: the stored vector of text hash {str(key)[:16]}... is "
                            "damaged (checksum mismatch); delete the file to rebuild the cache"
                        )
                    found[key] = vec
        out = np.empty((len(texts), dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in found:
                out[i] = np.frombuffer(found[key], dtype=np.float32)
            else:
                missing.setdefault(key, []).append(i)
        if missing:
            first = [rows[0] for rows in missing.values()]
            vectors = self.encoder.encode([texts[i] for i in first], **options)
            for rows, vec in zip(missing.values(), vectors, strict=True):
                out[rows] = vec
            self._store(
                [(model, key, vec.tobytes()) for key, vec in zip(missing, vectors, strict=True)]
            )
        return out

    def prune(self, keep: str | Iterable[str]) -> int:
        """Drop every stored vector whose text is not in ``keep``, then shrink the file.

        ``keep`` is a catalogue's texts (a str or an iterable of str; empty keeps nothing).
        Their vectors stay under every model and ``normalize`` setting; all the others go, the
        other models' too: the cache otherwise grows with every catalogue it has seen. All or
        nothing, like a write, and safe while other processes use the file.

        Returns
        -------
        int
            The number of vectors removed.
        """
        self._connection()  # closed: refused before reading keep
        kept = {hashlib.sha256(t.encode("utf-8")).hexdigest() for t in checked_texts(keep, "keep")}
        return self._delete(kept)

    def clear(self) -> int:
        """Drop every stored vector (every model's) and shrink the file; returns their number."""
        return self._delete(set())

    def _delete(self, kept: set[str]) -> int:
        """Every vector whose text hash is not in ``kept`` removed, then the file compacted."""
        with self._lock, self._errors("prune"):
            with self._transaction() as db:
                before = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
                db.execute("CREATE TEMP TABLE IF NOT EXISTS kept (key TEXT PRIMARY KEY)")
                db.execute("DELETE FROM kept")
                db.executemany("INSERT INTO kept VALUES (?)", ((k,) for k in kept))
                db.execute("DELETE FROM vectors WHERE key NOT IN (SELECT key FROM kept)")
                db.execute("DELETE FROM kept")
                removed = before - db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
            if removed:  # the freed pages returned to the filesystem (outside a transaction)
                try:
                    db.execute("VACUUM")
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM wrote the WAL full
                except sqlite3.Error as exc:  # e.g. another process reading: removed all the same
                    _log.warning(
                        "removed %d vectors from the embedding cache %r but could not shrink "
                        "the file (%s); a later prune or clear will",
                        removed, self.path, exc,
                    )  # fmt: skip
        return int(removed)

    def __len__(self) -> int:
        with self._lock, self._errors("read"):
            return int(self._connection().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        """Close the file (later calls raise ValueError)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
