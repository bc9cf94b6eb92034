"""Reader benchmarks: open time, plane-read overhead, first frame, scrolling and memory.

Every figure is printed beside its baselines, measured in the same run, with ratios:

1. **Open time** of a folder of ``--files`` 512x512 uint16 TIFF slices (a glob, as the
   peers take one) with ``napari_bigvol.read`` vs ``dask.array.image.imread`` and
   ``dask_image.imread.imread``.
2. **Random-plane read overhead**: ``data[k].compute()`` minus a direct
   ``tifffile.imread`` of file ``k``, beside a bare ``da.map_blocks`` plane (the floor
   dask itself costs) and a ``dask_image`` plane.
3. **In a real napari viewer** (needs a display; use ``xvfb-run``): time to the first
   rendered frame and per-slice time while stepping ``viewer.dims.current_step``
   through every slice (a synchronous ``repaint()`` per step), for napari-bigvol, the
   same stack held in memory as numpy, and napari's built-in folder reader; peak RSS
   while scrolling, with napari's dask cache on (its default, 25 % of RAM) and off.
4. The same first-frame and scroll figures for a ``.nii``, a ``.nii.gz`` and a zarr
   volume written here, opened with ``napari_bigvol.read``, beside numpy in memory.

Run::

    xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python benchmarks/bench_readers.py

``--data DIR`` keeps (and reuses) the generated files in ``DIR``; by default they go to
a temporary folder that is deleted at the end. ``--no-viewer`` skips parts 3 and 4.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import psutil
import tifffile

import napari_bigvol
from napari_bigvol.io._paths import expand_glob

PROCESS = psutil.Process()


def make_folder(folder: Path, files: int, size: int) -> list[Path]:
    """Write ``files`` uint16 slices (a smooth blob plus noise), unless already there."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"Synthesized_FLASH25_Axial_{index}.tiff" for index in range(files)]
    if all(path.exists() for path in paths):
        return paths
    rng = np.random.default_rng(0)
    y, x = np.ogrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    for index, path in enumerate(paths):
        z = 2 * index / max(files - 1, 1) - 1
        blob = np.clip(1.1 - np.sqrt(x**2 + y**2 + z**2), 0, None) * 20000
        plane = (blob + rng.integers(0, 500, (size, size))).astype(np.uint16)
        tifffile.imwrite(path, plane, resolution=(100, 100), resolutionunit="CENTIMETER")
    return paths


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``function`` over ``repeats`` calls (ms), and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return median_ms(times), result


def row(label: str, value: float, baseline: float | None = None, unit: str = "ms") -> str:
    ratio = f"{value / baseline:.2f}x" if baseline else ""
    return f"| {label} | {value:.2f} {unit} | {ratio} |"


def bench_open(pattern: str, repeats: int) -> list[str]:
    from dask.array.image import imread as dask_array_imread
    from dask_image.imread import imread as dask_image_imread

    ours, _ = timed(lambda: napari_bigvol.read(pattern), repeats)
    listing, _ = timed(lambda: expand_glob(pattern), repeats)
    dask_array, _ = timed(lambda: dask_array_imread(pattern), repeats)
    dask_image, _ = timed(lambda: dask_image_imread(pattern), repeats)
    return [
        "| open (glob) | median | ratio to napari-bigvol's |",
        "|---|---|---|",
        row("napari_bigvol.read", ours),
        row("  of which glob + natural sort (io._paths.expand_glob)", listing, ours),
        row("dask.array.image.imread", dask_array, ours),
        row("dask_image.imread.imread", dask_image, ours),
        "",
        f"napari-bigvol / dask.array.image.imread = {ours / dask_array:.2f}, "
        f"napari-bigvol / dask_image = {ours / dask_image:.2f}",
    ]


class _BareLoader:
    """The thinnest possible per-file dask task: the floor dask itself costs."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __call__(self, block_id: tuple[int, ...]) -> np.ndarray:
        return tifffile.imread(self.files[block_id[0]])[np.newaxis]


def bench_plane_reads(paths: list[Path], samples: int) -> list[str]:
    from dask_image.imread import imread as dask_image_imread

    [(ours, _, _)] = napari_bigvol.read(str(paths[0].parent))
    first = tifffile.imread(paths[0])
    bare = da.map_blocks(
        _BareLoader(paths),
        chunks=((1,) * len(paths), (first.shape[0],), (first.shape[1],)),
        dtype=first.dtype,
        meta=np.empty((0, 0, 0), first.dtype),
    )
    dask_image = dask_image_imread(str(paths[0].parent / "*.tiff"))
    # dask_image sorts names lexically: map our natural-order plane to its position.
    lexical = sorted(range(len(paths)), key=lambda p: str(paths[p]))
    position = {plane: index for index, plane in enumerate(lexical)}
    rng = random.Random(1)
    times: dict[str, list[float]] = {"direct": [], "ours": [], "bare": [], "dask_image": []}
    for _ in range(samples):
        plane = rng.randrange(len(paths))
        readers = {
            "direct": lambda plane=plane: tifffile.imread(paths[plane]),
            "ours": lambda plane=plane: ours[plane].compute(),
            "bare": lambda plane=plane: bare[plane].compute(),
            "dask_image": lambda plane=plane: dask_image[position[plane]].compute(),
        }
        for name, read in readers.items():
            start = time.perf_counter()
            read()
            times[name].append(time.perf_counter() - start)
    direct = median_ms(times["direct"])
    lines = [
        f"| random plane ({samples} samples) | median | overhead over tifffile.imread |",
        "|---|---|---|",
        row("tifffile.imread(file k)", direct),
    ]
    for label, key in [
        ("napari-bigvol data[k].compute()", "ours"),
        ("bare da.map_blocks(tifffile.imread)", "bare"),
        ("dask_image.imread(...)[k].compute()", "dask_image"),
    ]:
        value = median_ms(times[key])
        lines.append(f"| {label} | {value:.2f} ms | +{value - direct:.2f} ms |")
    return lines


# --- viewer ------------------------------------------------------------------------------


@contextmanager
def dask_cache(enabled: bool) -> Iterator[None]:
    """napari's opportunistic dask cache on (its default size) or off."""
    from napari.settings import get_settings

    settings = get_settings().application.dask
    before = settings.enabled
    settings.enabled = enabled
    try:
        yield
    finally:
        settings.enabled = before


class ViewerBench:
    """Times first frames and scrolling in one real napari window."""

    def __init__(self) -> None:
        import napari
        from qtpy.QtWidgets import QApplication

        self.viewer = napari.Viewer(show=True)
        self.viewer.window._qt_window.resize(1000, 800)
        self.app = QApplication.instance()
        self.canvas = self.viewer.window._qt_viewer.canvas.native
        self.settle()

    def settle(self) -> None:
        self.app.processEvents()
        self.canvas.repaint()  # a synchronous paint: the frame is on screen when it returns
        self.app.processEvents()

    def first_frame(self, open_layers: Callable[[Any], Any]) -> float:
        self.viewer.layers.clear()
        gc.collect()
        start = time.perf_counter()
        open_layers(self.viewer)
        self.settle()
        return (time.perf_counter() - start) * 1e3

    def scroll(self, steps: range) -> tuple[list[float], int]:
        """Step through ``steps`` of axis 0; per-step times (s) and peak RSS (bytes)."""
        peak = PROCESS.memory_info().rss
        times = []
        for count, index in enumerate(steps):
            start = time.perf_counter()
            self.viewer.dims.set_current_step(0, index)
            self.canvas.repaint()
            times.append(time.perf_counter() - start)
            if count % 10 == 0:
                peak = max(peak, PROCESS.memory_info().rss)
        self.app.processEvents()
        return times, max(peak, PROCESS.memory_info().rss)

    def close(self) -> None:
        self.viewer.close()


def add_bigvol(path: str | list[str]) -> Callable[[Any], Any]:
    """What drag-and-drop does: napari_bigvol.read, then add each layer."""

    def open_layers(viewer: Any) -> None:
        for data, kwargs, layer_type in napari_bigvol.read(path):
            getattr(viewer, f"add_{layer_type}")(data, **kwargs)

    return open_layers


Case = tuple[Callable[[Any], Any], bool]  # (open the layers, napari dask cache on)


def timing_rows(bench: ViewerBench, cases: dict[str, Case], rounds: int) -> list[str]:
    """First frame and per-slice times, the cases interleaved in ``rounds``.

    Each round reopens every case and scrolls the next block of slices, so over all
    rounds each case visits every slice once, and load from other processes on the
    machine falls on all cases alike.
    """
    first: dict[str, list[float]] = {label: [] for label in cases}
    steps: dict[str, list[float]] = {label: [] for label in cases}
    for round_index in range(rounds):
        for label, (open_layers, cache) in cases.items():
            with dask_cache(cache):
                first[label].append(bench.first_frame(open_layers))
                count = bench.viewer.dims.nsteps[0]
                block = range(round_index * count // rounds, (round_index + 1) * count // rounds)
                times, _ = bench.scroll(block)
            steps[label].extend(times)
            bench.viewer.layers.clear()
            gc.collect()
    lines = [
        "| source | first frame (median) | per slice (median) | p95 | vs numpy |",
        "|---|---|---|---|---|",
    ]
    baseline = median_ms(next(iter(steps.values())))  # the first case is numpy
    for label in cases:
        per_slice = median_ms(steps[label])
        lines.append(
            f"| {label} | {statistics.median(first[label]):.0f} ms | {per_slice:.2f} ms | "
            f"{np.percentile(steps[label], 95) * 1e3:.2f} ms | {per_slice / baseline:.2f}x |"
        )
    return lines


def folder_cases(folder: str, in_memory: np.ndarray | None = None) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    if in_memory is not None:
        limits = (float(in_memory.min()), float(in_memory.max()))
        cases["numpy in memory"] = (lambda v: v.add_image(in_memory, contrast_limits=limits), True)
    cases["napari-bigvol"] = (add_bigvol(folder), True)
    cases["napari-bigvol, napari dask cache off"] = (add_bigvol(folder), False)
    cases["napari built-in reader"] = (lambda v: v.open(folder, plugin="napari"), True)
    return cases


def rss_row(label: str, source: str, shown_as: str | None = None) -> str:
    """Peak RSS while scrolling every slice, measured in a fresh process."""
    result = subprocess.run(
        [sys.executable, __file__, "--rss-case", label, "--rss-source", source],
        capture_output=True,
        text=True,
        check=True,
    )
    before, peak, after = json.loads(result.stdout.strip().splitlines()[-1])
    return (
        f"| {shown_as or label} | {before / 2**20:.0f} MiB | {peak / 2**20:.0f} MiB | "
        f"+{(peak - before) / 2**20:.0f} MiB | {after / 2**20:.0f} MiB |"
    )


def measure_rss(label: str, source: str) -> None:
    """Child process of :func:`rss_row`: open, scroll through every slice, print RSS."""
    open_layers, cache = folder_cases(source)[label]  # the openers are lazy closures
    bench = ViewerBench()
    with dask_cache(cache):
        bench.first_frame(open_layers)
        before = PROCESS.memory_info().rss
        _, peak = bench.scroll(range(bench.viewer.dims.nsteps[0]))
    after = PROCESS.memory_info().rss
    bench.close()
    print(json.dumps([before, peak, after]))


RSS_HEADER = [
    "| source | RSS after first frame | peak while scrolling all | growth | at the end |",
    "|---|---|---|---|---|",
]


def bench_viewer_folder(bench: ViewerBench, paths: list[Path], rounds: int) -> list[str]:
    folder = str(paths[0].parent)
    in_memory = np.stack([tifffile.imread(p) for p in paths])
    lines = timing_rows(bench, folder_cases(folder, in_memory), rounds)
    lines += ["", *RSS_HEADER]
    lines += [rss_row(label, folder) for label in folder_cases(folder)]
    return lines


def write_volumes(folder: Path, shape: tuple[int, int, int]) -> dict[str, str]:
    """A .nii, a .nii.gz and a zarr array holding the same uint16 volume."""
    import nibabel as nib
    import zarr

    volume = np.random.default_rng(2).integers(0, 4000, shape, dtype=np.uint16)
    paths = {
        ".nii": folder / "volume.nii",
        ".nii.gz": folder / "volume.nii.gz",
        "zarr": folder / "volume.zarr",
    }
    # NIfTI stores x fastest; give it (x, y, z) so the reader's axial planes are 2-D slices.
    image = nib.Nifti1Image(np.ascontiguousarray(volume.T), np.diag([0.5, 0.5, 0.5, 1]))
    for key in (".nii", ".nii.gz"):
        if not paths[key].exists():
            nib.save(image, paths[key])
    if not paths["zarr"].exists():
        store = zarr.create_array(
            paths["zarr"], shape=shape, chunks=(1, *shape[1:]), dtype=np.uint16
        )
        store[:] = volume
    return {key: str(path) for key, path in paths.items()}


def bench_viewer_formats(
    bench: ViewerBench, folder: Path, shape: tuple[int, ...], rounds: int
) -> list[str]:
    paths = write_volumes(folder, shape)
    cases: dict[str, Case] = {}
    available = {}
    for key, path in paths.items():
        try:
            [(data, _, _)] = napari_bigvol.read(path)
        except NotImplementedError:  # that reader is not written yet
            continue
        available[key] = path
        if not cases:
            in_memory = np.asarray(data[0] if isinstance(data, list) else data)
            cases["numpy in memory"] = (lambda v, a=in_memory: v.add_image(a), True)
        cases[f"napari-bigvol {key}"] = (add_bigvol(path), True)
    if not cases:
        return ["(no other readers available)"]
    lines = timing_rows(bench, cases, rounds)
    lines += ["", *RSS_HEADER]
    lines += [
        rss_row("napari-bigvol, napari dask cache off", path, f"napari-bigvol {key}, cache off")
        for key, path in available.items()
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--volume", type=int, nargs=3, default=(200, 512, 512))
    parser.add_argument("--data", type=Path, help="keep and reuse generated files here")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--no-viewer", action="store_true")
    parser.add_argument("--rss-case", help=argparse.SUPPRESS)
    parser.add_argument("--rss-source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_case:
        measure_rss(args.rss_case, args.rss_source)
        return

    folder = args.data or Path(tempfile.mkdtemp(prefix="bench_readers_"))
    try:
        start = time.perf_counter()
        paths = make_folder(folder / "slices", args.files, args.size)
        print(f"{args.files} slices of {args.size}x{args.size} uint16 in {folder} "
              f"({time.perf_counter() - start:.1f} s to write or find)\n")  # fmt: skip
        pattern = str(folder / "slices" / "*.tiff")
        print("\n".join(bench_open(pattern, args.repeats)), "\n")
        print("\n".join(bench_plane_reads(paths, args.samples)), "\n")
        if not args.no_viewer:
            bench = ViewerBench()
            try:
                print(f"Viewer, {args.files} slices of {args.size}x{args.size} uint16:")
                print("\n".join(bench_viewer_folder(bench, paths, args.rounds)), "\n")
                shape = tuple(args.volume)
                print(f"Viewer, other formats, volume {shape} uint16:")
                print("\n".join(bench_viewer_formats(bench, folder, shape, args.rounds)))
            finally:
                bench.close()
    finally:
        if args.data is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
