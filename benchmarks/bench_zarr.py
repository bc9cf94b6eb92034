"""zarr / OME-Zarr reader benchmark: open time and random-plane read overhead.

A ``--depth`` x 1024 x 1024 uint16 volume (smooth structure plus noise, zstd-compressed,
chunks of one 512 x 512 tile of one plane) is written three ways: a plain zarr v3 array,
an OME-Zarr NGFF 0.4 image on zarr v2 and an NGFF 0.5 image on zarr v3, each image with
a four-level pyramid. For each, napari-bigvol is timed beside baselines measured in the
same run:

* **open**: ``napari_bigvol.io.zarr_store.read`` (which also picks contrast limits from
  the smallest level, or from one chunk of a plain array) against ``da.from_zarr`` of
  level 0 alone (no metadata, no contrast), ``da.from_zarr`` of every level listed in the
  metadata (what a minimal OME reader must do) and napari-ome-zarr's reader function;
* **random plane**: ``data[k].compute()`` on level 0 for 48 random planes, against a
  direct ``zarr_array[k]`` read (the floor) and ``da.from_zarr(zarr_array)[k].compute()``.

Run::

    .venv/bin/python benchmarks/bench_zarr.py [--depth 128] [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dask.array as da
import numpy as np
import zarr
from napari.layers.utils.layer_utils import calc_data_range

from napari_bigvol.io import zarr_store

REPEATS = 20
RANDOM_PLANES = 48
CHUNKS = (1, 512, 512)
LEVELS = 4


def phantom(depth: int) -> np.ndarray:
    """Smooth blobs plus noise: compresses roughly like a real microscopy volume."""
    z = np.linspace(-1, 1, depth, dtype=np.float32)[:, None, None]
    y = np.linspace(-1, 1, 1024, dtype=np.float32)[None, :, None]
    x = np.linspace(-1, 1, 1024, dtype=np.float32)[None, None, :]
    structure = 1500 * (1 + np.sin(9 * x) * np.cos(7 * y) * np.sin(5 * z))
    noise = np.random.default_rng(0).normal(0, 40, (depth, 1024, 1024)).astype(np.float32)
    return np.clip(structure + noise, 0, 65535).astype(np.uint16)


def write_stores(folder: Path, depth: int) -> dict[str, Path]:
    """The same volume as a plain v3 array, NGFF 0.4 (zarr v2) and NGFF 0.5 (zarr v3)."""
    paths = {
        "plain zarr v3": folder / f"plain{depth}.zarr",
        "OME-Zarr 0.4": folder / f"ngff04_{depth}.ome.zarr",
        "OME-Zarr 0.5": folder / f"ngff05_{depth}.ome.zarr",
    }
    if all(path.exists() for path in paths.values()):
        return paths
    volume = phantom(depth)
    zarr.create_array(paths["plain zarr v3"], data=volume, chunks=CHUNKS, overwrite=True)
    for key, zarr_format in (("OME-Zarr 0.4", 2), ("OME-Zarr 0.5", 3)):
        group = zarr.open_group(paths[key], mode="w", zarr_format=zarr_format)
        datasets = []
        for level in range(LEVELS):
            step = 2**level
            data = volume[:, ::step, ::step]
            names = {"dimension_names": ("z", "y", "x")} if zarr_format == 3 else {}
            group.create_array(str(level), data=data, chunks=CHUNKS, **names)
            transforms = [{"type": "scale", "scale": [2.0, 0.5 * step, 0.5 * step]}]
            datasets.append({"path": str(level), "coordinateTransformations": transforms})
        axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
        multiscale = {"name": "phantom", "axes": axes, "datasets": datasets}
        if zarr_format == 2:
            group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
        else:
            group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    return paths


def median_ms(function: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def report(title: str, figures: dict[str, float]) -> None:
    """Print figures with the ratio of the napari-bigvol figure (the first) to each."""
    ours = next(iter(figures.values()))
    print(f"\n{title}")
    for label, value in figures.items():
        ratio = "" if value is ours else f"   (napari-bigvol = {ours / value:.2f}x this)"
        print(f"  {label:<34} {value:9.2f} ms{ratio}")


def every_level(path: Path) -> list[da.Array]:
    group = zarr.open_group(path, mode="r")
    attrs = group.attrs.get("ome", group.attrs)
    return [da.from_zarr(group[d["path"]]) for d in attrs["multiscales"][0]["datasets"]]


def napari_ome_zarr_open(path: Path) -> list:
    from napari_ome_zarr._reader import napari_get_reader

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the root attributes
        return napari_get_reader(str(path))()


def interleaved_ms(candidates: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median time of each candidate, run in turn round after round.

    Interleaving spreads the load of a shared machine over every candidate alike.
    """
    times: dict[str, list[float]] = {label: [] for label in candidates}
    for _ in range(REPEATS):
        for label, function in candidates.items():
            times[label].append(median_ms(function, repeats=1))
    return {label: statistics.median(values) for label, values in times.items()}


def bench_open(name: str, path: Path) -> None:
    level0 = path if name.startswith("plain") else path / "0"
    candidates: dict[str, Callable[[], object]] = {
        "napari-bigvol read": lambda: zarr_store.read(path),
        "da.from_zarr(level 0)": lambda: da.from_zarr(zarr.open_array(level0, mode="r")),
    }
    if not name.startswith("plain"):
        candidates["da.from_zarr(every level)"] = lambda: every_level(path)
        candidates["napari-ome-zarr reader"] = lambda: napari_ome_zarr_open(path)
        # What napari then does for that reader's layer, which brings no contrast limits:
        # the range of the smallest level.
        candidates["napari-ome-zarr + napari's range"] = lambda: calc_data_range(
            napari_ome_zarr_open(path)[0][0][-1]
        )
    report(f"open, {name} (median of {REPEATS}, interleaved)", interleaved_ms(candidates))


def bench_planes(name: str, path: Path, depth: int) -> None:
    data = zarr_store.read(path)[0][0]
    ours = data[0] if isinstance(data, list) else data
    direct = zarr.open_array(path if name.startswith("plain") else path / "0", mode="r")
    bare = da.from_zarr(direct)
    planes = random.Random(0).sample(range(depth), min(RANDOM_PLANES, depth))

    readers: dict[str, Callable[[int], object]] = {
        "napari-bigvol data[k].compute()": lambda k: ours[k].compute(),
        "zarr_array[k] (direct)": lambda k: direct[k],
        "da.from_zarr(array)[k].compute()": lambda k: bare[k].compute(),
    }
    for k in planes:  # warm the page cache, so no reader pays the first disk read
        direct[k]
    # Interleaved per plane, so drifts in machine load hit every reader alike.
    times: dict[str, list[float]] = {label: [] for label in readers}
    for k in planes:
        for label, read in readers.items():
            times[label].append(median_ms(lambda read=read, k=k: read(k), repeats=3))
    figures = {label: statistics.median(values) for label, values in times.items()}
    report(f"random plane of level 0, {name} (median of {len(planes)})", figures)
    overhead = figures["napari-bigvol data[k].compute()"] - figures["zarr_array[k] (direct)"]
    print(f"  overhead over a direct zarr read: {overhead:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--depth", type=int, default=128, help="planes in the volume")
    parser.add_argument("--data", type=Path, help="keep (and reuse) the stores here")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="bench_zarr_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        paths = write_stores(folder, args.depth)
        print(f"volume: {args.depth} x 1024 x 1024 uint16, chunks {CHUNKS}, zstd")
        for name, path in paths.items():
            bench_open(name, path)
        for name, path in paths.items():
            bench_planes(name, path, args.depth)
    finally:
        if args.data is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
