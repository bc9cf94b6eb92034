"""Remote zarr and OME-Zarr stores over HTTP (a loopback server) and S3 (moto's server).

The servers run in this process on 127.0.0.1 and count the requests they answer, so
laziness is checked by counting requests, never by timing them.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

import napari_bigvol
from napari_bigvol.errors import OperationError, ReadError
from napari_bigvol.io import _remote, reader_for
from napari_bigvol.ops.export import export_zarr


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, counting requests per path; paths under /slow/ never answer in time."""

    counts: Counter[str]
    hold: threading.Event

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        self.counts[self.path] += 1
        if self.path.startswith("/slow/"):
            self.hold.wait(10)  # released when the test ends
        super().do_GET()

    def do_HEAD(self) -> None:
        self.counts[self.path] += 1
        super().do_HEAD()


class _BackloggedServer(http.server.ThreadingHTTPServer):
    # socketserver's backlog of 5 drops concurrent connections (zarr fetches a tile's
    # chunks at once), which the client retries a second later; web servers take more.
    request_queue_size = 128


class LoopbackServer:
    """A threaded ``http.server`` on 127.0.0.1 serving ``root``."""

    def __init__(self, root: Path) -> None:
        handler = type(
            "Handler", (CountingHandler,), {"counts": Counter(), "hold": threading.Event()}
        )
        self.handler = handler
        self.server = _BackloggedServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def counts(self) -> Counter[str]:
        return self.handler.counts

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{path}"

    def close(self) -> None:
        self.handler.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path) -> Iterator[LoopbackServer]:
    server = LoopbackServer(tmp_path)
    yield server
    server.close()


def volume(shape=(6, 40, 30), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3000, shape).astype(np.uint16)


def write_plain(path: Path, values: np.ndarray, zarr_format: int) -> None:
    array = zarr.create_array(
        path, shape=values.shape, dtype=values.dtype, chunks=(1, 20, 30), zarr_format=zarr_format
    )
    array[:] = values


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_plain_array_over_http_equals_the_local_read(tmp_path, served, zarr_format):
    values = volume()
    write_plain(tmp_path / "plain.zarr", values, zarr_format)
    [(data, kwargs, layer_type)] = napari_bigvol.read(served.url("plain.zarr"))
    [(_, local_kwargs, _)] = napari_bigvol.read(tmp_path / "plain.zarr")
    assert layer_type == "image"
    assert kwargs["name"] == local_kwargs["name"] == "plain"
    assert kwargs["metadata"]["bigvol"]["source"] == served.url("plain.zarr")
    np.testing.assert_array_equal(data.compute(), values)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_an_ome_zarr_image_over_http_is_lazy(tmp_path, served, zarr_format):
    values = volume((8, 64, 48), seed=1)
    export_zarr(
        values,
        tmp_path / "image.ome.zarr",
        scale=(2.0, 0.5, 0.5),
        chunks=(1, 32, 48),
        zarr_format=zarr_format,
    )
    local = napari_bigvol.read(tmp_path / "image.ome.zarr")
    url = served.url("image.ome.zarr")
    layers = napari_bigvol.read(url)
    assert len(layers) == len(local)
    (data, kwargs, _), (local_data, local_kwargs, _) = layers[0], local[0]
    levels = data if isinstance(data, list) else [data]
    local_levels = local_data if isinstance(local_data, list) else [local_data]
    assert [level.shape for level in levels] == [level.shape for level in local_levels]
    for key in ("scale", "axis_labels", "units", "contrast_limits"):
        assert kwargs.get(key) == local_kwargs.get(key), key
    # Opening: metadata documents and at most a small level for the contrast limits.
    opened = sum(served.counts.values())
    assert opened <= 2 * len(levels) + 8 + local_levels[-1].npartitions
    served.counts.clear()
    # One displayed plane fetches the chunks of that plane only.
    plane = levels[0][5].compute()
    np.testing.assert_array_equal(plane, values[5])
    chunk_requests = [path for path in served.counts if "/0/" in path]
    assert sum(served.counts.values()) == levels[0].numblocks[1] * levels[0].numblocks[2]
    assert all(served.counts[path] == 1 for path in chunk_requests)


def test_a_missing_store_is_a_read_error_naming_the_url(served):
    url = served.url("nothing-here.zarr")
    with pytest.raises(ReadError, match=r"nothing-here\.zarr: nothing found at this URL"):
        napari_bigvol.read(url)


def test_an_unreachable_host_is_a_read_error():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/image.zarr"
    with pytest.raises(ReadError, match=r"127.0.0.1:\d+/image.zarr: cannot reach the server"):
        napari_bigvol.read(url)


def test_a_silent_server_times_out_with_a_read_error(tmp_path, served, monkeypatch):
    write_plain(tmp_path / "slow" / "plain.zarr", volume(), 3)
    monkeypatch.setattr(_remote, "READ_TIMEOUT", 0.5)
    with pytest.raises(ReadError, match=r"slow/plain\.zarr: the server did not answer within"):
        napari_bigvol.read(served.url("slow/plain.zarr"))
    # The server holds every answer for 10 s: the error came from our timeout.
    assert served.counts["/slow/plain.zarr/zarr.json"] >= 1


def test_a_plain_remote_group_asks_for_one_of_its_arrays(tmp_path, served):
    group = zarr.open_group(tmp_path / "group.zarr", mode="w")
    group.create_array("a", shape=(4, 4), dtype="uint8")
    with pytest.raises(ReadError, match="remote zarr group without OME-Zarr metadata"):
        napari_bigvol.read(served.url("group.zarr"))
    [(data, _, _)] = napari_bigvol.read(served.url("group.zarr/a"))
    assert data.shape == (4, 4)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/data/image.ome.zarr",
        "https://example.org/data/image.zarr/0",
        "s3://bucket/image.ome.zarr/labels/cells",
    ],
)
def test_the_napari_reader_takes_zarr_urls_without_a_request(url, served):
    from napari_bigvol._napari._reader import napari_get_reader

    assert napari_get_reader(url) is not None
    assert reader_for(served.url("any.zarr")) is not None
    assert sum(served.counts.values()) == 0


@pytest.mark.parametrize(
    "url", ["https://example.org/scan.nii.gz", "ftp://example.org/image.zarr", "http://"]
)
def test_the_napari_reader_declines_other_urls(url):
    from napari_bigvol._napari._reader import napari_get_reader

    assert napari_get_reader(url) is None
    with pytest.raises(ReadError):
        napari_bigvol.read(url)


def test_viewer_open_reads_a_url_with_the_plugin(tmp_path, served, make_napari_viewer):
    values = volume()
    write_plain(tmp_path / "plain.zarr", values, 3)
    viewer = make_napari_viewer()
    [layer] = viewer.open(served.url("plain.zarr"), plugin="napari-bigvol")
    assert layer.name == "plain"
    np.testing.assert_array_equal(np.asarray(layer.data[2]), values[2])


def test_export_to_a_remote_target_is_refused(served):
    with pytest.raises(OperationError, match="exporting to a remote store is not supported yet"):
        export_zarr(np.zeros((2, 4, 4), np.uint8), served.url("out.ome.zarr"))
    assert sum(served.counts.values()) == 0


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_OPTIONS = {"key": "testing", "secret": "testing", "client_kwargs": {"region_name": "eu-west-1"}}


def test_an_ome_zarr_image_on_s3(tmp_path, s3_endpoint, monkeypatch):
    import s3fs

    options = {**S3_OPTIONS, "endpoint_url": s3_endpoint}
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("images")
    values = volume((4, 32, 32), seed=2)
    export_zarr(values, tmp_path / "brain.ome.zarr", chunks=(1, 32, 32))
    fs.put(str(tmp_path / "brain.ome.zarr"), "images/brain.ome.zarr", recursive=True)
    layers = napari_bigvol.read("s3://images/brain.ome.zarr", storage_options=options)
    data, kwargs, _ = layers[0]
    assert kwargs["name"] == napari_bigvol.read(tmp_path / "brain.ome.zarr")[0][1]["name"]
    np.testing.assert_array_equal(data.compute(), values)
    # The endpoint and credentials can come from the environment too, as for boto3.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    [(from_env, _, _)] = napari_bigvol.read("s3://images/brain.ome.zarr/0")
    np.testing.assert_array_equal(from_env[1].compute(), values[1])
    with pytest.raises(ReadError, match=r"missing\.zarr: nothing found at this URL"):
        napari_bigvol.read("s3://images/missing.zarr")
