"""Direct chunk-file reads and writes for local zarr arrays of the plain layout.

napari-bigvol writes its view cache, and its exports, as zarr v2 arrays on a local disk:
C order, no filters, ``/``-separated chunk keys, one numcodecs compressor (or none). Many
user stores have that layout too, as do zarr v3 arrays of zarr's default codecs (bytes,
then one zstd, blosc or gzip compressor; a regular chunk grid, no sharding). For those
arrays a chunk is one file holding the compressed bytes of the whole chunk, so it can
be read and written with one ``open`` and one numcodecs call. zarr 3 routes every chunk
through its asyncio event loop and codec pipeline, which costs more than the decoding
itself: a sagittal plane of 256 chunks of 64^3 uint16 (lz4) took 164 ms through
``zarr.Array.__getitem__`` and 54 ms here; writing a 64 x 512 x 512 work unit took 105 ms
through ``zarr.Array.__setitem__`` and 70 ms here (docs/performance/view_cache.md). Any
other array (sharding, transposes, checksums, filters, F order, remote stores) goes
through zarr.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BytesCodec
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding, V2ChunkKeyEncoding
from zarr.core.metadata import ArrayV2Metadata, ArrayV3Metadata
from zarr.storage import LocalStore

from napari_bigvol.errors import ReadError

#: What zarr and its codecs raise for a damaged, empty or foreign chunk file (found by
#: fuzzing, tests/io/test_fuzz.py): RuntimeError from zstd and blosc, ValueError when the
#: decoded bytes do not fit the chunk, OSError for an unreadable file, TypeError/KeyError/
#: IndexError from odd metadata only noticed on read, ArithmeticError for zero chunk sizes,
#: MemoryError when a damaged compressed frame claims a huge decoded size.
CHUNK_ERRORS = (
    RuntimeError,
    ValueError,
    OSError,
    TypeError,
    KeyError,
    IndexError,
    ArithmeticError,
    MemoryError,
)
#: zarr v3 compressors that are numcodecs codecs under another name (zarr 3 wraps these).
_V3_COMPRESSORS = ("zstd", "gzip", "blosc")
_BLOSC_SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


@dataclass(frozen=True)
class ChunkFiles:
    """Where and how the chunks of a plain local zarr array are stored.

    Attributes
    ----------
    folder : str
        The array's folder (holding ``.zarray`` or ``zarr.json``).
    shape, chunks : tuple of int
        Array and chunk shape.
    dtype : numpy.dtype
        Stored dtype, byte order included.
    fill_value : Any
        Value of chunks that have no file.
    codec : numcodecs codec or None
        The compressor (None stores raw bytes).
    key_prefix, separator : str
        A chunk's file is ``key_prefix`` then its grid position joined by ``separator``
        (``c/`` and ``/`` for zarr v3's default keys, ``""`` and ``.`` or ``/`` for v2).
    """

    folder: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    fill_value: Any
    codec: Any
    key_prefix: str = ""
    separator: str = "/"

    @classmethod
    def of(cls, array: zarr.Array) -> ChunkFiles | None:
        """Return the chunk files of ``array``, or None when it is not of the plain layout.

        Examples
        --------
        >>> array = zarr.create_array({}, shape=(4,), chunks=(2,), dtype="u1")
        >>> ChunkFiles.of(array) is None  # in memory, not on a local disk
        True
        >>> array = zarr.create_array("v3.zarr", shape=(4,), chunks=(2,), dtype="u2")
        >>> files = ChunkFiles.of(array)  # zarr v3, default codecs: bytes then zstd
        >>> files.codec, os.path.relpath(files.path((1,)), "v3.zarr")
        (Zstd(level=0), 'c/1')
        """
        dtype = np.dtype(array.dtype)
        if not (isinstance(array.store, LocalStore) and array.ndim and dtype.kind in "biuf"):
            return None
        meta = array.metadata
        layout = _v2_layout(meta) if isinstance(meta, ArrayV2Metadata) else _v3_layout(meta, dtype)
        if layout is None:
            return None
        fill_value = 0 if array.fill_value is None else array.fill_value  # as zarr reads it
        folder = os.path.normpath(os.path.join(str(array.store.root), array.path))
        return cls(folder, tuple(array.shape), tuple(array.chunks), dtype, fill_value, *layout)

    def path(self, index: Sequence[int]) -> str:
        """File of the chunk at grid position ``index``."""
        key = self.key_prefix + self.separator.join(str(i) for i in index)
        return os.path.join(self.folder, key)

    def read(self, index: Sequence[int]) -> np.ndarray | None:
        """Return the chunk at ``index`` (edge chunks padded), or None when it has no file."""
        path = self.path(index)
        try:
            with open(path, "rb") as file:
                stored = file.read()
            raw = stored if self.codec is None else self.codec.decode(stored)
            return np.frombuffer(raw, self.dtype).reshape(self.chunks)
        except FileNotFoundError:
            return None  # never written: the fill value, as zarr reads it
        except CHUNK_ERRORS as error:
            reason = f"{type(error).__name__}: {error}".rstrip(": ")
            raise ReadError(
                path, f"cannot read zarr chunk data, a chunk file is damaged ({reason})"
            ) from error

    def write(self, index: Sequence[int], data: np.ndarray) -> None:
        """Store ``data`` as the chunk at ``index``; an edge chunk is padded to full size."""
        if data.shape != self.chunks:
            padded = np.full(self.chunks, self.fill_value or 0, self.dtype)
            padded[tuple(slice(0, n) for n in data.shape)] = data
            data = padded
        raw = np.ascontiguousarray(data, self.dtype)
        stored = raw if self.codec is None else self.codec.encode(raw)
        path = self.path(index)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(stored)

    def aligned(self, region: Sequence[slice]) -> bool:
        """Whether ``region`` covers whole chunks (the array's edge counts as a chunk end)."""
        return all(
            r.start % c == 0 and (r.stop % c == 0 or r.stop == n)
            for r, c, n in zip(region, self.chunks, self.shape, strict=True)
        )


def _v2_layout(meta: ArrayV2Metadata) -> tuple[Any, str, str] | None:
    """``(codec, key prefix, separator)`` of a plain zarr v2 array; None for other layouts."""
    if meta.order != "C" or meta.filters:
        return None
    return meta.compressor, "", meta.dimension_separator


def _v3_layout(meta: ArrayV3Metadata, dtype: np.dtype) -> tuple[Any, str, str] | None:
    """``(codec, key prefix, separator)`` of a zarr v3 array of plain bytes and one compressor.

    None for anything else: sharding, transposes, checksums, other chunk grids or keys, or
    bytes stored in another byte order than the array's dtype.
    """
    first, *compressors = meta.codecs
    encoding = meta.chunk_key_encoding
    plain = (
        isinstance(meta.chunk_grid, RegularChunkGrid)
        and isinstance(encoding, DefaultChunkKeyEncoding | V2ChunkKeyEncoding)
        and isinstance(first, BytesCodec)
        and (first.endian is None or dtype.newbyteorder(first.endian.value) == dtype)
        and len(compressors) <= 1
    )
    codec = _numcodec(compressors[0]) if compressors else None
    if not plain or (compressors and codec is None):
        return None
    prefix = "c" + encoding.separator if isinstance(encoding, DefaultChunkKeyEncoding) else ""
    return codec, prefix, encoding.separator


def _numcodec(compressor: Any) -> Any | None:
    """Return the numcodecs codec a zarr v3 zstd, gzip or blosc compressor wraps, or None."""
    spec = compressor.to_dict()
    name, settings = spec["name"], dict(spec.get("configuration", {}))
    if name not in _V3_COMPRESSORS:
        return None
    if name == "blosc":
        settings.pop("typesize", None)  # numcodecs takes it from the data
        settings["shuffle"] = _BLOSC_SHUFFLES[settings["shuffle"]]
    return numcodecs.get_codec({"id": name, **settings})


@functools.cache
def _codec_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="bigvol-chunk-codec")


def write_region(path: str, region: tuple[slice, ...], data: np.ndarray) -> None:
    """``zarr.open_array(path, mode="r+")[region] = data``, faster for whole plain chunks.

    Examples
    --------
    >>> array = zarr.create_array("small.zarr", shape=(5,), chunks=(2,), dtype="u2",
    ...                           zarr_format=2, chunk_key_encoding={"name": "v2",
    ...                           "separator": "/"})
    >>> write_region("small.zarr", (slice(0, 5),), np.arange(5, dtype="u2"))
    >>> zarr.open_array("small.zarr")[:]
    array([0, 1, 2, 3, 4], dtype=uint16)
    """
    array = zarr.open_array(path, mode="r+")
    files = ChunkFiles.of(array)
    if files is None or not files.aligned(region):
        array[region] = data
        return
    first = [r.start // c for r, c in zip(region, files.chunks, strict=True)]
    counts = [math.ceil(n / c) for n, c in zip(data.shape, files.chunks, strict=True)]

    def write(position: tuple[int, ...]) -> None:
        part = tuple(
            slice(p * c, (p + 1) * c) for p, c in zip(position, files.chunks, strict=True)
        )
        files.write([f + p for f, p in zip(first, position, strict=True)], data[part])

    # Chunks are encoded and written by a pool of threads (numcodecs and file writes
    # release the GIL), as zarr does: the caller's thread meanwhile waits, not computes.
    list(_codec_threads().map(write, itertools.product(*(range(n) for n in counts))))


def axis_pieces(key: slice, size: int, chunk: int) -> Iterator[tuple[int, slice, slice]]:
    """``(chunk index, slice inside the chunk, slice of the result)`` along one axis."""
    start, stop, step = key.indices(size)
    count = len(range(start, stop, step))
    if count == 0:
        return
    last = start + (count - 1) * step
    for index in range(start // chunk, last // chunk + 1):
        low, high = index * chunk, min((index + 1) * chunk, size)
        first = max(0, -(-(low - start) // step))  # first result position inside
        end = min(count, -(-(high - start) // step))
        if first < end:
            inside = slice(start + first * step - low, start + (end - 1) * step - low + 1, step)
            yield index, inside, slice(first, end)


def _full_keys(selection: Any, ndim: int) -> tuple[Any, ...]:
    """One key per axis: ``selection`` with its Ellipsis expanded and missing axes whole."""
    keys = selection if isinstance(selection, tuple) else (selection,)
    if any(key is Ellipsis for key in keys):
        at = next(i for i, key in enumerate(keys) if key is Ellipsis)
        keys = (*keys[:at], *(slice(None),) * (ndim - len(keys) + 1), *keys[at + 1 :])
    return keys + (slice(None),) * (ndim - len(keys))


class ChunkedLevel:
    """An array-like over :class:`ChunkFiles`: any selection, read chunk by chunk.

    It is what the tasks of :class:`~napari_bigvol.io._tiled_array.TiledArray` call,
    for a tile of grouped chunks or for one chunk. A selection spanning several chunks
    decodes them in turn on the calling thread; dask runs tasks in parallel.

    Examples
    --------
    >>> array = zarr.create_array("level.zarr", shape=(4, 6), chunks=(2, 4), dtype="u1",
    ...                           zarr_format=2, chunk_key_encoding={"name": "v2",
    ...                           "separator": "/"})
    >>> array[:] = np.arange(24, dtype="u1").reshape(4, 6)
    >>> ChunkedLevel(ChunkFiles.of(array))[1:4, 3]
    array([ 9, 15, 21], dtype=uint8)
    """

    def __init__(self, files: ChunkFiles) -> None:
        self.files = files
        self.shape = files.shape
        self.dtype = files.dtype
        self.ndim = len(files.shape)

    def __getitem__(self, selection: Any) -> np.ndarray:
        keys = _full_keys(selection, self.ndim)
        dropped = tuple(0 if isinstance(k, int | np.integer) else slice(None) for k in keys)
        for key, size in zip(keys, self.shape, strict=True):
            if isinstance(key, int | np.integer) and not -size <= key < size:
                raise IndexError(f"index {key} is out of bounds for an axis of size {size}")
        # An integer becomes a one-wide slice, dropped from the result at the end.
        slices = [
            slice(int(k) % n, int(k) % n + 1) if isinstance(k, int | np.integer) else k
            for k, n in zip(keys, self.shape, strict=True)
        ]
        if not all(isinstance(k, slice) and (k.step or 1) > 0 for k in slices):
            raise TypeError(f"{self.files.folder}: unsupported selection {selection!r}")
        out_shape = tuple(
            len(range(*k.indices(n))) for k, n in zip(slices, self.shape, strict=True)
        )
        out = np.empty(out_shape, self.dtype)
        pieces = [
            list(axis_pieces(k, n, c))
            for k, n, c in zip(slices, self.shape, self.files.chunks, strict=True)
        ]

        def copy(combination: tuple[tuple[int, slice, slice], ...]) -> None:
            index, inside, target = zip(*combination, strict=True)
            chunk = self.files.read(index)
            out[target] = self.files.fill_value if chunk is None else chunk[inside]

        # In turn: dask's threads run tasks (tiles) in parallel.
        for combination in itertools.product(*pieces):
            copy(combination)
        return out[dropped]
