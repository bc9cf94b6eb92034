"""Benchmark the view cache against named baselines, on a 1 GB 2,000-slice TIFF folder.

Run (from the repository root)::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_view_cache.py \
        [--planes 2000] [--side 512] [--workdir DIR] [--folder SLICES] [--rounds 3] \
        [--only build|planes|gui] [--no-napari-3d]

It writes a folder of uint16 TIFF slices (``--planes`` of ``--side`` x ``--side``; the
defaults make 1 GB; ``--side 1024`` makes 4 GB), or uses ``--folder``, then measures, each
step in its own subprocess so that peak memory is per step:

* **build**: ``napari_bigvol.read(folder, cache=True)`` from an empty cache (64^3 chunks,
  Blosc lz4, pyramid), against *baseline* ``read(folder)`` plus ``dask.array.store`` of the
  volume (rechunked to 64 planes) into one zarr array of 64^3 chunks with the same codec
  (level 0 only), both timed after their imports; wall time, CPU time and peak RSS, the two
  alternated ``--rounds`` times (A, B, A, B, ...) and the medians compared; and the build's
  peak RSS on the first quarter of the slices, to show it is flat in volume size;
* **planes**: sagittal (``[:, :, x]``) and coronal (``[:, y, :]``) planes at five
  positions from the TIFF folder (napari-bigvol's reader, what napari reads uncached) and
  from the cache (level 0, and the first level whose plane fits a 1600 x 1200 canvas, which
  napari shows when the whole plane is in view), interleaved position by position;
* **3-D**: RSS growth and time to the first 3-D frame (``viewer.screenshot()`` after
  ``dims.ndisplay = 3``) in a real viewer, for napari's default single-scale layer
  (*baseline*), napari-bigvol's reader without a cache (budgeted lazy level) and with it;
* **GUI build**: the View cache dock's build, with a 10 ms QTimer stall probe reporting
  the longest event-loop stall while it runs.

All ratios come from the same run. The data and caches are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_tiffs(folder: Path, planes: int, side: int) -> None:
    import tifffile

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:side, :side]
    for z in range(planes):
        # Smooth structure plus noise: compresses like microscopy, not like pure noise.
        base = 2000 + 1500 * np.sin(yy / 40 + z / 30) * np.cos(xx / 35)
        plane = (base + rng.normal(0, 40, (side, side))).clip(0, 65535).astype(np.uint16)
        tifffile.imwrite(folder / f"slice_{z:04d}.tif", plane)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def step_build(folder: str) -> dict:
    from napari_bigvol import read
    from napari_bigvol.ops import view_cache  # noqa: F401  (imports out of the timing)

    start_rss = _peak_rss_mb()
    wall, cpu = time.perf_counter(), _cpu()
    read(folder, cache=True)
    return {
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": start_rss,
    }


def step_store(folder: str, target: str) -> dict:
    import dask.array as da
    import zarr

    from napari_bigvol import read
    from napari_bigvol.ops.export import _compressor
    from napari_bigvol.ops.view_cache import CACHE_COMPRESSOR

    start_rss = _peak_rss_mb()
    wall, cpu = time.perf_counter(), _cpu()
    # Timed like the build, which also starts by reading the folder's header.
    [(data, _, _)] = read(folder)
    array = zarr.create_array(
        target,
        shape=data.shape,
        chunks=(64, 64, 64),
        dtype=data.dtype,
        compressors=_compressor(CACHE_COMPRESSOR, 2),
        zarr_format=2,
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )
    da.store(data.rechunk((64, *data.shape[1:])), array, lock=False)
    return {
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": start_rss,
    }


def _canvas_level(levels, axis: int, canvas=(1200, 1600)) -> int:
    # The level napari shows a plane at when the whole plane is in view: the first whose
    # plane fits the canvas (height, width) in screen pixels.
    for index, level in enumerate(levels):
        plane = [n for a, n in enumerate(level.shape) if a != axis]
        if plane[0] <= canvas[0] and plane[1] <= canvas[1]:
            return index
    return len(levels) - 1


def step_planes(folder: str) -> dict:
    """Planes from the TIFF folder and from the cache, interleaved position by position.

    Read as napari reads them: with dask's task fusion off (napari turns it off while it
    slices, ``napari.utils._dask_utils.configure_dask``), so every dask block a plane
    crosses is read whole.
    """
    import dask

    from napari_bigvol import read

    dask.config.set({"optimization.fuse.active": False})

    [(tiff, _, _)] = read(folder)
    [(levels, _, _)] = read(folder, cache=True)
    side = tiff.shape[2]
    positions = [side // 4, side // 3 + 1, side // 2 + 1, 2 * side // 3 + 3, 3 * side // 4 + 2]
    result: dict = {"levels": [list(level.shape) for level in levels]}
    for axis, name in ((2, "sagittal"), (1, "coronal")):
        screen = _canvas_level(levels, axis)
        sources = {"tiff": tiff, "cache_level0": levels[0], "cache_screen": levels[screen]}
        result[f"{name}_screen_level"] = screen
        times: dict = {key: [] for key in sources}
        for position in positions:  # A, B, C, A, B, C, ...: the same load for each
            for key, array in sources.items():
                index = [slice(None)] * 3
                index[axis] = position * array.shape[axis] // tiff.shape[axis]
                start = time.perf_counter()
                np.asarray(array[tuple(index)])
                times[key].append(time.perf_counter() - start)
        for key, values in times.items():
            result[f"{name}_{key}"] = statistics.median(values)
            result[f"{name}_{key}_all"] = values
    return result


def step_viewer_planes(folder: str, uncached_cache: str, cached_cache: str) -> dict:
    """Sagittal steps in a real viewer: the same folder opened uncached and cache-backed.

    napari slices synchronously when ``dims`` change: the time of ``set_current_step`` is
    the plane's read at the level napari picks for the canvas, the time of the following
    ``screenshot`` is the draw. The two layers alternate step by step.
    """
    import napari

    viewer = napari.Viewer(show=True)
    layers = {}
    for name, cache in (("tiff", uncached_cache), ("cache", cached_cache)):
        os.environ["NAPARI_BIGVOL_CACHE"] = cache
        [layer] = viewer.open(folder, plugin="napari-bigvol")
        layer.visible = False
        layers[name] = layer
    assert "view_cache" in layers["cache"].metadata["bigvol"]
    assert "view_cache" not in layers["tiff"].metadata["bigvol"]
    viewer.dims.order = (2, 0, 1)  # sagittal: z up, y across
    viewer.reset_view()
    side = int(layers["tiff"].level_shapes[0][2])
    times: dict = {f"{name}_{part}": [] for name in layers for part in ("slice", "draw")}
    for position in (side // 4, side // 3 + 1, side // 2 + 1, 2 * side // 3 + 3):
        for name, layer in layers.items():
            for other in layers.values():
                other.visible = other is layer
            viewer.dims.set_current_step(2, position - 1)
            viewer.screenshot()
            start = time.perf_counter()
            viewer.dims.set_current_step(2, position)
            sliced = time.perf_counter()
            viewer.screenshot()
            times[f"{name}_slice"].append(sliced - start)
            times[f"{name}_draw"].append(time.perf_counter() - sliced)
    levels = {name: layer.data_level for name, layer in layers.items()}
    viewer.close()
    return {
        **{key: statistics.median(values) for key, values in times.items()},
        "levels": levels,
    }


def step_3d(folder: str, mode: str, chunk_cache: str = "on") -> dict:
    import napari
    import psutil
    from napari.utils import resize_dask_cache

    from napari_bigvol import read
    from napari_bigvol.ops.view_cache import budget_3d

    process = psutil.Process()
    viewer = napari.Viewer(show=True)
    if chunk_cache == "off":  # napari's dask chunk cache (Preferences: 1/4 of RAM) off
        resize_dask_cache(0)
    if mode == "napari_single_scale":
        [(data, kwargs, _)] = read(folder)
        layer = viewer.add_image(data, **kwargs)
    else:  # the napari-bigvol reader: cache-backed when a cache exists, budgeted 3-D level
        [layer] = viewer.open(folder, plugin="napari-bigvol")
    viewer.screenshot()
    before = process.memory_info().rss
    start = time.perf_counter()
    viewer.dims.ndisplay = 3
    viewer.screenshot()  # forces the first 3-D frame to render
    elapsed = time.perf_counter() - start
    growth = process.memory_info().rss - before
    shown = np.asarray(layer._slice.image.raw)
    viewer.close()
    return {
        "first_3d_frame_s": elapsed,
        "rss_growth_mb": growth / 2**20,
        "shown_shape": list(shown.shape),
        "shown_mb": shown.nbytes / 2**20,
        "budget_mb": budget_3d() / 2**20,
    }


def step_gui_build(folder: str, build: str = "yes") -> dict:
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_bigvol._qt.view_cache_widget import ViewCacheWidget

    viewer = napari.Viewer(show=True)
    [layer] = viewer.open(folder, plugin="napari-bigvol")
    widget = ViewCacheWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.screenshot()
    gaps = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    viewer.layers.selection.active = layer
    start = time.perf_counter()
    timer.start()
    app = QApplication.instance()
    if build == "yes":
        task = widget.build()
        while not task.is_finished:
            app.processEvents()
            time.sleep(0.002)
    else:  # the baseline: the same viewer idle, for as long as a build takes
        end = time.perf_counter() + float(build)
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)
    # The switch happens in the outcome callback; keep probing through the next frames.
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
    timer.stop()
    elapsed = time.perf_counter() - start
    switched = "view_cache" in viewer.layers[0].metadata["bigvol"]
    viewer.close()
    return {
        "wall": elapsed,
        "outcome": task.outcome if build == "yes" else "idle",
        "switched": switched,
        "max_stall_ms": max(gaps) * 1000,
        "stalls_over_100ms": sum(g > 0.1 for g in gaps),
        "ticks": len(gaps),
    }


def run_step(step: str, *args: str, env: dict | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--step", step, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if result.returncode:
        raise RuntimeError(f"{step} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--planes", type=int, default=2000)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--step", default=None)
    parser.add_argument(
        "--folder", default=None, help="an existing folder of slices to use (kept)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="build/store alternations")
    parser.add_argument(
        "--only",
        choices=["gui", "build", "planes"],
        default=None,
        help="run only the GUI stall measurement, the build comparison, or build and planes",
    )
    parser.add_argument(
        "--no-napari-3d",
        action="store_true",
        help="skip napari's single-scale 3-D baseline (it loads the whole volume: 17 GiB at 4 GB)",
    )
    parser.add_argument("args", nargs="*")
    options = parser.parse_args()
    if options.step:
        function = globals()[f"step_{options.step}"]
        print(json.dumps(function(*options.args)))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-view-cache-", dir=options.workdir))
    try:
        folder = Path(options.folder) if options.folder else work / "slices"
        start = time.perf_counter()
        if not options.folder:
            make_tiffs(folder, options.planes, options.side)
        quarter = work / "quarter"
        quarter.mkdir()
        for path in sorted(folder.iterdir())[: options.planes // 4]:
            os.link(path, quarter / path.name)
        size = options.planes * options.side**2 * 2
        print(
            f"# {options.planes} slices of {options.side}^2 uint16 = {size / 1e9:.2f} GB "
            f"(written in {time.perf_counter() - start:.0f} s)"
        )
        cache = {"NAPARI_BIGVOL_CACHE": str(work / "cache")}
        results: dict = {"load_before": os.getloadavg()}
        gui = {"NAPARI_BIGVOL_CACHE": str(work / "gui-cache")}
        if options.only == "gui":
            results["gui_build"] = run_step("gui_build", str(folder), env=gui)
            idle = str(results["gui_build"]["wall"])
            results["gui_idle"] = run_step("gui_build", str(folder), idle, env=gui)
            report_gui(results)
            return
        # Alternate the two on a shared and loaded machine (A, B, A, B, ...); medians.
        for round_ in range(options.rounds):
            store = run_step("store", str(folder), str(work / "store.zarr"))
            shutil.rmtree(work / "store.zarr")
            shutil.rmtree(work / "cache", ignore_errors=True)
            build = run_step("build", str(folder), env=cache)
            results[f"store_{round_}"], results[f"build_{round_}"] = store, build
        for kind in ("store", "build"):
            runs = [results[f"{kind}_{r}"] for r in range(options.rounds)]
            results[kind] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        results["load_after_build"] = os.getloadavg()
        if options.only == "build":
            report(results)
            return
        results["planes"] = run_step("planes", str(folder), env=cache)
        empty = {"NAPARI_BIGVOL_CACHE": str(work / "no-cache")}
        results["viewer_planes"] = run_step(
            "viewer_planes", str(folder), str(work / "no-cache"), str(work / "cache")
        )
        results["load_after_planes"] = os.getloadavg()
        if options.only == "planes":
            report(results)
            return
        results["build_quarter"] = run_step("build", str(quarter), env=cache)
        if not options.no_napari_3d:
            results["3d_napari"] = run_step("3d", str(folder), "napari_single_scale", env=empty)
        results["3d_uncached"] = run_step("3d", str(folder), "bigvol", env=empty)
        results["3d_uncached_no_chunk_cache"] = run_step(
            "3d", str(folder), "bigvol", "off", env=empty
        )
        results["3d_cached"] = run_step("3d", str(folder), "bigvol", env=cache)
        results["gui_build"] = run_step("gui_build", str(folder), env=gui)
        idle = str(results["gui_build"]["wall"])
        results["gui_idle"] = run_step("gui_build", str(folder), idle, env=gui)
        report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict) -> None:
    print(json.dumps(results, indent=1))
    build, store = results["build"], results["store"]
    print(f"\nload average before: {results['load_before']}")
    print("\n## Cache build vs dask.array.store (same volume, codec, 64^3 chunks)")
    rounds = sorted(
        int(k.split("_")[1]) for k in results if k.startswith("build_") and k[6:].isdigit()
    )
    for round_ in rounds:
        b, st = results[f"build_{round_}"], results[f"store_{round_}"]
        print(f"round {round_}: store {st['wall']:.1f} s, build {b['wall']:.1f} s")
    print(
        f"cache build (median): {build['wall']:.1f} s wall, {build['cpu']:.1f} s CPU, "
        f"peak RSS {build['peak_rss_mb']:.0f} MB"
    )
    print(
        f"dask store (median) : {store['wall']:.1f} s wall, {store['cpu']:.1f} s CPU, "
        f"peak RSS {store['peak_rss_mb']:.0f} MB"
    )
    print(
        f"speed ratio (store time / build time): {store['wall'] / build['wall']:.2f}x wall, "
        f"{store['cpu'] / build['cpu']:.2f}x CPU"
    )
    print(f"load average after the builds: {results['load_after_build']}")
    if "planes" not in results:
        return
    planes = results["planes"]
    print(f"\n## Planes (median of 5 positions, interleaved); levels {planes['levels']}")
    for axis in ("sagittal", "coronal"):
        tiff = planes[f"{axis}_tiff"]
        for level in ("cache_level0", "cache_screen"):
            cached = planes[f"{axis}_{level}"]
            label = level if level == "cache_level0" else f"level {planes[f'{axis}_screen_level']}"
            print(
                f"{axis}: TIFF folder {tiff * 1000:.0f} ms, {label} {cached * 1000:.0f} ms "
                f"-> {tiff / cached:.0f}x"
            )
    viewer = results["viewer_planes"]
    print(
        f"in a viewer (sagittal step, levels {viewer['levels']}): TIFF folder "
        f"{viewer['tiff_slice'] * 1000:.0f} ms slice + {viewer['tiff_draw'] * 1000:.0f} ms "
        f"draw, cache {viewer['cache_slice'] * 1000:.0f} ms slice + "
        f"{viewer['cache_draw'] * 1000:.0f} ms draw -> "
        f"{viewer['tiff_slice'] / viewer['cache_slice']:.0f}x (slice)"
    )
    print(f"load average after the planes: {results['load_after_planes']}")
    if "build_quarter" not in results:
        return
    quarter = results["build_quarter"]
    print(
        f"build peak RSS, quarter volume: {quarter['peak_rss_mb']:.0f} MB; full volume: "
        f"{build['peak_rss_mb']:.0f} MB"
    )
    print("\n## 3-D switch")
    for name in ("3d_napari", "3d_uncached", "3d_uncached_no_chunk_cache", "3d_cached"):
        if name not in results:
            continue
        r = results[name]
        print(
            f"{name}: first frame {r['first_3d_frame_s']:.2f} s, RSS growth "
            f"{r['rss_growth_mb']:.0f} MB, level shown {r['shown_shape']} "
            f"({r['shown_mb']:.0f} MB; budget {r['budget_mb']:.0f} MB)"
        )
    report_gui(results)


def report_gui(results: dict) -> None:
    for name in ("gui_build", "gui_idle"):
        gui = results[name]
        print(
            f"\n## {name}: {gui['wall']:.1f} s, {gui['outcome']}, switched={gui['switched']}, "
            f"max event-loop stall {gui['max_stall_ms']:.0f} ms "
            f"({gui['stalls_over_100ms']} over 100 ms in {gui['ticks']} ticks)"
        )


if __name__ == "__main__":
    main()
