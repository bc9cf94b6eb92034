"""Tutorial 5: from a DICOM series to an OME-Zarr, in scanner millimetres all the way.

A scanner or PACS export is a folder of DICOM files, one per slice, often with names that
say nothing (``IM0001``, ``IM0002``, ... without an extension) and in no particular order.
napari-bigvol opens the folder lazily: it reads the headers only, orders the slices by
their position in the patient, places the volume in RAS millimetres, and takes the
contrast from the series' window. The series is then exported to a tiled OME-Zarr store
that keeps the voxel size and the position, and reopens in the same place.

The series is written here by SimpleITK (the ITK/GDCM DICOM writer) from the synthetic
brain, as an MR series of the given shape; drop your own series folder onto napari instead.

    python examples/dicom_to_ome_zarr.py
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _tutorial import launch

from napari_bigvol import export_zarr, sample

# The series' window (WindowCenter, WindowWidth): what the scanner's viewer would show.
WINDOW = (1000, 1800)


@dataclass
class Converted:
    """What was opened and written: the series' geometry and the store that keeps it."""

    series: Path
    files: int
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    contrast_limits: tuple[float, float]
    store: Path
    store_scale: tuple[float, ...]
    store_translate: tuple[float, ...]


def prepare(workdir: Path, shape: tuple[int, int, int] = (124, 256, 256)) -> Path:
    """Write the synthetic brain as an axial MR DICOM series with SimpleITK, once.

    Files are named ``IM0001``... without an extension, numbered in a shuffled order, as
    exports often are: only the positions in their headers give the slice order.
    """
    import SimpleITK as sitk
    from pydicom.uid import generate_uid

    folder = Path(workdir) / "brain_dicom_{}x{}x{}".format(*shape)
    if folder.is_dir() and len(list(folder.iterdir())) == shape[0]:
        return folder
    partial = folder.with_name(f".{folder.name}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    volume = sample.brain_volume(shape)
    dz, dy, dx = sample.brain_voxel_size(shape)
    # The brain's axes run (S, P, L): planes upwards, rows backwards, columns to the
    # patient's left, which is DICOM's standard axial layout (LPS patient coordinates).
    # The volume is centred on the scanner's origin.
    origin = [
        -size * (count - 1) / 2 for size, count in zip((dx, dy, dz), shape[::-1], strict=True)
    ]
    tags = {
        "0020|000e": generate_uid(),  # SeriesInstanceUID
        "0020|000d": generate_uid(),  # StudyInstanceUID
        "0020|0052": generate_uid(),  # FrameOfReferenceUID
        "0008|0060": "MR",
        "0008|103e": "T1 synthetic brain",
        "0020|0011": "4",  # SeriesNumber
        "0020|0037": "1\\0\\0\\0\\1\\0",  # along a row: to the left; down a column: back
        "0028|1050": str(WINDOW[0]),
        "0028|1051": str(WINDOW[1]),
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    numbers = np.random.default_rng(0).permutation(shape[0]) + 1
    for k in range(shape[0]):
        plane = sitk.GetImageFromArray(np.asarray(volume[k]).astype(np.uint16))
        plane.SetSpacing((dx, dy))
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        plane.SetMetaData("0020|0032", f"{origin[0]}\\{origin[1]}\\{origin[2] + dz * k}")
        plane.SetMetaData("0020|0013", str(numbers[k]))
        written = partial / f"IM{numbers[k]:04d}.dcm"  # GDCM picks its writer by extension
        writer.SetFileName(str(written))
        writer.Execute(plane)
        written.rename(written.with_suffix(""))
    partial.rename(folder)
    return folder


def run(viewer: Any, folder: Path) -> Converted:
    """Open the series folder, export it to OME-Zarr, and reopen the store beside it."""
    [series] = viewer.open(str(folder), plugin="napari-bigvol")
    store = folder.with_name(folder.name + ".ome.zarr")
    if not store.exists():
        export_zarr(series, store)
    [reopened] = viewer.open(str(store), plugin="napari-bigvol")
    reopened.name = f"{series.name} (OME-Zarr)"
    reopened.visible = False  # the store lies exactly on the series; show one at a time
    viewer.reset_view()
    return Converted(
        series=folder,
        files=len(list(folder.iterdir())),
        shape=tuple(series.data.shape),
        scale=tuple(float(s) for s in series.scale),
        translate=tuple(float(t) for t in series.translate),
        contrast_limits=tuple(float(c) for c in series.contrast_limits),
        store=store,
        store_scale=tuple(float(s) for s in reopened.scale),
        store_translate=tuple(float(t) for t in reopened.translate),
    )


if __name__ == "__main__":
    launch(__doc__.splitlines()[0], prepare, run, default_shape=(124, 256, 256))
