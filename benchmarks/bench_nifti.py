"""NIfTI reader benchmark: open, first plane, random and sequential planes, memory.

A 256x256x256 int16 volume (a smooth head-like phantom plus noise, which gzip
compresses about as well as a real MRI) is written as ``.nii`` and ``.nii.gz``. For each,
napari-bigvol is timed beside three baselines measured in the same run:

* ``nibabel dataobj``: one ``nib.load`` image, ``img.dataobj[:, :, k]`` per plane
  (nibabel's defaults: indexed_gzip with seek points 4 MiB apart and a 4 MiB buffer);
* ``nibabel fresh``: ``nib.load(path).dataobj[:, :, k]`` per plane, what a reader that
  keeps no handle pays (a ``.nii.gz`` is decompressed from the start each time);
* ``get_fdata``: ``nib.load(path).get_fdata()`` once, then numpy slicing (the whole volume
  in memory as float64, the seed tutorial's way);
* ``dask floor``: a bare ``da.map_blocks`` whose block is ``img.dataobj[:, :, k]``, i.e.
  nibabel plus the cost dask itself adds to every ``.compute()`` (napari-bigvol's data
  are dask arrays, so this is the least it can cost).

Figures: open time (napari-bigvol includes sampling the middle plane for contrast limits,
as the header has no cal_min/cal_max), first plane (open plus the middle plane napari
shows first), random planes (median of 48, first visit and second visit), scrolling
forward and backward (mean over every plane) and the RSS growth of each approach. Files
are in the page cache for every contender (written, then read once to warm up).

Run::

    .venv/bin/python benchmarks/bench_nifti.py [--size 256] [--data DIR]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dask.array as da
import nibabel as nib
import numpy as np
import psutil

from napari_bigvol.io import nifti

PROCESS = psutil.Process()
RANDOM_PLANES = 48
REPEATS = 5


def write_phantom(folder: Path, size: int) -> dict[str, Path]:
    """The same int16 phantom as .nii and .nii.gz (kept if already there)."""
    paths = {suffix: folder / f"phantom{size}{suffix}" for suffix in (".nii", ".nii.gz")}
    if all(path.exists() for path in paths.values()):
        return paths
    grid = np.linspace(-1, 1, size, dtype=np.float32)
    x, y, z = np.meshgrid(grid, grid, grid, indexing="ij", sparse=True)
    head = np.clip(1.0 - (x**2 / 0.7 + y**2 / 0.9 + z**2 / 0.8), 0, None)
    folds = 1 + 0.3 * np.sin(14 * x) * np.cos(11 * y) * np.sin(9 * z)
    noise = np.random.default_rng(0).normal(0, 30, (size,) * 3).astype(np.float32)
    volume = (2000 * head * folds + noise).astype(np.int16)
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])  # LAS, like most scanners' NIfTI output
    for path in paths.values():
        nib.save(nib.Nifti1Image(volume, affine), path)
    return paths


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_ms(function: Callable[[int], object], planes: list[int]) -> float:
    return statistics.median(seconds(lambda k=k: function(k)) for k in planes) * 1e3


def mean_ms(function: Callable[[int], object], planes: list[int]) -> float:
    """Mean, not median: a scroll pays for the occasional expensive buffer refill too."""
    return statistics.mean(seconds(lambda k=k: function(k)) for k in planes) * 1e3


def repeated_ms(function: Callable[[], object]) -> float:
    return statistics.median(seconds(function) for _ in range(REPEATS)) * 1e3


class DataobjPlane:
    """``img.dataobj[:, :, k]`` as a dask block function: the dask floor baseline."""

    def __init__(self, path: Path) -> None:
        self.dataobj = nib.load(path).dataobj

    def __call__(self, block_id: tuple[int, ...]) -> np.ndarray:
        return self.dataobj[:, :, block_id[0]].T[None]


def report(title: str, figures: dict[str, float], unit: str = "ms") -> None:
    """Print figures with their ratio to the napari-bigvol one (first entry)."""
    ours = next(iter(figures.values()))
    print(f"\n{title}")
    for label, value in figures.items():
        ratio = "" if value is ours else f"   (napari-bigvol = {ours / value:.3g}x this)"
        print(f"  {label:<22} {value:10.2f} {unit}{ratio}")


def bench_file(path: Path, size: int) -> None:
    print(f"\n=== {path.name}: {path.stat().st_size / 2**20:.1f} MiB on disk ===")
    middle = (size - 1) // 2
    planes = random.Random(1).sample(range(size), RANDOM_PLANES)
    rss_ours = scroll_rss(path, size)  # first, before other allocations blur RSS
    gc.collect()

    open_ms = repeated_ms(lambda: nifti.read(path))
    header_ms = repeated_ms(lambda: nib.load(path))
    report(
        f"open (median of {REPEATS})",
        {"napari-bigvol read()": open_ms, "nib.load (header)": header_ms},
    )

    def bigvol_first() -> None:
        [(data, _, _)] = nifti.read(path)
        data[middle].compute()

    report(
        f"first plane: open + middle plane (median of {REPEATS})",
        {
            "napari-bigvol": repeated_ms(bigvol_first),
            "nibabel dataobj": repeated_ms(lambda: nib.load(path).dataobj[:, :, middle]),
            "get_fdata": repeated_ms(lambda: nib.load(path).get_fdata()[:, :, middle]),
        },
    )
    bench_planes(path, middle, planes, size)
    gc.collect()
    rss_before = PROCESS.memory_info().rss
    volume = nib.load(path).get_fdata()
    in_memory = median_ms(lambda k: np.ascontiguousarray(volume[:, :, k]), planes)
    rss_fdata = PROCESS.memory_info().rss - rss_before
    print(f"\n  get_fdata then slice: {in_memory:.3f} ms per plane (after loading it all)")
    report(
        "RSS growth: napari-bigvol scrolling every plane, get_fdata loading the volume",
        {"napari-bigvol": rss_ours, "get_fdata": rss_fdata / 2**20},
        unit="MiB",
    )


def scroll_rss(path: Path, size: int) -> float:
    """RSS growth (MiB) of opening ``path`` and reading every plane, layer still open."""
    rss_start = PROCESS.memory_info().rss
    [(data, _, _)] = nifti.read(path)
    for k in range(size):
        data[k].compute()
    return (PROCESS.memory_info().rss - rss_start) / 2**20


def bench_planes(path: Path, middle: int, planes: list[int], size: int) -> None:
    """Print random and sequential plane times beside their baselines."""
    [(data, _, _)] = nifti.read(path)
    image = nib.load(path)
    image.dataobj[:, :, middle]  # both start from the same state: middle plane read

    def ours(k: int) -> object:
        return data[k].compute()  # LAS: napari z runs along disk axis k

    def dataobj(k: int) -> object:
        return image.dataobj[:, :, k]

    floor = da.map_blocks(
        DataobjPlane(path),
        chunks=((1,) * size, (size,), (size,)),
        dtype=np.int16,
        meta=np.empty((0, 0, 0), np.int16),
    )

    def dask_floor(k: int) -> object:
        return floor[k].compute()

    report(
        f"random plane, first visit (median of {RANDOM_PLANES})",
        {
            "napari-bigvol": median_ms(ours, planes),
            "nibabel dataobj": median_ms(dataobj, planes),
            "nibabel fresh": median_ms(lambda k: nib.load(path).dataobj[:, :, k], planes[:8]),
            "dask floor": median_ms(dask_floor, planes),
        },
    )
    report(
        "random plane, second visit",
        {
            "napari-bigvol": median_ms(ours, planes),
            "nibabel dataobj": median_ms(dataobj, planes),
            "dask floor": median_ms(dask_floor, planes),
        },
    )
    for direction, every_plane in (
        ("forward", list(range(size))),
        ("backward", list(reversed(range(size)))),
    ):
        report(
            f"scrolling {direction} through every plane (mean)",
            {
                "napari-bigvol": mean_ms(ours, every_plane),
                "nibabel dataobj": mean_ms(dataobj, every_plane),
                "dask floor": mean_ms(dask_floor, every_plane),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="edge of the cubic volume")
    parser.add_argument("--data", type=Path, help="folder to keep (and reuse) the files in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.data or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_phantom(folder, args.size)
        # Warm-up outside the figures: imports, dask's thread pool, the page cache.
        for path in paths.values():
            nifti.read(path)[0][0][0].compute()
            nib.load(path).dataobj[:, :, 0]
        for path in paths.values():
            bench_file(path, args.size)


if __name__ == "__main__":
    main()
