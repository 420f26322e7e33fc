"""semrec: semantic recommendation on an OpenMP C++ core.

Language-model embeddings of item and user text, mixed with collaborative filtering.
See docs/getting_started.md for the tour; the public API is re-exported here.
"""

from typing import TYPE_CHECKING, Any

from semrec import datasets, metrics, split
from semrec._threads import get_num_threads, set_num_threads
from semrec.als import ALS
from semrec.ann import HNSWIndex
from semrec.ann_pq import PQIndex
from semrec.baselines import MostPopular, Random
from semrec.coldstart import ColdStartALS
from semrec.content import ContentRecommender
from semrec.errors import FormatError, NotFittedError
from semrec.evaluation import compare, evaluate
from semrec.hybrid import Hybrid
from semrec.knn import ItemKNN, UserKNN
from semrec.rerank import diversify
from semrec.similarity import ItemIndex, item_neighbours, topk

if TYPE_CHECKING:  # loaded on first use (``__getattr__``); typed here for checkers and editors
    from semrec import explain as explain
    from semrec import plot as plot
    from semrec.text import EmbeddingCache, TextEncoder, TfidfEncoder
    from semrec.textcf import TextCF

__version__ = "0.1.0"

__all__ = [
    "ALS",
    "ColdStartALS",
    "ContentRecommender",
    "EmbeddingCache",
    "FormatError",
    "HNSWIndex",
    "Hybrid",
    "ItemIndex",
    "ItemKNN",
    "MostPopular",
    "NotFittedError",
    "PQIndex",
    "Random",
    "TextCF",
    "TextEncoder",
    "TfidfEncoder",
    "UserKNN",
    "__version__",
    "compare",
    "datasets",
    "diversify",
    "evaluate",
    "get_num_threads",
    "item_neighbours",
    "metrics",
    "set_num_threads",
    "split",
    "topk",
]


def __getattr__(name: str) -> Any:
    # The text encoder imports torch: load it on first use, not with the package.
    if name in ("TextEncoder", "TfidfEncoder", "EmbeddingCache"):
        import semrec.text

        return getattr(semrec.text, name)
    if name == "TextCF":  # trained in LibTorch: torch loads on first use, as for TextEncoder
        from semrec.textcf import TextCF

        return TextCF
    if name in ("plot", "explain"):  # semrec.plot imports matplotlib only when drawing
        import importlib

        return importlib.import_module(f"semrec.{name}")
    raise AttributeError(f"module 'semrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The names loaded on first use, offered by tab completion before they are loaded.
    return sorted({*globals(), *__all__, "explain", "plot"})
