"""Per-block kernels that release the GIL, so the block threads run truly in parallel.

Whole-volume histograms of 8- and 16-bit data (the common microscopy and MRI types)
reduce to counting how often each of the 256 or 65,536 possible bit patterns occurs
(:func:`count_codes`). Wider dtypes (float32 MRI, int32 ...) are binned by
:func:`bin_uniform`, which gives ``numpy.histogram``'s counts for its uniform edges, and
summarised by :func:`finite_moments`; both read each value once, without the temporary
copies numpy makes.

numba (a dependency) compiles these loops with ``nogil=True``, so the threads of
:func:`napari_bigvol.ops.compute.stream_blocks` use every core. Measured against numpy
in docs/performance/operations.md: ``count_codes`` is 12-14x faster than
``numpy.bincount``, the float histogram 1.8x faster than numpy's own loops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["bin_uniform", "count_codes", "finite_moments"]


@functools.cache
def _jit(loop: Callable[..., Any]) -> Callable[..., Any]:
    """Compile a module-level loop once; numba's disk cache spares later processes."""
    import numba  # imported on the first call, so importing napari-bigvol stays fast

    return numba.njit(nogil=True, cache=True)(loop)


def _count_codes_loop(flat: np.ndarray, n_codes: int) -> np.ndarray:  # pragma: no cover
    # The plain loop measured fastest (docs/performance/operations.md, kernel section):
    # faster than several interleaved tables, even on images with long runs of zeros.
    counts = np.zeros(n_codes, np.int64)
    for code in flat:
        counts[code] += 1
    return counts


def _bin_uniform_loop(
    flat: np.ndarray,
    edges: np.ndarray,
    exclude_zeros: bool,
    grid_low: float,
    grid_high: float,
    grid_bins: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    bins = edges.size - 1
    counts = np.zeros(bins, np.int64)
    grid_counts = np.zeros(max(grid_bins, 1), np.int64)
    first, last = edges[0], edges[bins]
    scale = bins / (np.float64(last) - np.float64(first))
    grid_scale = grid_bins / (grid_high - grid_low) if grid_bins else 0.0
    for value in flat:
        if exclude_zeros and value == 0:
            continue
        if grid_bins and value - value == 0:  # finite
            position = (np.float64(value) - grid_low) * grid_scale
            cell = int(position) if position > 0 else 0
            grid_counts[min(cell, grid_bins - 1)] += 1
        if not (value >= first and value <= last):  # outside the range, or NaN
            continue
        # An estimate, then the exact test against the edges numpy computed: the bin
        # is the one with edges[i] <= value < edges[i + 1], the last one closed.
        index = min(int((np.float64(value) - np.float64(first)) * scale), bins - 1)
        while index > 0 and value < edges[index]:
            index -= 1
        while index < bins - 1 and value >= edges[index + 1]:
            index += 1
        counts[index] += 1
    return counts, grid_counts


def _finite_moments_loop(
    flat: np.ndarray, exclude_zeros: bool
) -> tuple[int, np.ndarray, float, float, float]:  # pragma: no cover
    extremes = np.zeros(2, flat.dtype)
    count = 0
    shift = total = squares = 0.0
    for value in flat:
        if value - value != 0:  # NaN or infinite
            continue
        if exclude_zeros and value == 0:
            continue
        if count == 0:
            extremes[0] = extremes[1] = value
            shift = np.float64(value)  # summing around a data value limits cancellation
        elif value < extremes[0]:
            extremes[0] = value
        elif value > extremes[1]:
            extremes[1] = value
        deviation = np.float64(value) - shift
        total += deviation
        squares += deviation * deviation
        count += 1
    return count, extremes, shift, total, squares


def count_codes(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Count the occurrences of every code, releasing the GIL.

    Parameters
    ----------
    codes : numpy.ndarray
        Unsigned 8- or 16-bit integers, any shape or memory layout.
    n_codes : int
        ``2 ** bits``, the length of the result.

    Returns
    -------
    numpy.ndarray
        int64 counts of length ``n_codes``, equal to ``numpy.bincount(codes.ravel(),
        minlength=n_codes)``.

    Examples
    --------
    >>> count_codes(np.array([[1, 1], [3, 0]], np.uint16), 65536)[:4].tolist()
    [1, 2, 0, 1]
    """
    # ravel(order="K") is a view for C- or F-contiguous blocks; only strided views copy.
    return _jit(_count_codes_loop)(codes.ravel(order="K"), n_codes)


def bin_uniform(
    values: np.ndarray,
    edges: np.ndarray,
    exclude_zeros: bool = False,
    grid: tuple[float, float, int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Count ``values`` into uniform ``edges`` exactly as ``numpy.histogram`` does.

    ``edges`` must be the edges ``numpy.histogram(values, n, range)`` returns; each value,
    cast to their dtype as numpy casts it, is counted in the bin ``i`` with
    ``edges[i] <= value < edges[i + 1]`` (the last bin closed), which is where numpy's
    estimate-and-correct loop puts it. Values outside the edges and NaNs are skipped.

    Parameters
    ----------
    values : numpy.ndarray
        Any shape, any real dtype that casts to ``edges.dtype`` without loss of order.
    edges : numpy.ndarray
        Increasing float edges.
    exclude_zeros : bool, optional
        Skip values equal to zero.
    grid : (float, float, int), optional
        ``(low, high, cells)``: also count the finite (non-excluded) values on this
        uniform grid, clipping to its end cells, for percentile estimates.

    Returns
    -------
    counts : numpy.ndarray
        int64 counts per bin.
    grid_counts : numpy.ndarray or None
        int64 counts per grid cell, when a grid was given.

    Examples
    --------
    >>> values = np.array([0.0, 0.5, 1.0, 2.0, np.nan], np.float32)
    >>> edges = np.histogram(values[:4], 2)[1]
    >>> bin_uniform(values, edges)[0].tolist()
    [2, 2]
    """
    flat = values.ravel(order="K").astype(edges.dtype, copy=False)
    low, high, cells = grid or (0.0, 1.0, 0)
    counts, grid_counts = _jit(_bin_uniform_loop)(flat, edges, exclude_zeros, low, high, cells)
    return counts, grid_counts if grid else None


def finite_moments(
    values: np.ndarray, exclude_zeros: bool = False
) -> tuple[int, np.generic | None, np.generic | None, float, float]:
    """Count, minimum, maximum, mean and sum of squared deviations of the finite values.

    One pass, no copies.

    Parameters
    ----------
    values : numpy.ndarray
        Any shape, any real dtype.
    exclude_zeros : bool, optional
        Leave out values equal to zero.

    Returns
    -------
    tuple
        ``(count, minimum, maximum, mean, m2)``; the extremes are scalars of the
        values' dtype (None when nothing counted), ``m2`` is ``sum((v - mean) ** 2)``.

    Examples
    --------
    >>> finite_moments(np.array([1.0, np.inf, 3.0, 0.0]), exclude_zeros=True)
    (2, np.float64(1.0), np.float64(3.0), 2.0, 2.0)
    """
    if not values.dtype.isnative:  # numba reads native byte order only
        values = values.astype(values.dtype.newbyteorder("="))
    count, extremes, shift, total, squares = _jit(_finite_moments_loop)(
        values.ravel(order="K"), exclude_zeros
    )
    if not count:
        return 0, None, None, 0.0, 0.0
    return count, extremes[0], extremes[1], shift + total / count, squares - total * total / count
