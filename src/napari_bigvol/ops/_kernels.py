"""Per-block counting kernels that release the GIL, so two threads count twice as fast.

Whole-volume histograms of 8- and 16-bit data (the common microscopy and MRI types)
reduce to counting how often each of the 256 or 65,536 possible bit patterns occurs.
numba compiles that loop with ``nogil=True``, so the block threads of
:func:`napari_bigvol.ops.compute.stream_blocks` run it truly in parallel; it also
avoids the int64 copy of every block that ``numpy.bincount`` makes. Without numba the
same counts come from ``numpy.bincount``.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # numba is optional: numpy.bincount gives the same counts, slower
    numba = None

__all__ = ["count_codes", "count_codes_numpy"]


def count_codes_numpy(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Count the occurrences of every code in ``codes`` with ``numpy.bincount``.

    Parameters
    ----------
    codes : numpy.ndarray
        Unsigned 8- or 16-bit integers, any shape.
    n_codes : int
        ``2 ** bits``, the length of the result.

    Returns
    -------
    numpy.ndarray
        int64 counts of length ``n_codes``.

    Examples
    --------
    >>> count_codes_numpy(np.array([0, 2, 2], np.uint8), 4).tolist()
    [1, 0, 2, 0]
    """
    return np.bincount(codes.ravel(order="K"), minlength=n_codes).astype(np.int64, copy=False)


if numba is not None:

    @numba.njit(nogil=True, cache=True)
    def _count_codes_compiled(flat: np.ndarray, n_codes: int) -> np.ndarray:  # pragma: no cover
        # The plain loop measured fastest (benchmarks/bench_histogram.py, kernel section):
        # faster than several interleaved tables, even on images with long runs of zeros.
        counts = np.zeros(n_codes, np.int64)
        for code in flat:
            counts[code] += 1
        return counts


def count_codes(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Count the occurrences of every code, releasing the GIL when numba is available.

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
    if numba is None:
        return count_codes_numpy(codes, n_codes)
    # ravel(order="K") is a view for C- or F-contiguous blocks; only strided views copy.
    return _count_codes_compiled(codes.ravel(order="K"), n_codes)
