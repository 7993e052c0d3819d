"""Only the optional C kernel lives here; everything else is in pyproject.toml.

``optional=True``: where no C compiler exists the package still installs and csrnet.lut falls
back to Pillow's filter (8-bit) and numpy (16-bit/float).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("csrnet.kernels._lut", ["src/csrnet/kernels/_lut.c"], optional=True, extra_compile_args=["-O3", "-ffast-math"])])
