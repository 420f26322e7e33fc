"""Exceptions specific to semrec (everything else uses the built-in types)."""


class FormatError(ValueError):
    """A saved file or model directory is corrupt, truncated or of an unsupported version.

    Examples
    --------
    >>> import os, tempfile, semrec
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a model")
    >>> try:
    ...     semrec.ALS.load(path)
    ... except semrec.FormatError as exc:
    ...     print("refused:", "not a readable semrec.ALS file" in str(exc))
    refused: True
    """


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit``.

    Also an ``AttributeError``, so ``hasattr(model, "item_factors_")`` is simply ``False`` on
    an unfitted model, as for any estimator whose learned attributes do not exist yet.

    Examples
    --------
    >>> import semrec
    >>> hasattr(semrec.ALS(), "item_factors_")
    False
    >>> try:
    ...     semrec.ALS().recommend(0)
    ... except semrec.NotFittedError as exc:
    ...     print(exc)
    this ALS is not fitted yet; call fit(interactions) first
    """
