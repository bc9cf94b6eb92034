"""Benchmark the synthetic sample brain: open, one plane, a whole-volume histogram, memory.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_sample.py [--size 512] [--repeat 5]

Figures, each beside a baseline measured in the same run:

* **open** the 1024³ (2 GiB) sample pyramid, as File > Open Sample does, against
  ``numpy.zeros`` of the same volume (what any eager generator must at least pay);
* **one axial plane** of the 1024³ volume generated on demand, against reading the same
  plane back from a TIFF file with ``tifffile.imread`` (what browsing a real folder of
  slices costs);
* **whole-volume histogram** of a ``--size``³ volume, streamed block by block with
  ``napari_bigvol.histogram``, against materialising the volume with ``numpy.asarray``
  and calling ``numpy.histogram``; each runs in its own subprocess, whose resident memory
  is sampled every 5 ms, so the peak growth of memory is measured per method.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _histogram_child(method: str, size: int) -> None:
    import threading

    import numpy as np
    import psutil

    from napari_bigvol import histogram, sample

    # Sample this process's RSS every 5 ms: ru_maxrss would include the parent's peak.
    process, peak, done = psutil.Process(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    volume = sample.brain_volume((size, size, size))
    before = process.memory_info().rss
    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.perf_counter()
    if method == "bigvol":
        counts, _ = histogram(volume, bins=256, range=(0, 4096))
    else:
        counts, _ = np.histogram(np.asarray(volume), bins=256, range=(0, 4096))
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    growth_mib = (peak[0] - before) / 2**20
    print(json.dumps({"seconds": seconds, "peak_mib": growth_mib, "total": int(counts.sum())}))


def _histogram(method: str, size: int) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", method, "--size", str(size)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="edge of the histogram volume")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _histogram_child(args.child, args.size)
        return

    import numpy as np
    import tifffile

    from napari_bigvol import sample

    open_s = _best(lambda: sample.brain_layer(), args.repeat)
    zeros_s = _best(lambda: np.zeros((1024, 1024, 1024), np.uint16).fill(1), 1)
    print(f"open 1024³ sample pyramid      {open_s * 1e3:9.2f} ms")
    print(
        f"baseline numpy.zeros + fill    {zeros_s * 1e3:9.2f} ms   ratio {zeros_s / open_s:,.0f}x"
    )

    brain = sample.brain_volume()
    planes = [384, 512, 640]
    generate = [_best(lambda k=k: brain[k].compute(), args.repeat) for k in planes]
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k in planes:
            path = Path(folder) / f"plane_{k}.tif"
            tifffile.imwrite(path, brain[k].compute())
            paths.append(path)
        read = [_best(lambda p=p: tifffile.imread(p), args.repeat) for p in paths]
    gen_ms, read_ms = statistics.mean(generate) * 1e3, statistics.mean(read) * 1e3
    print(f"one 1024² plane, generated     {gen_ms:9.2f} ms")
    print(f"baseline tifffile.imread       {read_ms:9.2f} ms   ratio {gen_ms / read_ms:.1f}x")

    streamed = _histogram("bigvol", args.size)
    eager = _histogram("numpy", args.size)
    assert streamed["total"] == eager["total"] == args.size**3
    mib = args.size**3 * 2 / 2**20
    print(
        f"histogram of {args.size}³ ({mib:.0f} MiB), streamed: "
        f"{streamed['seconds']:.2f} s, RSS growth {streamed['peak_mib']:.0f} MiB"
    )
    print(
        f"baseline numpy.asarray + numpy.histogram: {eager['seconds']:.2f} s, "
        f"RSS growth {eager['peak_mib']:.0f} MiB"
    )
    print(
        f"ratios: time {eager['seconds'] / streamed['seconds']:.2f}x, "
        f"peak memory {eager['peak_mib'] / streamed['peak_mib']:.2f}x"
    )


if __name__ == "__main__":
    main()
