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

``--planes`` instead times XY, XZ and YZ planes of an OME-Zarr image in 64^3 chunks
(``--depth`` x ``--side`` x ``--side`` uint16 in zarr's default compressors: NGFF 0.4 on
zarr v2 with ``/`` keys as ome-zarr-py writes it, Blosc lz4; NGFF 0.5 on zarr v3, zstd)
read through ``napari_bigvol.read(store)`` by two versions of the package, each in its
own worker process (``--before SRC``, e.g. ``/work/main/src``, against this checkout),
interleaved plane by plane with a direct ``zarr.open(level)[plane]`` in this process.

Run::

    .venv/bin/python benchmarks/bench_zarr.py [--depth 128] [--data DIR]
    .venv/bin/python benchmarks/bench_zarr.py --planes --depth 256 --side 768 \
        --before /work/main/src [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
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
PLANE_CHUNKS = (64, 64, 64)
PLANE_POSITIONS = 5
AXES = {"XY": 0, "XZ": 1, "YZ": 2}


def phantom(depth: int, side: int = 1024, planes: slice = slice(None)) -> np.ndarray:
    """Smooth blobs plus noise: compresses roughly like a real microscopy volume."""
    z = np.linspace(-1, 1, depth, dtype=np.float32)[planes, None, None]
    y = np.linspace(-1, 1, side, dtype=np.float32)[None, :, None]
    x = np.linspace(-1, 1, side, dtype=np.float32)[None, None, :]
    structure = 1500 * (1 + np.sin(9 * x) * np.cos(7 * y) * np.sin(5 * z))
    noise = np.random.default_rng(planes.start or 0).normal(0, 40, structure.shape)
    return np.clip(structure + noise.astype(np.float32), 0, 65535).astype(np.uint16)


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
        describe_image(group, zarr_format, datasets)
    return paths


def describe_image(group: zarr.Group, zarr_format: int, datasets: list[dict]) -> None:
    """Write the NGFF 0.4 (zarr v2) or 0.5 (zarr v3) metadata of a z, y, x image."""
    axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    multiscale = {"name": "phantom", "axes": axes, "datasets": datasets}
    if zarr_format == 2:
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}


def write_plane_stores(folder: Path, depth: int, side: int) -> dict[str, Path]:
    """One-level OME-Zarr images in 64^3 chunks, written slab by slab (NGFF 0.4 and 0.5)."""
    paths = {
        "OME-Zarr 0.4 (zarr v2, / keys)": folder / f"planes04_{depth}_{side}.ome.zarr",
        "OME-Zarr 0.5 (zarr v3)": folder / f"planes05_{depth}_{side}.ome.zarr",
    }
    for (name, path), zarr_format in zip(paths.items(), (2, 3), strict=True):
        if path.exists():
            continue
        group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
        keys = (
            {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
            if zarr_format == 2
            else {"dimension_names": ("z", "y", "x")}
        )
        shape = (depth, side, side)
        array = group.create_array("0", shape=shape, dtype="u2", chunks=PLANE_CHUNKS, **keys)
        for start in range(0, depth, PLANE_CHUNKS[0]):
            planes = slice(start, min(start + PLANE_CHUNKS[0], depth))
            array[planes] = phantom(depth, side, planes)
        scale = [{"type": "scale", "scale": [1.0, 1.0, 1.0]}]
        describe_image(group, zarr_format, [{"path": "0", "coordinateTransformations": scale}])
        print(f"wrote {name}: {path}")
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


def plane(axis: int, index: int) -> tuple:
    return tuple(index if a == axis else slice(None) for a in range(3))


def plane_worker(store: Path) -> None:
    """Open ``store`` with ``napari_bigvol.read``; time the ``AXIS INDEX`` planes of stdin.

    Planes are computed as napari computes them: dask's task fusion off (napari turns it
    off while it slices, ``napari.utils._dask_utils.configure_dask``).
    """
    import dask

    import napari_bigvol

    dask.config.set({"optimization.fuse.active": False})

    data = napari_bigvol.read(store)[0][0]
    level0 = data[0] if isinstance(data, list) else data
    print(napari_bigvol.__file__, flush=True)
    for line in sys.stdin:
        axis, index = map(int, line.split())
        start = time.perf_counter()
        level0[plane(axis, index)].compute()
        print((time.perf_counter() - start) * 1e3, flush=True)


class Worker:
    """A :func:`plane_worker` process importing napari_bigvol from ``source``."""

    def __init__(self, source: str, store: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(store)],
            env={**os.environ, "PYTHONPATH": source},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.package = self.process.stdout.readline().strip()

    def time_ms(self, axis: int, index: int) -> float:
        self.process.stdin.write(f"{axis} {index}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def bench_axis_planes(name: str, path: Path, before: str) -> None:
    after = str(Path(__file__).resolve().parents[1] / "src")
    workers = {"napari-bigvol (this checkout)": Worker(after, path)}
    workers["napari-bigvol --before"] = Worker(before, path)
    direct = zarr.open(str(path / "0"), mode="r")
    for label, worker in workers.items():
        print(f"  {label}: {worker.package}")
    positions = {
        axis: random.Random(axis).sample(range(direct.shape[axis]), PLANE_POSITIONS)
        for axis in AXES.values()
    }
    readers: dict[str, Callable[[int, int], float]] = {
        label: worker.time_ms for label, worker in workers.items()
    }
    readers["zarr.open(level)[plane] (direct)"] = lambda axis, k: median_ms(
        lambda: direct[plane(axis, k)], repeats=1
    )
    try:
        for axis_name, axis in AXES.items():
            for k in positions[axis]:  # warm the page cache and each process once
                for read in readers.values():
                    read(axis, k)
            # Interleaved plane by plane, so drifts in load hit every reader alike.
            times: dict[str, list[float]] = {label: [] for label in readers}
            for _ in range(3):
                for k in positions[axis]:
                    for label, read in readers.items():
                        times[label].append(read(axis, k))
            figures = {label: statistics.median(values) for label, values in times.items()}
            report(f"{axis_name} plane, {name} (median of {3 * PLANE_POSITIONS})", figures)
    finally:
        for worker in workers.values():
            worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--depth", type=int, default=128, help="planes in the volume")
    parser.add_argument("--data", type=Path, help="keep (and reuse) the stores here")
    parser.add_argument("--planes", action="store_true", help="XY/XZ/YZ planes, 64^3 chunks")
    parser.add_argument("--side", type=int, default=768, help="rows and columns (--planes)")
    parser.add_argument("--before", default="/work/main/src", help="package source to compare")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        plane_worker(args.worker)
        return
    folder = args.data or Path(tempfile.mkdtemp(prefix="bench_zarr_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}")
    try:
        if args.planes:
            bench_all_planes(folder, args)
        else:
            bench_random_planes(folder, args.depth)
    finally:
        print(f"load average at end: {os.getloadavg()}")
        if args.data is None:
            shutil.rmtree(folder, ignore_errors=True)


def bench_all_planes(folder: Path, args: argparse.Namespace) -> None:
    paths = write_plane_stores(folder, args.depth, args.side)
    print(
        f"volume: {args.depth} x {args.side} x {args.side} uint16, chunks {PLANE_CHUNKS}, "
        "zarr's default compressors (v2: Blosc lz4, v3: zstd)"
    )
    for name, path in paths.items():
        bench_axis_planes(name, path, args.before)


def bench_random_planes(folder: Path, depth: int) -> None:
    paths = write_stores(folder, depth)
    print(f"volume: {depth} x 1024 x 1024 uint16, chunks {CHUNKS}, zstd")
    for name, path in paths.items():
        bench_open(name, path)
    for name, path in paths.items():
        bench_planes(name, path, depth)


if __name__ == "__main__":
    main()
