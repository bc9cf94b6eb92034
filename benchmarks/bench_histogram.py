"""Whole-volume histogram speed, threshold preview latency and peak memory.

Compares napari-bigvol's streamed exact histogram with named baselines in the same run:

* ``numpy.bincount`` on the same data already in memory (the issue's 2x target); as
  called on the uint16 array, and on the array first cast to ``intp`` (its fast path),
* ``dask.array.histogram`` with the range given for free (the 5x target),
* ``numpy.histogram`` (what our result must equal, and is checked to),
* for float32 data (half the element count), the same comparisons,

then the counting kernel alone against ``numpy.bincount``, the threshold preview on a
2048 x 2048 plane, and the peak RSS of whole-volume work on a disk-backed (zarr) volume,
each job in a fresh process whose resident memory a psutil thread samples every 5 ms.

Run from the repository root::

    .venv/bin/python benchmarks/bench_histogram.py                         # 1 GiB
    .venv/bin/python benchmarks/bench_histogram.py --gib 0.25 --repeat 1   # quick look

Timings are medians of ``--repeat`` runs; the machine's load average is printed because
other processes share its cores.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import psutil
import zarr

from napari_bigvol.ops import _kernels
from napari_bigvol.ops.compute import as_dask_array
from napari_bigvol.ops.histogram import histogram, histogram_stats
from napari_bigvol.ops.threshold import apply_mask, mask_statistics, threshold_mask

PLANE = (1024, 1024)
PLANES_PER_CHUNK = 8
MIB = 1 << 20


def planes(start: int, stop: int, seed: int = 0) -> np.ndarray:
    """Camera-like 12-bit planes with a 40 % zero background, deterministic per plane."""
    out = np.empty((stop - start, *PLANE), np.uint16)
    for offset, index in enumerate(range(start, stop)):
        rng = np.random.default_rng((seed, index))
        plane = rng.integers(90, 4096, PLANE, dtype=np.uint16)
        plane[: int(PLANE[0] * 0.4)] = 0
        out[offset] = plane
    return out


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class PeakRSS:
    """Samples this process's resident memory every few milliseconds in a thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.process = psutil.Process()
        self.interval = interval
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def whole_volume_jobs(lazy: da.Array) -> dict[str, Callable[[], object]]:
    return {
        "histogram (exact, 1 pass)": lambda: histogram(lazy, 50),
        "histogram_stats (+ mean/std/percentiles)": lambda: histogram_stats(lazy, 50),
        "mask_statistics(threshold_mask(v, 1000))": lambda: mask_statistics(
            threshold_mask(lazy, 1000), (1.0, 0.5, 0.5), "um"
        ),
        "dask.array.histogram (baseline)": lambda: da.histogram(lazy, bins=50, range=(0, 4095))[
            0
        ].compute(),
    }


def measure_job_in_this_process(store: str, job: str) -> None:
    """Child-process mode: run one whole-volume job and print its time and peak RSS."""
    lazy = da.from_zarr(zarr.open_array(store, mode="r"))
    histogram(lazy[:1, :8], 4)  # load the kernel and zarr's codecs before the baseline
    run = whole_volume_jobs(lazy)[job]
    with PeakRSS() as rss:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "added_mib": (rss.peak - rss.baseline) / MIB}))


def write_zarr(path: Path, count: int) -> None:
    array = zarr.create_array(
        path, shape=(count, *PLANE), chunks=(PLANES_PER_CHUNK, *PLANE), dtype=np.uint16
    )
    for start in range(0, count, PLANES_PER_CHUNK):
        stop = min(start + PLANES_PER_CHUNK, count)
        array[start:stop] = planes(start, stop)


def report_memory(store: Path, gb: float, repeat: int) -> None:
    chunk_mib = PLANES_PER_CHUNK * PLANE[0] * PLANE[1] * 2 / MIB
    print(f"\n## Whole volume from zarr (zstd, {chunk_mib:.0f} MiB chunks): time and peak RSS\n")
    print("Each job in a fresh process; RSS added over the process after imports.\n")
    print("| operation | seconds | GB/s | peak RSS added (MiB) | in chunks |")
    print("|---|---|---|---|---|")
    for job in whole_volume_jobs(da.zeros(1)):
        results = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--child-store", str(store), "--child-job", job],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(repeat)
        ]
        seconds = statistics.median(r["seconds"] for r in results)
        added = max(r["added_mib"] for r in results)
        print(
            f"| {job} | {seconds:.2f} | {gb / seconds:.2f} | {added:.0f} "
            f"| {added / chunk_mib:.1f} |"
        )


def compare(
    title: str, volume: np.ndarray, runs: dict[str, Callable[[], object]], repeat: int
) -> None:
    """Time every run, print the table against ours, and check ours equals numpy's."""
    seconds = {name: median_seconds(run, repeat) for name, run in runs.items()}
    ours = seconds["napari_bigvol.histogram(volume, 50)"]
    print(f"\n## Whole-volume histogram of {title} in memory\n")
    print("| method | seconds | GB/s | time / ours |")
    print("|---|---|---|---|")
    for name, value in seconds.items():
        rate = volume.nbytes / value / 1e9
        print(f"| {name} | {value:.3f} | {rate:.2f} | {value / ours:.1f}x |")
    counts, edges = histogram(volume, 50)
    expected_counts, expected_edges = np.histogram(volume, 50)
    assert np.array_equal(counts, expected_counts)
    assert np.array_equal(edges, expected_edges)
    print("\nOur counts and edges were checked equal to numpy.histogram's.")


def report_in_memory(count: int, repeat: int) -> None:
    volume = np.concatenate([planes(s, min(s + 32, count)) for s in range(0, count, 32)])
    wrapped, _ = as_dask_array(volume)  # numpy views: dask without the copy from_array makes
    low, high = int(volume.min()), int(volume.max())
    runs: dict[str, Callable[[], object]] = {
        "napari_bigvol.histogram(volume, 50)": lambda: histogram(volume, 50),
        "numpy.bincount(volume.ravel())": lambda: np.bincount(volume.ravel()),
        "numpy.bincount(volume.ravel().astype(intp))": lambda: np.bincount(
            volume.ravel().astype(np.intp)
        ),
        "dask.array.histogram(range given)": lambda: da.histogram(
            wrapped, bins=50, range=(low, high)
        )[0].compute(),
        "numpy.histogram(volume, 50)": lambda: np.histogram(volume, 50),
    }
    compare(f"{volume.nbytes / MIB:.0f} MiB uint16", volume, runs, repeat)
    report_kernels(volume[: 32 * MIB // (PLANE[0] * PLANE[1])], repeat)


def numpy_bincount(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """The baseline kernel: numpy's own counting of every code."""
    return np.bincount(codes.ravel(), minlength=n_codes)


def report_kernels(block: np.ndarray, repeat: int) -> None:
    print(f"\n## Counting kernel on one {block.nbytes / MIB:.0f} MiB block\n")
    print("| kernel | 1 thread GB/s | 2 threads GB/s |")
    print("|---|---|---|")
    halves = np.array_split(block, 2)
    for name, kernel in [
        ("numba, nogil (count_codes)", _kernels.count_codes),
        ("numpy.bincount", numpy_bincount),
    ]:
        single = median_seconds(lambda k=kernel: k(block, 65536), repeat)
        paired = median_seconds(
            lambda k=kernel: dask.compute(
                *(dask.delayed(k)(half, 65536) for half in halves),
                scheduler="threads",
                num_workers=2,
            ),
            repeat,
        )
        rates = block.nbytes / single / 1e9, block.nbytes / paired / 1e9
        print(f"| {name} | {rates[0]:.2f} | {rates[1]:.2f} |")


def report_float(count: int, repeat: int) -> None:
    """float32 (scaled MRI, light-sheet after flat-field): two exact passes."""
    rng = np.random.default_rng(3)
    volume = np.concatenate(
        [
            rng.normal(100.0, 30.0, (min(16, count - s), *PLANE)).astype(np.float32)
            for s in range(0, count, 16)
        ]
    )
    wrapped, _ = as_dask_array(volume)
    low, high = float(volume.min()), float(volume.max())
    histogram(volume[:1], 50)  # compile (or load) the float32 kernels before timing

    runs: dict[str, Callable[[], object]] = {
        "napari_bigvol.histogram(volume, 50)": lambda: histogram(volume, 50),
        "dask.array.histogram(range given)": lambda: da.histogram(
            wrapped, bins=50, range=(low, high)
        )[0].compute(),
        "numpy.histogram(volume, 50)": lambda: np.histogram(volume, 50),
    }
    compare(f"{volume.nbytes / MIB:.0f} MiB float32", volume, runs, repeat)


def report_preview(workdir: Path) -> None:
    store = workdir / "planes.zarr"
    stored = zarr.create_array(store, shape=(4, 2048, 2048), chunks=(1, 2048, 2048), dtype="u2")
    for index in range(4):
        stored[index] = np.tile(planes(index, index + 1)[0], (2, 2))
    lazy = da.from_zarr(zarr.open_array(store, mode="r"))
    plane = np.asarray(lazy[1])
    previews: dict[str, Callable[[], object]] = {
        "threshold_mask(plane, t)": lambda: threshold_mask(plane, 1000),
        "apply_mask(plane, threshold_mask(plane, t))": lambda: apply_mask(
            plane, threshold_mask(plane, 1000)
        ),
        "same on a lazy zarr plane, read + computed": lambda: apply_mask(
            lazy[2], threshold_mask(lazy[2], 1000)
        ).compute(),
        "histogram_stats(plane) (live histogram)": lambda: histogram_stats(plane, 50),
    }
    print("\n## Threshold preview on a 2048 x 2048 uint16 plane (median of 20)\n")
    print("| preview step | milliseconds |")
    print("|---|---|")
    for name, run in previews.items():
        print(f"| {name} | {1000 * median_seconds(run, 20):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="volume size in GiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--child-store", help=argparse.SUPPRESS)
    parser.add_argument("--child-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_store:
        measure_job_in_this_process(args.child_store, args.child_job)
        return
    count = max(PLANES_PER_CHUNK, round(args.gib * 1024 * MIB / (2 * PLANE[0] * PLANE[1])))
    nbytes = count * PLANE[0] * PLANE[1] * 2
    gb = nbytes / 1e9
    print(f"# bench_histogram: {count} x {PLANE[0]} x {PLANE[1]} uint16 = {nbytes / MIB:.0f} MiB")
    print(f"\ncpu cores: {os.cpu_count()}, load average: {os.getloadavg()}")
    histogram(np.zeros(4, np.uint16), 4)  # compile (or load the cached) kernel first
    workdir = Path(tempfile.mkdtemp(prefix="bench-histogram-"))
    try:
        write_zarr(workdir / "volume.zarr", count)
        report_memory(workdir / "volume.zarr", gb, args.repeat)
        report_in_memory(count, args.repeat)
        report_float(count // 2, args.repeat)
        report_preview(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
