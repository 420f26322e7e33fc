"""The text encoder of the models that take text (ContentRecommender, TextCF)."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np


def _array_texts(items: Any, name: str = "texts") -> list | None:
    """The elements of a NumPy array of str (or of objects) or a pandas Series / Index, as a
    list; None for anything else (a list, a tuple, a numeric array, ...)."""
    pandas = sys.modules.get("pandas")  # loaded already if items is one of its objects
    if pandas is not None and isinstance(items, pandas.Series | pandas.Index):
        items = items.to_numpy(dtype=object)
    if not isinstance(items, np.ndarray) or items.dtype.kind not in "UO":
        return None
    if items.ndim != 1:
        if items.dtype.kind == "U":
            raise ValueError(
                f"{name} must be a 1-D array of strings, got an array of shape {items.shape}"
            )
        return None  # an object matrix: embeddings, checked as such
    return items.tolist()  # Python str, not numpy.str_


def holds_text(items: Any) -> bool:
    """Whether ``add_items`` was given texts (a str; a list, tuple, object array or pandas
    Series with a str in it; or a NumPy str array) rather than embeddings; an empty list or
    tuple, which is neither, is a ValueError."""
    if isinstance(items, str):
        return True
    if isinstance(items, list | tuple) and not items:  # as an array: a row of no columns
        raise ValueError("items is empty; pass the new items' texts or embeddings")
    if isinstance(items, np.ndarray) and items.dtype.kind == "U":
        return True  # even empty: texts() then says so
    listed = items if isinstance(items, list | tuple) else _array_texts(items)
    return listed is not None and any(isinstance(t, str) for t in listed)


def texts(value: Any, name: str) -> list[str]:
    """``value`` (one string, or a list, tuple, 1-D NumPy array or pandas Series of them) as a
    non-empty list of strings."""
    listed = [value] if isinstance(value, str) else value
    if not isinstance(listed, list | tuple):
        listed = _array_texts(value, name)
    if not isinstance(listed, list | tuple):
        raise TypeError(
            f"{name} must be a string or a list, array or pandas Series of strings, got "
            f"{type(value).__name__}"
        )
    bad = next((j for j, t in enumerate(listed) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(
            f"{name}[{bad}] is {listed[bad]!r} ({type(listed[bad]).__name__}), not a string; "
            f"{name} must be a string or a list of strings (use '' for an item without text)"
        )
    if not listed:
        raise ValueError(f"{name} is empty; pass at least one string")
    return list(listed)


class EncodesText:
    """Mixin for a model whose ``encoder`` hyperparameter turns texts into item vectors.

    ``encoder`` is any object with ``encode(texts) -> (n, dim) array``, or None for the bundled
    :class:`semrec.TextEncoder`, made on first use (so torch loads only once text is encoded)
    and kept by the model. The encoder is not saved: pass it again after ``load``. What it was
    is saved (:meth:`_encoder_record`), so that a loaded model whose items another encoder
    embedded (a fine-tuned one, or one of your own) refuses to encode texts with the bundled
    model instead: its vectors would have the same width and silently mean something else.
    """

    encoder: Any
    num_threads: int | None

    def _text_encoder(self) -> Any:
        if self.encoder is not None:
            return self.encoder
        if getattr(self, "_default_encoder", None) is None:
            from semrec.text import TextEncoder

            bundled = TextEncoder(num_threads=self.num_threads)
            _check_fitted_with(getattr(self, "_fitted_encoder", None), bundled)
            self._default_encoder = bundled
        return self._default_encoder

    def _encoder_record(self) -> dict[str, str]:
        """What encodes this model's texts, as saved with it: the bundled model (``encoder``
        None), a :class:`semrec.TextEncoder`'s model files (their fingerprint and folder), or
        another encoder's type."""
        encoder = self.encoder
        if encoder is None:  # loaded and not given again: what the file said, saved again
            remembered = getattr(self, "_fitted_encoder", None)
            return dict(remembered) if remembered is not None else {"source": "bundled"}
        identity, path = getattr(encoder, "identity", None), getattr(encoder, "model_path", None)
        if isinstance(identity, str) and path is not None:  # a TextEncoder
            folder = os.path.abspath(path)  # the message at load must hold wherever it runs
            return {"source": "model", "model": identity.split(":")[0], "path": folder}
        return {"source": "custom", "type": type(encoder).__name__}

    def _remember_encoder(self, meta: dict[str, Any]) -> None:
        """After ``load``: what encoded the texts before (files written before the record
        existed have none, and are trusted)."""
        record = meta.get("encoder")
        self._fitted_encoder = record if isinstance(record, dict) else None


def _check_fitted_with(record: dict[str, Any] | None, bundled: Any) -> None:
    """Refuse the bundled encoder for a loaded model whose texts another encoder embedded."""
    if record is None or record.get("source") == "bundled":
        return
    if record.get("source") == "model":
        if record.get("model") == bundled.identity.split(":")[0]:
            return  # the bundled model's own files, wherever they were
        raise ValueError(
            f"this model's texts were encoded by the TextEncoder of {record.get('path')!r}, not "
            "the bundled model; pass it again after load: "
            f"model.encoder = semrec.TextEncoder({record.get('path')!r})"
        )
    raise ValueError(
        f"this model's texts were encoded by a {record.get('type')} of your own, not the "
        "bundled model; pass it again after load: model.encoder = <that encoder>"
    )
