"""Orthogonal views on a 4 GiB OME-Zarr pyramid: latency and chunk reads per click.

Run under a display, e.g.::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_ortho.py

Writes a 1024 x 2048 x 2048 uint8 volume (4 GiB; a smooth, quantised pattern that
compresses to about 150 MB) with napari-bigvol's ``export_zarr`` (64-voxel cubes, a
pyramid), opens it in a real napari window with the Orthogonal views dock, and clicks at
random points in each view through vispy's mouse events, with napari's dask cache off
(every plane shown is read from disk). It reports, per kind of click, the median and the
longest time until all three views are sliced, and the chunk files opened. Baselines in
the same run: one step of the main slider in the same window without the dock, and the
side plane read at full resolution (level 0) with zarr, what a viewer without a pyramid
would read. The volume is deleted afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import dask.array as da
import napari
import numpy as np
import zarr
from napari.settings import get_settings
from qtpy.QtWidgets import QApplication

import napari_bigvol
from napari_bigvol._qt.ortho_widget import OrthogonalViewsWidget

CHUNK = 64


def pattern_block(block_info=None) -> np.ndarray:
    """A smooth pattern with structure at every scale, quantised so that it compresses."""
    info = block_info[None]
    (z0, z1), (y0, y1), (x0, x1) = info["array-location"]
    z, y, x = np.ogrid[z0:z1, y0:y1, x0:x1]
    wave = np.sin(z / 37.0) * np.cos(y / 23.0) * np.sin(x / 29.0) * 100 + 128
    return (wave // 16 * 16).astype(np.uint8)


class ChunkOpens:
    """Counts files opened below a folder (Python's audit ``open`` event)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.opened: Counter[str] = Counter()
        self.active = False
        self._lock = threading.Lock()
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        path = args[0] if event == "open" and args else None
        if self.active and isinstance(path, str) and path.startswith(self.root):
            with self._lock:
                self.opened[path] += 1

    def count(self, action) -> tuple[float, int]:
        self.opened.clear()
        self.active = True
        start = time.perf_counter()
        action()
        elapsed = time.perf_counter() - start
        self.active = False
        return elapsed, sum(self.opened.values())


def pump(rounds: int = 5) -> None:
    for _ in range(rounds):
        QApplication.processEvents()


def click(canvas, world_row_col) -> None:
    """A left click at a world (row, col) of a napari canvas, through vispy's events."""
    transform = canvas.view.transform * canvas.view.scene.transform
    x, y = transform.map([world_row_col[1], world_row_col[0]])[:2]
    events = canvas._scene_canvas.events
    events.mouse_press(pos=(x, y), button=1, modifiers=())
    events.mouse_release(pos=(x, y), button=1, modifiers=())


def summary(name: str, samples: list[tuple[float, int]]) -> tuple[float, float, float]:
    times = [t for t, _ in samples]
    reads = statistics.median([n for _, n in samples])
    median, longest = statistics.median(times), max(times)
    print(
        f"{name}: median {median * 1e3:.0f} ms, longest {longest * 1e3:.0f} ms, "
        f"median {reads:.0f} chunk files opened"
    )
    return median, longest, reads


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(1024, 2048, 2048))
    parser.add_argument("--clicks", type=int, default=12)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(dir=args.workdir))
    store = workdir / "volume.ome.zarr"
    try:
        volume = da.map_blocks(
            pattern_block,
            chunks=tuple((CHUNK,) * (n // CHUNK) for n in args.shape),
            dtype=np.uint8,
        )
        start = time.perf_counter()
        napari_bigvol.export_zarr(volume, store, scale=(1.0, 0.5, 0.5), contrast_limits=(0, 255))
        size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
        print(
            f"wrote {volume.nbytes / 2**30:.1f} GiB as {size / 2**20:.0f} MiB of OME-Zarr "
            f"in {time.perf_counter() - start:.0f} s"
        )
        measure(store, args.clicks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(store: Path, clicks: int) -> None:
    get_settings().application.dask.enabled = False  # cold reads: every plane from disk
    opens = ChunkOpens(store)
    rng = np.random.default_rng(0)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1400, 900)
    [layer] = viewer.open(str(store), plugin="napari-bigvol")
    pump(20)
    extent = layer.extent.world
    low, high = extent[0], extent[1]

    def random_point() -> np.ndarray:
        return low + (high - low) * rng.uniform(0.1, 0.9, 3)

    # Baseline 1: one step of the main slider without the dock.
    steps = [
        opens.count(lambda: viewer.dims.set_point(0, random_point()[0])) for _ in range(clicks)
    ]
    main_alone = summary("baseline, main slider step without the dock", steps)

    widget = OrthogonalViewsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Orthogonal views")
    pump(20)
    results = {}
    for name, panel in (("click in the z-x view", 0), ("click in the z-y view", 1)):
        canvas = widget.panels[panel].qt_viewer.canvas
        rows, cols = widget.panels[panel].plane.displayed

        def side_click(canvas=canvas, rows=rows, cols=cols) -> None:
            point = random_point()
            click(canvas, (point[rows], point[cols]))

        results[name] = summary(name, [opens.count(side_click) for _ in range(clicks)])
    main_canvas = viewer.window._qt_viewer.canvas

    def main_click() -> None:
        point = random_point()
        click(main_canvas, (point[1], point[2]))

    results["click in the main view"] = summary(
        "click in the main view", [opens.count(main_click) for _ in range(clicks)]
    )
    results["main slider step"] = summary(
        "main slider step with the dock",
        [opens.count(lambda: viewer.dims.set_point(0, random_point()[0])) for _ in range(clicks)],
    )
    levels = [widget.panels[i].viewer_model.layers[0].data_level for i in (0, 1)]
    print(f"side views displayed pyramid levels {levels}")

    # Baseline 2: the side plane at full resolution, straight from zarr (no pyramid).
    level0 = zarr.open_array(store / "0", mode="r")

    def full_plane() -> None:
        y = int(rng.integers(0, level0.shape[1]))
        np.asarray(level0[:, y, :])

    full = summary(
        "baseline, a z-x plane at level 0 read with zarr",
        [opens.count(full_plane) for _ in range(3)],
    )
    for name, (median, _longest, _reads) in results.items():
        print(
            f"ratio {name} / main slider step without the dock = "
            f"{median / main_alone[0]:.2f}; level-0 plane with zarr / {name} = "
            f"{full[0] / median:.2f}"
        )
    viewer.close()


if __name__ == "__main__":
    main()
