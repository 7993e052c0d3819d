"""The exceptions csrnet raises: one base class, one subclass per kind of problem.

Callers branch on the type, never on the message (the CLI prints ``str(e)`` as one line and
maps every :class:`CsrnetError` to an exit code; the web app maps :class:`TooLargeError` to
HTTP 413; the batch counts :class:`OutputExistsError` as "skipped").
"""

from __future__ import annotations

__all__ = [
    "CsrnetError",
    "InvalidArgumentError",
    "PhotoError",
    "TooLargeError",
    "UnsupportedFormatError",
    "OutputExistsError",
    "ModelError",
    "MissingDependencyError",
]


class CsrnetError(Exception):
    """A problem with the user's input (file, checkpoint, argument), explained in one line."""


class InvalidArgumentError(CsrnetError, ValueError):
    """A parameter out of its range or of the wrong type (strength, lattice size, image shape ...)."""


class PhotoError(CsrnetError):
    """A photo file that cannot be read: missing, empty, truncated, corrupt, not an image."""


class TooLargeError(PhotoError):
    """A photo over the pixel limit, refused from its header before decoding (decompression bombs)."""


class UnsupportedFormatError(PhotoError):
    """A file format or pixel layout csrnet cannot read or write."""


class OutputExistsError(CsrnetError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


class ModelError(CsrnetError):
    """Weights that cannot be used: unknown name, unreadable or unsafe file, wrong tensors, unknown architecture."""


class MissingDependencyError(CsrnetError, ImportError):
    """An optional package needed for this feature is not installed (the message says which extra)."""
