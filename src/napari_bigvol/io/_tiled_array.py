"""Dask arrays over chunked stores whose planes are read in a few large tasks.

napari slices with dask's task fusion switched off (``optimization.fuse.active``, set by
``napari.utils._dask_utils.configure_dask``), so ``np.asarray(level[:, :, x])`` runs the
graph dask built for it as written: one read task and one ``getitem`` task for every
stored chunk the plane crosses. A full-resolution sagittal plane of a 4 GB view cache
(64^3 chunks) crosses 512 chunks, and the scheduler's cost for those 1,024 tasks, not the
decoding, set its time: about 200 ms, against 60 ms for the same chunks read in 32 tasks
(docs/performance/view_cache.md). Larger dask blocks are no cure: without fusion a block
is read whole for any plane through it.

:class:`TiledArray` is a dask array whose basic selections (integers and slices) build
that graph themselves: each task reads a tile of grouped chunks the selection crosses, in
one call of the store's reader, and keeps only the selected part. For chunk files on a
local disk the reader decodes them in turn (:class:`~._zarr_chunks.ChunkedLevel`); for a
remote, sharded or filtered zarr array it is zarr, which fetches a tile's chunks
concurrently (instead of one request at a time per dask thread). A selection of a
selection (napari first cuts the field of view, then the plane) composes, so only the
last one is ever read. Everything else (fancy indexing, arithmetic, ``map_blocks``,
``store``, a whole ``compute``) is dask's own, on one block per stored chunk.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.array.slicing import normalize_index
from dask.base import tokenize

from napari_bigvol.io._zarr_chunks import axis_pieces

#: Most stored chunks one read task of a selection decodes. 16 chunks of 64^3 uint16 are
#: 8 MiB decoded, a few ms of work: enough to hide the scheduler's cost per task, small
#: enough that a superseded plane stops soon (napari-bigvol's slicers cancel between tasks).
TASK_CHUNKS = 16

#: Positions one axis of a selection covers: an integer (the axis is dropped) or a range.
Region = tuple[int | range, ...]


@dataclass(frozen=True)
class TiledStore:
    """What a :class:`TiledArray` reads: ``reader[selection]``, and how it is stored.

    Attributes
    ----------
    reader : array-like
        ``shape``, ``dtype`` and ``__getitem__`` for any basic selection.
    chunks : tuple of int
        Its stored chunk shape.
    name : str
        The dask name of the whole array; tile keys derive from it.
    """

    reader: Any
    chunks: tuple[int, ...]
    name: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.reader.shape)

    @property
    def whole(self) -> Region:
        """The region of the whole stored array."""
        return tuple(range(size) for size in self.shape)


class TiledArray(da.Array):
    """A dask array over a chunked store, read selection by selection in tiles.

    Make one with :func:`tiled_array`. ``store`` is what it reads (a :class:`TiledStore`),
    and ``region`` the positions of the stored array this array shows, per stored axis: a
    range, or an integer for an axis a selection dropped.

    Examples
    --------
    >>> import zarr
    >>> stored = zarr.create_array("cube.zarr", shape=(8, 8, 8), chunks=(2, 2, 2), dtype="u2")
    >>> stored[:] = np.arange(512, dtype="u2").reshape(8, 8, 8)
    >>> level = tiled_array(stored, stored.chunks, name="cube")
    >>> level.numblocks  # whole-array work: one block per stored chunk
    (4, 4, 4)
    >>> window = level[2:7, :, 1:]  # napari's field of view, not read
    >>> plane = window[:, :, 4]  # then the plane: x = 5 of the stored array
    >>> plane.region
    (range(2, 7), range(0, 8), 5)
    >>> plane.npartitions < 12  # the 12 chunks it crosses, read in tiles
    True
    >>> bool((plane.compute() == stored[2:7, :, 5]).all())
    True
    """

    store: TiledStore
    #: None once values were assigned into the array: its graph then holds them.
    region: Region | None

    def __getitem__(self, index: Any) -> da.Array:
        if self.region is None:
            return super().__getitem__(index)
        region = self._compose(index)
        if region is None:  # fancy indexing, new axes, negative steps: dask's own
            return super().__getitem__(index)
        if region == self.region:
            return self
        return _selection_array(self.store, region, self.dtype)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.region = None  # reads must now go through the new graph, not the store

    def _compose(self, index: Any) -> Region | None:
        """Return the region ``self[index]`` holds, or None when ``index`` is not basic."""
        keys = normalize_index(index if isinstance(index, tuple) else (index,), self.shape)
        basic = all(
            isinstance(key, int | np.integer) or (isinstance(key, slice) and (key.step or 1) > 0)
            for key in keys
        )
        if not basic or len(keys) != self.ndim:
            return None
        selected = iter(keys)
        # Indexing a range by an integer or a slice is the composition of the two.
        return tuple(
            part if isinstance(part, int) else part[next(selected)] for part in self.region or ()
        )


def tiled_array(reader: Any, chunks: Sequence[int], name: str) -> TiledArray:
    """Return the whole of ``reader`` as a :class:`TiledArray` named ``name``.

    ``reader`` has ``shape``, ``dtype`` and ``__getitem__`` for any basic selection
    (a zarr array, or a chunk reader of this package); ``chunks`` is its stored chunk
    shape. The array's own blocks are one stored chunk each, for whole-array work (see
    :class:`TiledArray` for an example).
    """
    whole = da.from_array(
        reader,
        chunks=tuple(chunks),
        name=name,
        meta=np.empty((0,) * len(reader.shape), reader.dtype),
        asarray=False,
    )
    store = TiledStore(reader, tuple(chunks), name)
    return _wrap(whole.dask, name, whole.chunks, whole.dtype, store, store.whole)


def _wrap(
    graph: Any, name: str, chunks: Any, dtype: np.dtype, store: TiledStore, region: Region
) -> TiledArray:
    array = TiledArray(graph, name, chunks, meta=np.empty((0,) * len(chunks), dtype))
    array.store, array.region = store, region
    return array


def _selection_array(store: TiledStore, region: Region, dtype: np.dtype) -> TiledArray:
    """Return the positions ``region`` of ``store`` as a dask array of tile reads.

    The axes the region spans (two for a plane) are cut into fixed tiles of grouped
    chunks (:func:`_tile_extents`), whatever the region's extent: a tile has one dask key
    in every region that touches it, so napari's dask cache serves the tiles of the plane
    in view again for a pan, and for the thumbnail napari draws from the whole plane. A
    region one position wide along an axis (a plane napari asks for as ``x:x+1``) keeps
    that position as part of the tile. Each block of the result is a tile, or a cut of one
    where the region ends inside it.
    """
    kept = [axis for axis, part in enumerate(region) if isinstance(part, range)]
    extent = _tile_extents(store, region)
    shape = tuple(extent.values())
    plane = tuple(
        part if isinstance(part, int) else ("tiled" if axis in extent else "one")
        for axis, part in enumerate(region)
    )
    tiles = "bigvol-tile-" + tokenize(store.name, plane, shape)
    name = "bigvol-chunks-" + tokenize(store.name, _token(region), shape)
    # Per kept axis: (tile index, positions inside the tile, positions in the result). A
    # one-position axis has one "tile", indexed by the position.
    pieces = [
        list(axis_pieces(_as_slice(region[axis]), store.shape[axis], extent[axis]))
        if axis in extent
        else [(region[axis][0], slice(0, 1, 1), slice(0, 1))]
        for axis in kept
    ]
    chunks = tuple(tuple(out.stop - out.start for _, _, out in axis) for axis in pieces)
    if not all(chunks):  # an empty selection: one empty block
        empty = tuple(len(region[axis]) for axis in kept)
        graph = {(name, *(0,) * len(kept)): (functools.partial(np.zeros, empty, dtype),)}
        return _wrap(graph, name, tuple((n,) for n in empty), dtype, store, region)
    graph = _tile_graph(store, region, extent, pieces, tiles, name)
    return _wrap(graph, name, chunks, dtype, store, region)


def _tile_graph(
    store: TiledStore,
    region: Region,
    extent: dict[int, int],
    pieces: Sequence[Sequence[tuple[int, slice, slice]]],
    tiles: str,
    name: str,
) -> dict[Any, Any]:
    """Tasks of the tiles a region touches (keys ``tiles``) and of its blocks (``name``)."""
    kept = [axis for axis, part in enumerate(region) if isinstance(part, range)]
    graph: dict[Any, Any] = {}
    for block, combination in zip(
        itertools.product(*(range(len(axis)) for axis in pieces)),
        itertools.product(*pieces),
        strict=True,
    ):
        at = dict(zip(kept, (index for index, _, _ in combination), strict=True))
        tile_key = (tiles, *at.values())
        if tile_key not in graph:
            graph[tile_key] = (
                functools.partial(store.reader.__getitem__, _tile(region, at, extent)),
            )
        inside = tuple(cut for _, cut, _ in combination)
        whole = all(
            axis not in extent
            or cut == slice(0, min(extent[axis], store.shape[axis] - at[axis] * extent[axis]), 1)
            for cut, axis in zip(inside, kept, strict=True)
        )
        graph[(name, *block)] = tile_key if whole else (operator.getitem, tile_key, inside)
    return graph


def _tile_extents(store: TiledStore, region: Region) -> dict[int, int]:
    """Tile extent along each axis the region keeps more (or less) than one position of.

    Tiles group chunks along the axes the region crosses chunks of (:func:`_tile_shape`);
    along a slab inside one chunk (napari's projection of a few planes) a tile is one
    chunk thick.
    """
    wide = [axis for axis, part in enumerate(region) if isinstance(part, range) and len(part) != 1]
    across = [axis for axis in wide if _chunks_crossed(region[axis], store.chunks[axis]) > 1]
    grouped = _tile_shape([store.shape[a] for a in across], [store.chunks[a] for a in across])
    extent = {axis: store.chunks[axis] for axis in wide} | dict(zip(across, grouped, strict=True))
    return {axis: extent[axis] for axis in wide}


def _tile(region: Region, at: dict[int, int], extent: dict[int, int]) -> tuple[Any, ...]:
    """Return the selection a tile covers; ``at`` holds its index on the kept axes."""
    return tuple(
        part
        if isinstance(part, int)
        else slice(at[axis] * extent[axis], (at[axis] + 1) * extent[axis])
        if axis in extent
        else slice(at[axis], at[axis] + 1)
        for axis, part in enumerate(region)
    )


def _chunks_crossed(positions: range, chunk: int) -> int:
    """How many chunks of size ``chunk`` the ``positions`` touch (at least their span)."""
    return positions[-1] // chunk - positions[0] // chunk + 1 if positions else 0


def _as_slice(positions: range) -> slice:
    return slice(positions.start, positions.stop, positions.step)


def _token(region: Region) -> tuple[Any, ...]:
    # (first, count, step): equal ranges of other stops, such as range(8, 35, 2) and
    # range(8, 36, 2), read the same positions, so share a dask key.
    return tuple(p if isinstance(p, int) else (p[0] if p else 0, len(p), p.step) for p in region)


def _tile_shape(shape: Sequence[int], chunks: Sequence[int]) -> tuple[int, ...]:
    """Extent of a tile along each axis: whole chunks, about square, :func:`_budget` of them.

    Examples
    --------
    >>> _tile_shape([2000, 1024], [64, 64])  # a 4 GB sagittal plane: 32 x 16 chunks
    (256, 256)
    >>> _tile_shape([300, 200], [64, 64])  # 5 x 4 chunks: two tiles or more a core
    (128, 128)
    """
    counts = [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)]
    budget = _budget(counts)
    groups = [1] * len(counts)
    # Double the group of the axis with the fewest chunks per tile, innermost first on a
    # tie, while the tile holds no more than the budget.
    while True:
        room = [a for a in range(len(counts)) if groups[a] < counts[a]]
        if not room:
            break
        axis = min(reversed(room), key=lambda a: groups[a])
        grown = min(groups[axis] * 2, counts[axis])
        if math.prod(groups) // groups[axis] * grown > budget:
            break
        groups[axis] = grown
    return tuple(g * c for g, c in zip(groups, chunks, strict=True))


def _budget(counts: Sequence[int]) -> int:
    """Chunks a tile may hold: :data:`TASK_CHUNKS`, or fewer so that each core gets two."""
    return max(1, min(TASK_CHUNKS, math.prod(counts) // (2 * (os.cpu_count() or 1))))
