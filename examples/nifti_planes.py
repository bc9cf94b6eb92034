"""Tutorial 2: a NIfTI brain in axial, coronal and sagittal planes, contrast from its histogram.

This replays the "3-D images" part of the image-handling lesson, which loads ``brain.nii``
(256 x 256 x 124) with nibabel, plots axial, coronal and sagittal slices with matplotlib and
brightens them with ``vmin=0, vmax=150``. Here napari-bigvol opens the NIfTI file lazily in
scanner millimetres, the whole-volume histogram is streamed block by block, and the
contrast limits come from its percentiles instead of a guess.

    python examples/nifti_planes.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _tutorial import launch

from napari_bigvol import histogram_stats, sample

# napari's dims.order for each anatomical plane of (z, y, x) = (S, A, R) data. The plugin
# turns the camera itself: anterior or superior up, the patient's left on the right.
PLANES = {
    "axial": (0, 1, 2),
    "coronal": (1, 0, 2),
    "sagittal": (2, 0, 1),
}


@dataclass
class Planes:
    """The contrast chosen from the histogram and the volume it was computed over."""

    shape: tuple[int, ...]
    voxels_counted: int
    contrast_limits: tuple[float, float]
    histogram_counts: Any = field(repr=False)
    histogram_edges: Any = field(repr=False)


def prepare(workdir: Path, shape: tuple[int, int, int] = (124, 256, 256)) -> Path:
    """Write the synthetic brain as a compressed NIfTI file (axial, LAS), once."""
    path = Path(workdir) / "brain_{}x{}x{}.nii.gz".format(*shape)
    if not path.exists():
        volume = sample.brain_volume(shape)
        sample.write_nifti(volume, path, sample.brain_voxel_size(shape))
    return path


def show_plane(viewer: Any, plane: str, position: float | None = None) -> None:
    """Show the axial, coronal or sagittal plane, optionally at a world position in mm.

    ``position`` is the RAS millimetre of the plane: S for axial, A for coronal, R for
    sagittal (negative is the patient's left).
    """
    order = PLANES[plane]
    viewer.dims.order = order
    if position is not None:
        viewer.dims.set_point(order[0], position)
    viewer.reset_view()


def run(viewer: Any, path: Path) -> Planes:
    """Open the NIfTI file, set contrast from the histogram, and show the three planes."""
    [layer] = viewer.open(str(path), plugin="napari-bigvol")
    # The lesson's vmin/vmax, chosen from the data: ignore the zero background and clip
    # the brightest 0.5 % (scalp fat) so grey and white matter use the whole grey ramp.
    stats = histogram_stats(layer.data, bins=128, exclude_zeros=True, percentiles=(0.5, 99.5))
    layer.contrast_limits = (0.0, float(stats.percentiles[99.5]))
    for plane in ("sagittal", "coronal", "axial"):
        show_plane(viewer, plane, position=0.0)  # through the centre, in scanner mm
    return Planes(
        shape=tuple(layer.data.shape),
        voxels_counted=stats.count,
        contrast_limits=(0.0, float(layer.contrast_limits[1])),
        histogram_counts=stats.counts,
        histogram_edges=stats.edges,
    )


if __name__ == "__main__":
    launch(__doc__.splitlines()[0], prepare, run, default_shape=(124, 256, 256))
