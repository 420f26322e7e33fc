"""Text side of semrec: LibTorch kernels (and, later, the tokenizer and encoder).

torch is imported before the extension so that its shared libraries (and its OpenMP runtime,
which semrec's kernels share) are loaded first.
"""

from semrec.text.pooling import mean_pool

__all__ = ["mean_pool"]
