"""Direct chunk-file reads and writes for local zarr v2 arrays of the plain layout.

napari-bigvol writes its view cache, and its exports, as zarr v2 arrays on a local disk:
C order, no filters, ``/``-separated chunk keys, one numcodecs compressor (or none). For
those arrays a chunk is one file holding the compressed bytes of the whole chunk, so it can
be read and written with one ``open`` and one numcodecs call. zarr 3 routes every chunk
through its asyncio event loop and codec pipeline, which costs more than the decoding
itself: a sagittal plane of 256 chunks of 64^3 uint16 (lz4) took 164 ms through
``zarr.Array.__getitem__`` and 54 ms here; writing a 64 x 512 x 512 work unit took 105 ms
through ``zarr.Array.__setitem__`` and 70 ms here (docs/performance/view_cache.md). Any
other array (zarr v3, sharding, remote stores, filters) goes through zarr.
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

import numpy as np
import zarr
from zarr.core.metadata import ArrayV2Metadata
from zarr.storage import LocalStore

from napari_bigvol.errors import ReadError

#: What a damaged chunk file raises while it is decoded (numcodecs' Blosc raises
#: RuntimeError, a wrong size ValueError; OSError for an unreadable file).
_CHUNK_ERRORS = (RuntimeError, ValueError, OSError, TypeError)


@dataclass(frozen=True)
class ChunkFiles:
    """Where and how the chunks of a plain local zarr v2 array are stored.

    Attributes
    ----------
    folder : str
        The array's folder (holding ``.zarray``).
    shape, chunks : tuple of int
        Array and chunk shape.
    dtype : numpy.dtype
        Stored dtype, byte order included.
    fill_value : Any
        Value of chunks that have no file.
    codec : numcodecs codec or None
        The compressor (None stores raw bytes).
    """

    folder: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    fill_value: Any
    codec: Any

    @classmethod
    def of(cls, array: zarr.Array) -> ChunkFiles | None:
        """Return the chunk files of ``array``, or None when it is not of the plain layout.

        Examples
        --------
        >>> array = zarr.create_array({}, shape=(4,), chunks=(2,), dtype="u1")
        >>> ChunkFiles.of(array) is None  # in memory, not on a local disk
        True
        """
        meta = array.metadata
        plain = (
            isinstance(meta, ArrayV2Metadata)
            and isinstance(array.store, LocalStore)
            and meta.order == "C"
            and not meta.filters
            and meta.dimension_separator == "/"
            and array.dtype.kind in "biuf"
        )
        if not plain:
            return None
        return cls(
            os.path.join(str(array.store.root), array.path),
            tuple(array.shape),
            tuple(array.chunks),
            np.dtype(array.dtype),
            array.fill_value,
            meta.compressor,
        )

    def path(self, index: Sequence[int]) -> str:
        """File of the chunk at grid position ``index``."""
        return os.path.join(self.folder, *(str(i) for i in index))

    def read(self, index: Sequence[int]) -> np.ndarray | None:
        """Return the chunk at ``index`` (edge chunks padded), or None when it has no file."""
        try:
            with open(self.path(index), "rb") as file:
                stored = file.read()
        except FileNotFoundError:
            return None
        try:
            raw = stored if self.codec is None else self.codec.decode(stored)
            return np.frombuffer(raw, self.dtype).reshape(self.chunks)
        except _CHUNK_ERRORS as error:
            reason = f"{type(error).__name__}: {error}".rstrip(": ")
            raise ReadError(
                self.folder, f"cannot read zarr chunk data, a chunk file is damaged ({reason})"
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


@functools.cache
def _encoders() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="bigvol-chunk-writer")


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
    list(_encoders().map(write, itertools.product(*(range(n) for n in counts))))


def _axis_pieces(key: slice, size: int, chunk: int) -> Iterator[tuple[int, slice, slice]]:
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


class ChunkedLevel:
    """An array-like over :class:`ChunkFiles` for :func:`dask.array.from_array`.

    dask fuses a slice of its block into the ``__getitem__`` call, so a plane reads only
    the chunks it crosses, decoded one after the other in the calling thread (dask's
    threads run several blocks at once).

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
        keys = selection if isinstance(selection, tuple) else (selection,)
        keys = keys + (slice(None),) * (self.ndim - len(keys))
        dropped = tuple(0 if isinstance(k, int | np.integer) else slice(None) for k in keys)
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
            list(_axis_pieces(k, n, c))
            for k, n, c in zip(slices, self.shape, self.files.chunks, strict=True)
        ]
        for combination in itertools.product(*pieces):
            index, inside, target = zip(*combination, strict=True)
            chunk = self.files.read(index)
            out[target] = self.files.fill_value if chunk is None else chunk[inside]
        return out[dropped]
