"""napari-bigvol: view and process image volumes far bigger than memory in napari.

The public scripting API (the same functions the dock widgets use) is importable
without Qt or a viewer::

    import napari_bigvol as bv
    layers = bv.read("/data/Axial_*.tiff")
"""

from __future__ import annotations

__version__ = "0.1.0"

from napari_bigvol.errors import BigVolError, Cancelled, ReadError
from napari_bigvol.io import read

__all__ = [
    "BigVolError",
    "Cancelled",
    "ReadError",
    "__version__",
    "read",
]
