"""The Split channels model: which axis to split, whether to, and the layers it makes.

A layer splits along its colour axis (RGB), the axis its reader recorded as channels
(``metadata["bigvol"]["channel_axis"]``) or an axis labelled like one. A grey volume
has no channel axis, so there is no default: splitting a brain along y would add one
layer per row. The user may still pick any axis, but one that is not a channel axis is
split only after a question naming the number of layers, and never into more than
:data:`MAX_SPLIT_LAYERS`.

Channels are views of the source (:func:`~napari_bigvol.ops.channels.split_channels`),
so a whole-volume split of a 100 GB layer reads nothing. Visible-slice outputs keep the
source's dimensionality: one plane thick, placed at the current position, so napari
draws them only on their own plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psygnal import Signal

from napari_bigvol._models import _layers
from napari_bigvol._models._layers import (
    Scope,
    axis_names,
    effective_scope,
    level0_shape,
    levels,
    require_layer,
)
from napari_bigvol._napari.scope import visible_slice, whole_volume
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.channels import split_channels

#: Colour names (napari colormaps) and output names of RGB(A) channels.
RGB_CHANNELS = (("red", "red"), ("green", "green"), ("blue", "blue"), ("alpha", "gray"))
#: Colormaps for other channel axes, in order (cycled).
CHANNEL_COLORMAPS = ("red", "green", "blue", "magenta", "cyan", "yellow")
#: Axis labels that name a channel axis.
CHANNEL_LABELS = frozenset({"c", "ch", "channel", "channels"})
#: The axis number standing for the colour axis of RGB layers.
COLOUR_AXIS = -1
#: The most layers one split adds. Microscopes record a handful of channels; more
#: positions mean a spatial axis, whose split would flood the viewer.
MAX_SPLIT_LAYERS = 16


def channel_axis(layer: Any) -> int | None:
    """Return the axis that holds ``layer``'s channels, or None for a grey volume.

    Parameters
    ----------
    layer : napari.layers.Image
        The source layer.

    Returns
    -------
    int or None
        :data:`COLOUR_AXIS` for RGB layers; else the axis the reader recorded in
        ``metadata["bigvol"]["channel_axis"]``, or an axis labelled like ``"c"`` or
        ``"channel"``; None when there is none (never a spatial axis by default).

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Image
    >>> channel_axis(Image(np.zeros((10, 3, 64, 64)), axis_labels=("z", "c", "y", "x")))
    1
    >>> channel_axis(Image(np.zeros((10, 64, 64)), axis_labels=("z", "y", "x"))) is None
    True
    """
    if layer.rgb:
        return COLOUR_AXIS
    recorded = layer.metadata.get("bigvol", {}).get("channel_axis")
    if isinstance(recorded, int) and -layer.ndim <= recorded < layer.ndim:
        return recorded % layer.ndim
    for axis, label in enumerate(layer.axis_labels):
        if str(label).lower() in CHANNEL_LABELS:
            return axis
    return None


def axis_choices(layer: Any) -> list[tuple[str, int]]:
    """List the axes offered in the chooser: ``(text, axis)``, the colour axis first for RGB.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Image
    >>> axis_choices(Image(np.zeros((2, 5, 6)), axis_labels=("c", "y", "x")))
    [('c (2)', 0), ('y (5)', 1), ('x (6)', 2)]
    """
    shape = level0_shape(layer)
    choices = [(f"colour ({shape[-1]} channels)", COLOUR_AXIS)] if layer.rgb else []
    choices += [(f"{name} ({shape[axis]})", axis) for axis, name in enumerate(axis_names(layer))]
    return choices


@dataclass(frozen=True)
class ChannelOutput:
    """One layer to add: its data (a list of levels for a pyramid), name, look and place."""

    data: Any
    name: str
    colormap: str
    placement: dict[str, Any] = field(repr=False)
    index: int = 0


@dataclass(frozen=True)
class SplitPlan:
    """A split the model accepted: how many layers, and the question to ask first, if any."""

    layer: Any
    axis: int
    count: int
    whole: bool
    question: str = ""


class SplitChannelsModel:
    """State and decisions of the Split channels widget.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
        Its ``dims`` define the visible slice.

    Attributes
    ----------
    layer : napari.layers.Image or None
        The layer to split; set it with :meth:`set_layer`.
    axis : int or None
        The axis to split along (:data:`COLOUR_AXIS` for RGB colours); None until the
        user picks one for a layer without a channel axis.
    scope : Scope
        Visible slice or whole volume.

    Signals
    -------
    layer_changed(object)
        A new layer was set; the axis choices changed with it.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> model = SplitChannelsModel(viewer)
    >>> model.set_layer(viewer.add_image(np.zeros((3, 4, 5)), axis_labels=("c", "y", "x")))
    >>> [output.name for output in model.outputs(model.plan())]
    ['Image [0] (slice)', 'Image [1] (slice)', 'Image [2] (slice)']
    """

    layer_changed = Signal(object)

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self.layer: Any = None
        self.axis: int | None = None
        self.scope = Scope.SLICE

    def set_layer(self, layer: Any) -> None:
        """Choose ``layer``, with its channel axis (or none) as the axis."""
        self.layer = layer
        self.axis = None if layer is None else channel_axis(layer)
        self.layer_changed.emit(layer)

    def whole(self) -> bool:
        """Whether the split covers the whole layer (a 2-D layer always does)."""
        return effective_scope(self.scope, self.layer) is Scope.VOLUME or self.layer.ndim <= 2

    def plan(self) -> SplitPlan:
        """Check the request; return the accepted split, or raise why it is refused.

        Raises
        ------
        OperationError
            No layer, no axis chosen for a grey volume, or more than
            :data:`MAX_SPLIT_LAYERS` layers.
        """
        layer = require_layer(self.layer, numeric=False)
        axis = self.axis
        if axis is None:
            raise OperationError(
                f"Layer '{layer.name}' has no channel axis (it is not RGB, and no axis is "
                "labelled 'c' or 'channel'): choose the axis to split along."
            )
        count = level0_shape(layer)[axis]
        name = "colour" if axis == COLOUR_AXIS else axis_names(layer)[axis]
        if count > MAX_SPLIT_LAYERS:
            raise OperationError(
                f"Splitting layer '{layer.name}' along {name} would add {count} layers; "
                f"Split channels adds at most {MAX_SPLIT_LAYERS}. Choose its channel axis."
            )
        question = ""
        if axis != channel_axis(layer):
            question = (
                f"Axis '{name}' of layer '{layer.name}' is not a channel axis. "
                f"Add {count} layers, one per position along it?"
            )
        return SplitPlan(layer, axis, count, self.whole(), question)

    def outputs(self, plan: SplitPlan) -> list[ChannelOutput]:
        """Build the layers ``plan`` adds: lazy views, or planes of the visible slice."""
        layer = plan.layer
        if plan.whole:
            channels, placement = _whole_channels(layer, plan.axis)
            suffix = ""
        else:
            channels, placement = self._slice_channels(layer, plan.axis)
            suffix = " (slice)"
        outputs = []
        for index, data in enumerate(channels):
            name, colormap = channel_look(layer, plan.axis, index)
            outputs.append(
                ChannelOutput(data, f"{layer.name} [{name}]{suffix}", colormap, placement, index)
            )
        return outputs

    def _slice_channels(self, layer: Any, axis: int) -> tuple[list[Any], dict[str, Any]]:
        """Every channel of the visible plane, one plane thick at its position."""
        scoped = visible_slice(layer, self.viewer)
        if axis == COLOUR_AXIS:
            channels = [scoped.place(c)[0] for c in split_channels(scoped.data, axis=-1)]
            placement = scoped.place(scoped.data)[1]
        else:
            if axis in scoped.axes:
                raise OperationError(
                    f"Axis {axis} of layer '{layer.name}' is displayed, so its channels are "
                    "not planes of the view. Choose another axis, or the whole volume."
                )
            # The fixed axes stay, one position long, so each output keeps its place.
            index = [
                slice(i, i + 1) if isinstance(i, int) else i for i in scoped.index[: layer.ndim]
            ]
            index[axis] = slice(None)
            level = levels(layer)[scoped.level]
            channels = split_channels(level[tuple(index)], axis=axis)
            placement = _drop_axis(scoped.place(scoped.data)[1], axis)
        if math.prod(scoped.data.shape) <= _layers.LIVE_LIMIT:
            # Planes are small; reading them now detaches them from the source layer. A 3-D
            # display's volume stays a lazy view instead.
            channels = [np.asarray(channel) for channel in channels]
        return channels, placement


def _whole_channels(layer: Any, axis: int) -> tuple[list[Any], dict[str, Any]]:
    """Every channel of every level, as views, and their placement."""
    placement = whole_volume(layer).layer_kwargs()
    split_axis = -1 if axis == COLOUR_AXIS else axis
    per_level = [split_channels(level, axis=split_axis) for level in levels(layer)]
    channels = [list(c) for c in zip(*per_level, strict=True)]
    channels = channels if layer.multiscale else [c[0] for c in channels]
    if axis != COLOUR_AXIS:
        placement = _drop_axis(placement, axis)
    return channels, placement


def channel_look(layer: Any, axis: int, index: int) -> tuple[str, str]:
    """Name and colormap of channel ``index``: RGB names, the reader's names, or numbers.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> channel_look(SimpleNamespace(metadata={}), COLOUR_AXIS, 1)
    ('green', 'green')
    """
    if axis == COLOUR_AXIS:
        return RGB_CHANNELS[index]
    facts = layer.metadata.get("bigvol", {})
    names = facts.get("channel_names") or ()
    colours = facts.get("channel_colors") or ()
    name = str(names[index]) if index < len(names) else str(index)
    colour = colours[index] if index < len(colours) else None
    return name, colour or CHANNEL_COLORMAPS[index % len(CHANNEL_COLORMAPS)]


def _drop_axis(placement: dict[str, Any], position: int) -> dict[str, Any]:
    """Remove the channel axis from layer placement keywords."""
    kept: dict[str, Any] = {}
    for key, value in placement.items():
        if key == "affine":
            matrix = np.delete(np.delete(np.asarray(value), position, axis=0), position, axis=1)
            kept[key] = matrix
        else:
            kept[key] = tuple(v for i, v in enumerate(value) if i != position)
    return kept
