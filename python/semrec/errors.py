"""Exceptions specific to semrec (everything else uses the built-in types)."""


class FormatError(ValueError):
    """A saved file or model directory is corrupt, truncated or of an unsupported version."""


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit``.

    Also an ``AttributeError``, so ``hasattr(model, "item_factors_")`` is simply ``False`` on
    an unfitted model, as for any estimator whose learned attributes do not exist yet.
    """
