"""Whole-volume histogram of a TIFF folder against reading its files, same run.

The folder holds ``--files`` slices of 512 x 512 uint16 (2,000 by default: 1 GB),
written to a temporary folder and deleted at the end. Arms, alternated round by round:

* **read files**: a ``ThreadPoolExecutor`` (its default worker count) reading every file
  with ``tifffile.imread``: the speed of just reading the data on all cores, the ceiling;
* **bv.histogram**: ``napari_bigvol.histogram(data, 100)`` on the folder opened with
  ``napari_bigvol.read`` (exact counts, streamed through ``ops.compute``);
* **dask.array.histogram**: ``da.histogram(data, 100, range=(0, 4096))`` computed with
  dask's default threaded scheduler, the range given for free.

Targets (issue 11): bv.histogram at >= 0.8x the read speed and >= 5x dask.array.histogram.
The page cache is warmed first, so all arms read from memory, as a second pass would.

Run::

    .venv/bin/python benchmarks/bench_folder_histogram.py
    .venv/bin/python benchmarks/bench_folder_histogram.py --files 500 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask.array as da
import numpy as np
import tifffile

import napari_bigvol


def write_folder(folder: Path, files: int) -> list[str]:
    """Camera-like 12-bit slices: one random plane, rolled per slice."""
    base = np.random.default_rng(0).integers(0, 4096, (512, 512), dtype=np.uint16)
    paths = []
    for index in range(files):
        path = folder / f"slice_{index:04d}.tif"
        tifffile.imwrite(path, np.roll(base, index, axis=0))
        paths.append(str(path))
    return paths


def read_all(paths: list[str]) -> None:
    with ThreadPoolExecutor() as pool:
        for _ in pool.map(tifffile.imread, paths):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-folder-"))
    try:
        paths = write_folder(workdir, args.files)
        [(data, _, _)] = napari_bigvol.read(str(workdir))
        expected = np.histogram(tifffile.imread(paths[0]), 100, (0, 4096))[0]
        arms = {
            "read files (ThreadPoolExecutor + tifffile)": lambda: read_all(paths),
            "bv.histogram": lambda: napari_bigvol.histogram(data, 100, (0, 4096)),
            "dask.array.histogram": lambda: da.histogram(data, 100, range=(0, 4096))[0].compute(),
        }
        # Warm-up: the page cache, numba's kernels, thread pools; and a correctness check.
        for action in arms.values():
            action()
        counts, _ = napari_bigvol.histogram(data[:1], 100, (0, 4096))
        np.testing.assert_array_equal(counts, expected)
        runs: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.rounds):
            for name, action in arms.items():
                start = time.perf_counter()
                action()
                runs[name].append(time.perf_counter() - start)
        gigabytes = data.nbytes / 1e9
        best = {name: min(times) for name, times in runs.items()}
        print(
            f"{args.files} TIFF slices, {gigabytes:.2f} GB, {os.cpu_count()} cores; best of "
            f"{args.rounds}, load average {os.getloadavg()[0]:.1f}:"
        )
        for name, seconds in best.items():
            print(
                f"  {name:44s} {seconds:.2f} s ({gigabytes / seconds:.2f} GB/s); all rounds "
                f"{[round(t, 2) for t in runs[name]]}"
            )
        ours = best["bv.histogram"]
        print(
            f"  bv.histogram speed / read speed = "
            f"{best['read files (ThreadPoolExecutor + tifffile)'] / ours:.2f} (target >= 0.8)\n"
            f"  bv.histogram speed / dask.array.histogram speed = "
            f"{best['dask.array.histogram'] / ours:.2f} (target >= 5)"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
