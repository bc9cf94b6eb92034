"""Benchmark the OME-Zarr export against named baselines, on a 1 GB TIFF folder.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_export.py [--planes 256] [--rounds 2] [--workdir DIR]

It writes a folder of uint16 TIFF slices (2048 x 1024 each; 256 of them make 1 GiB),
then, each in its own subprocess so peak RSS is measured per method:

* ``bigvol``: ``export_zarr`` with the pyramid (64^3 chunks, Blosc zstd 3 bitshuffle);
* ``dask.to_zarr``: a plain ``dask.array.to_zarr`` of the same data, same chunks and
  codec, level 0 only (baseline 1);
* ``ome_zarr.write_image``: ome-zarr-py's writer with its default pyramid (baseline 2);
* ``chunks=...``: level-0-only exports with other chunk shapes, for the latency table;

and prints wall and CPU time ratios, peak RSS, and XY / XZ plane latency (through
napari-bigvol's own readers, as napari would read them) from the TIFF folder and each
chunk layout. Everything is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PLANE = (2048, 1024)


def make_tiffs(folder: Path, planes: int) -> None:
    import tifffile

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: PLANE[0], : PLANE[1]]
    for z in range(planes):
        # Smooth structure plus noise: compresses like microscopy, not like pure noise.
        base = 2000 + 1500 * np.sin(yy / 90 + z / 20) * np.cos(xx / 70)
        plane = (base + rng.normal(0, 40, PLANE)).clip(0, 65535).astype(np.uint16)
        tifffile.imwrite(folder / f"slice_{z:04d}.tif", plane)


def run_method(method: str, source: str, target: str) -> dict:
    import dask.array as da
    import zarr

    from napari_bigvol import read
    from napari_bigvol.ops.export import _compressor, export_zarr

    ((data, _, _),) = read(source)
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    start = time.perf_counter()
    if method == "bigvol":
        export_zarr(data, target)
    elif method.startswith("chunks="):
        chunks = tuple(int(c) for c in method.removeprefix("chunks=").split(","))
        export_zarr(data, target, chunks=chunks, pyramid=False)
    elif method == "dask.to_zarr":
        array = zarr.create_array(
            target,
            shape=data.shape,
            chunks=(64, 64, 64),
            dtype=data.dtype,
            compressors=_compressor("zstd", 2),
            zarr_format=2,
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
        da.to_zarr(data.rechunk((64, 64, 64)), array)
    elif method == "ome_zarr.write_image":
        from ome_zarr.writer import write_image

        group = zarr.open_group(target, mode="w", zarr_format=2)
        write_image(data, group, axes="zyx")
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "method": method,
        "seconds": seconds,
        # CPU seconds of all threads: a fair measure on a machine shared with others.
        "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def in_subprocess(method: str, source: Path, target: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--run", method, str(source), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def evict(folder: Path) -> None:
    """Drop ``folder``'s files from the page cache, as if they were read for the first time."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def plane_latency(
    open_array, folder: Path, *, cold: bool, repeats: int = 3
) -> tuple[float, float]:
    """Median seconds to read the middle XY plane and the middle XZ plane."""
    timings: dict[str, list[float]] = {"xy": [], "xz": []}
    for _ in range(repeats):
        for name, seconds in timings.items():
            array = open_array()
            index = (array.shape[0] // 2,) if name == "xy" else (slice(None), array.shape[1] // 2)
            if cold:
                evict(folder)
            start = time.perf_counter()
            np.asarray(array[index])
            seconds.append(time.perf_counter() - start)
    return float(np.median(timings["xy"])), float(np.median(timings["xz"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--planes", type=int, default=256)
    parser.add_argument(
        "--workdir", default=None, help="folder to work in (a new subfolder, deleted at the end)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs")
    parser.add_argument("--run", nargs=3, metavar=("METHOD", "SOURCE", "TARGET"))
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_method(*args.run)))
        return

    from napari_bigvol import read

    # A new folder of its own: deleting the folder given would delete whatever else it holds.
    work = Path(tempfile.mkdtemp(prefix="bench-export-", dir=args.workdir))
    try:
        tiffs = work / "tiffs"
        make_tiffs(tiffs, args.planes)
        gib = args.planes * PLANE[0] * PLANE[1] * 2 / 2**30
        print(f"source: {args.planes} TIFF slices of {PLANE}, uint16, {gib:.2f} GiB")
        results = {}
        layouts = {
            "whole planes": f"chunks=1,{PLANE[0]},{PLANE[1]}",
            "16x128x128": "chunks=16,128,128",
            "64^3": "chunks=64,64,64",
        }
        methods = ["dask.to_zarr", "ome_zarr.write_image", "bigvol", *layouts.values()]
        # Rounds interleave the methods; the best of them is kept for each, which filters
        # out bursts of load from other processes on a shared machine (peak RSS: the worst).
        runs: dict[str, list[dict]] = {method: [] for method in methods}
        for _ in range(args.rounds):
            for method in methods:
                target = work / f"{method}.zarr"
                shutil.rmtree(target, ignore_errors=True)
                runs[method].append(in_subprocess(method, tiffs, target))
        for method in methods:
            r = results[method] = {
                "seconds": min(run["seconds"] for run in runs[method]),
                "cpu_seconds": min(run["cpu_seconds"] for run in runs[method]),
                "peak_rss_mib": max(run["peak_rss_mib"] for run in runs[method]),
            }
            print(
                f"{method:26s} {r['seconds']:7.1f} s wall {r['cpu_seconds']:7.1f} s CPU "
                f"{gib * 1024 / r['seconds']:7.1f} MiB/s  peak RSS {r['peak_rss_mib']:6.0f} MiB"
            )
        ours = results["bigvol"]
        for baseline in ("dask.to_zarr", "ome_zarr.write_image"):
            other = results[baseline]
            print(
                f"bigvol (with pyramid) vs {baseline}: "
                f"{other['seconds'] / ours['seconds']:.2f}x wall, "
                f"{other['cpu_seconds'] / ours['cpu_seconds']:.2f}x CPU"
            )

        def level_zero(path: Path):
            def open_level() -> object:
                ((data, _, _),) = read(str(path))
                return data[0] if isinstance(data, list) else data

            return open_level

        sources = {"TIFF folder": tiffs} | {
            f"zarr {name}": work / f"{method}.zarr" for name, method in layouts.items()
        }
        for cold in (False, True):
            print("cold page cache (evicted before each read):" if cold else "warm page cache:")
            latency = {
                name: plane_latency(level_zero(path), path, cold=cold)
                for name, path in sources.items()
            }
            for name, (xy, xz) in latency.items():
                print(f"  {name:24s} XY plane {xy * 1000:8.1f} ms   XZ plane {xz * 1000:8.1f} ms")
            tiff_xz = latency["TIFF folder"][1]
            for name in list(sources)[1:]:
                print(
                    f"  XZ plane speed-up of {name} over the TIFF folder: "
                    f"{tiff_xz / latency[name][1]:.1f}x"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
