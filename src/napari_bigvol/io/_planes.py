"""Lazy stacks of planes, one dask task per plane and no task more.

Every reader that stores a volume as separate planes (a folder of TIFFs, an image
sequence, the slices of a NIfTI file) builds its dask array here, so the graph stays
as lean as dask allows: a single blockwise layer whose task for block ``i`` loads
plane ``i``. Opening reads nothing; computing one plane reads one plane.

Whole-volume work that wants larger blocks (the export's and the view cache's work
units) asks :meth:`PlaneArray.in_blocks` for them instead of dask's ``rechunk``: each
block is then one task that reads its planes straight into the block, and reads only its
rows where the loader can (TIFF planes stored uncompressed, or compressed in strips), so a
work unit need not hold whole planes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import dask.array as da
import numpy as np
from dask.base import tokenize

PlaneLoader = Callable[[int], np.ndarray]


@runtime_checkable
class RowReader(Protocol):
    """A plane loader that can also read some rows of a plane (its first axis) alone.

    ``row_block`` says in runs of how many rows that is cheaper than loading the plane:
    1 for pixels stored uncompressed in one run (any run of rows), the rows of a strip for
    compressed strips (runs starting and ending on strip edges), 0 when it is not.
    ``read_rows(index, rows, out)`` fills ``out`` (of the rows' shape and the stack's
    dtype) with rows ``rows`` of plane ``index``.
    """

    row_block: int

    def __call__(self, index: int) -> np.ndarray: ...

    def read_rows(self, index: int, rows: slice, out: np.ndarray) -> None: ...


def row_block(load_plane: PlaneLoader) -> int:
    """In runs of how many rows ``load_plane`` reads a plane more cheaply than whole; 0: never.

    Examples
    --------
    >>> row_block(lambda index: np.zeros((4, 4)))
    0
    """
    return int(load_plane.row_block) if isinstance(load_plane, RowReader) else 0


class _PlaneRead:
    """Block ``i`` of a stack is plane ``i``; a class, not a closure, so the graph pickles."""

    def __init__(self, load_plane: PlaneLoader) -> None:
        self.load_plane = load_plane

    def __call__(self, block_id: tuple[int, ...]) -> np.ndarray:
        # A view, not np.stack's copy: a third of the CPU time of reading a 512 x 512
        # uint16 TIFF plane (benchmarks/bench_folder_histogram.py).
        return self.load_plane(block_id[0])[np.newaxis]


class _BlockRead:
    """Reads one block of ``chunks`` (planes x rows x whole rest) straight into its array."""

    def __init__(
        self,
        load_plane: PlaneLoader,
        chunks: tuple[int, ...],
        shape: tuple[int, ...],
        dtype: Any,
        after_plane: Callable[[tuple[int, ...]], None] | None,
    ) -> None:
        self.load_plane = load_plane
        self.chunks = chunks
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.after_plane = after_plane

    def __call__(self, block_id: tuple[int, ...]) -> np.ndarray:
        first = block_id[0] * self.chunks[0]
        planes = range(first, min(first + self.chunks[0], self.shape[0]))
        top = block_id[1] * self.chunks[1]
        rows = slice(top, min(top + self.chunks[1], self.shape[1]))
        block = np.empty((len(planes), rows.stop - rows.start, *self.shape[2:]), self.dtype)
        by_rows = row_block(self.load_plane) > 0
        for position, index in enumerate(planes):
            if by_rows:
                self.load_plane.read_rows(index, rows, block[position])  # type: ignore[attr-defined]
            else:
                block[position] = self.load_plane(index)[rows]
            if self.after_plane is not None:
                self.after_plane(block_id)
        return block


class PlaneArray(da.Array):
    """The dask array of a stack of planes, which also reads larger blocks directly.

    Its own blocks are one plane each (what napari reads). Make one with
    :func:`stack_planes`; ``load_plane`` is its loader.

    Examples
    --------
    >>> stack = stack_planes(lambda i: np.full((6, 5), i, np.uint8), 4, (6, 5), np.uint8)
    >>> stack.chunks
    ((1, 1, 1, 1), (6,), (5,))
    >>> stack.read_chunks  # this loader reads whole planes only
    (1, 6, 5)
    >>> units = stack.in_blocks((3, 6, 5))
    >>> units.chunks, units.npartitions
    (((3, 1), (6,), (5,)), 2)
    >>> bool((units.compute() == stack.compute()).all())
    True
    """

    load_plane: PlaneLoader

    @property
    def read_chunks(self) -> tuple[int, ...]:
        """The smallest block read without waste: a plane, or the loader's run of rows."""
        rows = min(row_block(self.load_plane) or self.shape[1], self.shape[1])
        return (1, rows, *self.shape[2:])

    def in_blocks(
        self,
        chunks: Sequence[int],
        after_plane: Callable[[tuple[int, ...]], None] | None = None,
    ) -> da.Array:
        """Return the stack in blocks of ``chunks``, each block read by one task.

        A block is a run of planes (and of rows, when the loader reads rows) spanning the
        rest of the plane; the loader fills it directly, so no plane is held beside it and
        dask's ``rechunk`` (whole planes, then a copy into each block) is skipped. Other
        block shapes fall back to ``rechunk``.

        Parameters
        ----------
        chunks : sequence of int
            The block shape.
        after_plane : callable, optional
            Called with the block's index after each plane is read into it: where whole-
            volume work counts progress and stops on a cancel inside a block's read. It
            must pickle, like the loader.

        Returns
        -------
        dask.array.Array
            The same values, chunked as asked.
        """
        chunks = tuple(min(int(c), n) for c, n in zip(chunks, self.shape, strict=True))
        if self.ndim < 2 or 0 in self.shape or chunks[2:] != self.shape[2:]:
            return self.rechunk(chunks)
        if chunks[1] % self.read_chunks[1] and chunks[1] != self.shape[1]:
            return self.rechunk(chunks)
        return da.map_blocks(
            _BlockRead(self.load_plane, chunks, self.shape, self.dtype, after_plane),
            chunks=da.core.normalize_chunks(chunks, self.shape),
            dtype=self.dtype,
            meta=np.empty((0,) * self.ndim, dtype=self.dtype),
            name=f"{self.name}-blocks-{tokenize(chunks)}",
        )


def stack_planes(
    load_plane: PlaneLoader,
    count: int,
    plane_shape: Sequence[int],
    dtype: np.dtype | type,
    *,
    name: str | None = None,
) -> PlaneArray:
    """Build a lazy ``(count, *plane_shape)`` dask array from a per-plane loader.

    Parameters
    ----------
    load_plane : callable
        ``load_plane(i)`` returns plane ``i`` as a numpy array of ``plane_shape`` and
        ``dtype``. It must pickle (a module-level function or a small object) so the
        array can be computed on a ``dask.distributed`` cluster. A :class:`RowReader`
        also reads runs of rows, for :meth:`PlaneArray.in_blocks`.
    count : int
        Number of planes.
    plane_shape : sequence of int
        Shape of one plane, for example ``(y, x)`` or ``(y, x, 3)`` for RGB.
    dtype : numpy dtype
        Data type of every plane.
    name : str, optional
        Deterministic dask key prefix, for example derived from the file list and
        modification times, so equal inputs share cached results.

    Returns
    -------
    PlaneArray
        The lazy stack, one block per plane.

    Examples
    --------
    >>> import numpy as np
    >>> stack = stack_planes(lambda i: np.full((2, 3), i, np.uint8), 4, (2, 3), np.uint8)
    >>> stack.shape, int(stack[3].max().compute())
    ((4, 2, 3), 3)
    """
    dtype = np.dtype(dtype)
    chunks = ((1,) * count, *((size,) for size in plane_shape))
    planes = da.map_blocks(
        _PlaneRead(load_plane),
        chunks=chunks,
        dtype=dtype,
        meta=np.empty((0,) * len(chunks), dtype=dtype),
        name=name,
    )
    array = PlaneArray(planes.dask, planes.name, planes.chunks, meta=planes._meta)
    array.load_plane = load_plane
    return array
