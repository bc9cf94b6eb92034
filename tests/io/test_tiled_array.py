"""Tiled dask arrays over chunked stores: selections agree with zarr, read in few tasks.

Checks compare with zarr itself (the judge) and count file opens and dask tasks, never time.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from napari_bigvol.errors import ReadError
from napari_bigvol.io._tiled_array import TASK_CHUNKS, TiledArray, tiled_array
from napari_bigvol.io._zarr_chunks import ChunkedLevel, ChunkFiles
from napari_bigvol.ops.export import _compressor

SHAPE, CHUNKS = (37, 41, 50), (8, 16, 9)  # edge chunks on every axis


def _stored(path: Path, shape=SHAPE, chunks=CHUNKS, dtype="uint16") -> zarr.Array:
    array = zarr.create_array(
        path,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        compressors=_compressor("lz4", 2),
        zarr_format=2,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        fill_value=0,
    )
    array[:] = np.random.default_rng(0).integers(0, 60000, shape).astype(dtype)
    return array


def _level(stored: zarr.Array, name: str) -> TiledArray:
    """The stored array read from its chunk files, as the view cache reads a level."""
    files = ChunkFiles.of(stored)
    return tiled_array(ChunkedLevel(files), files.chunks, name)


@pytest.fixture
def stored(tmp_path) -> zarr.Array:
    return _stored(tmp_path / "a.zarr")


@pytest.fixture
def level(stored) -> TiledArray:
    return _level(stored, "level")


def _napari_read(array: da.Array) -> np.ndarray:
    """``np.asarray(array)`` as napari slices it: with dask's fusion off."""
    with dask.config.set({"optimization.fuse.active": False}):
        return np.asarray(array)


def test_a_selection_of_a_selection_is_one_selection(stored, level):
    # napari cuts its field of view, then the plane: only the composed region is read.
    window = level[2:35:2, :, 10:]
    plane = window[3:, 1::3, 6]
    assert plane.region == (range(8, 35, 2), range(1, 41, 3), 16)
    assert plane.name == level[8:35:2, 1::3, 16].name  # the same read, the same dask key
    np.testing.assert_array_equal(plane.compute(), stored[8:35:2, 1::3, 16])
    assert not set(plane.dask) & set(window.dask)  # the window is never computed


def test_other_selections_are_dask_own(stored, level):
    volume = stored[:]
    cases = [
        (np.array([3, 1, 30]),),
        (slice(None, None, -2), 4),
        (None, 3),
        (level[:, 0, 0] > 30000, 2, 2),
    ]
    for selection in cases:
        expected_selection = tuple(
            s.compute() if isinstance(s, da.Array) else s for s in selection
        )
        picked = level[selection]
        assert not isinstance(picked, TiledArray)
        np.testing.assert_array_equal(picked.compute(), volume[expected_selection])


def test_values_assigned_into_the_array_are_read_back(stored, level):
    # dask's __setitem__ rewrites the graph in place: reads must follow it, not the store.
    level[1, 2, 3] = 65535  # the stored values are under 60000
    assert int(level[1, 2, 3].compute()) == 65535
    assert int(level[1][2, 3].compute()) == 65535
    assert int(stored[1, 2, 3]) < 60000  # the store itself is not written
    np.testing.assert_array_equal(level[0].compute(), stored[0])


def test_whole_array_work_is_dask_on_one_block_per_chunk(stored, level):
    assert level.chunksize == CHUNKS
    assert level[:] is level
    np.testing.assert_array_equal((level.astype("float32") * 2).compute(), stored[:] * 2.0)
    assert int(level.max().compute()) == int(stored[:].max())


def test_a_plane_as_napari_slices_runs_few_tasks_and_opens_its_chunks_once(
    tmp_path, open_counter, task_count
):
    shape, chunks = (256, 128, 128), (16, 16, 16)
    stored = _stored(tmp_path / "big.zarr", shape, chunks)
    level = _level(stored, "big")
    crossed = (256 // 16) * (128 // 16)  # a sagittal plane crosses 16 x 8 chunks
    with open_counter.watch(tmp_path) as opened, task_count:
        plane = _napari_read(level[:, :, 40])
    np.testing.assert_array_equal(plane, stored[:, :, 40])
    assert len(opened) == crossed
    assert set(opened.values()) == {1}
    # A tile task reads TASK_CHUNKS chunks, a block task names its tile, and one more
    # joins the blocks...
    tiled, task_count.tasks = task_count.tasks, 0
    assert tiled == 2 * math.ceil(crossed / TASK_CHUNKS) + 1
    # ...where dask's own graph runs a read and a getitem task per chunk.
    with task_count:
        _napari_read(da.from_zarr(stored)[:, :, 40])
    assert task_count.tasks == 2 * crossed + 1


def test_a_thin_slab_reads_only_the_chunks_it_lies_in(tmp_path, open_counter):
    # napari's projection modes read a few planes around the point: a tile must not group
    # chunks along that axis.
    stored = _stored(tmp_path / "slab.zarr", (256, 128, 128), (16, 16, 16))
    level = _level(stored, "slab")
    with open_counter.watch(tmp_path) as opened:
        slab = _napari_read(level[:, :, 36:41])
    np.testing.assert_array_equal(slab, stored[:, :, 36:41])
    assert len(opened) == (256 // 16) * (128 // 16)  # x in 36-40: one chunk thick
    assert set(opened.values()) == {1}


def test_a_small_plane_is_still_split_for_every_core(tmp_path):
    stored = _stored(tmp_path / "small.zarr", (32, 32, 32), (8, 8, 8))
    plane = _level(stored, "small")[:, 3, :]
    assert plane.npartitions >= 2
    np.testing.assert_array_equal(plane.compute(), stored[:, 3, :])


def test_names_follow_the_selection_so_napari_cache_never_mixes_planes(level):
    assert level[:, :, 7].name == level[:, :, 7].name
    assert level[:, :, 7].name != level[:, :, 8].name
    other = tiled_array(level.store.reader, CHUNKS, name="rewritten")  # rewritten in place
    assert other[:, :, 7].name != level[:, :, 7].name


def test_a_plane_pickles_for_a_cluster(stored, level):
    plane = pickle.loads(pickle.dumps(level[:, 9, :]))
    np.testing.assert_array_equal(plane.compute(), stored[:, 9, :])


def test_a_missing_chunk_reads_as_the_fill_value(tmp_path):
    array = zarr.create_array(
        tmp_path / "sparse.zarr",
        shape=(8, 8),
        chunks=(4, 4),
        dtype="uint16",
        zarr_format=2,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        fill_value=7,
    )
    array[:4, :4] = 5
    row = _level(array, "sparse")[2, :].compute()
    np.testing.assert_array_equal(row, [5, 5, 5, 5, 7, 7, 7, 7])


def test_a_damaged_chunk_is_a_read_error_naming_the_chunk_file(stored, level, tmp_path):
    damaged = tmp_path / "a.zarr" / "1" / "0" / "0"
    damaged.write_bytes(b"not blosc at all")
    with pytest.raises(ReadError, match="chunk file is damaged") as caught:
        level[:, 3, :].compute()
    assert caught.value.path == str(damaged)


def test_a_zarr_reader_gets_one_call_per_tile(tmp_path):
    # Remote, sharded or filtered arrays are read by zarr, which fetches the chunks of one
    # call concurrently: a plane is a few calls, not one per chunk.
    stored = zarr.create_array(
        tmp_path / "sharded.zarr",
        shape=(128, 96, 64),
        chunks=(16, 16, 16),
        shards=(32, 32, 32),
        dtype="uint16",
    )
    stored[:] = np.random.default_rng(1).integers(0, 4000, stored.shape, dtype="uint16")
    assert ChunkFiles.of(stored) is None  # sharded: not the plain layout

    class Calls:
        shape, dtype, count = stored.shape, stored.dtype, 0

        def __getitem__(self, selection):
            Calls.count += 1
            return stored[selection]

    selection = tiled_array(Calls(), stored.chunks, name="sharded")[:, 40, :]
    plane = _napari_read(selection)
    np.testing.assert_array_equal(plane, stored[:, 40, :])
    assert Calls.count == selection.npartitions  # one call per tile of chunks
    assert Calls.count < (128 // 16) * (64 // 16)  # the chunks the plane crosses
