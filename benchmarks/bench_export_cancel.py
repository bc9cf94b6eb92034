"""Export progress and cancel latency: default work units against minimal ones.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_export_cancel.py [--planes 128] [--rounds 3]
        [--cancel-at 0.5,1,2]

It writes a folder of uint16 TIFF slices (2048 x 1024 each; 128 make 512 MiB) and exports
it with ``export_layers`` (what the Export widget and the writer use), once to the end
and once cancelled at each of several moments after it starts (by default 0.5 s, 1 s
and 2 s: the read phase and the write phase; ``--cancel-at ''`` for none). It does so
for the default work units (``unit_bytes`` = 256 MiB) and for minimal ones
(``unit_bytes=0``: one chunk depth, 64 planes, so for these planes both are 256 MiB
slabs). It prints the time to the first progress report, the number of reports, the
longest wait between two reports, the total wall and CPU time, and the delay between
asking to stop and ``Cancelled``. Each figure is the best of the rounds (for a cancel,
the worst delay is printed too).
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


def first_chunk_written(target: Path, finished: threading.Event) -> None:
    """Wait until the export's temporary store holds a level-0 chunk file."""
    pattern = f".{target.name}.partial-*/0/0"  # the first chunk folder of level 0
    while not finished.is_set() and not any(target.parent.glob(pattern)):
        time.sleep(0.005)


def ask_to_stop(target: Path, moment: str, asked_at: list, finished: threading.Event) -> None:
    """Ask ``moment`` seconds after the start, or after the first write ("w..."), once."""
    if moment.startswith("w"):
        first_chunk_written(target, finished)
    time.sleep(float(moment.lstrip("w")))
    asked_at.append(time.perf_counter())


def run(layer, target: Path, unit_bytes: int, cancel_after: str | None) -> dict:
    reports: list[float] = []
    finished = threading.Event()
    asked_at: list[float] = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    if cancel_after is not None:
        threading.Thread(
            target=ask_to_stop, args=(target, cancel_after, asked_at, finished)
        ).start()
    try:
        export_layers(
            target,
            [layer],
            unit_bytes=unit_bytes,
            progress=lambda done, total: reports.append(time.perf_counter() - start),
            should_stop=lambda: bool(asked_at),
        )
        outcome = "done"
    except Cancelled:
        outcome = "cancelled"
    end = time.perf_counter()
    finished.set()
    cpu = time.process_time() - cpu_start
    shutil.rmtree(target, ignore_errors=True)
    gaps = np.diff([0.0, *reports, end - start])
    return {
        "outcome": outcome,
        "first report s": round(reports[0], 3) if reports else float("nan"),
        "reports": len(reports),
        "longest wait s": round(float(gaps.max()), 3),
        "total s": round(end - start, 3),
        "cpu s": round(cpu, 2),
        "cancel delay s": round(end - asked_at[0], 3) if outcome == "cancelled" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--planes", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cancel-at",
        default="0.5,1,2",
        help="seconds after the start to ask for a cancel, comma-separated; 'w0.5' is "
        "0.5 s after the first chunk file was written; '' for none",
    )
    args = parser.parse_args()
    moments = [text.strip() for text in args.cancel_at.split(",") if text.strip()]
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir) / "slices"
        make_tiffs(folder, args.planes)
        (layer,) = bv.read(folder)
        for label, unit_bytes in (("default units", WORK_UNIT_BUDGET), ("minimal units", 0)):
            for cancel_after in (None, *moments):
                rows = [
                    run(layer, Path(workdir) / "out.ome.zarr", unit_bytes, cancel_after)
                    for _ in range(args.rounds)
                ]
                best = min(rows, key=lambda row: row["total s"])
                if cancel_after is not None:
                    best["worst cancel delay s"] = max(
                        row["cancel delay s"] or 0.0 for row in rows
                    )
                when = f"cancel at {cancel_after} s" if cancel_after else "to the end"
                print(label, when, best, flush=True)


if __name__ == "__main__":
    main()
