"""Streaming block computation: every block once, bounded in flight, progress and cancel."""

from __future__ import annotations

import operator
import threading
import time
from collections import Counter
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile

import napari_bigvol
from napari_bigvol.errors import Cancelled, OperationError
from napari_bigvol.ops import compute
from napari_bigvol.ops.compute import (
    as_dask_array,
    block_checkpoint,
    reduce_blocks,
    require_numeric,
    scheduler_address,
    set_scheduler,
    stream_blocks,
)
from napari_bigvol.ops.histogram import histogram


class ConcurrencyProbe:
    """A block kernel that records how many kernels run at the same time."""

    def __init__(self, hold: float = 0.02) -> None:
        self.running = 0
        self.most = 0
        self.calls = 0
        self.hold = hold
        self._lock = threading.Lock()
        self._release = threading.Event()

    def __call__(self, block: np.ndarray, index: tuple[int, ...]) -> int:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        # Hold the block briefly so that overlapping kernels can be observed.
        self._release.wait(self.hold)
        with self._lock:
            self.running -= 1
        return int(block.sum())


@pytest.mark.parametrize("chunks", [(1, 8, 8), (3, 5, 8), (10, 8, 8)])
def test_every_block_once_with_its_index(chunks):
    values = np.arange(10 * 8 * 8).reshape(10, 8, 8)
    array = da.from_array(values, chunks=chunks)
    results = dict(stream_blocks(array, lambda block, index: (block.shape, int(block.sum()))))
    assert sorted(results) == sorted(np.ndindex(*array.numblocks))
    for index, (shape, total) in results.items():
        expected = array.blocks[index].compute()
        assert shape == expected.shape
        assert total == int(expected.sum())


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_blocks_in_flight_are_bounded(limit):
    probe = ConcurrencyProbe()
    array = da.ones((12, 4), chunks=(1, 4))
    assert sum(r for _, r in stream_blocks(array, probe, max_in_flight=limit)) == 48
    assert probe.calls == 12
    assert 1 <= probe.most <= limit


def test_progress_counts_every_block_up_to_the_total():
    calls = []
    array = da.ones((7, 3), chunks=(1, 3))
    list(stream_blocks(array, lambda b, i: 0, progress=lambda d, t: calls.append((d, t))))
    assert calls == [(n, 7) for n in range(1, 8)]


def test_should_stop_cancels_after_the_current_block():
    probe = ConcurrencyProbe(hold=0.0)
    array = da.ones((50, 3), chunks=(1, 3))
    seen = []
    blocks = stream_blocks(array, probe, should_stop=lambda: len(seen) >= 4, max_in_flight=2)
    with pytest.raises(Cancelled, match="cancelled by the user"):
        seen.extend(index for index, _ in blocks)
    assert len(seen) == 4
    assert probe.calls <= 4 + 2  # at most the blocks already in flight


def test_a_stop_is_honoured_while_a_slow_block_runs():
    release = threading.Event()

    def slow(block: np.ndarray, index: tuple[int, ...]) -> int:
        release.wait(30)  # released by the stop request below, long before the timeout
        return 0

    def stop() -> bool:
        release.set()
        return True

    progress = []
    with pytest.raises(Cancelled):
        list(
            stream_blocks(
                da.ones((4, 4), chunks=(1, 4)),
                slow,
                should_stop=stop,
                progress=lambda d, t: progress.append(d),
            )
        )
    assert progress == []  # cancelled before any block finished


def test_a_stop_is_honoured_inside_a_block_at_its_next_checkpoint():
    asked = threading.Event()
    passed = []

    def long_kernel(block: np.ndarray, index: tuple[int, ...]) -> int:
        for step in range(100):
            passed.append(step)
            block_checkpoint()
            asked.wait(10)  # each step lasts until the consumer has seen some progress
        return 0

    with pytest.raises(Cancelled):
        list(
            stream_blocks(
                da.ones((1, 4), chunks=(1, 4)),
                long_kernel,
                steps=lambda index: 100,
                progress=lambda done, total: asked.set(),
                should_stop=asked.is_set,
            )
        )
    # Stopped at the checkpoint after the step it was in, not after all 100 steps.
    assert len(passed) <= 2


def test_a_source_task_passing_checkpoints_moves_its_block_and_stops_on_a_cancel():
    # A work unit read plane by plane (PlaneArray.in_blocks) passes the unit's index.
    planes_read = []

    def read_unit(block_id: tuple[int, ...]) -> np.ndarray:
        for plane in range(200):
            planes_read.append(plane)
            block_checkpoint(block_id)
            time.sleep(0.005)
        return np.zeros((200, 4))

    units = da.map_blocks(read_unit, chunks=((200,), (4,)), meta=np.empty((0, 0)))
    reports: list[tuple[int, int]] = []
    with pytest.raises(Cancelled):
        list(
            stream_blocks(
                units,
                lambda block, index: 0,
                steps=lambda index: 200 + 1,  # its 200 planes, and the kernel's own step
                progress=lambda done, total: reports.append((done, total)),
                should_stop=lambda: len(reports) >= 5,
            )
        )
    # The bar moved with the planes read (reported at the consumer's next poll), before
    # the unit's read task ended...
    assert [done for done, _ in reports] == list(range(1, len(reports) + 1))
    assert len(reports) >= 5
    assert len(planes_read) < 200  # ...and the read stopped at a checkpoint


def test_block_checkpoint_outside_a_local_run_does_nothing():
    block_checkpoint()  # a kernel called directly, or on a cluster's worker


def test_a_cancel_does_not_wait_for_a_source_task_still_running():
    # A source task (a plane read, the copy assembling a block) cannot be interrupted:
    # a cancel returns while it still runs, and it finishes on its own afterwards.
    reading, release, read_done = threading.Event(), threading.Event(), threading.Event()

    def slow_read(block: np.ndarray) -> np.ndarray:
        if block[0, 0] == 1:
            reading.set()
            release.wait(10)  # released below, once the cancel has returned
            read_done.set()
        return block

    source = da.from_array(np.arange(2)[:, None] * np.ones((2, 4)), chunks=(1, 4))
    kernels = []
    blocks = stream_blocks(
        source.map_blocks(slow_read), lambda b, i: kernels.append(i), should_stop=reading.is_set
    )
    with pytest.raises(Cancelled):
        list(blocks)
    assert not read_done.is_set()  # the cancel did not wait for the read
    release.set()
    assert read_done.wait(10)
    assert (1, 0) not in kernels  # and no kernel started after the cancel


def test_kernel_errors_reach_the_caller():
    def broken(block: np.ndarray, index: tuple[int, ...]) -> int:
        raise OperationError(f"block {index} is broken")

    with pytest.raises(OperationError, match=r"block \(0,\) is broken"):
        list(stream_blocks(da.ones(4, chunks=4), broken))


def test_reduce_blocks_folds_partial_results():
    values = np.random.default_rng(0).integers(0, 100, (30, 7))
    total = reduce_blocks(
        da.from_array(values, chunks=(4, 3)), lambda b, i: int(b.sum()), operator.add
    )
    assert total == int(values.sum())


def test_local_runs_on_threads_even_with_a_scheduler_configured():
    set_scheduler("tcp://127.0.0.1:9")  # nothing listens there
    try:
        assert scheduler_address() == "tcp://127.0.0.1:9"
        results = [r for _, r in stream_blocks(da.ones(6, chunks=2), lambda b, i: 1, local=True)]
        assert results == [1, 1, 1]
    finally:
        set_scheduler(None)


def test_scheduler_address_setting_overrides_the_environment(monkeypatch):
    monkeypatch.setenv(compute.SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    assert scheduler_address() == "tcp://127.0.0.1:8786"
    set_scheduler("tcp://127.0.0.1:9999")
    try:
        assert scheduler_address() == "tcp://127.0.0.1:9999"
    finally:
        set_scheduler(None)
    monkeypatch.delenv(compute.SCHEDULER_ENV)
    assert scheduler_address() is None
    assert compute.get_client() is None


def test_as_dask_array_wraps_numpy_without_copying():
    values = np.zeros((300, 512, 512), np.uint16)  # more than one dask chunk
    array, in_memory = as_dask_array(values)
    assert in_memory
    assert array.npartitions > 1
    shared = [r for _, r in stream_blocks(array, lambda b, i: np.shares_memory(b, values))]
    assert all(shared)
    assert len(shared) == array.npartitions
    lazy = da.ones(3, chunks=1)
    assert as_dask_array(lazy) == (lazy, False)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int64", "float16", ">f8"])
def test_require_numeric_accepts_real_numbers(dtype):
    assert require_numeric(np.zeros(2, dtype)) == np.dtype(dtype)
    assert require_numeric(np.dtype(dtype)) == np.dtype(dtype)


def test_require_numeric_names_the_data():
    with pytest.raises(OperationError, match="layer 'labels' has dtype <U1, which is not numeric"):
        require_numeric(np.array(["a"]), "layer 'labels'")
    assert require_numeric([1, 2]) == np.dtype(int)


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(compute, "CONNECT_TIMEOUT", "1s")
    set_scheduler("tcp://127.0.0.1:9")  # nothing listens there
    try:
        with pytest.raises(OperationError, match="cannot reach the dask scheduler at tcp://"):
            list(stream_blocks(da.ones(4, chunks=2), lambda b, i: 0))
    finally:
        set_scheduler(None)


class LoadCounter:
    """A plane loader for ``dask.delayed`` that counts its calls per plane."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self._lock = threading.Lock()

    def __call__(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        with self._lock:
            self.calls[index] += 1
        return np.full(shape, index, np.uint16)


@pytest.fixture
def tiff_folder(tmp_path) -> tuple[Path, np.ndarray]:
    volume = np.random.default_rng(3).integers(0, 4000, (64, 48, 40)).astype(np.uint16)
    folder = tmp_path / "slices"
    folder.mkdir()
    for index, plane in enumerate(volume):
        tifffile.imwrite(folder / f"slice_{index}.tif", plane)
    return folder, volume


def test_a_rechunked_tiff_folder_opens_each_file_once(tiff_folder, open_counter):
    folder, volume = tiff_folder
    [(data, _, _)] = napari_bigvol.read(str(folder))
    # 16-plane blocks: every plane feeds two blocks along y and two along x.
    rechunked = data.rechunk((16, 24, 20))
    with open_counter.watch(folder) as opened:
        counts, _ = histogram(rechunked, 50)
    assert sorted(opened.values()) == [1] * len(volume)
    np.testing.assert_array_equal(counts, np.histogram(volume, 50)[0])


def test_a_delayed_concatenated_rechunked_graph_loads_each_plane_once():
    load = LoadCounter()
    shape = (32, 24)
    planes = [
        da.from_delayed(dask.delayed(load)(index, shape), shape, np.uint16)[None]
        for index in range(32)
    ]
    volume = da.concatenate(planes).rechunk((8, 8, 8))
    total = reduce_blocks(volume, lambda block, index: int(block.sum()), operator.add)
    assert total == sum(index * 24 * 32 for index in range(32))
    assert load.calls == Counter(dict.fromkeys(range(32), 1))


def test_every_task_of_the_graph_runs_once(block_loads):
    # A map_overlap reads each block's neighbours: nine sources for the centre block.
    source = block_loads.wrap(da.arange(36 * 36, dtype=np.int64).reshape(36, 36).rechunk(12))
    filtered = source.map_overlap(lambda b: b, depth=1, boundary="none")
    results = dict(stream_blocks(filtered, lambda block, index: int(block.sum())))
    assert block_loads.count == source.npartitions
    assert sum(results.values()) == int(np.arange(36 * 36).sum())


def test_stopping_the_consumer_early_stops_the_computation(block_loads):
    array = block_loads.wrap(da.ones((40, 4), chunks=(1, 4)))
    blocks = stream_blocks(array, lambda b, i: 0, max_in_flight=1)
    next(blocks)
    blocks.close()  # as when the consumer raises or is garbage collected
    # One worker, a backlog of two results: nothing runs on after the close.
    assert block_loads.count <= 5
