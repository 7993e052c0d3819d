"""Files in and out: photos with their metadata (one format table), atomic writes, ``.cube`` LUTs."""

from .atomic import atomic_write
from .formats import FORMATS, Format, default_output, read_photo, write_photo
from .photo import DEFAULT_MAX_PIXELS, Photo

__all__ = ["DEFAULT_MAX_PIXELS", "FORMATS", "Format", "Photo", "atomic_write", "default_output", "read_photo", "write_photo"]
