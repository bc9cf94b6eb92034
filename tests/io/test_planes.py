"""Plane stacks: one task per plane for napari, one task per block for whole-volume work."""

from __future__ import annotations

import threading
from collections import Counter

import cloudpickle
import dask
import numpy as np
import pytest
import tifffile

from napari_bigvol.io import tiff
from napari_bigvol.io._planes import PlaneArray, row_block, stack_planes

VOLUME = np.arange(10 * 12 * 5, dtype=np.uint16).reshape(10, 12, 5)


class CountingPlanes:
    """A loader over ``VOLUME`` that records what it was asked for."""

    def __init__(self, by_rows: bool) -> None:
        self.row_block = int(by_rows)
        self.planes: Counter[int] = Counter()
        self.rows: Counter[tuple[int, int, int]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, index: int) -> np.ndarray:
        with self._lock:
            self.planes[index] += 1
        return VOLUME[index]

    def read_rows(self, index: int, rows: slice, out: np.ndarray) -> None:
        with self._lock:
            self.rows[index, rows.start, rows.stop] += 1
        out[...] = VOLUME[index][rows]


def stack_of(loader: CountingPlanes) -> PlaneArray:
    return stack_planes(loader, len(VOLUME), VOLUME.shape[1:], VOLUME.dtype, name="counted")


def test_napari_reads_one_plane_a_task():
    loader = CountingPlanes(by_rows=True)
    stack = stack_of(loader)
    assert stack.chunks == ((1,) * 10, (12,), (5,))
    np.testing.assert_array_equal(stack[4].compute(), VOLUME[4])
    assert loader.planes == {4: 1}
    assert not loader.rows


def test_blocks_of_a_row_reader_read_each_row_once_in_one_task_a_block():
    loader = CountingPlanes(by_rows=True)
    stack = stack_of(loader)
    assert row_block(loader) == 1
    assert stack.read_chunks == (1, 1, 5)
    blocks = stack.in_blocks((4, 6, 5))
    assert blocks.chunks == ((4, 4, 2), (6, 6), (5,))
    assert len(dict(blocks.__dask_graph__())) == blocks.npartitions  # no rechunk tasks
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(blocks.compute(), VOLUME)
    assert not loader.planes
    assert loader.rows == {(i, top, top + 6): 1 for i in range(10) for top in (0, 6)}


def test_blocks_of_a_plane_loader_hold_whole_planes_read_once():
    loader = CountingPlanes(by_rows=False)
    stack = stack_of(loader)
    assert stack.read_chunks == (1, 12, 5)
    blocks = stack.in_blocks((3, 12, 5))
    assert len(dict(blocks.__dask_graph__())) == blocks.npartitions == 4
    np.testing.assert_array_equal(blocks.compute(), VOLUME)
    assert loader.planes == Counter(range(10))
    assert not loader.rows


@pytest.mark.parametrize(("chunks", "by_rows"), [((4, 6, 2), True), ((4, 5, 5), False)])
def test_other_blocks_are_dask_rechunks_of_the_same_values(chunks, by_rows):
    # Part of each row, or rows of a loader that reads whole planes only: dask's rechunk.
    loader = CountingPlanes(by_rows)
    blocks = stack_of(loader).in_blocks(chunks)
    assert blocks.chunksize == chunks
    np.testing.assert_array_equal(blocks.compute(), VOLUME)
    assert loader.planes == Counter(range(10))
    assert not loader.rows


def test_blocks_of_tiff_slices_pickle_for_a_cluster(tmp_path):
    files = [str(tmp_path / f"s{index}.tif") for index in range(len(VOLUME))]
    for path, plane in zip(files, VOLUME, strict=True):
        tifffile.imwrite(path, plane)
    stack = tiff.tiff_stack(files, tiff.probe_tiff(files[0])).array
    blocks = stack.in_blocks((5, 4, 5))
    again = cloudpickle.loads(cloudpickle.dumps(blocks))
    np.testing.assert_array_equal(again.compute(scheduler="sync"), VOLUME)
