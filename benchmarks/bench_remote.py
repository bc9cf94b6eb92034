"""Planes of an OME-Zarr image served over HTTP: tiled reads against one task per chunk.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_remote.py [--latency-ms 10] [--rounds 3]

Writes a 256 x 512 x 512 uint16 volume (128 MiB) as OME-Zarr with 64^3 chunks (one level),
serves it from a loopback HTTP server on 127.0.0.1 that waits ``--latency-ms`` before each
answer (a server across a network; 0 for the bare loopback), and reads XY, XZ and YZ
planes of ``napari_bigvol.read(url)`` as napari does (dask's fusion off):

* **tiled** (this package): a plane is a few tiles of chunks, each one zarr read that
  fetches its chunks concurrently;
* **per chunk** (*baseline*, the reader before tiling): the same zarr array as a dask
  array of one block per chunk, one zarr read each, what ``dask.array.from_zarr`` builds.

The two alternate plane by plane; medians, and the requests each plane made.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

import dask
import dask.array as da
import numpy as np


class _Handler(http.server.SimpleHTTPRequestHandler):
    latency = 0.0
    counts: ClassVar[Counter] = Counter()

    def do_GET(self) -> None:
        time.sleep(self.latency)
        self.counts[self.path] += 1
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


class _BackloggedServer(http.server.ThreadingHTTPServer):
    # socketserver's listen backlog of 5 drops concurrent connections, which the client
    # retries a second later: a web server's backlog is far longer.
    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    import napari_bigvol

    work = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 4000, (256, 512, 512), dtype=np.uint16)
    napari_bigvol.export_zarr(volume, work / "image.ome.zarr", chunks=(64, 64, 64), pyramid=False)
    _Handler.latency = options.latency_ms / 1000
    handler = functools.partial(_Handler, directory=str(work))
    server = _BackloggedServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/image.ome.zarr"
    try:
        [(tiled, _, _)] = napari_bigvol.read(url)
        reader = tiled.store.reader  # the zarr array, wrapped for error messages
        per_chunk = da.from_array(reader, chunks=tiled.store.chunks, asarray=False)
        planes = {
            "XY": lambda a, i: a[i],
            "XZ": lambda a, i: a[:, i],
            "YZ": lambda a, i: a[:, :, i],
        }
        print(f"# {url}, latency {options.latency_ms:g} ms per request")
        print("| plane | per chunk (baseline) | tiled | ratio | requests per chunk / tiled |")
        print("| --- | --- | --- | --- | --- |")
        with dask.config.set({"optimization.fuse.active": False}):  # as napari slices
            for name, pick in planes.items():
                times: dict[str, list[float]] = {"per_chunk": [], "tiled": []}
                requests: dict[str, int] = {}
                for round_ in range(options.rounds):
                    for position in (70, 150, 230):
                        index = position + round_
                        for key, array in (("per_chunk", per_chunk), ("tiled", tiled)):
                            _Handler.counts.clear()
                            start = time.perf_counter()
                            values = np.asarray(pick(array, index))
                            times[key].append(time.perf_counter() - start)
                            requests[key] = sum(_Handler.counts.values())
                            np.testing.assert_array_equal(values, pick(volume, index))
                base, new = (statistics.median(times[k]) * 1e3 for k in ("per_chunk", "tiled"))
                print(
                    f"| {name} | {base:.0f} ms | {new:.0f} ms | {base / new:.1f}x "
                    f"| {requests['per_chunk']} / {requests['tiled']} |"
                )
    finally:
        server.shutdown()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
