"""Dock-widget latency and responsiveness, in a real napari window.

Run under a display, e.g.::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_widgets.py

Measures, with a named baseline in the same run and their ratio:

1. Histogram widget, visible slice of a 2048 x 2048 uint16 plane (lazy dask volume, one
   chunk per plane): the widget's full redraw (slice, read, exact histogram + stats, plot)
   against ``numpy.histogram`` of the same plane already in memory.
2. Threshold widget, moving the threshold on that plane: the widget's redraw plus napari
   re-slicing and painting the lazy preview layer, then the parts without painting and
   without the preview, against ``count_nonzero(plane < t)`` in numpy. Painting under
   Xvfb is software OpenGL, so the painted figures are an upper bound.
3. Responsiveness during a whole-volume histogram (2 GB uint16, generated lazily): the
   longest gap between ticks of a 10 ms QTimer while the widget's background histogram
   runs, against the same histogram computed on the GUI thread (what a blocking
   implementation would do to the event loop).
"""

from __future__ import annotations

import statistics
import time

import dask.array as da
import napari
import numpy as np
from qtpy.QtCore import QElapsedTimer, QEventLoop, QTimer
from qtpy.QtWidgets import QApplication

from napari_bigvol._models._layers import Scope
from napari_bigvol._qt.histogram_widget import HistogramWidget
from napari_bigvol._qt.threshold_widget import ThresholdMaskWidget
from napari_bigvol.ops.histogram import histogram_stats

PLANE = (2048, 2048)
REPEATS = 7


def pump(seconds: float = 0.0) -> None:
    end = time.perf_counter() + seconds
    QApplication.processEvents()
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.002)


# One random plane, offset per block: loading a block costs a GIL-free numpy add, like a
# read from the page cache, so the timings are the widgets' and not a random generator's.
BASE_PLANE = np.random.default_rng(0).integers(0, 4000, PLANE, dtype=np.uint16)


def load_plane(block_id=None):
    return (BASE_PLANE + np.uint16(block_id[0] % 64))[None]


def lazy_volume(planes: int) -> da.Array:
    return da.map_blocks(
        load_plane, chunks=((1,) * planes, (PLANE[0],), (PLANE[1],)), dtype=np.uint16
    )


def timed(action, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, ours: float, baseline_name: str, baseline: float) -> None:
    print(
        f"{name}: {ours * 1e3:.1f} ms; {baseline_name}: {baseline * 1e3:.1f} ms; "
        f"ratio ours/baseline = {ours / baseline:.2f}"
    )


def bench_slice_histogram(viewer: napari.Viewer) -> None:
    volume = lazy_volume(16)
    viewer.add_image(volume, name="volume", contrast_limits=(0, 4095))
    widget = HistogramWidget(viewer)
    viewer.window.add_dock_widget(widget)
    pump(0.5)
    plane = np.asarray(volume[8])
    viewer.dims.set_current_step(0, 8)
    pump(0.2)

    def redraw() -> None:
        widget.draw()
        QApplication.processEvents()  # paint the plot

    report(
        "Histogram widget, visible-slice redraw (2048x2048 uint16)",
        timed(redraw),
        "numpy.histogram(plane, 50) in memory",
        timed(lambda: np.histogram(plane, 50)),
    )
    report(
        "  of which histogram_stats(plane) on the read plane",
        timed(lambda: histogram_stats(plane, 50)),
        "numpy.histogram(plane, 50)",
        timed(lambda: np.histogram(plane, 50)),
    )
    viewer.window.remove_dock_widget(widget)
    widget.close()
    viewer.layers.clear()


def bench_threshold_preview(viewer: napari.Viewer) -> None:
    volume = lazy_volume(16)
    viewer.add_image(volume, name="volume", contrast_limits=(0, 4095))
    widget = ThresholdMaskWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.dims.set_current_step(0, 8)
    pump(0.5)
    plane = np.asarray(volume[8])
    thresholds = iter(np.linspace(500, 3500, 1000))

    def move() -> None:
        widget.threshold_spin.blockSignals(True)
        widget.threshold = float(next(thresholds))
        widget.threshold_spin.blockSignals(False)
        widget.draw()  # new lazy preview + the slice's count
        QApplication.processEvents()  # napari slices the preview layer and paints

    report(
        "Threshold widget, preview update on a 2048x2048 plane",
        timed(move),
        "numpy (plane < t).sum() in memory",
        timed(lambda: np.count_nonzero(plane < 2000)),
    )

    def move_without_painting() -> None:
        widget.threshold_spin.blockSignals(True)
        widget.threshold = float(next(thresholds))
        widget.threshold_spin.blockSignals(False)
        widget.draw()  # napari re-slices the preview synchronously; painting comes later

    report(
        "  of which the widget and napari's re-slice of the preview (no painting)",
        timed(move_without_painting),
        "numpy (plane < t).sum() in memory",
        timed(lambda: np.count_nonzero(plane < 2000)),
    )
    widget.preview_check.setChecked(False)
    pump(0.2)
    report(
        "  without the preview layer: the slice count only",
        timed(move_without_painting),
        "numpy (plane < t).sum() in memory",
        timed(lambda: np.count_nonzero(plane < 2000)),
    )
    widget.close()
    viewer.layers.clear()


def longest_gap_during(action_start, is_done) -> tuple[float, float]:
    """Return (longest gap between 10 ms timer ticks, duration) while an action runs."""
    clock = QElapsedTimer()
    gaps: list[int] = []
    last = [0]

    def tick() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    clock.start()
    timer.start(10)
    start = time.perf_counter()
    action_start()
    # Wait as napari's own event loop does, idle between events (no busy polling).
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: loop.quit() if is_done() else None)
    poll.start(5)
    if not is_done():
        loop.exec()
    poll.stop()
    duration = time.perf_counter() - start
    pump(0.05)
    timer.stop()
    return max(gaps) / 1e3, duration


def blocking_histogram(volume: da.Array) -> tuple[float, float]:
    """The histogram computed on the GUI thread: (longest timer gap, duration)."""
    done: list = []
    return longest_gap_during(lambda: done.append(histogram_stats(volume, 50)), lambda: bool(done))


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    gaps, durations = zip(*runs, strict=True)
    return statistics.median(gaps), statistics.median(durations)


def bench_responsiveness(viewer: napari.Viewer) -> None:
    planes = 256  # 256 x 2048 x 2048 x 2 bytes = 2 GB, generated block by block
    volume = lazy_volume(planes)
    viewer.add_image(volume, name="big", contrast_limits=(0, 4095))
    widget = HistogramWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.scope = Scope.VOLUME
    pump(0.5)
    # Warm-up (thread pools, numba's cached kernel), then the median of three runs each.
    longest_gap_during(widget.compute_button.click, lambda: not widget.tasks)
    histogram_stats(volume, 50)
    ours, blocking_runs = [], []
    for _ in range(3):
        widget.model.forget(viewer.layers["big"])
        ours.append(longest_gap_during(widget.compute_button.click, lambda: not widget.tasks))
        pump(0.2)  # the result is drawn on the next turn of the event loop
        assert widget.result is not None
        assert widget.result.stats[0].count == volume.size
        blocking_runs.append(blocking_histogram(volume))
    gap, duration = medians(ours)
    blocking_gap, blocking = medians(blocking_runs)
    print(
        f"Whole-volume histogram, 2 GB uint16: widget {duration:.2f} s with the longest "
        f"event-loop gap {gap * 1e3:.0f} ms; same histogram on the GUI thread "
        f"{blocking:.2f} s with the longest gap {blocking_gap * 1e3:.0f} ms; "
        f"gap ratio ours/blocking = {gap / blocking_gap:.3f}"
    )
    widget.close()
    viewer.layers.clear()


def main() -> None:
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1400, 900)
    bench_slice_histogram(viewer)
    bench_threshold_preview(viewer)
    bench_responsiveness(viewer)
    viewer.close()


if __name__ == "__main__":
    main()
