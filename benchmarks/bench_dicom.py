"""DICOM reader benchmark: opening a 500-slice series and reading random planes.

A 500-slice axial series of 256 x 256 int16 slices (CT-like: RescaleIntercept -1024,
a window in every header) is written with SimpleITK, one file per slice, in a scrambled
file order. napari-bigvol is timed beside baselines measured in the same run:

* **open**: ``napari_bigvol.read(folder)`` (headers only, sorted by position, checked,
  graph built) against, for every file, ``pydicom.dcmread(path, stop_before_pixels=True)``
  alone (pydicom parses lazily: no value is converted), the same plus reading the ten
  values any series reader needs (position, orientation, spacing, rescale, window, size,
  series UID), ``pydicom.dcmread(path)`` in full (the naive header read: pixel bytes
  included), and the naive loader, ``dcmread(path).pixel_array`` stacked (what a script that
  does not think about laziness does);
* **random plane**: ``np.asarray(data[k])`` on napari-bigvol's layer (one file decoded,
  modality LUT applied, through dask) against ``pydicom.dcmread(path)`` of that file with
  ``pixel_array`` and ``apply_modality_lut`` (the least any reader can do per plane),
  :func:`pydicom.pixels.pixel_array` of the path (pydicom's leanest decode, which
  napari-bigvol uses), and the dask floor: a bare ``da.map_blocks`` whose block is that
  leanest decode plus the rescale in float32 (napari-bigvol's data are dask arrays, so
  dask's per-``compute()`` overhead is the least it can cost).

Files are in the page cache for every contender (written, then read once to warm up).

Run::

    .venv/bin/python benchmarks/bench_dicom.py [--slices 500] [--size 256] [--data DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dask.array as da
import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, pixel_array
from pydicom.uid import generate_uid

import napari_bigvol as bv

RANDOM_PLANES = 48
REPEATS = 5
SERIES_KEYWORDS = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "Rows",
    "Columns",
    "SeriesInstanceUID",
)


def write_series(folder: Path, slices: int, size: int) -> list[Path]:
    """A CT-like series, one SimpleITK-written file per slice, scrambled file names."""
    import SimpleITK as sitk

    files = sorted(folder.glob("*.dcm"))
    if len(files) == slices:
        return files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    grid = np.linspace(-1, 1, size, dtype=np.float32)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    rng = np.random.default_rng(0)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    names = rng.permutation(slices)
    for k in range(slices):
        body = np.clip(1 - (x**2 + y**2 / 0.8) * (1 + 0.2 * np.sin(k / 40)), 0, None)
        plane = (1024 + 1000 * body + rng.normal(0, 20, (size, size))).astype(np.int16)
        image = sitk.GetImageFromArray(plane)
        image.SetSpacing((0.7, 0.7))
        tags = {
            "0020|000e": series,
            "0020|000d": study,
            "0020|0052": frame,
            "0008|0060": "CT",
            "0008|103e": "benchmark CT",
            "0020|0011": "2",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": f"-89.6\\-89.6\\{0.625 * k:.4f}",
            "0020|0013": str(k + 1),
            "0028|1052": "-1024",
            "0028|1053": "1",
            "0028|1050": "40",
            "0028|1051": "400",
        }
        for tag, value in tags.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice_{names[k]:04d}.dcm"))
        writer.Execute(image)
    return sorted(folder.glob("*.dcm"))


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def interleaved_ms(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median time of each contender, run in turn ``repeats`` times (fair on a busy machine)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            times[name].append(seconds(function))
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def median_ms(function: Callable[[int], object], planes: list[int]) -> float:
    return statistics.median(seconds(lambda k=k: function(k)) for k in planes) * 1e3


def report(title: str, figures: dict[str, float], reference: str) -> None:
    print(f"\n{title}")
    ours = figures[reference]
    for name, value in figures.items():
        ratio = "" if name == reference else f"  (napari-bigvol / this = {ours / value:.3g}x)"
        print(f"  {name:<48} {value:10.2f} ms{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--data", type=Path, help="folder for the series (kept)")
    args = parser.parse_args()
    workdir = args.data or Path(tempfile.mkdtemp(prefix="bench_dicom_"))
    folder = workdir / f"ct_{args.slices}x{args.size}"
    try:
        files = write_series(folder, args.slices, args.size)
        print(f"{len(files)} files, {sum(f.stat().st_size for f in files) / 2**20:.1f} MiB")
        for path in files:  # warm the page cache for every contender
            path.read_bytes()

        def ours_open() -> object:
            return bv.read(folder)

        def headers_only() -> object:
            return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]

        def headers_and_values() -> object:
            values = []
            for path in files:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                values.append([ds.get(keyword) for keyword in SERIES_KEYWORDS])
            return values

        def full_headers() -> object:
            return [pydicom.dcmread(f) for f in files]

        def naive_stack() -> object:
            return np.stack([pydicom.dcmread(f).pixel_array for f in files])

        figures = interleaved_ms(
            {
                "napari_bigvol.read(folder)": ours_open,
                "dcmread(stop_before_pixels=True), every file": headers_only,
                "... + the 10 values a series reader needs": headers_and_values,
                "dcmread(file) in full, every file (naive)": full_headers,
            },
            REPEATS,
        )
        figures.update(interleaved_ms({"dcmread + pixel_array stacked (naive)": naive_stack}, 2))
        report(f"open a {len(files)}-slice series", figures, "napari_bigvol.read(folder)")

        [(data, kwargs, _)] = bv.read(folder)
        first = kwargs["metadata"]["bigvol"]["first_file"]
        by_position = sorted(
            files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True)[0x200032][2])
        )
        assert str(by_position[0]) == first
        planes = random.Random(0).sample(range(len(files)), min(RANDOM_PLANES, len(files)))

        def ours_plane(k: int) -> object:
            return np.asarray(data[k])

        def dcmread_plane(k: int) -> object:
            ds = pydicom.dcmread(by_position[k])
            return apply_modality_lut(ds.pixel_array, ds)

        def pixel_array_plane(k: int) -> object:
            return pixel_array(by_position[k])

        floor = da.map_blocks(
            lambda block_id: pixel_array_plane(block_id[0])[np.newaxis].astype(np.float32) - 1024,
            chunks=((1,) * len(files), (args.size,), (args.size,)),
            dtype=np.float32,
        )

        def dask_floor_plane(k: int) -> object:
            return np.asarray(floor[k])

        report(
            f"random plane (median of {len(planes)})",
            {
                "napari-bigvol data[k]": median_ms(ours_plane, planes),
                "dcmread(file).pixel_array + apply_modality_lut": median_ms(dcmread_plane, planes),
                "pydicom.pixels.pixel_array(file), no rescale": median_ms(
                    pixel_array_plane, planes
                ),
                "dask floor: map_blocks of pixel_array - 1024": median_ms(
                    dask_floor_plane, planes
                ),
            },
            "napari-bigvol data[k]",
        )
        # The layer is in RAS order (napari axes S, A, R): an axial series' rows (anterior to
        # posterior) and columns (right to left) are flipped against the file's.
        axes = kwargs["metadata"]["bigvol"]["axes"]
        in_plane = [axes[label]["flipped"] for label in kwargs["axis_labels"][1:]]
        flips = tuple(slice(None, None, -1) if flip else slice(None) for flip in in_plane)
        np.testing.assert_array_equal(ours_plane(planes[0]), dcmread_plane(planes[0])[flips])
    finally:
        if args.data is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
