"""The text encoder of the models that take text (ContentRecommender, TextCF)."""

from __future__ import annotations

from typing import Any


class EncodesText:
    """Mixin for a model whose ``encoder`` hyperparameter turns texts into item vectors.

    ``encoder`` is any object with ``encode(texts) -> (n, dim) array``, or None for the bundled
    :class:`semrec.TextEncoder`, made on first use (so torch loads only once text is encoded)
    and kept by the model. Neither is saved: pass the encoder again after ``load``.
    """

    encoder: Any
    num_threads: int | None

    def _text_encoder(self) -> Any:
        if self.encoder is not None:
            return self.encoder
        if getattr(self, "_default_encoder", None) is None:
            from semrec.text import TextEncoder

            self._default_encoder = TextEncoder(num_threads=self.num_threads)
        return self._default_encoder
