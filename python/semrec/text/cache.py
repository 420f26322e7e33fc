"""``EmbeddingCache``: on-disk store of text embeddings keyed by model identity and text hash."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable

import numpy as np

from semrec.text.encoder import TextEncoder, _checked_texts


class EmbeddingCache:
    """Re-encoding a catalogue costs nothing: vectors are stored in a SQLite file.

    Keys are (model identity, SHA-256 of the text, normalize): a different model, precision
    or weights file never returns a stale vector.

    Parameters
    ----------
    encoder : TextEncoder
    path : str or path-like
        SQLite file (created when absent).

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
        self.encoder = encoder
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, vec BLOB, "
            "PRIMARY KEY (model, key))"
        )
        self._db.commit()

    def encode(self, texts: str | Iterable[str], **kwargs) -> np.ndarray:
        """Like ``TextEncoder.encode``; only texts not yet stored are encoded."""
        texts = list(_checked_texts(texts))
        if not texts:
            raise ValueError("texts is empty; pass at least one string")
        normalize = bool(kwargs.get("normalize", True))
        model = f"{self.encoder.identity}:{int(normalize)}"
        keys = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest() for t in texts]
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT key, vec FROM emb WHERE model = ? AND key IN ({marks})", [model, *part]
            )
            found.update(rows)
        dim = self.encoder.dim
        out = np.empty((len(texts), dim), dtype=np.float32)
        missing = {}
        for i, key in enumerate(keys):
            if key in found:
                out[i] = np.frombuffer(found[key], dtype=np.float32)
            else:
                missing.setdefault(key, []).append(i)
        if missing:
            first = [rows[0] for rows in missing.values()]
            vectors = self.encoder.encode([texts[i] for i in first], **kwargs)
            for rows, vec in zip(missing.values(), vectors, strict=True):
                out[rows] = vec
            self._db.executemany(
                "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                [(model, key, vec.tobytes()) for key, vec in zip(missing, vectors, strict=True)],
            )
            self._db.commit()
        return out

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        self._db.close()
