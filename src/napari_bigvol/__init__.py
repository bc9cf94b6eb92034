"""napari-bigvol: view and process image volumes far bigger than memory in napari.

The public scripting API is the one the dock widgets use, and it imports without Qt or a
viewer, so it works in the napari console, in scripts and on a cluster node::

    import napari_bigvol as bv

    layers = bv.read("/data/Axial_*.tiff")           # lazy (data, kwargs, layer_type) tuples
    volume = layers[0][0]
    mask = bv.threshold_mask(volume, 125, mode="below")  # lazy boolean dask array
    counts, edges = bv.histogram(volume, bins=50)      # exact, streamed chunk by chunk
    bv.export_zarr(volume, "/data/axial.ome.zarr", scale=(0.1, 0.1, 0.1))
    bv.export_layer(viewer.layers["mask"], "/data/mask.ome.zarr")  # a napari layer
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from napari_bigvol.errors import BigVolError, Cancelled, OperationError, ReadError, ReadWarning

# The functions load on first use (PEP 562): ``import napari_bigvol.cli`` then costs
# milliseconds instead of the 1.7 s of dask, zarr, nibabel and tifffile, so the console
# script is inside its own Ctrl-C handling (exit code 130) before anything heavy loads.
_LAZY = {
    "anatomical_view": "napari_bigvol._display",
    "display_convention": "napari_bigvol._display",
    "set_display_convention": "napari_bigvol._display",
    "export_layer": "napari_bigvol._napari._writer",
    "read": "napari_bigvol.io",
    "split_channels": "napari_bigvol.ops.channels",
    "describe_scheduler": "napari_bigvol.ops.compute",
    "set_scheduler": "napari_bigvol.ops.compute",
    "export_zarr": "napari_bigvol.ops.export",
    "histogram": "napari_bigvol.ops.histogram",
    "histogram_stats": "napari_bigvol.ops.histogram",
    "visible_slice": "napari_bigvol._napari.scope",
    "whole_volume": "napari_bigvol._napari.scope",
    "apply_mask": "napari_bigvol.ops.threshold",
    "count_components": "napari_bigvol.ops.threshold",
    "mask_statistics": "napari_bigvol.ops.threshold",
    "otsu_threshold": "napari_bigvol.ops.threshold",
    "threshold_mask": "napari_bigvol.ops.threshold",
}

if TYPE_CHECKING:
    from napari_bigvol._display import anatomical_view, display_convention, set_display_convention
    from napari_bigvol._napari._writer import export_layer
    from napari_bigvol._napari.scope import visible_slice, whole_volume
    from napari_bigvol.io import read
    from napari_bigvol.ops.channels import split_channels
    from napari_bigvol.ops.compute import describe_scheduler, set_scheduler
    from napari_bigvol.ops.export import export_zarr
    from napari_bigvol.ops.histogram import histogram, histogram_stats
    from napari_bigvol.ops.threshold import (
        apply_mask,
        count_components,
        mask_statistics,
        otsu_threshold,
        threshold_mask,
    )


def __getattr__(name: str) -> object:
    """Import a public function's module when the function is first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_bigvol' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BigVolError",
    "Cancelled",
    "OperationError",
    "ReadError",
    "ReadWarning",
    "__version__",
    "anatomical_view",
    "apply_mask",
    "count_components",
    "describe_scheduler",
    "display_convention",
    "export_layer",
    "export_zarr",
    "histogram",
    "histogram_stats",
    "mask_statistics",
    "otsu_threshold",
    "read",
    "set_display_convention",
    "set_scheduler",
    "split_channels",
    "threshold_mask",
    "visible_slice",
    "whole_volume",
]
