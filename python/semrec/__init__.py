"""semrec: semantic recommendation on an OpenMP C++ core.

Language-model embeddings of item and user text, mixed with collaborative filtering.
See the README for the tour; the public API is re-exported here.
"""

from semrec._threads import get_num_threads, set_num_threads
from semrec.als import ALS
from semrec.errors import FormatError
from semrec.similarity import item_neighbours, topk

__version__ = "0.1.0"

__all__ = [
    "ALS",
    "FormatError",
    "__version__",
    "get_num_threads",
    "item_neighbours",
    "set_num_threads",
    "topk",
]
