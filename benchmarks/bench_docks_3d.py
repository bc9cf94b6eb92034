"""Memory and file reads of switching to 3-D with napari-bigvol's docks, against no dock.

A folder of TIFF slices (512 x 512 uint16, written to a temporary folder and deleted at
the end) is opened through napari-bigvol's reader in a real napari window, without a
view cache, so napari shows the reader's budgeted 3-D level. For each set of docks, in a
fresh process, the window switches to 3-D (``viewer.dims.ndisplay = 3``) and waits for
the docks to finish; reported are the growth of the process's resident memory, the
numpy/Python allocations traced meanwhile (``tracemalloc``), and the slice files opened.
The baseline is the same switch with no dock, in the same run.

Run under a display::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_docks_3d.py
    xvfb-run -a ... benchmarks/bench_docks_3d.py --planes 800 --budget 512MiB
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCKS = {"hist": "Histogram", "thr": "Threshold mask", "ortho": "Orthogonal views"}
ARMS = ("none", "thr", "hist,thr", "hist,thr,ortho")


def step_switch(folder: str, docks: str) -> dict:
    """Switch one window to 3-D with ``docks`` (comma-separated keys of DOCKS, or none)."""
    import tracemalloc

    import napari
    import psutil
    from qtpy.QtWidgets import QApplication

    process = psutil.Process()
    viewer = napari.Viewer(show=True)
    [layer] = viewer.open(folder, plugin="napari-bigvol")
    widgets = [
        viewer.window.add_plugin_dock_widget("napari-bigvol", DOCKS[key])[1]
        for key in ([] if docks == "none" else docks.split(","))
    ]
    app = QApplication.instance()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def busy() -> bool:
        return any(task.running for widget in widgets for task in getattr(widget, "tasks", []))

    pump(2)
    viewer.screenshot()
    opened = [0]
    root = os.path.abspath(folder)

    def count_opens(event: str, args: tuple) -> None:
        if event == "open" and args and isinstance(args[0], str):
            opened[0] += os.path.abspath(args[0]).startswith(root)

    sys.addaudithook(count_opens)
    tracemalloc.start()
    before = process.memory_info().rss
    viewer.dims.ndisplay = 3
    viewer.screenshot()
    pump(1)
    deadline = time.monotonic() + 120
    while busy() and time.monotonic() < deadline:
        pump(0.2)
    pump(1)
    growth = process.memory_info().rss - before
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    shown = layer.data[-1] if layer.multiscale else layer.data
    viewer.close()
    return {
        "rss_growth_mb": growth / 2**20,
        "traced_peak_mb": traced / 2**20,
        "opens": opened[0],
        "level_shape": list(shown.shape),
        "level_mb": shown.nbytes / 2**20,
    }


def make_tiffs(folder: Path, planes: int, side: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_view_cache import make_tiffs as write

    write(folder, planes, side)


def run_step(folder: Path, docks: str, env: dict) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--step", str(folder), docks],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    if result.returncode:
        raise RuntimeError(f"{docks} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--planes", type=int, default=800)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--budget", default="512MiB", help="NAPARI_BIGVOL_3D_BUDGET")
    parser.add_argument("--step", nargs=2, default=None)
    options = parser.parse_args()
    if options.step:
        print(json.dumps(step_switch(*options.step)))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-docks-3d-"))
    try:
        folder = work / "slices"
        make_tiffs(folder, options.planes, options.side)
        size = options.planes * options.side**2 * 2
        print(f"# {options.planes} slices of {options.side}^2 uint16 = {size / 2**20:.0f} MiB")
        env = {
            "NAPARI_BIGVOL_CACHE": str(work / "cache"),
            "NAPARI_BIGVOL_3D_BUDGET": options.budget,
        }
        for docks in ARMS:
            r = run_step(folder, docks, env)
            print(
                f"{docks:>15}: RSS +{r['rss_growth_mb']:.0f} MB, traced peak "
                f"{r['traced_peak_mb']:.0f} MB, {r['opens']} files opened; 3-D level "
                f"{r['level_shape']} ({r['level_mb']:.0f} MB)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
