"""Text side of semrec: the C++/LibTorch WordPiece tokenizer, BERT encoder and pooling.

torch is imported before the extension so that its shared libraries (and its OpenMP runtime,
which semrec's kernels share) are loaded first.
"""

from semrec.text.cache import EmbeddingCache
from semrec.text.encoder import TextEncoder
from semrec.text.pooling import mean_pool
from semrec.text.precision import cpu_features
from semrec.text.tfidf import TfidfEncoder

__all__ = ["EmbeddingCache", "TextEncoder", "TfidfEncoder", "cpu_features", "mean_pool"]
