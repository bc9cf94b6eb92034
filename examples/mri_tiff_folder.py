"""Tutorial 1: browse a big axial MRI stored as one TIFF per slice, lazily.

This replays the napari tutorial that opens the 100 micron ex vivo brain MRI of Edlow et
al. (2019), a folder of ``Synthesized_FLASH25_Axial_*.tiff`` slices, with
``dask_image.imread``. Here the folder is generated from napari-bigvol's synthetic brain,
so the tutorial runs offline, and napari-bigvol opens it: opening reads one file's header,
and moving the slider reads one file per displayed slice.

    python examples/mri_tiff_folder.py                    # 256 slices of 512 x 512
    python examples/mri_tiff_folder.py --shape 1024 1024 1024   # 1024 slices, 2 GiB
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _tutorial import launch

from napari_bigvol import sample

PATTERN = "Synthesized_FLASH25_Axial_*.tiff"


@dataclass
class Browsed:
    """What the tutorial shows: the lazy volume and the slices it looked at."""

    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...]
    gigabytes: float
    slices_shown: list[int]


def prepare(workdir: Path, shape: tuple[int, int, int] = (256, 512, 512)) -> Path:
    """Write the synthetic brain as one axial TIFF per slice, once, and return the folder."""
    folder = Path(workdir) / "Synthesized_FLASH25_100um_TIFF_Axial_Images_{}x{}x{}".format(*shape)
    if not folder.exists():
        sample.write_tiff_slices(sample.brain_volume(shape), folder)
    return folder


def run(viewer: Any, folder: Path) -> Browsed:
    """Open the slices with napari-bigvol and step through a few of them."""
    # What dropping the folder onto napari does. From the console, the glob the original
    # tutorial passes to dask_image.imread works too: napari_bigvol.read(folder / PATTERN).
    [layer] = viewer.open(str(folder), plugin="napari-bigvol")
    # A folder over the 3-D budget opens with a second, smaller level for 3-D.
    volume = layer.data[0] if layer.multiscale else layer.data
    # Like the original export, the slices carry no voxel size: give napari the real one
    # so the rulers, the 3D view and measurements are in millimetres.
    layer.scale = sample.brain_voxel_size(volume.shape)
    layer.units = ("mm", "mm", "mm")
    depth = volume.shape[0]
    shown = [depth // 4, depth // 2, (3 * depth) // 5]
    for index in shown:
        viewer.dims.set_current_step(0, index)  # napari reads exactly this slice's file
    viewer.reset_view()
    return Browsed(
        shape=tuple(volume.shape),
        dtype=str(volume.dtype),
        scale=tuple(float(s) for s in layer.scale),
        gigabytes=volume.nbytes / 1e9,
        slices_shown=shown,
    )


if __name__ == "__main__":
    launch(__doc__.splitlines()[0], prepare, run, default_shape=(256, 512, 512))
