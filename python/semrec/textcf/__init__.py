"""TextCF: collaborative filtering trained on top of language-model embeddings (C++/LibTorch).

``semrec.TextCF`` is :class:`semrec.textcf.model.TextCF`; importing it loads torch.
"""

from semrec.textcf.model import TextCF

__all__ = ["TextCF"]
