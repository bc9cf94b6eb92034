"""Exact histograms and summary statistics of arrays of any size, streamed block by block.

:func:`histogram` returns what ``numpy.histogram(data, bins, range)`` returns, bit for
bit (same edges, same counts, the last bin closed), without ever holding more than a few
blocks in memory. :func:`histogram_stats` adds the count, minimum, maximum, mean,
standard deviation and percentiles from the same streamed pass, and
:func:`channel_histogram_stats` gives them for every channel of RGB or multichannel data
while reading each block once.

How the exactness is kept:

* 8- and 16-bit data (bool, (u)int8, (u)int16, float16) have at most 65,536 distinct
  values. One pass counts every bit pattern with a GIL-releasing kernel
  (:mod:`napari_bigvol.ops._kernels`); the histogram is then ``numpy.histogram`` of the
  distinct values weighted by their counts, which bins every value exactly as numpy
  would. Minimum, maximum, mean, standard deviation and percentiles are exact too.
* Other dtypes take one pass for the minimum and maximum (only when ``range`` is not
  given, or statistics are wanted) and one pass in which every block is binned by
  ``numpy.histogram`` with the global range, so each value meets the same arithmetic as
  in a single ``numpy.histogram`` call. Mean and standard deviation are combined from
  per-block float64 moments (Chan et al.), accurate to float64 rounding; percentiles
  come from a 65,536-bin grid and are within :attr:`HistogramStats.percentile_tolerance`.

Documented differences from numpy: non-finite values (NaN, ±inf) are never counted and
never enter the automatic range, where ``numpy.histogram`` raises instead; boolean data
are counted as 0 and 1 (numpy converts them too, with a warning). With
``exclude_zeros=True`` the result equals ``numpy.histogram(data[data != 0], bins, range)``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import dask.array as da
import numpy as np

from napari_bigvol.errors import OperationError
from napari_bigvol.ops import _kernels
from napari_bigvol.ops.compute import (
    ProgressCallback,
    StopCheck,
    as_dask_array,
    reduce_blocks,
    require_numeric,
)

__all__ = [
    "HistogramStats",
    "channel_histogram_stats",
    "histogram",
    "histogram_stats",
    "value_counts",
]

Bins = int | Sequence[float] | np.ndarray
ValueRange = tuple[float, float] | None

# Resolution of the grid that percentiles of wide-valued data are read from.
PERCENTILE_GRID_BINS = 65536


@dataclass(frozen=True)
class HistogramStats:
    """A histogram with the summary statistics of the same values.

    Attributes
    ----------
    counts : numpy.ndarray
        Counts per bin, as ``numpy.histogram`` returns them.
    edges : numpy.ndarray
        Bin edges, as ``numpy.histogram`` returns them.
    count : int
        Number of values summarised: the finite values, less the zeros when they were
        excluded. Values outside an explicit ``range`` are included here but not in
        ``counts``.
    minimum, maximum, mean, std : float
        Of those values; NaN when there are none. ``std`` is the population standard
        deviation (``ddof=0``), as ``numpy.std``.
    percentiles : dict
        Maps each requested percentile (0-100) to its value, as ``numpy.percentile``
        with the default linear method.
    percentile_tolerance : float
        0.0 when the percentiles are exact (8- and 16-bit data); otherwise the largest
        possible distance from the exact value.
    """

    counts: np.ndarray
    edges: np.ndarray
    count: int
    minimum: float
    maximum: float
    mean: float
    std: float
    percentiles: dict[float, float]
    percentile_tolerance: float


def histogram(
    data: Any,
    bins: Bins = 50,
    range: ValueRange = None,
    exclude_zeros: bool = False,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of an array of any size, equal to ``numpy.histogram(data, bins, range)``.

    Dask arrays are streamed block by block through
    :func:`~napari_bigvol.ops.compute.stream_blocks` (on a cluster when one is
    configured) and never materialised.

    Parameters
    ----------
    data : array-like
        numpy or dask array of a boolean, integer or floating-point dtype.
    bins : int or sequence of float, optional
        Number of equal-width bins (default 50) or the monotonic bin edges.
    range : (float, float), optional
        Lower and upper edge. Default: the minimum and maximum of the counted values.
    exclude_zeros : bool, optional
        Drop values equal to zero before counting (and before finding the range), for
        the histogram of a masked image.
    progress : callable, optional
        ``progress(done, total)`` after each block; totals include both passes.
    should_stop : callable, optional
        Polled between blocks; True raises :class:`~napari_bigvol.errors.Cancelled`.

    Returns
    -------
    counts : numpy.ndarray
        int64 counts per bin.
    edges : numpy.ndarray
        The ``len(counts) + 1`` bin edges.

    Raises
    ------
    OperationError
        For a non-numeric dtype or invalid ``bins``/``range`` (it is a ``ValueError``,
        as numpy raises).
    Cancelled
        When ``should_stop`` returned True.

    Examples
    --------
    >>> import dask.array as da
    >>> volume = da.arange(1000, chunks=300) % 7
    >>> counts, edges = histogram(volume, bins=7)
    >>> counts.tolist()
    [143, 143, 143, 143, 143, 143, 142]
    >>> np.array_equal(edges, np.histogram(volume.compute(), 7)[1])
    True
    """
    [result] = _summarise(data, _Request(bins, range, exclude_zeros, None), progress, should_stop)
    return result.counts, result.edges


def histogram_stats(
    data: Any,
    bins: Bins = 50,
    range: ValueRange = None,
    exclude_zeros: bool = False,
    percentiles: Sequence[float] = (1.0, 50.0, 99.0),
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> HistogramStats:
    """Histogram plus count, min, max, mean, std and percentiles, from one streamed run.

    Parameters
    ----------
    data : array-like
        numpy or dask array of a boolean, integer or floating-point dtype.
    bins, range, exclude_zeros
        As for :func:`histogram`; ``counts`` and ``edges`` equal its result.
    percentiles : sequence of float, optional
        Percentiles to report, each in [0, 100].
    progress, should_stop : callable, optional
        As for :func:`histogram`.

    Returns
    -------
    HistogramStats
        The histogram and the statistics of the finite (and, if excluded, non-zero)
        values.

    Raises
    ------
    OperationError
        For a non-numeric dtype, invalid bins/range or a percentile outside [0, 100].
    Cancelled
        When ``should_stop`` returned True.

    Examples
    --------
    >>> stats = histogram_stats(np.array([0, 1, 2, 3, 4], np.uint8), bins=5)
    >>> stats.mean, stats.maximum, stats.percentiles[50.0]
    (2.0, 4.0, 2.0)
    """
    request = _Request(bins, range, exclude_zeros, _checked_percentiles(percentiles))
    [result] = _summarise(data, request, progress, should_stop)
    return result


def channel_histogram_stats(
    data: Any,
    axis: int = -1,
    bins: Bins = 50,
    range: ValueRange = None,
    exclude_zeros: bool = False,
    percentiles: Sequence[float] = (1.0, 50.0, 99.0),
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> list[HistogramStats]:
    """:func:`histogram_stats` of every channel along ``axis``, reading the data once.

    For RGB(A) or interleaved channels (the channel axis inside every chunk) one streamed
    run serves all channels, where a loop over channels would read every block once per
    channel. Channels stored in separate chunks are streamed one after the other, each
    reading only its own chunks.

    Parameters
    ----------
    data : array-like
        numpy or dask array of a boolean, integer or floating-point dtype.
    axis : int, optional
        The channel axis (default: the last, where RGB keeps its colours).
    bins, range, exclude_zeros, percentiles
        As for :func:`histogram_stats`, applied to each channel; with ``range`` None
        each channel gets its own range.
    progress, should_stop : callable, optional
        As for :func:`histogram`; the total covers all channels.

    Returns
    -------
    list of HistogramStats
        One per channel, in channel order; each equals ``histogram_stats`` of that
        channel.

    Raises
    ------
    OperationError
        For an axis out of range, a non-numeric dtype, invalid bins/range or
        percentiles.
    Cancelled
        When ``should_stop`` returned True.

    Examples
    --------
    >>> rgb = np.zeros((4, 4, 3), np.uint8)
    >>> rgb[..., 1] = 7
    >>> [stats.maximum for stats in channel_histogram_stats(rgb, bins=4)]
    [0.0, 7.0, 0.0]
    """
    ndim = np.ndim(data)
    if not -ndim <= axis < ndim:
        raise OperationError(
            f"no channel axis {axis} in data of {ndim} dimensions (shape {np.shape(data)})"
        )
    request = _Request(bins, range, exclude_zeros, _checked_percentiles(percentiles))
    return _summarise(data, request, progress, should_stop, channel_axis=axis % ndim)


def _checked_percentiles(percentiles: Sequence[float]) -> tuple[float, ...]:
    wanted = tuple(float(q) for q in percentiles)
    if any(not 0.0 <= q <= 100.0 for q in wanted):
        raise OperationError(f"percentiles must lie between 0 and 100, not {list(wanted)}")
    return wanted


def value_counts(
    data: Any,
    exclude_zeros: bool = False,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct value of 8- or 16-bit data with its exact count, in one streamed pass.

    Parameters
    ----------
    data : array-like
        numpy or dask array of dtype bool, (u)int8, (u)int16 or float16.
    exclude_zeros : bool, optional
        Leave out the value zero.
    progress, should_stop : callable, optional
        As for :func:`histogram`.

    Returns
    -------
    values : numpy.ndarray
        The finite values present, ascending (booleans as uint8 0 and 1).
    counts : numpy.ndarray
        int64 count of each value.

    Raises
    ------
    OperationError
        For other dtypes, whose distinct values could be as many as the voxels.

    Examples
    --------
    >>> values, counts = value_counts(np.array([3, 1, 3, 3], np.uint16))
    >>> values.tolist(), counts.tolist()
    ([1, 3], [1, 3])
    """
    dtype = require_numeric(data)
    if dtype.itemsize > 2:
        raise OperationError(
            f"value counts need 8- or 16-bit data, not {dtype}: use histogram() instead"
        )
    array, in_memory = as_dask_array(data)
    passes = _Passes(array.npartitions, progress, should_stop, in_memory)
    [table] = _ValueTable.count(array, dtype, exclude_zeros, passes, _Channels(None, 1))
    return table.values, table.counts


@dataclass(frozen=True)
class _Request:
    """What to summarise, as a public function of this module was asked.

    Attributes
    ----------
    bins, value_range, exclude_zeros
        As for :func:`histogram` (``value_range`` is its ``range``).
    percentiles : tuple of float or None
        The percentiles to report, checked; None for the histogram alone, without the
        statistics.
    """

    bins: Bins
    value_range: ValueRange
    exclude_zeros: bool
    percentiles: tuple[float, ...] | None

    @property
    def needs_extremes(self) -> bool:
        """Whether wide-valued data need a first pass for each channel's extremes."""
        automatic_edges = self.value_range is None and np.ndim(self.bins) == 0
        return self.percentiles is not None or automatic_edges


def _summarise(
    data: Any,
    request: _Request,
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    channel_axis: int | None = None,
) -> list[HistogramStats]:
    """Stream ``data`` once per group of channels, by the small or the wide path."""
    dtype = require_numeric(data)
    _check_bins(request.bins, request.value_range)
    if not isinstance(data, da.Array) and 0 in np.shape(data):
        # dask cannot choose chunks for an empty array; one empty chunk holds it.
        data = da.from_array(np.asarray(data), chunks=-1)
    array, in_memory = as_dask_array(data)
    groups = _channel_groups(array, channel_axis)
    if dtype.itemsize <= 2:
        summarise_group, passes_per_group = _summarise_small, 1
    else:
        summarise_group, passes_per_group = _summarise_wide, 2 if request.needs_extremes else 1
    total_blocks = sum(group.npartitions for group, _ in groups) * passes_per_group
    passes = _Passes(total_blocks, progress, should_stop, in_memory)
    return [
        stats
        for group, channels in groups
        for stats in summarise_group(group, dtype, request, passes, channels)
    ]


def _channel_groups(array: da.Array, channel_axis: int | None) -> list[tuple[da.Array, _Channels]]:
    """Return the arrays to stream, each with the channels one pass over it serves."""
    if channel_axis is None:
        return [(array, _Channels(None, 1))]
    if array.numblocks[channel_axis] == 1:
        # Every block holds all channels: one pass serves them all.
        return [(array, _Channels(channel_axis, array.shape[channel_axis]))]
    # Channels in separate chunks: each channel's pass reads only its own chunks.
    lead = (slice(None),) * channel_axis
    return [
        (array[(*lead, channel)], _Channels(None, 1))
        for channel in range(array.shape[channel_axis])
    ]


def _check_bins(bins: Bins, value_range: ValueRange) -> None:
    # Probe numpy's own validation on an empty array, so errors match numpy's.
    if isinstance(bins, str):
        raise OperationError(
            f"bins={bins!r}: estimated bin counts need all the data at once; "
            "give a number of bins or the edges"
        )
    try:
        np.histogram(np.empty(0), bins, value_range)
    except (TypeError, ValueError) as error:
        raise OperationError(f"invalid histogram bins or range: {error}") from error


class _Passes:
    """Runs streamed passes and reports their progress as one total over all of them."""

    def __init__(
        self,
        total_blocks: int,
        progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        local: bool,
    ) -> None:
        self.total_blocks = total_blocks
        self.progress = progress
        self.should_stop = should_stop
        self.local = local
        self.blocks_done = 0

    def reduce(self, array: da.Array, kernel: Any, combine: Any, ordered: bool = False) -> Any:
        offset = self.blocks_done

        def report(done: int, _blocks: int) -> None:
            if self.progress is not None:
                self.progress(offset + done, self.total_blocks)

        result = reduce_blocks(
            array,
            kernel,
            combine,
            ordered=ordered,
            progress=report,
            should_stop=self.should_stop,
            local=self.local,
        )
        self.blocks_done += array.npartitions
        return result


@dataclass(frozen=True)
class _Channels:
    """What a pass computes per block: one result, or one per channel along ``axis``."""

    axis: int | None
    count: int

    def kernel(self, kernels: Sequence[Any]) -> _PerChannel:
        return _PerChannel(tuple(kernels), self.axis)


@dataclass(frozen=True)
class _PerChannel:
    """Block kernel: ``kernels[i]`` on channel ``i`` of the block, or on all of it (pickles)."""

    kernels: tuple[Any, ...]
    axis: int | None

    def __call__(self, block: np.ndarray, index: tuple[int, ...]) -> tuple[Any, ...]:
        if self.axis is None:
            return (self.kernels[0](block, index),)
        lead = (slice(None),) * self.axis
        return tuple(
            kernel(block[(*lead, channel)], index) for channel, kernel in enumerate(self.kernels)
        )


def _each(combine: Any) -> Any:
    """Combine tuples of per-channel partial results channel by channel."""

    def combine_each(left: tuple[Any, ...], right: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(map(combine, left, right))

    return combine_each


# ---------------------------------------------------------------------------------------
# 8- and 16-bit data: count every bit pattern, then everything is exact.


def _summarise_small(
    array: da.Array, dtype: np.dtype, request: _Request, passes: _Passes, channels: _Channels
) -> list[HistogramStats]:
    """One counting pass; the histogram and statistics come from the value tables."""
    tables = _ValueTable.count(array, dtype, request.exclude_zeros, passes, channels)
    return [table.summarise(request) for table in tables]


@dataclass(frozen=True)
class _CodeCounter:
    """Block kernel: counts of every bit pattern of an 8- or 16-bit block (pickles)."""

    codes_dtype: np.dtype

    def __call__(self, block: np.ndarray, index: tuple[int, ...]) -> np.ndarray:
        codes = block.view(self.codes_dtype)  # same item size: a view for any strides
        return _kernels.count_codes(codes, 1 << (8 * self.codes_dtype.itemsize))


@dataclass(frozen=True)
class _ValueTable:
    """The distinct counted values of an array, ascending, with their counts."""

    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def count(
        cls,
        array: da.Array,
        dtype: np.dtype,
        exclude_zeros: bool,
        passes: _Passes,
        channels: _Channels,
    ) -> list[_ValueTable]:
        codes_dtype = np.dtype(f"u{dtype.itemsize}")
        counter = _CodeCounter(codes_dtype)
        per_channel = passes.reduce(
            array, channels.kernel([counter] * channels.count), _each(operator.add)
        )
        return [cls.from_code_counts(counts, dtype, exclude_zeros) for counts in per_channel]

    @classmethod
    def from_code_counts(
        cls, code_counts: np.ndarray, dtype: np.dtype, exclude_zeros: bool
    ) -> _ValueTable:
        codes_dtype = np.dtype(f"u{dtype.itemsize}")
        present = np.flatnonzero(code_counts)
        values = present.astype(codes_dtype).view(dtype)
        counts = code_counts[present]
        if dtype.kind == "b":
            values = values.astype(np.uint8)  # numpy.histogram counts booleans as 0 and 1
        keep = np.ones(values.shape, bool)
        if dtype.kind == "f":
            keep &= np.isfinite(values)
        if exclude_zeros:
            keep &= values != 0
        values, counts = values[keep], counts[keep]
        order = np.argsort(values, kind="stable")
        return cls(values[order], counts[order])

    def summarise(self, request: _Request) -> HistogramStats:
        """Return the histogram and statistics ``request`` asks for, all exact."""
        bins, value_range, percentiles = request.bins, request.value_range, request.percentiles
        total = int(self.counts.sum())
        if value_range is None:
            value_range = (self.values[0], self.values[-1]) if total else (0, 1)
        # Weighting each distinct value by its count bins it exactly as numpy bins every
        # copy of it; int64 weights keep the counts integers.
        counts, edges = np.histogram(self.values, bins, value_range, weights=self.counts)
        if not total or percentiles is None:
            return _empty_stats(counts.astype(np.int64), edges, total, percentiles or ())
        mean, std = self._moments(total)
        ranked = np.cumsum(self.counts)
        return HistogramStats(
            counts=counts.astype(np.int64),
            edges=edges,
            count=total,
            minimum=float(self.values[0]),
            maximum=float(self.values[-1]),
            mean=mean,
            std=std,
            percentiles={
                q: _linear_percentile(q, total, lambda rank: self._value_at(ranked, rank))
                for q in percentiles
            },
            percentile_tolerance=0.0,
        )

    def _value_at(self, ranked: np.ndarray, rank: int) -> np.ndarray:
        return self.values[np.searchsorted(ranked, rank, side="right")]

    def _moments(self, total: int) -> tuple[float, float]:
        # Exact rational arithmetic: integers as they are, float16 values scaled by 2**24
        # (their smallest step) to integers.
        scale = 1 << 24 if self.values.dtype.kind == "f" else 1
        values = [int(v) for v in (self.values.astype(np.float64) * scale).tolist()]
        counts = [int(c) for c in self.counts.tolist()]
        first = sum(map(operator.mul, values, counts))
        second = sum(v * v * c for v, c in zip(values, counts, strict=True))
        mean = Fraction(first, total * scale)
        variance = Fraction(total * second - first * first, total * total * scale * scale)
        return float(mean), math.sqrt(variance)


def _linear_percentile(q: float, total: int, value_at: Any) -> float:
    """``numpy.percentile``'s default (linear) method, given the value at each rank."""
    virtual = (total - 1) * np.true_divide(q, 100)
    previous = math.floor(virtual)
    if virtual >= total - 1:
        previous = following = total - 1
    elif virtual < 0:
        previous = following = 0
    else:
        following = previous + 1
    gamma = np.float64(virtual - previous)
    low = np.asarray(value_at(previous))
    high = np.asarray(value_at(following))
    with np.errstate(over="ignore"):  # numpy wraps the same way for narrow ints
        difference = high - low
        if gamma >= 0.5:
            return float(high - difference * (1 - gamma))
        return float(low + difference * gamma)


def _empty_stats(
    counts: np.ndarray, edges: np.ndarray, total: int, percentiles: tuple[float, ...]
) -> HistogramStats:
    return HistogramStats(
        counts=counts,
        edges=edges,
        count=total,
        minimum=math.nan,
        maximum=math.nan,
        mean=math.nan,
        std=math.nan,
        percentiles=dict.fromkeys(percentiles, math.nan),
        percentile_tolerance=0.0,
    )


# ---------------------------------------------------------------------------------------
# Wider dtypes: a min/max (+ moments) pass, then numpy.histogram per block.


@dataclass(frozen=True)
class _Moments:
    """Count, extremes, mean and sum of squared deviations of some values."""

    count: int
    minimum: Any
    maximum: Any
    mean: float
    m2: float

    def __add__(self, other: _Moments) -> _Moments:
        if not other.count:
            return self
        if not self.count:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        return _Moments(
            count=count,
            minimum=min(self.minimum, other.minimum),
            maximum=max(self.maximum, other.maximum),
            mean=self.mean + delta * other.count / count,
            m2=self.m2 + other.m2 + delta * delta * self.count * other.count / count,
        )


@dataclass(frozen=True)
class _MomentsKernel:
    """Block kernel: :class:`_Moments` of the counted values of a block (pickles)."""

    exclude_zeros: bool

    def __call__(self, block: np.ndarray, index: tuple[int, ...]) -> _Moments:
        return _Moments(*_kernels.finite_moments(block, self.exclude_zeros))


@dataclass(frozen=True, eq=False)
class _BinKernel:
    """Block kernel: numpy.histogram of the block with the global range (pickles).

    Optionally also counts the values on a fine uniform grid, for percentiles. For
    equal-width bins the compiled :func:`~napari_bigvol.ops._kernels.bin_uniform` gives
    the same counts in one pass over the block; explicit edges go through numpy.
    """

    bins: Bins
    value_range: tuple[Any, Any]
    exclude_zeros: bool
    grid: tuple[float, float] | None
    edges: np.ndarray

    @classmethod
    def for_channel(cls, moments: _Moments, dtype: np.dtype, request: _Request) -> _BinKernel:
        """Return the kernel for a channel of these moments: its range, grid and edges."""
        value_range = request.value_range
        if value_range is None:
            value_range = (moments.minimum, moments.maximum) if moments.count else (0, 1)
        grid = None
        if request.percentiles is not None and moments.count:
            low, high = float(moments.minimum), float(moments.maximum)
            grid = (low, max(high, low + 1.0))
        # numpy's edges from an empty array of the same dtype: the same type promotion
        # and rounding as for the data.
        edges = np.histogram(np.empty(0, dtype), request.bins, value_range)[1]
        return cls(request.bins, value_range, request.exclude_zeros, grid, edges)

    def __call__(
        self, block: np.ndarray, index: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if np.ndim(self.bins) == 0:
            grid = None if self.grid is None else (*self.grid, PERCENTILE_GRID_BINS)
            return _kernels.bin_uniform(block, self.edges, self.exclude_zeros, grid)
        values = block.ravel()
        if self.exclude_zeros:
            values = values[values != 0]
        counts = np.histogram(values, self.bins, self.value_range)[0]
        if self.grid is None:
            return counts, None
        low, high = self.grid
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        position = (finite.astype(np.float64) - low) * (PERCENTILE_GRID_BINS / (high - low))
        cells = np.clip(position, 0, PERCENTILE_GRID_BINS - 1).astype(np.intp)
        return counts, np.bincount(cells, minlength=PERCENTILE_GRID_BINS)


def _add_pairs(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
    return a[0] + b[0], None if a[1] is None else a[1] + b[1]


def _summarise_wide(
    array: da.Array, dtype: np.dtype, request: _Request, passes: _Passes, channels: _Channels
) -> list[HistogramStats]:
    """Extremes and moments when needed, then each block binned with the global range."""
    moments = (_Moments(0, None, None, 0.0, 0.0),) * channels.count
    if request.needs_extremes:
        moments = passes.reduce(
            array,
            channels.kernel([_MomentsKernel(request.exclude_zeros)] * channels.count),
            _each(operator.add),
            ordered=True,  # float moments: the same rounding on every run and scheduler
        )
    kernels = [_BinKernel.for_channel(channel, dtype, request) for channel in moments]
    binned = passes.reduce(array, channels.kernel(kernels), _each(_add_pairs))
    return [
        _wide_stats(counts, grid_counts, kernel, channel, request.percentiles)
        for (counts, grid_counts), kernel, channel in zip(binned, kernels, moments, strict=True)
    ]


def _wide_stats(
    counts: np.ndarray,
    grid_counts: np.ndarray | None,
    kernel: _BinKernel,
    moments: _Moments,
    percentiles: tuple[float, ...] | None,
) -> HistogramStats:
    edges = kernel.edges
    if kernel.grid is None or grid_counts is None or percentiles is None:
        return _empty_stats(counts.astype(np.int64), edges, moments.count, percentiles or ())
    low, high = kernel.grid
    width = (high - low) / PERCENTILE_GRID_BINS
    ranked = np.cumsum(grid_counts)
    minimum, maximum = float(moments.minimum), float(moments.maximum)

    def value_at(rank: int) -> np.float64:
        # Spread the values of a grid cell evenly across it; clamp to the true extremes.
        cell = int(np.searchsorted(ranked, rank, side="right"))
        before = ranked[cell - 1] if cell else 0
        fraction = (rank - before + 0.5) / grid_counts[cell]
        return np.float64(min(max(low + (cell + fraction) * width, minimum), maximum))

    return HistogramStats(
        counts=counts.astype(np.int64),
        edges=edges,
        count=moments.count,
        minimum=minimum,
        maximum=maximum,
        mean=moments.mean,
        std=math.sqrt(moments.m2 / moments.count),
        percentiles={q: _linear_percentile(q, moments.count, value_at) for q in percentiles},
        percentile_tolerance=width,
    )
