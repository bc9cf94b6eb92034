"""Direct chunk-file reads and writes agree with zarr, and open only the chunks needed.

Checks compare with zarr itself (the judge) and count file opens, never time.
"""

from __future__ import annotations

import math
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from napari_bigvol.errors import ReadError
from napari_bigvol.io._tiled_array import TiledArray, tiled_array
from napari_bigvol.io._zarr_chunks import ChunkedLevel, ChunkFiles, write_region
from napari_bigvol.ops.export import _compressor


def _plain_array(path: Path, shape, chunks, dtype, compressor="lz4") -> zarr.Array:
    return zarr.create_array(
        path,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        compressors=_compressor(compressor, 2),
        zarr_format=2,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        fill_value=0,
    )


def _data(shape, dtype, seed=0) -> np.ndarray:
    values = np.random.default_rng(seed).integers(0, 200, shape)
    return values.astype(dtype)


SELECTIONS = [
    (slice(None), slice(None), 7),
    (slice(None), 5, slice(None)),
    (12,),
    (-1, slice(3, 40, 3), slice(None, None, 7)),
    (slice(5, 6), slice(0, 0), slice(None)),
    (slice(31, 33), slice(15, 17), slice(40, 50)),
    (np.int64(3), slice(None), np.int64(-2)),
    (np.int64(3), Ellipsis, np.int64(-2)),
    (4, 30, 49),
]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32", ">u2"])
@pytest.mark.parametrize(("chunks", "compressor"), [((16, 16, 16), "lz4"), ((8, 20, 9), None)])
def test_direct_and_tiled_reads_agree_with_zarr_for_every_kind_of_selection(
    tmp_path, dtype, chunks, compressor
):
    shape = (37, 41, 50)
    array = _plain_array(tmp_path / "a.zarr", shape, chunks, dtype, compressor)
    array[:] = _data(shape, dtype)
    level = ChunkedLevel(ChunkFiles.of(array))
    assert (level.shape, level.dtype, level.ndim) == (shape, array.dtype, 3)
    tiled = tiled_array(level, chunks, name=f"a-{dtype}-{compressor}")  # as napari reads
    with dask.config.set({"optimization.fuse.active": False}):
        for selection in SELECTIONS:
            expected = array[selection]
            np.testing.assert_array_equal(level[selection], expected, err_msg=str(selection))
            picked = tiled[selection]
            assert isinstance(picked, TiledArray)
            np.testing.assert_array_equal(np.asarray(picked), expected, err_msg=str(selection))


def test_a_plane_opens_only_the_chunks_it_crosses_once_each(tmp_path, open_counter):
    shape, chunks = (40, 48, 56), (16, 16, 16)
    array = _plain_array(tmp_path / "a.zarr", shape, chunks, "uint16")
    array[:] = _data(shape, "uint16")
    level = ChunkedLevel(ChunkFiles.of(array))
    with open_counter.watch(tmp_path) as opened:
        level[:, :, 20]
    assert len(opened) == math.ceil(40 / 16) * math.ceil(48 / 16)  # 3 x 3 chunks
    assert set(opened.values()) == {1}
    assert all(Path(p).name == str(20 // 16) for p in opened)


def test_dask_passes_the_plane_selection_to_the_chunk_reader(tmp_path, open_counter):
    # One dask block holds many chunks; a plane must still read only its own chunks.
    shape, chunks = (64, 64, 64), (16, 16, 16)
    array = _plain_array(tmp_path / "a.zarr", shape, chunks, "uint16")
    volume = _data(shape, "uint16")
    array[:] = volume
    lazy = da.from_array(ChunkedLevel(ChunkFiles.of(array)), chunks=(32, 32, 32), asarray=False)
    with open_counter.watch(tmp_path) as opened:
        plane = lazy[:, 40, :].compute()
    np.testing.assert_array_equal(plane, volume[:, 40, :])
    assert len(opened) == 4 * 4
    assert set(opened.values()) == {1}


def test_an_index_past_the_end_is_an_index_error(tmp_path):
    array = _plain_array(tmp_path / "a.zarr", (5, 4), (2, 2), "uint16")
    level = ChunkedLevel(ChunkFiles.of(array))
    with pytest.raises(IndexError, match="out of bounds"):
        level[5]
    with pytest.raises(IndexError, match="out of bounds"):
        level[0, -5]
    assert level[-5].shape == (4,)


def test_a_missing_chunk_reads_as_the_fill_value(tmp_path):
    array = _plain_array(tmp_path / "a.zarr", (8, 8), (4, 4), "uint16")
    array[:4, :4] = 5  # the other three chunks are never written
    block = ChunkedLevel(ChunkFiles.of(array))[:, :]
    assert block[:4, :4].min() == 5
    assert block[4:].max() == 0
    assert block[:, 4:].max() == 0


def test_a_damaged_chunk_is_a_read_error_naming_the_chunk_file(tmp_path):
    array = _plain_array(tmp_path / "a.zarr", (8, 8), (4, 4), "uint16")
    array[:] = 3
    (tmp_path / "a.zarr" / "0" / "1").write_bytes(b"not blosc at all")
    level = ChunkedLevel(ChunkFiles.of(array))
    with pytest.raises(ReadError, match="chunk file is damaged") as caught:
        level[0, :]
    assert caught.value.path == str(tmp_path / "a.zarr" / "0" / "1")
    assert caught.value.__cause__ is not None


def test_other_layouts_are_left_to_zarr(tmp_path):
    def create(name, dtype="u2", **options):
        return zarr.create_array(
            tmp_path / name, shape=(4, 4), chunks=(2, 2), dtype=dtype, **options
        )

    sharded = create("sharded.zarr", shards=(4, 4))
    fortran = create("f.zarr", zarr_format=2, order="F")
    big_endian = create("big.zarr", dtype=">u2")  # zarr stores its bytes little-endian
    memory = zarr.create_array({}, shape=(4,), chunks=(2,), dtype="u1", zarr_format=2)
    assert {ChunkFiles.of(a) for a in (sharded, fortran, big_endian, memory)} == {None}
    # Key layouts zarr writes by default are read directly.
    assert ChunkFiles.of(create("v3.zarr")).path((1, 0)).endswith("v3.zarr/c/1/0")
    assert ChunkFiles.of(create("v2.zarr", zarr_format=2)).path((1, 0)).endswith("v2.zarr/1.0")


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_whole_chunk_writes_read_back_through_zarr(tmp_path, dtype):
    shape, chunks = (20, 30, 26), (8, 16, 16)
    path = tmp_path / "a.zarr"
    _plain_array(path, shape, chunks, dtype)
    volume = _data(shape, dtype)
    # Aligned units, the last one along each axis cut by the array's edge.
    for z in range(0, 20, 8):
        for y in range(0, 30, 16):
            region = (slice(z, min(z + 8, 20)), slice(y, min(y + 16, 30)), slice(0, 26))
            write_region(str(path), region, volume[region])
    np.testing.assert_array_equal(zarr.open_array(path)[:], volume)
    assert (path / "2" / "1" / "1").is_file()  # the corner chunk, padded to full size


def test_a_write_that_cuts_chunks_goes_through_zarr(tmp_path):
    path = tmp_path / "a.zarr"
    array = _plain_array(path, (8, 8), (4, 4), "uint16")
    array[:] = 9
    write_region(str(path), (slice(1, 3), slice(0, 8)), np.zeros((2, 8), "uint16"))
    expected = np.full((8, 8), 9, "uint16")
    expected[1:3] = 0
    np.testing.assert_array_equal(zarr.open_array(path)[:], expected)
