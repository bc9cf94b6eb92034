"""The Threshold mask model: the threshold per layer, its warnings, previews and outputs.

The model remembers the threshold and mode last used on each layer, spans the value
range (from a cheap estimate, never a full read), tells the Histogram widget which
threshold is shown (:mod:`~napari_bigvol._models.broadcast`), counts the visible slice,
and describes the layers "Create layers" adds: lazy whole-volume masks over every
pyramid level, or one plane of the visible slice that keeps the source's axes, one
plane thick at its position, so napari draws it only on that plane.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal

import dask.array as da
import numpy as np
from psygnal import Signal

from napari_bigvol._models._layers import levels, require_grey
from napari_bigvol._models.broadcast import ThresholdBroadcast, threshold_broadcast
from napari_bigvol._napari.scope import ScopedData
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.threshold import (
    MaskStatistics,
    apply_mask,
    mask_statistics,
    threshold_mask,
    value_range_estimate,
)

Mode = Literal["above", "below"]
#: Units napari gives axes without a physical size.
PIXEL_UNITS = frozenset({"", "pixel", "pixels", "px", "none"})


def describe_statistics(stats: MaskStatistics, where: str) -> str:
    """Word mask statistics for the widget, e.g. ``"whole volume: 12.5% masked ..."``.

    The volume is left out when the voxels have no physical size: the count says it.

    Examples
    --------
    >>> describe_statistics(MaskStatistics(50, 400, 0.125, 0.5, 25.0, "mm³"), "whole volume")
    'whole volume: 12.5% masked, 50 of 400 voxels, 25 mm³'
    >>> describe_statistics(MaskStatistics(50, 400, 0.125, 1.0, 50.0, "voxel"), "visible slice")
    'visible slice: 12.5% masked, 50 of 400 voxels'
    """
    text = (
        f"{where}: {stats.fraction * 100:.5g}% masked, {stats.masked:,} of {stats.total:,} voxels"
    )
    if stats.unit == "voxel":
        return text
    return f"{text}, {stats.volume:.6g} {stats.unit}"


def physical_size(scoped: ScopedData) -> tuple[Any, Any]:
    """``(voxel_size, units)`` for :func:`mask_statistics`; None, None for pixel data.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> physical_size(SimpleNamespace(scale=(1.0, 1.0), units=("pixel", "pixel")))
    (None, None)
    """
    if all(str(unit).lower() in PIXEL_UNITS for unit in scoped.units):
        return None, None
    return scoped.scale, scoped.units


@dataclass(frozen=True)
class MaskOutput:
    """One layer "Create layers" adds: ``kind`` is ``"labels"`` or ``"image"``."""

    kind: str
    data: Any
    name: str
    multiscale: bool
    placement: dict[str, Any] = field(repr=False)


class ThresholdModel:
    """State and decisions of the Threshold mask widget.

    Parameters
    ----------
    broadcast : ThresholdBroadcast, optional
        Where the shown threshold is published; the application's by default.

    Attributes
    ----------
    layer : napari.layers.Image or None
        The layer thresholded; set with :meth:`set_layer`.
    threshold : float
    mode : {"above", "below"}
    value_range : tuple of float
        The range the slider spans.
    integer : bool
        Whether the layer's values are integers (the threshold steps by 1).

    Signals
    -------
    threshold_changed(float), mode_changed(str), range_changed(tuple)
        For the controls to follow the model.

    Examples
    --------
    >>> from napari.layers import Image
    >>> model = ThresholdModel(ThresholdBroadcast())
    >>> model.set_layer(Image(np.arange(100, dtype=np.uint16).reshape(10, 10)))
    >>> model.value_range, model.threshold
    ((0.0, 99.0), 49.5)
    """

    threshold_changed = Signal(float)
    mode_changed = Signal(str)
    range_changed = Signal(tuple)

    def __init__(self, broadcast: ThresholdBroadcast | None = None) -> None:
        self.broadcast = broadcast or threshold_broadcast()
        self.layer: Any = None
        self.threshold = 0.5
        self.mode: Mode = "above"
        self.value_range = (0.0, 1.0)
        self.integer = False
        self._remembered: weakref.WeakKeyDictionary[Any, tuple[float, Mode]] = (
            weakref.WeakKeyDictionary()
        )
        self._volume_statistics: tuple[tuple[Any, float, str], MaskStatistics] | None = None

    # ---- state ----

    def set_layer(self, layer: Any) -> None:
        """Choose ``layer``: span its value range, restore its threshold, publish it.

        Raises
        ------
        OperationError
            When the value range cannot be estimated (the message says why); the layer
            is chosen all the same.
        """
        previous, self.layer = self.layer, layer
        self._volume_statistics = None
        if previous is not None and previous is not layer:
            self.broadcast.set(previous, None)
        if layer is None or layer.rgb:
            return
        self._span(layer)
        threshold, mode = self._remembered.get(layer, (self._middle(), self.mode))
        self.set_mode(mode)
        self.set_threshold(threshold)

    def _span(self, layer: Any) -> None:
        # The smallest level's few blocks and napari's own range: cheap, never a full read.
        low, high = value_range_estimate(levels(layer)[-1])
        range_low, range_high = layer.contrast_limits_range
        self.value_range = (float(min(low, range_low)), float(max(high, range_high)))
        self.integer = np.dtype(layer.dtype).kind in "biu"
        self.range_changed.emit(self.value_range)

    def _middle(self) -> float:
        low, high = self.value_range
        middle = (low + high) / 2
        # Between two integers, so "above" and "below" split the values the same way.
        return math.floor(middle) + 0.5 if self.integer else middle

    def set_threshold(self, value: float) -> None:
        """Set the threshold, remember it for the layer and publish it."""
        self.threshold = float(value)
        self._remember()
        self.threshold_changed.emit(self.threshold)

    def set_mode(self, mode: Mode) -> None:
        """Set the mode (``"above"`` or ``"below"``) and remember it for the layer."""
        self.mode = mode
        self._remember()
        self.mode_changed.emit(mode)

    def _remember(self) -> None:
        if self.layer is not None and not self.layer.rgb:
            self._remembered[self.layer] = (self.threshold, self.mode)
            self.broadcast.set(self.layer, self.threshold)

    def release(self) -> None:
        """Stop publishing a threshold (the widget closes)."""
        if self.layer is not None:
            self.broadcast.set(self.layer, None)

    # ---- decisions ----

    def range_warning(self) -> str:
        """Say so when the threshold lies outside the value range, else ``""``."""
        low, high = self.value_range
        if self.layer is None or low <= self.threshold <= high:
            return ""
        side = "above" if self.threshold > high else "below"
        result = "empty" if (self.mode == "above") == (side == "above") else "everything"
        return (
            f"Threshold {self.threshold:g} is {side} the value range of layer "
            f"'{self.layer.name}' ({low:g} to {high:g}): the mask will probably be {result}."
        )

    def otsu_found(self, threshold: float) -> str:
        """Take Otsu's threshold, keeping the mode; return the message that says so."""
        self.set_threshold(threshold)
        keep = "keep above" if self.mode == "above" else "keep below"
        return f"Otsu threshold of '{self.layer.name}': {threshold:g} ({keep}; mode unchanged)."

    def preview_volume(self) -> tuple[Any, bool]:
        """Return lazy masks of every level (napari computes what it shows), and multiscale."""
        layer = require_grey(self.layer)
        masks = [
            threshold_mask(_lazy(level), self.threshold, self.mode) for level in levels(layer)
        ]
        return _one(masks, layer.multiscale), layer.multiscale

    def plane_mask(self, values: np.ndarray) -> np.ndarray:
        """Return the preview of a plane napari displays: 1 inside the mask, 0 outside."""
        return threshold_mask(values, self.threshold, self.mode).view(np.uint8)

    def slice_statistics(self, plane: ScopedData, values: np.ndarray) -> MaskStatistics:
        """Count the visible slice, whose values napari already read."""
        voxel_size, units = physical_size(plane)
        return mask_statistics(
            threshold_mask(values, self.threshold, self.mode), voxel_size, units
        )

    def volume_mask(self, scoped: ScopedData) -> tuple[Any, Any, Any, tuple]:
        """Return the lazy whole-volume mask to count, its voxel size, units and result key."""
        voxel_size, units = physical_size(scoped)
        mask = threshold_mask(_lazy(scoped.data), self.threshold, self.mode)
        return mask, voxel_size, units, (self.layer, self.threshold, self.mode)

    def record_volume_statistics(self, key: tuple, stats: MaskStatistics) -> None:
        """Keep a whole-volume count, shown while its layer, threshold and mode stay."""
        self._volume_statistics = (key, stats)

    def statistics_text(self, slice_stats: MaskStatistics | None) -> str:
        """Word the statistics: the visible slice, and the whole volume when counted."""
        lines = [] if slice_stats is None else [describe_statistics(slice_stats, "visible slice")]
        counted = self._volume_statistics
        if counted is not None and counted[0] == (self.layer, self.threshold, self.mode):
            lines.append(describe_statistics(counted[1], "whole volume"))
        return "\n".join(lines)

    def outputs(
        self, scoped: ScopedData, *, whole: bool, mask: bool, masked_image: bool
    ) -> list[MaskOutput]:
        """Describe the layers "Create layers" adds for ``scoped``.

        Raises
        ------
        OperationError
            When neither output is chosen.
        """
        layer = require_grey(self.layer)
        if not (mask or masked_image):
            raise OperationError("Choose an output: mask, masked image or both.")
        sign = ">" if self.mode == "above" else "<"
        multiscale = whole and layer.multiscale
        if whole:
            # Every level of a pyramid, so napari can still pick one; numpy data wrapped
            # in dask too, so the outputs cost no memory until napari shows a plane.
            sources = [_lazy(level) for level in (levels(layer) if multiscale else [scoped.data])]
            placement, where = scoped.layer_kwargs(), ""
        else:
            sources = [np.asarray(scoped.data)]
            placement, where = scoped.place(sources[0])[1], " (slice)"
        masks = [threshold_mask(level, self.threshold, self.mode) for level in sources]
        place = (lambda array: array) if whole else (lambda array: scoped.place(array)[0])
        outputs = []
        if mask:
            labels = [place(m.astype(np.uint8)) for m in masks]
            name = f"{layer.name} {sign} {self.threshold:g} mask{where}"
            outputs.append(
                MaskOutput("labels", _one(labels, multiscale), name, multiscale, placement)
            )
        if masked_image:
            masked = [place(apply_mask(s, m)) for s, m in zip(sources, masks, strict=True)]
            name = f"{layer.name} masked {sign} {self.threshold:g}{where}"
            outputs.append(
                MaskOutput("image", _one(masked, multiscale), name, multiscale, placement)
            )
        return outputs


def _one(arrays: list[Any], multiscale: bool) -> Any:
    return arrays if multiscale else arrays[0]


def _lazy(array: Any) -> da.Array:
    """``array`` as dask, so a mask is computed only where napari looks."""
    if isinstance(array, da.Array):
        return array
    # One chunk per plane of the leading axes: napari's plane needs one chunk.
    chunks = tuple(1 for _ in array.shape[:-2]) + tuple(array.shape[-2:])
    return da.from_array(array, chunks=chunks)
