"""csrnet's mark on its outputs: the EXIF ``Software`` tag names csrnet and the settings used.

Every file ``csrnet enhance`` (or ``lut --apply``, or the web app) writes carries
``Software = "csrnet <version> (model auto@1a2b3c4d, strength 1, lattice)"`` in its EXIF — a tag
every format csrnet writes keeps (JPEG APP1, PNG eXIf, TIFF IFD0, WebP EXIF) and every photo tool
shows. It lets the tool recognise its own outputs (so a second run never retouches them again,
whatever their name or folder) and tell an existing output made with other settings from one made
with these.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["SOFTWARE_TAG", "is_mark", "mark_exif", "read_mark", "settings_text"]

SOFTWARE_TAG = 0x0131
_PREFIX = "csrnet "


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("csrnet-retouch")
    except (ImportError, PackageNotFoundError):  # running from a source tree
        return "0"


def is_mark(text: object) -> bool:
    """Whether ``text`` (a photo's EXIF Software, a clip's ``comment`` tag) is a csrnet mark."""
    return isinstance(text, str) and text.startswith(_PREFIX)


def settings_text(settings: dict[str, object]) -> str:
    """The mark for these settings: ``csrnet <version> (key value, key value ...)`` (insertion order)."""
    return f"{_PREFIX}{_version()} (" + ", ".join(f"{k} {v}" for k, v in settings.items()) + ")"


def mark_exif(exif: bytes | None, mark: str) -> bytes:
    """``exif`` (raw EXIF bytes or None) with its Software tag set to ``mark``; other tags kept.

    An EXIF block Pillow cannot parse is replaced by one holding the mark only (it would not have
    been carried into a TIFF either)."""
    e = Image.Exif()
    if exif:
        try:
            e.load(exif)
        except Exception:  # noqa: BLE001 -- Pillow raises many types for corrupt EXIF
            e = Image.Exif()
    e[SOFTWARE_TAG] = mark
    return e.tobytes()


def read_mark(path: str | os.PathLike[str]) -> str | None:
    """The csrnet mark of the file at ``path`` (its EXIF Software text), or None when it has none or
    is not an image Pillow opens. Reads the header only."""
    try:
        with Image.open(Path(path)) as im:
            software = im.getexif().get(SOFTWARE_TAG)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    except Exception:  # noqa: BLE001 -- a hostile header must not stop a folder scan
        return None
    if isinstance(software, bytes):
        software = software.decode("latin-1", "replace")
    if isinstance(software, str) and is_mark(software.rstrip("\x00")):
        return software.rstrip("\x00")
    return None
