"""The threshold each Threshold-mask widget shows, per layer, for the Histogram widget."""

from __future__ import annotations

import weakref
from typing import Any

from psygnal import Signal


class ThresholdBroadcast:
    """Thresholds shown per layer; the Histogram widget draws them on its plot.

    One instance per application (:func:`threshold_broadcast`); layers are held weakly.

    Signals
    -------
    changed(object)
        The layer whose threshold was set or cleared.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Image
    >>> broadcast, layer = ThresholdBroadcast(), Image(np.zeros((2, 2)))
    >>> broadcast.set(layer, 125)
    >>> broadcast.get(layer)
    125.0
    """

    changed = Signal(object)

    def __init__(self) -> None:
        self._thresholds: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def set(self, layer: Any, threshold: float | None) -> None:
        """Record (or, with None, clear) the threshold shown for ``layer``."""
        if threshold is None:
            self._thresholds.pop(layer, None)
        else:
            self._thresholds[layer] = float(threshold)
        self.changed.emit(layer)

    def get(self, layer: Any) -> float | None:
        """Return the threshold shown for ``layer``, or None."""
        return None if layer is None else self._thresholds.get(layer)


_BROADCAST = ThresholdBroadcast()


def threshold_broadcast() -> ThresholdBroadcast:
    """Return the application's :class:`ThresholdBroadcast`.

    Examples
    --------
    >>> threshold_broadcast() is threshold_broadcast()
    True
    """
    return _BROADCAST
