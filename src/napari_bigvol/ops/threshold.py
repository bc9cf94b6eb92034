"""Threshold masks, masked images, automatic thresholds and mask measurements.

Everything here keeps dask input lazy: :func:`threshold_mask` and :func:`apply_mask`
only extend the task graph, so a whole-volume mask of a 100 GB stack is ready at once
and computed plane by plane as napari displays it. Whole-volume measurements
(:func:`mask_statistics`, :func:`otsu_threshold_of`, :func:`count_components`) stream
over the blocks with progress and cancellation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np

from napari_bigvol.errors import OperationError
from napari_bigvol.ops.compute import (
    ProgressCallback,
    StopCheck,
    as_dask_array,
    compute_array,
    reduce_blocks,
    require_numeric,
)
from napari_bigvol.ops.histogram import histogram, value_counts
from napari_bigvol.units import conversion_factor, length_unit, unit_symbol

__all__ = [
    "MaskStatistics",
    "apply_mask",
    "count_components",
    "mask_statistics",
    "otsu_threshold",
    "otsu_threshold_of",
    "threshold_mask",
    "value_range_estimate",
]

ThresholdMode = Literal["above", "below"]

_POWERS = {1: "", 2: "²", 3: "³"}


def _comparable_threshold(dtype: np.dtype, threshold: float, mode: ThresholdMode) -> Any:
    """Return a threshold of ``dtype`` (or an int) that compares exactly like ``threshold``.

    Comparing in the data's own dtype avoids upcasting every block; rounding the
    threshold towards the inside of the comparison keeps ``data > t`` exact even when
    ``t`` is not representable (for example 125.3 against float16 data).
    """
    if dtype.kind in "biu":
        if math.isinf(threshold):
            return threshold
        # For integers, x > t  <=>  x > floor(t)  and  x < t  <=>  x < ceil(t).
        return math.floor(threshold) if mode == "above" else math.ceil(threshold)
    with np.errstate(over="ignore"):  # beyond the dtype's range rounds to ±inf: fine
        rounded = dtype.type(threshold)
    # Compare as Python floats: against a numpy scalar, numpy would round the threshold
    # to the scalar's dtype first and hide the difference.
    if mode == "above" and float(rounded) > threshold:
        rounded = np.nextafter(rounded, dtype.type(-np.inf))
    elif mode == "below" and float(rounded) < threshold:
        rounded = np.nextafter(rounded, dtype.type(np.inf))
    return rounded


def threshold_mask(data: Any, threshold: float, mode: ThresholdMode = "above") -> Any:
    """Boolean mask of the values above (``data > t``) or below (``data < t``) a threshold.

    Parameters
    ----------
    data : array-like
        numpy or dask array of a numeric dtype. Dask input stays lazy.
    threshold : float
        The threshold ``t``; values equal to it are never in the mask.
    mode : {"above", "below"}, optional
        ``"above"`` keeps ``data > t`` (the default), ``"below"`` keeps ``data < t``.

    Returns
    -------
    array
        A boolean array of the same shape and kind (numpy or dask) as ``data``.

    Raises
    ------
    OperationError
        For a non-numeric dtype, a NaN threshold or an unknown mode.

    Examples
    --------
    >>> img = np.array([[100, 125], [126, 200]], np.uint8)
    >>> threshold_mask(img, 125, mode="below").tolist()
    [[True, False], [False, False]]
    >>> threshold_mask(img, 125.5).tolist()
    [[False, False], [True, True]]
    """
    dtype = require_numeric(data)
    if mode not in ("above", "below"):
        raise OperationError(f"threshold mode must be 'above' or 'below', not {mode!r}")
    threshold = float(threshold)
    if math.isnan(threshold):
        raise OperationError("the threshold is NaN; choose a number")
    if dtype.kind == "b":
        dtype = np.dtype(np.uint8)
        data = data.astype(np.uint8)
    if not isinstance(data, da.Array):
        data = np.asarray(data)
    limit = _comparable_threshold(dtype, threshold, mode)
    return data > limit if mode == "above" else data < limit


def apply_mask(data: Any, mask: Any) -> Any:
    """Return the masked image: ``data`` where ``mask`` is non-zero, zero elsewhere.

    Parameters
    ----------
    data : array-like
        numpy or dask array. RGB(A) data (a trailing axis of 3 or 4 beyond the mask's
        shape) are masked in every colour.
    mask : array-like
        Boolean (or any numeric: non-zero means inside) array of ``data``'s shape, or
        of its shape without the colour axis.

    Returns
    -------
    array
        Of ``data``'s dtype and shape; dask when either input is dask (lazy), numpy
        otherwise. NaNs outside the mask become zero too.

    Raises
    ------
    OperationError
        When the shapes do not match or a dtype is not numeric.

    Examples
    --------
    >>> img = np.array([[10, 20], [30, 40]], np.uint16)
    >>> apply_mask(img, img > 15).tolist()
    [[0, 20], [30, 40]]
    """
    data_dtype = require_numeric(data, "the image")
    mask_dtype = require_numeric(mask, "the mask")
    data_shape, mask_shape = tuple(data.shape), tuple(mask.shape)
    rgb = len(data_shape) == len(mask_shape) + 1 and data_shape[-1] in (3, 4)
    if data_shape != mask_shape and not (rgb and data_shape[:-1] == mask_shape):
        raise OperationError(
            f"the mask (shape {mask_shape}) does not match the image (shape {data_shape})"
        )
    if mask_dtype.kind != "b":
        mask = mask != 0
    if data_shape != mask_shape:
        mask = mask[..., None]
    if not isinstance(data, da.Array) and not isinstance(mask, da.Array):
        data, mask = np.asarray(data), np.asarray(mask)
    if data_dtype.kind == "f":
        # where, not a product: NaN * 0 would stay NaN outside the mask.
        where = da.where if isinstance(data, da.Array) or isinstance(mask, da.Array) else np.where
        return where(mask, data, np.zeros((), data_dtype))
    # Integers times a boolean keep their dtype, and the product is several times
    # faster than where.
    return data * mask


def otsu_threshold(counts: Any, edges: Any) -> float:
    """Otsu's threshold of a histogram, as ``skimage.filters.threshold_otsu(hist=...)``.

    Computed from the histogram alone, so a whole-volume threshold costs one streamed
    histogram, never a load of the volume. The mask ``data > threshold`` is the
    foreground.

    Parameters
    ----------
    counts : array-like
        Counts per bin, as :func:`~napari_bigvol.ops.histogram.histogram` returns them.
    edges : array-like
        The ``len(counts) + 1`` bin edges; the threshold is a bin centre.

    Returns
    -------
    float
        The centre of the bin that maximises the between-class variance.

    Raises
    ------
    OperationError
        When the histogram is empty or the lengths do not match.

    Examples
    --------
    >>> counts, edges = np.histogram([1, 1, 2, 8, 9, 9], bins=8)
    >>> otsu_threshold(counts, edges)
    2.5
    """
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if counts.ndim != 1 or edges.shape != (counts.size + 1,):
        raise OperationError(
            f"a histogram needs n counts and n + 1 edges, not {counts.shape} and {edges.shape}"
        )
    return _otsu(counts, (edges[:-1] + edges[1:]) / 2)


def _otsu(counts: np.ndarray, centres: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    occupied = np.flatnonzero(counts)
    if not occupied.size:
        raise OperationError("cannot choose a threshold: the histogram is empty")
    # Trim empty end bins, as scikit-image does, so the threshold lies within the data.
    start, stop = occupied[0], occupied[-1] + 1
    counts, centres = counts[start:stop], np.asarray(centres, np.float64)[start:stop]
    weight_low = np.cumsum(counts)
    weight_high = np.cumsum(counts[::-1])[::-1]
    mean_low = np.cumsum(counts * centres) / weight_low
    mean_high = (np.cumsum((counts * centres)[::-1]) / weight_high[::-1])[::-1]
    between = weight_low[:-1] * weight_high[1:] * (mean_low[:-1] - mean_high[1:]) ** 2
    return float(centres[np.argmax(between)] if between.size else centres[0])


def otsu_threshold_of(
    data: Any,
    exclude_zeros: bool = False,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> float:
    """Otsu's threshold of a whole array, from a streamed histogram.

    The histogram is the one ``skimage.filters.threshold_otsu(data)`` builds, so the
    result agrees with it: one bin per value for 8- and 16-bit integers (exact value
    counts), 256 bins between the minimum and maximum otherwise (for integers wider than
    16 bits scikit-image would use one bin per value instead).

    Parameters
    ----------
    data : array-like
        numpy or dask array of a numeric dtype; streamed, never loaded whole.
    exclude_zeros : bool, optional
        Ignore zeros, for example the background of an already masked image.
    progress, should_stop : callable, optional
        As for :func:`~napari_bigvol.ops.histogram.histogram`.

    Returns
    -------
    float
        The threshold; keep ``data > threshold``.

    Raises
    ------
    OperationError
        For a non-numeric dtype or data without any (finite, non-zero) value.
    Cancelled
        When ``should_stop`` returned True.

    Examples
    --------
    >>> otsu_threshold_of(np.array([1, 1, 2, 8, 9, 9], np.uint8))
    2.0
    """
    dtype = require_numeric(data)
    if dtype.itemsize <= 2 and dtype.kind in "biu":
        values, counts = value_counts(
            data, exclude_zeros, progress=progress, should_stop=should_stop
        )
        # Between present values the per-integer histogram only has empty bins, which
        # never win the argmax, so the present values alone give scikit-image's answer.
        return _otsu(counts, values.astype(np.float64))
    counts, edges = histogram(
        data, 256, exclude_zeros=exclude_zeros, progress=progress, should_stop=should_stop
    )
    return otsu_threshold(counts, edges)


@dataclass(frozen=True)
class MaskStatistics:
    """How much of a volume a mask covers, in voxels and in physical units.

    Attributes
    ----------
    masked : int
        Number of voxels inside the mask (non-zero).
    total : int
        Number of voxels of the mask.
    fraction : float
        ``masked / total`` (0.0 for an empty mask array).
    voxel_volume : float
        Volume (or area, for 2-D) of one voxel, in ``unit``.
    volume : float
        ``masked * voxel_volume``.
    unit : str
        For example ``"mm³"``; ``"voxel"`` when the voxel size has no known length unit.
    """

    masked: int
    total: int
    fraction: float
    voxel_volume: float
    volume: float
    unit: str


class _CountNonzero:
    """Block kernel: number of non-zero values (pickles)."""

    def __call__(self, block: np.ndarray, index: tuple[int, ...]) -> int:
        return int(np.count_nonzero(block))


def _voxel_volume(
    ndim: int, voxel_size: Sequence[float] | None, units: Sequence[str] | str | None
) -> tuple[float, str]:
    sizes = [1.0] * ndim if voxel_size is None else [float(s) for s in voxel_size][-ndim:]
    if len(sizes) != ndim:
        raise OperationError(
            f"the voxel size {list(voxel_size or [])} does not cover the mask's {ndim} axes"
        )
    names = [units] * ndim if isinstance(units, str) or units is None else list(units)[-ndim:]
    lengths = [length_unit(name) for name in names]
    volume = math.prod(sizes)
    if len(lengths) != ndim or None in lengths:
        return volume, "voxel" if voxel_size is None else f"(scale unit){_POWERS.get(ndim, '')}"
    # Express the volume in the first axis's unit, converting the others to it.
    target = lengths[0]
    volume = math.prod(
        size * conversion_factor(unit, target) for size, unit in zip(sizes, lengths, strict=True)
    )
    return volume, f"{unit_symbol(target)}{_POWERS.get(ndim, f'^{ndim}')}"


def mask_statistics(
    mask: Any,
    voxel_size: Sequence[float] | None = None,
    units: Sequence[str] | str | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> MaskStatistics:
    """Count the voxels of a mask and convert the count to a physical volume.

    Parameters
    ----------
    mask : array-like
        numpy or dask array; non-zero voxels are inside. A lazy mask (for example
        ``threshold_mask(volume, t)``) is computed block by block and never held whole.
    voxel_size : sequence of float, optional
        Size of a voxel along each axis of the mask (napari's layer ``scale``); longer
        sequences use their last ``mask.ndim`` entries.
    units : str or sequence of str, optional
        Length unit of each axis (``"mm"``, ``"micrometer"``, ...), as napari's layer
        ``units``. Mixed units are converted to the first axis's unit.
    progress, should_stop : callable, optional
        As for :func:`~napari_bigvol.ops.histogram.histogram`.

    Returns
    -------
    MaskStatistics
        Masked voxel count, fraction and volume.

    Raises
    ------
    OperationError
        When the voxel size does not match the mask's dimensions.
    Cancelled
        When ``should_stop`` returned True.

    Examples
    --------
    >>> stats = mask_statistics(np.ones((2, 10, 10), bool), voxel_size=(2.0, 0.5, 0.5),
    ...                         units="mm")
    >>> stats.masked, stats.volume, stats.unit
    (200, 100.0, 'mm³')
    """
    array, in_memory = as_dask_array(mask)
    voxel_volume, unit = _voxel_volume(array.ndim, voxel_size, units)
    masked = reduce_blocks(
        array,
        _CountNonzero(),
        int.__add__,
        progress=progress,
        should_stop=should_stop,
        local=in_memory,
    )
    total = math.prod(array.shape)
    return MaskStatistics(
        masked=masked,
        total=total,
        fraction=masked / total if total else 0.0,
        voxel_volume=voxel_volume,
        volume=masked * voxel_volume,
        unit=unit,
    )


def count_components(
    mask: Any,
    connectivity: int = 1,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> int:
    """Count the connected components of a mask with ``dask_image.ndmeasure.label``.

    Parameters
    ----------
    mask : array-like
        numpy or dask array; non-zero voxels are foreground.
    connectivity : int, optional
        1 (the default) joins face neighbours only, up to ``mask.ndim`` joins every
        neighbour (as ``scipy.ndimage.generate_binary_structure``).
    progress, should_stop : callable, optional
        Task progress and cancellation, through
        :func:`~napari_bigvol.ops.compute.compute_array`: the work runs where every
        whole-volume operation runs (a cluster when one is in use, see
        :func:`~napari_bigvol.ops.compute.get_client`).

    Returns
    -------
    int
        The number of components.

    Raises
    ------
    OperationError
        When ``connectivity`` is not between 1 and ``mask.ndim``.
    Cancelled
        When ``should_stop`` returned True.

    Examples
    --------
    >>> count_components(np.array([[1, 0, 1], [0, 0, 1]], bool))
    2
    """
    from dask_image import ndmeasure
    from scipy import ndimage

    if 0 in np.shape(mask):
        return 0  # no voxels, no components (and dask cannot chunk an empty array)
    array, in_memory = as_dask_array(mask)
    if not 1 <= connectivity <= max(array.ndim, 1):
        raise OperationError(
            f"connectivity must be between 1 and {array.ndim} for a {array.ndim}-D mask, "
            f"not {connectivity}"
        )
    structure = ndimage.generate_binary_structure(array.ndim, connectivity)
    _, components = ndmeasure.label(array != 0, structure)
    return int(
        compute_array(components, progress=progress, should_stop=should_stop, local=in_memory)
    )


def value_range_estimate(
    data: Any, contrast_limits: Sequence[float] | None = None, max_blocks: int = 3
) -> tuple[float, float]:
    """Estimate a value range for a threshold slider, without reading the whole array.

    In order of preference: the contrast limits the reader found in the file's metadata,
    the full range of 1-bit and 8-bit dtypes, or the minimum and maximum of a few
    blocks (first, middle, last) of the data.

    Parameters
    ----------
    data : array-like
        numpy or dask array of a numeric dtype.
    contrast_limits : (float, float), optional
        Limits from metadata, such as NIfTI ``cal_min``/``cal_max`` or an OME-Zarr window.
    max_blocks : int, optional
        Most dask blocks (or numpy slabs) read for the estimate.

    Returns
    -------
    (float, float)
        ``(low, high)`` with ``low < high``; values outside may exist.

    Raises
    ------
    OperationError
        For a non-numeric dtype.

    Examples
    --------
    >>> value_range_estimate(np.zeros((4, 4), np.uint8))
    (0.0, 255.0)
    >>> value_range_estimate(np.linspace(0.0, 2.0, 9))
    (0.0, 2.0)
    """
    dtype = require_numeric(data)
    if contrast_limits is not None:
        low, high = (float(v) for v in contrast_limits)
    elif dtype.kind == "b":
        low, high = 0.0, 1.0
    elif dtype.kind in "iu" and dtype.itemsize == 1:
        info = np.iinfo(dtype)
        low, high = float(info.min), float(info.max)
    else:
        low, high = _sampled_range(data, max_blocks)
    return (low, high) if high > low else (low, low + 1.0)


def _sampled_range(data: Any, max_blocks: int) -> tuple[float, float]:
    array, _ = as_dask_array(data)
    count = math.prod(array.numblocks)
    if not array.size:
        return 0.0, 1.0
    # Evenly spaced blocks, first and last included: a few chunks, never the volume.
    picks = sorted({round(i * (count - 1) / max(max_blocks - 1, 1)) for i in range(max_blocks)})
    blocks = [array.blocks[np.unravel_index(i, array.numblocks)] for i in picks]
    lows, highs = [], []
    for block in dask.compute(*blocks, scheduler="threads"):
        values = block[np.isfinite(block)] if block.dtype.kind == "f" else block
        if values.size:
            lows.append(values.min())
            highs.append(values.max())
    if not lows:
        return 0.0, 1.0
    return float(min(lows)), float(max(highs))
