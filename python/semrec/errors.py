"""Exceptions specific to semrec (everything else uses the built-in types)."""


class FormatError(ValueError):
    """A saved file or model directory is corrupt, truncated or of an unsupported version."""
