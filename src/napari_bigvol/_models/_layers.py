"""What every widget model asks of a layer: its scope, axis names and level shapes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from napari_bigvol.errors import OperationError
from napari_bigvol.ops.compute import require_numeric

#: Most values a widget reads on the GUI thread for a live visible-slice update. A plane
#: is far below it; a 3-D display's volume above it is left to background work.
LIVE_LIMIT = 2**24


class Scope(StrEnum):
    """What part of a layer a widget works on (the values ``scoped_data`` takes)."""

    SLICE = "slice"
    VOLUME = "volume"

    @property
    def label(self) -> str:
        """The text shown in the scope chooser.

        Examples
        --------
        >>> Scope.VOLUME.label
        'Whole volume'
        """
        return "Visible slice" if self is Scope.SLICE else "Whole volume"


def effective_scope(scope: Scope, layer: Any) -> Scope:
    """Return the scope to use for ``layer``: a 2-D layer's whole volume is its only slice.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> effective_scope(Scope.VOLUME, SimpleNamespace(ndim=2))
    <Scope.SLICE: 'slice'>
    """
    if scope is Scope.VOLUME and layer.ndim <= 2:
        return Scope.SLICE
    return scope


def scope_note(scope: Scope, layer: Any) -> str:
    """Say so when the whole-volume scope falls back to the slice of a 2-D layer."""
    if scope is Scope.VOLUME and effective_scope(scope, layer) is Scope.SLICE:
        return f"Layer '{layer.name}' is 2-D: its whole volume is the visible slice."
    return ""


def require_layer(layer: Any, kinds: str = "image", *, numeric: bool = True) -> Any:
    """Return ``layer``, or raise a message-ready error when there is none or it is not numeric.

    Examples
    --------
    >>> require_layer(None)
    Traceback (most recent call last):
    ...
    napari_bigvol.errors.OperationError: No image layer selected: add or select one first.
    """
    if layer is None:
        raise OperationError(f"No {kinds} layer selected: add or select one first.")
    if numeric:
        require_numeric(layer.dtype, f"layer '{layer.name}'")
    return layer


def require_grey(layer: Any) -> Any:
    """Return a numeric, non-RGB ``layer``, or raise the message telling what to do instead."""
    require_layer(layer)
    if layer.rgb:
        raise OperationError(
            f"Layer '{layer.name}' is RGB: split it into channels first (Split channels) "
            "and threshold one channel."
        )
    return layer


def levels(layer: Any) -> list[Any]:
    """Return the layer's arrays, full resolution first: one for single-scale layers."""
    return list(layer.data) if layer.multiscale else [layer.data]


def level0_shape(layer: Any) -> tuple[int, ...]:
    """Return the full-resolution shape of ``layer``'s data (RGB colours included)."""
    return tuple(levels(layer)[0].shape)


def axis_names(layer: Any) -> list[str]:
    """Name each axis of ``layer`` by its label, or ``"axis i"`` for napari's default labels.

    napari labels unnamed axes by their position from the end (``"-3"``), which reads
    like a coordinate in messages.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> axis_names(SimpleNamespace(axis_labels=("z", "y", "x")))
    ['z', 'y', 'x']
    >>> axis_names(SimpleNamespace(axis_labels=("-3", "-2", "-1")))
    ['axis 0', 'axis 1', 'axis 2']
    """
    return [
        f"axis {axis}" if str(label).lstrip("-").isdigit() else str(label)
        for axis, label in enumerate(layer.axis_labels)
    ]
