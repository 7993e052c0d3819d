"""csrnet — CSRNet (Conditional Sequential Retouching Network) photo retouching.

The public API is torch-free::

    import csrnet
    model = csrnet.load_model("auto")                 # bundled name, .safetensors, or released .pth
    out = csrnet.enhance(image, model, strength=0.8)  # numpy (uint8/uint16/float32) or PIL in, same out
    table = csrnet.bake_lut(image, model, size=33)    # the image's transform as a 3D LUT
    photo = csrnet.read_photo("in.jpg")               # pixels + EXIF/ICC; csrnet.write_photo writes them back
"""

from .errors import CsrnetError
from .io.formats import read_photo, write_photo
from .io.photo import Photo
from .pipeline import Blend, bake_lut, enhance, parse_style, transform
from .weights import Model, list_models, load_model

__all__ = [
    "enhance",
    "bake_lut",
    "transform",
    "Blend",
    "parse_style",
    "load_model",
    "list_models",
    "Model",
    "Photo",
    "read_photo",
    "write_photo",
    "CsrnetError",
    "__version__",
]
__version__ = "0.1.0"
