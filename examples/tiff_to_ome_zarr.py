"""Tutorial 4: convert a TIFF stack to tiled OME-Zarr, then reopen it fast from any side.

This replays the "tiled image file formats: zarr" notebook, which re-saves a big image as
zarr tiles so it can later be read tile by tile instead of whole. A multi-page TIFF stores
its volume as full axial planes, so even a thin sagittal slice must read every page. The
OME-Zarr store that napari-bigvol writes holds 64-voxel cubes plus a pyramid of
downsampled levels, so the same sagittal slice reads only the cubes it crosses, and a
zoomed-out or 3D view reads only a small level.

    python examples/tiff_to_ome_zarr.py
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _tutorial import camera, launch

from napari_bigvol import export_layer, sample


@dataclass
class Converted:
    """The store written, its pyramid, and the time to read one sagittal slice from each."""

    store: Path
    level_shapes: list[tuple[int, ...]]
    chunks: tuple[int, ...]
    sagittal_seconds_tiff: float
    sagittal_seconds_zarr: float


def prepare(workdir: Path, shape: tuple[int, int, int] = (256, 512, 512)) -> Path:
    """Write the synthetic brain as one multi-page TIFF, plane by plane, once."""
    import tifffile

    path = Path(workdir) / "brain_stack_{}x{}x{}.tif".format(*shape)
    if not path.exists():
        volume = sample.brain_volume(shape)
        partial = path.with_name(f".{path.name}.partial")
        planes = (volume[i].compute() for i in range(shape[0]))
        dz, dy, dx = sample.brain_voxel_size(shape)
        # An ImageJ hyperstack records the voxel size, which the export carries over.
        tifffile.imwrite(
            partial,
            planes,
            shape=shape,
            dtype=volume.dtype,
            imagej=True,
            resolution=(1 / dx, 1 / dy),
            metadata={"axes": "ZYX", "spacing": dz, "unit": "mm"},
        )
        partial.rename(path)
    return path


def _seconds_to_read(data: Any) -> float:
    start = time.perf_counter()
    np.asarray(data)
    return time.perf_counter() - start


def run(viewer: Any, path: Path) -> Converted:
    """Open the TIFF, export it to OME-Zarr, reopen the store and compare a side view."""
    [tiff_layer] = viewer.open(str(path), plugin="napari-bigvol")
    # A stack over the 3-D budget opens with a second, smaller level for 3-D.
    tiff_volume = tiff_layer.data[0] if tiff_layer.multiscale else tiff_layer.data
    store = path.with_suffix(".ome.zarr")
    if not store.exists():
        export_layer(tiff_layer, store, chunks=(64, 64, 64))
    viewer.layers.remove(tiff_layer)
    [zarr_layer] = viewer.open(str(store), plugin="napari-bigvol")
    levels = zarr_layer.data if zarr_layer.multiscale else [zarr_layer.data]

    # A sagittal slice 15 mm left of the midline: one column of every axial page.
    sagittal = round(tiff_volume.shape[2] * (0.5 + 15 / sample.BRAIN_FIELD_OF_VIEW_MM))
    tiff_seconds = _seconds_to_read(tiff_volume[:, :, sagittal])
    zarr_seconds = _seconds_to_read(levels[0][:, :, sagittal])
    # Show that sagittal plane, superior at the top: the view a plane-per-page TIFF is
    # slowest at, and the one the tiled store reads cube by cube.
    viewer.dims.order = (2, 0, 1)
    viewer.dims.set_current_step(2, sagittal)
    camera(viewer).orientation2d = ("up", "right")
    viewer.reset_view()
    return Converted(
        store=store,
        level_shapes=[tuple(level.shape) for level in levels],
        chunks=tuple(levels[0].chunksize),
        sagittal_seconds_tiff=tiff_seconds,
        sagittal_seconds_zarr=zarr_seconds,
    )


if __name__ == "__main__":
    launch(__doc__.splitlines()[0], prepare, run, default_shape=(256, 512, 512))
