"""Lazy stacks of planes, one dask task per plane and no task more.

Every reader that stores a volume as separate planes (a folder of TIFFs, an image
sequence, the slices of a NIfTI file) builds its dask array here, so the graph stays
as lean as dask allows: a single blockwise layer whose task for block ``i`` loads
plane ``i``. Opening reads nothing; computing one plane reads one plane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dask.array as da
import numpy as np

PlaneLoader = Callable[[int], np.ndarray]


class _BlockCall:
    """Adapter from dask's ``block_id`` to a plane index; a class so the graph pickles."""

    def __init__(self, load_plane: PlaneLoader, planes_per_block: int, count: int) -> None:
        self.load_plane = load_plane
        self.planes_per_block = planes_per_block
        self.count = count

    def __call__(self, block_id: tuple[int, ...]) -> np.ndarray:
        start = block_id[0] * self.planes_per_block
        stop = min(start + self.planes_per_block, self.count)
        if stop - start == 1:
            # A view, not np.stack's copy: a third of the CPU time of reading a 512 x 512
            # uint16 TIFF plane (benchmarks/bench_folder_histogram.py).
            return self.load_plane(start)[np.newaxis]
        return np.stack([self.load_plane(i) for i in range(start, stop)])


def stack_planes(
    load_plane: PlaneLoader,
    count: int,
    plane_shape: Sequence[int],
    dtype: np.dtype | type,
    *,
    planes_per_block: int = 1,
    name: str | None = None,
) -> da.Array:
    """Build a lazy ``(count, *plane_shape)`` dask array from a per-plane loader.

    Parameters
    ----------
    load_plane : callable
        ``load_plane(i)`` returns plane ``i`` as a numpy array of ``plane_shape`` and
        ``dtype``. It must pickle (a module-level function or a small object) so the
        array can be computed on a ``dask.distributed`` cluster.
    count : int
        Number of planes.
    plane_shape : sequence of int
        Shape of one plane, for example ``(y, x)`` or ``(y, x, 3)`` for RGB.
    dtype : numpy dtype
        Data type of every plane.
    planes_per_block : int, optional
        Planes grouped into one dask chunk. 1 (the default) makes each displayed plane
        read exactly one plane.
    name : str, optional
        Deterministic dask key prefix, for example derived from the file list and
        modification times, so equal inputs share cached results.

    Returns
    -------
    dask.array.Array
        The lazy stack.

    Examples
    --------
    >>> import numpy as np
    >>> stack = stack_planes(lambda i: np.full((2, 3), i, np.uint8), 4, (2, 3), np.uint8)
    >>> stack.shape, int(stack[3].max().compute())
    ((4, 2, 3), 3)
    """
    dtype = np.dtype(dtype)
    full, rest = divmod(count, planes_per_block)
    leading = (planes_per_block,) * full + ((rest,) if rest else ())
    chunks = (leading, *((size,) for size in plane_shape))
    return da.map_blocks(
        _BlockCall(load_plane, planes_per_block, count),
        chunks=chunks,
        dtype=dtype,
        meta=np.empty((0,) * len(chunks), dtype=dtype),
        name=name,
    )
