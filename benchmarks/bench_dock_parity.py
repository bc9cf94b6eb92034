"""Whole-volume histogram: the Histogram dock against the same scripted call, same run.

A folder of TIFF slices (512 x 512 uint16, written to a temporary folder and deleted at
the end) is opened with ``napari_bigvol.read`` and added to a real napari window. Each
round times, on the same data:

* **script**: ``histogram_stats(data, bins, percentiles=...)`` called on the main thread
  with the Qt event loop not running, as in a script or the napari console;
* **dock**: a click on the Histogram dock's *Compute whole volume*, until its result
  arrives, with the event loop idling in between as napari's does;
* **dock, old progress bar**: the same with the runner's settings before the fix (an
  indeterminate bar until the first report, 10 updates a second).

Rounds alternate the arms so that the machine's load hits them alike; the best of the
rounds is reported with the ratio dock/script (the target is at most 1.3), and the
process CPU time of each arm (user + system, all threads), which a loaded machine
distorts less than wall time.

Run under a display::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_dock_parity.py
    xvfb-run -a ... benchmarks/bench_dock_parity.py --files 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
import tifffile
from qtpy.QtCore import QEventLoop, QTimer

import napari_bigvol
from napari_bigvol._qt import _runner
from napari_bigvol._qt.base import Scope
from napari_bigvol._qt.histogram_widget import HistogramWidget
from napari_bigvol.ops.histogram import histogram_stats


def write_folder(folder: Path, files: int) -> None:
    """``files`` camera-like 12-bit slices: one random plane, rolled per slice."""
    base = np.random.default_rng(0).integers(0, 4096, (512, 512), dtype=np.uint16)
    for index in range(files):
        tifffile.imwrite(folder / f"slice_{index:04d}.tif", np.roll(base, index, axis=0))


def wait_until(is_done) -> None:
    """Run the Qt event loop, idle between events, until ``is_done()``."""
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: loop.quit() if is_done() else None)
    poll.start(50)
    if not is_done():
        loop.exec()
    poll.stop()


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def timed(action) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``action()``."""
    cpu, start = cpu_seconds(), time.perf_counter()
    action()
    return time.perf_counter() - start, cpu_seconds() - cpu


def run_dock(widget: HistogramWidget) -> None:
    widget._cache.clear()
    widget.compute_button.click()
    wait_until(lambda: not widget.tasks)
    assert widget.result is not None


def run_dock_with_old_bar(widget: HistogramWidget) -> None:
    settings = _runner._INITIAL_TOTAL, _runner.PROGRESS_INTERVAL
    _runner._INITIAL_TOTAL, _runner.PROGRESS_INTERVAL = 0, 0.1
    try:
        run_dock(widget)
    finally:
        _runner._INITIAL_TOTAL, _runner.PROGRESS_INTERVAL = settings


def run_script(data, widget: HistogramWidget) -> None:
    settings = widget.settings()
    histogram_stats(
        data,
        settings.bins,
        exclude_zeros=settings.exclude_zeros,
        percentiles=settings.percentiles,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="TIFF slices (512 KiB each)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-dock-"))
    try:
        write_folder(workdir, args.files)
        [(data, kwargs, _)] = napari_bigvol.read(str(workdir))
        viewer = napari.Viewer()
        viewer.add_image(data, **kwargs)
        widget = HistogramWidget(viewer)
        viewer.window.add_dock_widget(widget)
        widget.scope = Scope.VOLUME
        wait_until(lambda: True)
        arms = {
            "script histogram_stats": lambda: run_script(data, widget),
            "Histogram dock": lambda: run_dock(widget),
            "dock, old progress bar": lambda: run_dock_with_old_bar(widget),
        }
        for action in arms.values():  # warm-up: page cache, thread pools, numba
            action()
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in arms}
        for _ in range(args.rounds):
            for name, action in arms.items():
                runs[name].append(timed(action))
        gigabytes = data.nbytes / 1e9
        best = {name: min(wall for wall, _ in values) for name, values in runs.items()}
        cpu = {name: min(used for _, used in values) for name, values in runs.items()}
        print(
            f"{args.files} TIFF slices, {gigabytes:.2f} GB; best of {args.rounds}, "
            f"load average {os.getloadavg()[0]:.1f}:"
        )
        for name in arms:
            print(
                f"  {name:24s} {best[name]:.2f} s ({gigabytes / best[name]:.2f} GB/s), "
                f"CPU {cpu[name]:.2f} s; all rounds "
                f"{[round(wall, 2) for wall, _ in runs[name]]}"
            )
        script = best["script histogram_stats"]
        print(
            f"  ratio dock/script = {best['Histogram dock'] / script:.2f} (target <= 1.3); "
            f"old bar/script = {best['dock, old progress bar'] / script:.2f}; CPU ratios "
            f"{cpu['Histogram dock'] / cpu['script histogram_stats']:.2f} and "
            f"{cpu['dock, old progress bar'] / cpu['script histogram_stats']:.2f}"
        )
        widget.close()
        viewer.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
