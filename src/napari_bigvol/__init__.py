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

from napari_bigvol._display import anatomical_view, display_convention, set_display_convention
from napari_bigvol._napari._writer import export_layer
from napari_bigvol._napari.scope import visible_slice, whole_volume
from napari_bigvol.errors import BigVolError, Cancelled, OperationError, ReadError
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

__all__ = [
    "BigVolError",
    "Cancelled",
    "OperationError",
    "ReadError",
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
