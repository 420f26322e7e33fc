"""Word weights (TF-IDF) of texts, beside a language model's embeddings.

A sentence embedding says what a text is about and blurs the names in it: the director, the
cast, the franchise, the place. Those names are often what decides who likes a brand-new item,
and a bag of words keeps them. On MovieLens-100k, ``ColdStartALS`` mapping ``[MiniLM embedding,
TF-IDF]`` instead of the embedding alone recalls 6% more cold items on the cold-item split and
4-11% more on six validation splits (benchmarks/README.md, "TextCF", session 22).
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _persist as persist
from semrec import _validation as check
from semrec.text.encoder import checked_item_texts, checked_texts

# Words of two or more letters or digits, as scikit-learn's TfidfVectorizer reads them.
_WORD = re.compile(r"(?u)\b\w\w+\b")
_FORMAT_NAME = "semrec.TfidfEncoder"
_FORMAT_VERSION = 1


class TfidfEncoder:
    """Texts as TF-IDF word vectors, optionally appended to an encoder's embeddings.

    ``fit`` learns the vocabulary and each word's inverse document frequency from a corpus (the
    catalogue's item texts); ``encode`` then gives every text the row ``[encoder.encode(text),
    weight * tfidf(text)]`` as a dense float32 vector, so it goes wherever item embeddings do
    (``ColdStartALS``, ``TextCF``, ``ContentRecommender``), and as the ``encoder`` of a model
    that takes one (``TextCF``, ``ContentRecommender``) it embeds the texts given to
    ``add_items`` the same way (``ColdStartALS.add_items`` takes ``encode(texts)``).

    The TF-IDF part follows scikit-learn's ``TfidfVectorizer`` (``smooth_idf``, ``norm="l2"``,
    its default token pattern): a word is a run of two or more letters or digits, lowercased;
    ``idf = ln((1 + n) / (1 + df)) + 1`` over the ``n`` fitted texts; the term frequency is
    ``1 + ln(count)`` (``sublinear_tf``) or the count; rows have unit L2 norm (zero when no
    word of the text is in the vocabulary).

    Parameters
    ----------
    encoder : object with ``encode(texts)``, optional
        Its vectors come first in each row, e.g. ``semrec.TextEncoder()``. None: TF-IDF only.
    weight : float, default 1.0
        Scale of the TF-IDF part. Both parts' rows have unit norm (the encoder's when it
        normalises, as ``TextEncoder`` does), so 1 weighs them alike.
    min_df : int, default 2
        Keep a word only when at least this many fitted texts hold it: a word of one text says
        nothing about another.
    max_features : int or None, default 4096
        Keep at most this many words, the most frequent over the corpus (ties by the word).
        The vectors are dense, so this bounds their width. None: every word.
    ngrams : int, default 1
        1: words; 2: words and pairs of adjacent words.
    sublinear_tf : bool, default True
        ``1 + ln(count)`` instead of the count.

    Attributes
    ----------
    vocabulary_ : list of str
        The ``n_words`` kept words, sorted; word ``vocabulary_[j]`` is TF-IDF column ``j``.
    idf_ : ndarray of float64, shape (n_words,)

    Examples
    --------
    >>> from semrec.text import TfidfEncoder
    >>> texts = ["a film by Jane Roe", "a film by John Doe", "a play by Jane Roe"]
    >>> tfidf = TfidfEncoder(min_df=2).fit(texts)
    >>> tfidf.vocabulary_
    ['by', 'film', 'jane', 'roe']
    >>> tfidf.encode(["Jane Roe's new film"]).round(3)
    array([[0.   , 0.577, 0.577, 0.577]], dtype=float32)
    """

    def __init__(
        self,
        encoder: Any = None,
        *,
        weight: float = 1.0,
        min_df: int = 2,
        max_features: int | None = 4096,
        ngrams: int = 1,
        sublinear_tf: bool = True,
    ) -> None:
        self.encoder = encoder
        self.weight = weight
        self.min_df = min_df
        self.max_features = max_features
        self.ngrams = ngrams
        self.sublinear_tf = sublinear_tf

    def __repr__(self) -> str:
        words = f"{len(self.vocabulary_)} words" if hasattr(self, "vocabulary_") else "not fitted"
        return (
            f"TfidfEncoder(encoder={self.encoder!r}, weight={self.weight!r}, "
            f"min_df={self.min_df!r}, max_features={self.max_features!r}, "
            f"ngrams={self.ngrams!r}, sublinear_tf={self.sublinear_tf!r}) [{words}]"
        )

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> TfidfEncoder:
        """Learn the vocabulary and the inverse document frequencies of ``texts``.

        Parameters
        ----------
        texts : iterable of str
            The corpus, e.g. every item's text (``dataset.item_text``). Fitting reads no
            interaction, so the texts of items without any may be in it.

        Returns
        -------
        self

        Examples
        --------
        >>> from semrec.text import TfidfEncoder
        >>> TfidfEncoder(min_df=1, ngrams=2).fit(["new york", "york"]).vocabulary_
        ['new', 'new york', 'york']
        """
        self._check_params()
        documents = [self._terms(t) for t in checked_texts(texts, "texts")]
        if not documents:
            raise ValueError("texts is empty; fit needs at least one text")
        df: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for terms in documents:
            df.update(set(terms))
            total.update(terms)
        kept = [w for w, n in df.items() if n >= self.min_df]
        if self.max_features is not None and len(kept) > self.max_features:
            kept = sorted(kept, key=lambda w: (-total[w], w))[: self.max_features]
        if not kept:
            raise ValueError(
                f"no word occurs in min_df={self.min_df} or more of the {len(documents)} texts "
                "(a word is two or more letters or digits); lower min_df or fit on more texts"
            )
        vocabulary = sorted(kept)
        counts = np.array([df[w] for w in vocabulary], dtype=np.float64)
        self._set_vocabulary(vocabulary, np.log((1.0 + len(documents)) / (1.0 + counts)) + 1.0)
        return self

    # -- encoding --------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Width of :meth:`encode`'s rows: the encoder's ``dim`` (if any) plus the vocabulary."""
        self._check_fitted()
        if self.encoder is None:
            return len(self.vocabulary_)
        if not hasattr(self.encoder, "dim"):
            raise AttributeError(f"the encoder ({type(self.encoder).__name__}) has no dim")
        return int(self.encoder.dim) + len(self.vocabulary_)

    def transform(self, texts: Iterable[str]) -> sp.csr_array:
        """The TF-IDF part alone (unweighted), sparse.

        Parameters
        ----------
        texts : str or iterable of str

        Returns
        -------
        scipy.sparse.csr_array of float32, shape (n_texts, n_words)
            Rows of unit L2 norm, or zero when no word of the text is in the vocabulary.

        Examples
        --------
        >>> from semrec.text import TfidfEncoder
        >>> tfidf = TfidfEncoder(min_df=1).fit(["red apple", "green apple"])
        >>> tfidf.transform("apple pie").toarray()
        array([[1., 0., 0.]], dtype=float32)
        """
        self._check_fitted()
        # Python only splits and counts; the weights and norms are computed for all rows at once.
        indptr, columns, counts = [0], [], []
        for text in checked_texts(texts, "texts"):
            words = Counter(self._terms(text))
            for word, n in words.items():
                j = self._columns.get(word)
                if j is not None:
                    columns.append(j)
                    counts.append(n)
            indptr.append(len(columns))
        n_rows = len(indptr) - 1
        index = np.int32 if len(columns) < np.iinfo(np.int32).max else np.int64
        cols = np.asarray(columns, dtype=index)
        tf = np.asarray(counts, dtype=np.float64)
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        values = tf * self.idf_[cols]
        rows = np.repeat(np.arange(n_rows), np.diff(indptr))
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_rows))
        values /= np.where(norms > 0, norms, 1.0)[rows]
        matrix = sp.csr_array(
            (values.astype(np.float32), cols, np.asarray(indptr, dtype=index)),
            shape=(n_rows, len(self.vocabulary_)),
        )
        matrix.sort_indices()
        return matrix

    def encode(self, texts: Iterable[str], **encode_kwargs: Any) -> np.ndarray:
        """Dense rows ``[encoder.encode(text), weight * tfidf(text)]``.

        Parameters
        ----------
        texts : str or iterable of str
        **encode_kwargs
            Passed to the encoder's ``encode`` (``batch_size``, ``show_progress`` ...).

        Returns
        -------
        ndarray of float32, shape (n_texts, dim)

        Examples
        --------
        >>> from semrec.text import TfidfEncoder
        >>> TfidfEncoder(weight=2.0, min_df=1).fit(["red apple", "green apple"]).encode(
        ...     ["red"]).tolist()
        [[0.0, 0.0, 2.0]]
        """
        self._check_fitted()
        texts = list(checked_texts(texts, "texts"))
        weight = check.number(self.weight, "weight", minimum=0, maximum=1e30)  # float32 output
        words = self.transform(texts)
        if self.encoder is None:
            dense = np.empty((len(texts), 0), dtype=np.float32)
        else:  # one row per text, finite: the checks of every model's add_items(texts)
            dense = check.encoded(self.encoder, texts, None, **encode_kwargs)
        # One output array, the sparse words scattered into it: no dense copy of them first.
        out = np.zeros((len(texts), dense.shape[1] + words.shape[1]), dtype=np.float32)
        out[:, : dense.shape[1]] = dense
        coo = words.tocoo()
        out[coo.row, dense.shape[1] + coo.col] = coo.data * np.float32(weight)
        return out

    def encode_items(self, dataset: Any, **encode_kwargs: Any) -> Any:
        """Encode a dataset's item text; the vectors keep the items' ids.

        Parameters
        ----------
        dataset : semrec.datasets.Dataset
            With item text (``dataset.item_text``).
        **encode_kwargs
            Passed to the encoder's ``encode``.

        Returns
        -------
        semrec.datasets.ItemEmbeddings

        Examples
        --------
        >>> import pandas as pd
        >>> from semrec.datasets import Dataset
        >>> from semrec.text import TfidfEncoder
        >>> events = pd.DataFrame({"user": [1, 1], "item": ["x", "y"]})
        >>> items = pd.DataFrame({"item": ["x", "y"], "text": ["space opera", "space comedy"]})
        >>> data = Dataset.from_pandas(events, "user", "item", items=items)
        >>> emb = TfidfEncoder(min_df=1).fit(data.item_text).encode_items(data)
        >>> emb.shape, emb.item_ids.tolist()
        ((2, 3), ['x', 'y'])
        """
        from semrec.datasets import Dataset, ItemEmbeddings

        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a semrec.datasets.Dataset, got {type(dataset)}")
        texts = checked_item_texts(dataset)
        return ItemEmbeddings(self.encode(texts, **encode_kwargs), dataset.item_ids)

    # -- saving ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the vocabulary, the idf and the parameters (not the encoder), atomically.

        Examples
        --------
        >>> import os, tempfile
        >>> from semrec.text import TfidfEncoder
        >>> tfidf = TfidfEncoder(min_df=1).fit(["red apple", "green apple"])
        >>> path = os.path.join(tempfile.mkdtemp(), "words.npz")
        >>> tfidf.save(path)
        >>> TfidfEncoder.load(path).vocabulary_
        ['apple', 'green', 'red']
        """
        self._check_fitted()
        params = dict(weight=self.weight, min_df=self.min_df, max_features=self.max_features,
                      ngrams=self.ngrams, sublinear_tf=self.sublinear_tf)  # fmt: skip
        meta = dict(format=_FORMAT_NAME, version=_FORMAT_VERSION, params=params,
                    vocabulary=self.vocabulary_)  # fmt: skip
        persist.write(path, meta, {"idf": self.idf_})

    @classmethod
    def load(cls, path: str | os.PathLike[str], encoder: Any = None) -> TfidfEncoder:
        """A TfidfEncoder saved by :meth:`save`; ``encoder`` is the one it was used with.

        Raises ``FileNotFoundError`` for a missing file, :class:`semrec.FormatError` for a
        damaged one or one of another kind. See :meth:`save` for an example.
        """
        from semrec.errors import FormatError

        saved = persist.read(path, _FORMAT_NAME, _FORMAT_VERSION)
        params = saved.params(("weight", "min_df", "max_features", "ngrams", "sublinear_tf"))
        vocabulary = saved.value("vocabulary", list)
        if not vocabulary or not all(isinstance(w, str) and w for w in vocabulary):
            raise saved.error("vocabulary", "must be a non-empty list of words")
        if sorted(set(vocabulary)) != vocabulary:
            raise saved.error("vocabulary", "must be sorted and free of repeats")
        idf = saved.array("idf", np.float64, (len(vocabulary),), minimum=1.0)
        _check_encoder(encoder)  # the argument, before the file is blamed for anything
        model = cls(encoder, **params)
        try:
            model._check_params()
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{path} is corrupt: params {exc}") from None
        model._set_vocabulary(list(vocabulary), idf)
        return model

    # -- helpers ---------------------------------------------------------------------------------
    def _set_vocabulary(self, vocabulary: list[str], idf: np.ndarray) -> None:
        """The fitted state: the sorted words, their idf, and each word's column."""
        self.vocabulary_, self.idf_ = vocabulary, idf
        self._columns = {w: j for j, w in enumerate(vocabulary)}
        self._fitted_ngrams = self.ngrams  # the vocabulary's terms: words, or words and pairs

    def _terms(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        if self.ngrams == 2:
            words = [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]
        return words

    def _check_params(self) -> None:
        check.number(self.weight, "weight", minimum=0, maximum=1e30)  # float32 output
        check.positive_int(self.min_df, "min_df")
        if self.max_features is not None:
            check.positive_int(self.max_features, "max_features")
        if self.ngrams not in (1, 2) or isinstance(self.ngrams, bool):
            raise ValueError(
                f"ngrams must be 1 (words) or 2 (words and pairs), got {self.ngrams!r}"
            )
        if not isinstance(self.sublinear_tf, bool | np.bool_):
            raise TypeError(f"sublinear_tf must be True or False, got {self.sublinear_tf!r}")
        _check_encoder(self.encoder)

    def _check_fitted(self) -> None:
        """Fitted, and the parameters still valid: one set after fit (``ngrams = 3``) must
        not encode as something else, nor save a file that load refuses."""
        if not hasattr(self, "vocabulary_"):
            from semrec.errors import NotFittedError

            raise NotFittedError("this TfidfEncoder is not fitted; call fit(texts) first")
        self._check_params()
        fitted = getattr(self, "_fitted_ngrams", self.ngrams)  # (pickled before it was kept)
        if self.ngrams != fitted:  # 2 -> 1 would zero every pair's column
            raise ValueError(
                f"ngrams is {self.ngrams!r} but the vocabulary was fitted with ngrams="
                f"{fitted}; set it back or fit again"
            )


def _check_encoder(encoder: Any) -> None:
    text_like = isinstance(encoder, str | bytes | os.PathLike)  # str.encode is no encoder
    if text_like or (encoder is not None and not callable(getattr(encoder, "encode", None))):
        raise TypeError(
            "encoder must be None or an object with an encode(texts) method (e.g. "
            f"semrec.TextEncoder()), got {type(encoder).__name__}"
        )
