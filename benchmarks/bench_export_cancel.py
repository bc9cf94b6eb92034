"""Export progress and cancel latency: default work units against minimal ones.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_export_cancel.py [--planes 128] [--rounds 3]

It writes a folder of uint16 TIFF slices (2048 x 1024 each; 128 make 512 MiB) and exports
it with ``export_layers`` (what the Export widget and the writer use), once to the end
and once cancelled 1 s after it starts, for the default work units (``unit_bytes`` =
256 MiB) and for minimal ones (``unit_bytes=0``: one chunk depth, 64 planes, so for these
planes both are 256 MiB slabs). It prints the time to the first progress report, the
number of reports, the total time and the delay between asking to stop and ``Cancelled``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tifffile

import napari_bigvol as bv
from napari_bigvol.errors import Cancelled
from napari_bigvol.ops._pyramid import WORK_UNIT_BUDGET
from napari_bigvol.ops.export import export_layers


def make_tiffs(folder: Path, planes: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4000, (2048, 1024), dtype=np.uint16)
    for index in range(planes):
        tifffile.imwrite(folder / f"slice_{index:04d}.tif", np.roll(base, index, axis=0))


def run(layer, target: Path, unit_bytes: int, cancel_after: float | None) -> dict:
    reports: list[float] = []
    asked = threading.Event()
    start = time.perf_counter()
    if cancel_after is not None:
        threading.Timer(cancel_after, asked.set).start()
    asked_at = None

    def should_stop() -> bool:
        nonlocal asked_at
        if asked.is_set() and asked_at is None:
            asked_at = time.perf_counter()
        return asked.is_set()

    try:
        export_layers(
            target,
            [layer],
            unit_bytes=unit_bytes,
            progress=lambda done, total: reports.append(time.perf_counter() - start),
            should_stop=should_stop,
        )
        outcome = "done"
    except Cancelled:
        outcome = "cancelled"
    end = time.perf_counter()
    shutil.rmtree(target, ignore_errors=True)
    ask_time = start + cancel_after if cancel_after is not None else None
    return {
        "outcome": outcome,
        "first report s": reports[0] if reports else float("nan"),
        "reports": len(reports),
        "total s": end - start,
        "cancel delay s": (end - ask_time) if ask_time and outcome == "cancelled" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--planes", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir) / "slices"
        make_tiffs(folder, args.planes)
        (layer,) = bv.read(folder)
        for label, unit_bytes in (("default units", WORK_UNIT_BUDGET), ("minimal units", 0)):
            for cancel_after in (None, 1.0):
                rows = [
                    run(layer, Path(workdir) / "out.ome.zarr", unit_bytes, cancel_after)
                    for _ in range(args.rounds)
                ]
                best = min(rows, key=lambda row: row["total s"])
                print(label, "cancel at 1 s" if cancel_after else "to the end", best)


if __name__ == "__main__":
    main()
