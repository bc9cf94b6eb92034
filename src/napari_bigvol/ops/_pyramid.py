"""Pyramid planning and downsampling for the OME-Zarr export.

The export writes every pyramid level from one pass over the source: each work unit (a
block of the source whose edges are aligned to the chunks of every level) is read once,
written as level 0 and then halved again and again in memory, each result written
straight to its level. This module decides the level shapes, the work-unit shape and the
chunks of each level, and holds the downsampling kernels (mean for images, mode for
labels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Smallest level: its largest downsampled axis fits in about this many pixels.
SMALLEST_LEVEL_SIZE = 512
# A z axis is halved together with the plane once its voxel is at most this many times
# the in-plane voxel, so the pyramid moves towards isotropic voxels and never away.
NEAR_ISOTROPIC = 1.5
# Work units grow towards full pyramid alignment only up to this many bytes; beyond it,
# deeper levels get shallower chunks instead (see ``plan_work``).
WORK_UNIT_BUDGET = 256 * 2**20


def level_factors(
    shape: Sequence[int],
    scale: Sequence[float],
    spatial_axes: Sequence[int],
    *,
    smallest: int = SMALLEST_LEVEL_SIZE,
) -> list[tuple[int, ...]]:
    """Per-level downsampling steps (1 or 2 per axis) for a pyramid of ``shape``.

    The two last spatial axes (the plane) are halved at every level; a third spatial axis
    (z) is halved too once its voxel size is within :data:`NEAR_ISOTROPIC` of the in-plane
    voxel. Levels are added until every axis that can shrink fits in ``smallest`` pixels.

    Parameters
    ----------
    shape : sequence of int
        Shape of level 0.
    scale : sequence of float
        Voxel size of level 0 along every axis.
    spatial_axes : sequence of int
        Indices of the spatial axes, in order (z, y, x or y, x).
    smallest : int, optional
        Target size of the smallest level.

    Returns
    -------
    list of tuple of int
        One step per level after level 0; element ``k`` is the factor (1 or 2) per axis
        from level ``k`` to level ``k + 1``. Empty if level 0 is already small.

    Examples
    --------
    >>> level_factors((100, 2048, 1500), (5.0, 1.0, 1.0), (0, 1, 2))
    [(1, 2, 2), (1, 2, 2)]
    >>> level_factors((1024, 1024, 1024), (1.0, 1.0, 1.0), (0, 1, 2))
    [(2, 2, 2)]
    """
    sizes = [float(n) for n in shape]
    spacing = [abs(float(s)) or 1.0 for s in scale]
    plane = list(spatial_axes[-2:])
    depth = spatial_axes[0] if len(spatial_axes) == 3 else None
    steps: list[tuple[int, ...]] = []
    while True:
        step = [1] * len(shape)
        for axis in plane:
            if sizes[axis] > 1:
                step[axis] = 2
        in_plane = min(spacing[axis] for axis in plane)
        if depth is not None and sizes[depth] > 1 and spacing[depth] <= NEAR_ISOTROPIC * in_plane:
            step[depth] = 2
        shrinking = [axis for axis, factor in enumerate(step) if factor == 2]
        if not shrinking or all(sizes[axis] <= smallest for axis in shrinking):
            return steps
        steps.append(tuple(step))
        for axis in shrinking:
            sizes[axis] = math.ceil(sizes[axis] / 2)
            spacing[axis] *= 2


@dataclass(frozen=True)
class WorkPlan:
    """How one pass over the source writes every level.

    Attributes
    ----------
    unit : tuple of int
        Shape of a work unit in level-0 pixels; the source is cut into these.
    level_shapes : tuple of tuple of int
        Array shape of every level.
    level_chunks : tuple of tuple of int
        Chunk shape of every level; a work unit covers whole chunks of every level, so
        no two units ever write the same chunk.
    cumulative : tuple of tuple of int
        Total downsampling factor of every level relative to level 0.
    steps : tuple of tuple of int
        Factor from each level to the next (``len(level_shapes) - 1`` entries).
    """

    unit: tuple[int, ...]
    level_shapes: tuple[tuple[int, ...], ...]
    level_chunks: tuple[tuple[int, ...], ...]
    cumulative: tuple[tuple[int, ...], ...]
    steps: tuple[tuple[int, ...], ...]


def plan_work(
    shape: Sequence[int],
    itemsize: int,
    chunks: Sequence[int],
    source_chunks: Sequence[int],
    steps: Sequence[Sequence[int]],
    *,
    budget: int = WORK_UNIT_BUDGET,
) -> WorkPlan:
    """Choose the work-unit shape and each level's chunks for a one-pass pyramid.

    A work unit must be a whole number of source chunks (so each source chunk is read
    once), a whole number of level-0 chunks, and a multiple of the total downsampling
    factor (so its offset is exact at every level). Ideally it is also a whole number of
    chunks at every level; that needs ``chunk * 2**levels`` pixels per axis, which can be
    large, so units grow only while they fit in ``budget`` bytes. Where they stop short,
    deeper levels get proportionally smaller chunks along that axis (never smaller than
    needed to tile the unit), which keeps every chunk written by exactly one unit.

    Parameters
    ----------
    shape : sequence of int
        Level-0 shape.
    itemsize : int
        Bytes per voxel.
    chunks : sequence of int
        Requested level-0 chunk shape.
    source_chunks : sequence of int
        Chunk shape of the source (1 along axes where slicing the source is free).
    steps : sequence of sequence of int
        Output of :func:`level_factors`.
    budget : int, optional
        Bytes a work unit may grow to for full alignment.

    Returns
    -------
    WorkPlan
        Unit shape, level shapes, chunks and factors.

    Examples
    --------
    >>> plan = plan_work((256, 1024, 1024), 4, (64, 64, 64), (1, 1024, 1024), [(2, 2, 2)])
    >>> plan.unit, plan.level_chunks
    ((64, 1024, 1024), ((64, 64, 64), (32, 64, 64)))
    """
    cumulative = [tuple([1] * len(shape))]
    level_shapes = [tuple(shape)]
    for step in steps:
        cumulative.append(tuple(c * s for c, s in zip(cumulative[-1], step, strict=True)))
        level_shapes.append(
            tuple(math.ceil(n / s) for n, s in zip(level_shapes[-1], step, strict=True))
        )
    chunks = tuple(min(int(c), n) for c, n in zip(chunks, shape, strict=True))
    unit = _unit_shape(shape, itemsize, chunks, source_chunks, cumulative[-1], budget)
    return WorkPlan(
        unit=unit,
        level_shapes=tuple(level_shapes),
        level_chunks=tuple(
            _level_chunk(shape, chunks, unit, level_shape, factors)
            for level_shape, factors in zip(level_shapes, cumulative, strict=True)
        ),
        cumulative=tuple(cumulative),
        steps=tuple(tuple(s) for s in steps),
    )


def _unit_shape(
    shape: Sequence[int],
    itemsize: int,
    chunks: Sequence[int],
    source_chunks: Sequence[int],
    deepest: Sequence[int],
    budget: int,
) -> tuple[int, ...]:
    # The smallest aligned unit, grown towards full alignment at every level while it fits.
    axes = range(len(shape))
    minimum = [min(shape[a], math.lcm(int(source_chunks[a]), chunks[a], deepest[a])) for a in axes]
    ideal = [min(shape[a], math.lcm(minimum[a], chunks[a] * deepest[a])) for a in axes]
    unit = list(minimum)
    # Grow the axes that need it most first, doubling, while the unit fits the budget.
    for axis in sorted(axes, key=lambda a: ideal[a] // minimum[a], reverse=True):
        while unit[axis] < ideal[axis]:
            grown = min(shape[axis], unit[axis] * 2, ideal[axis])
            if math.prod([*unit[:axis], grown, *unit[axis + 1 :]]) * itemsize > budget:
                break
            unit[axis] = grown
    return tuple(unit)


def _level_chunk(
    shape: Sequence[int],
    chunks: Sequence[int],
    unit: Sequence[int],
    level_shape: Sequence[int],
    factors: Sequence[int],
) -> tuple[int, ...]:
    # The chunk of one level: whole chunks tile each unit's share of that level.
    level_chunk = []
    for axis in range(len(shape)):
        if unit[axis] >= shape[axis]:
            # One unit spans the axis: any chunking is written by that unit alone.
            size = chunks[axis]
        else:
            size = math.gcd(chunks[axis], unit[axis] // factors[axis])
        level_chunk.append(max(1, min(size, level_shape[axis])))
    return tuple(level_chunk)


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "u":
        return np.dtype(np.uint64 if dtype.itemsize >= 4 else np.uint32)
    if dtype.kind == "i":
        return np.dtype(np.int64)
    if dtype.kind == "b":
        return np.dtype(np.uint32)
    return np.dtype(np.float64 if dtype.itemsize >= 8 else np.float32)


def _pad_to_even(block: np.ndarray, step: Sequence[int]) -> np.ndarray:
    # Only the last unit along an axis can be odd; repeating its edge voxel makes the
    # last output voxel the mean (or mode) of the voxels that really exist.
    widths = [(0, (size % factor)) for size, factor in zip(block.shape, step, strict=True)]
    if not any(after for _, after in widths):
        return block
    return np.pad(block, widths, mode="edge")


def _grouped(block: np.ndarray, step: Sequence[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    # View (..., n/2, 2, ...) per halved axis; returns the view and the pair axes.
    shape: list[int] = []
    pair_axes: list[int] = []
    for size, factor in zip(block.shape, step, strict=True):
        if factor == 1:
            shape.append(size)
        else:
            shape.extend((size // factor, factor))
            pair_axes.append(len(shape) - 1)
    return block.reshape(shape), tuple(pair_axes)


def downsample_mean(block: np.ndarray, step: Sequence[int]) -> np.ndarray:
    """Halve ``block`` along the axes where ``step`` is 2, by the mean of each group.

    Integers are summed in a wider integer type and rounded half up, so the result has the
    input dtype and no float round-off; floats are averaged in at least float32.

    Parameters
    ----------
    block : numpy.ndarray
        Input block; an odd trailing size is padded by repeating the edge.
    step : sequence of int
        1 or 2 per axis.

    Returns
    -------
    numpy.ndarray
        The downsampled block, dtype of ``block``, shape ``ceil(shape / step)``.

    Examples
    --------
    >>> downsample_mean(np.array([[0, 1], [1, 1]], np.uint8), (2, 2))
    array([[1]], dtype=uint8)
    """
    if not any(factor > 1 for factor in step):
        return block
    padded = _pad_to_even(block, step)
    out_shape = tuple(size // factor for size, factor in zip(padded.shape, step, strict=True))
    result = np.empty(out_shape, dtype=block.dtype)
    # Work through the leading axis a few output planes at a time: the wide-integer
    # temporaries then stay small (and hot in cache) instead of the size of the block.
    # Pairwise sums (half the input, then a quarter, ...) stay under one wide copy of the
    # slab's input.
    input_per_plane = step[0] * math.prod(padded.shape[1:]) * _sum_dtype(block.dtype).itemsize
    per_slab = max(1, _SLAB_BYTES // max(1, input_per_plane))
    for first in range(0, out_shape[0], per_slab):
        last = min(first + per_slab, out_shape[0])
        slab = padded[first * step[0] : last * step[0]]
        result[first:last] = _mean_of_groups(slab, step)
    return result


_SLAB_BYTES = 8 * 2**20


def _mean_of_groups(block: np.ndarray, step: Sequence[int]) -> np.ndarray:
    total: np.ndarray | None = None
    # Pairwise sums, one halved axis at a time, last axis first: each pass streams
    # through memory once and the intermediates shrink; several times faster than one
    # reduction over a reshaped view.
    for axis in reversed(range(block.ndim)):
        if step[axis] == 1:
            continue
        current = block if total is None else total
        even = current[(slice(None),) * axis + (slice(0, None, 2),)]
        odd = current[(slice(None),) * axis + (slice(1, None, 2),)]
        total = np.add(even, odd, dtype=None if total is not None else _sum_dtype(block.dtype))
    count = math.prod(step)
    if block.dtype.kind in "uib":
        total += count // 2
        total //= count
    else:
        total /= count
    return total


def downsample_mode(block: np.ndarray, step: Sequence[int]) -> np.ndarray:
    """Halve a label block by the most frequent label of each group (never a mean).

    Ties go to the first voxel of the group, which makes the result equal to nearest
    neighbour wherever no label has a majority.

    Parameters
    ----------
    block : numpy.ndarray
        Integer labels.
    step : sequence of int
        1 or 2 per axis.

    Returns
    -------
    numpy.ndarray
        Labels of the same dtype, shape ``ceil(shape / step)``.

    Examples
    --------
    >>> downsample_mode(np.array([[0, 5], [5, 7]], np.uint16), (2, 2))
    array([[5]], dtype=uint16)
    """
    if not any(factor > 1 for factor in step):
        return block
    grouped, pair_axes = _grouped(_pad_to_even(block, step), step)
    kept = [axis for axis in range(grouped.ndim) if axis not in pair_axes]
    # Gather each group's members into one trailing axis: (..., members).
    members = np.transpose(grouped, (*kept, *pair_axes))
    out_shape = members.shape[: len(kept)]
    members = members.reshape(*out_shape, -1)
    best = members[..., 0].copy()
    best_count = np.zeros(out_shape, dtype=np.uint8)
    size = members.shape[-1]
    for i in range(size):
        candidate = members[..., i]
        count = np.zeros(out_shape, dtype=np.uint8)
        for j in range(size):
            count += members[..., j] == candidate
        better = count > best_count
        best[better] = candidate[better]
        best_count = np.maximum(best_count, count)
    return best
