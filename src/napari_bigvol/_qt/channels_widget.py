"""The Split channels dock widget: one lazy layer per channel, no copies.

An RGB(A) layer splits along its colour axis; any other layer along the axis the user
picks, by default the one the reader marked as channels (``metadata["bigvol"]
["channel_axis"]``) or an axis labelled like a channel axis. Each channel is a view of
the source (:func:`~napari_bigvol.ops.channels.split_channels`), so splitting a 100 GB
dask layer adds layers at once and reads nothing. The visible-slice scope adds 2-D
layers of the current plane only (a 2-D layer is split whole, lazily, in either scope).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Layer
from qtpy.QtWidgets import QComboBox, QPushButton, QWidget

from napari_bigvol._napari.scope import ScopedData, visible_slice, whole_volume
from napari_bigvol._qt import base
from napari_bigvol._qt.base import LayerWidget, Scope, axis_names
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.channels import split_channels

if TYPE_CHECKING:
    import napari

#: Colour names (napari colormaps) and output names of RGB(A) channels.
RGB_CHANNELS = (("red", "red"), ("green", "green"), ("blue", "blue"), ("alpha", "gray"))
#: Colormaps for other channel axes, in order (cycled).
CHANNEL_COLORMAPS = ("red", "green", "blue", "magenta", "cyan", "yellow")
#: Axis labels that name a channel axis.
CHANNEL_LABELS = frozenset({"c", "ch", "channel", "channels"})
#: The item data of the colour axis of RGB layers in the axis chooser.
COLOUR_AXIS = -1


def default_channel_axis(layer: Image) -> int:
    """Choose the axis to split ``layer`` along unless the user picks another.

    Parameters
    ----------
    layer : napari.layers.Image
        The source layer.

    Returns
    -------
    int
        ``-1`` (the colour axis) for RGB layers; else the axis the reader recorded in
        ``metadata["bigvol"]["channel_axis"]``, an axis labelled like ``"c"`` or
        ``"channel"``, or the smallest axis.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Image
    >>> default_channel_axis(Image(np.zeros((10, 3, 64, 64)), axis_labels=("z", "c", "y", "x")))
    1
    """
    if layer.rgb:
        return COLOUR_AXIS
    recorded = layer.metadata.get("bigvol", {}).get("channel_axis")
    if isinstance(recorded, int) and -layer.ndim <= recorded < layer.ndim:
        return recorded % layer.ndim
    for axis, label in enumerate(layer.axis_labels):
        if str(label).lower() in CHANNEL_LABELS:
            return axis
    shape = layer.data[0].shape if layer.multiscale else layer.data.shape
    return int(np.argmin(shape[: layer.ndim]))


class SplitChannelsWidget(LayerWidget):
    """Split an image layer into one layer per channel, lazily.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    axis_combo : QComboBox
        The axis to split along; item data are axis numbers, ``-1`` for RGB colours.
    split_button : QPushButton
        Adds the channel layers for the chosen scope.
    added : list of napari.layers.Image
        The layers the last split added.

    Examples
    --------
    >>> widget = SplitChannelsWidget(viewer)  # doctest: +SKIP
    >>> widget.split_button.click()  # doctest: +SKIP
    """

    layer_types = (Image,)

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        self.added: list[Image] = []
        self.axis_combo = QComboBox()
        self.axis_combo.setToolTip("The axis whose positions become separate layers")
        self.split_button = QPushButton("Split")
        self.form.addRow("Channel axis", self.axis_combo)
        self.form.addRow(self.split_button)
        self.split_button.clicked.connect(self.split)
        self.ready()

    @property
    def axis(self) -> int | None:
        """The chosen axis (``-1`` for RGB colours), or None without a layer."""
        return self.axis_combo.currentData()

    @axis.setter
    def axis(self, axis: int) -> None:
        self.axis_combo.setCurrentIndex(self.axis_combo.findData(axis))

    def on_update_layers(self) -> None:
        """Offer the new layer's axes, with its channel axis chosen."""
        self.axis_combo.clear()
        layer = self.layer
        if layer is None:
            self.show_note("No image layer selected: add or select one first.")
            return
        self.show_note("")
        shape = layer.data[0].shape if layer.multiscale else layer.data.shape
        if layer.rgb:
            self.axis_combo.addItem(f"colour ({shape[-1]} channels)", COLOUR_AXIS)
        for axis, name in enumerate(axis_names(layer)):
            self.axis_combo.addItem(f"{name} ({shape[axis]})", axis)
        self.axis = default_channel_axis(layer)

    def on_slice_change(self) -> None:
        """Nothing to redraw: a split happens only on request."""

    def split(self) -> None:
        """Add one layer per channel of the chosen layer, for the chosen scope."""
        self.added = []
        try:
            layer = self.require_layer(numeric=False)
            channels, placement = self._channels(layer, self.axis)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        suffix = "" if self._whole(layer) else " (slice)"
        with self.keeping_choice():
            for index, data in enumerate(channels):
                name, colormap = self._channel_look(layer, self.axis, index)
                self.added.append(
                    self.viewer.add_image(
                        data,
                        name=f"{layer.name} [{name}]{suffix}",
                        colormap=colormap,
                        blending="additive",
                        multiscale=isinstance(data, list),
                        # Given, so napari does not scan a huge lazy channel for them.
                        contrast_limits=layer.contrast_limits,
                        metadata={"bigvol": {"channel_of": layer.name, "channel": index}},
                        **placement,
                    )
                )
        names = ", ".join(f"'{added.name}'" for added in self.added)
        self.show_message(f"Added {names}.")

    def _whole(self, layer: Image) -> bool:
        # A 2-D layer is split whole (lazily, every level) in either scope: the result
        # covers the same plane as its visible slice, without reading it.
        return self.scope is Scope.VOLUME or layer.ndim <= 2

    def _channels(self, layer: Image, axis: int) -> tuple[list[Any], dict[str, Any]]:
        """Return the channel arrays (lists of levels for a pyramid) and their placement."""
        whole = self._whole(layer)
        scoped = whole_volume(layer) if whole else visible_slice(layer, self.viewer)
        placement = scoped.layer_kwargs()
        if whole:
            levels = layer.data if layer.multiscale else [layer.data]
            split_axis = -1 if axis == COLOUR_AXIS else axis
            per_level = [split_channels(level, axis=split_axis) for level in levels]
            channels = [list(c) for c in zip(*per_level, strict=True)]
            channels = channels if layer.multiscale else [c[0] for c in channels]
            if axis != COLOUR_AXIS:
                placement = _drop_axis(placement, axis)
        elif axis == COLOUR_AXIS:
            channels = split_channels(scoped.data, axis=-1)
        else:
            channels = self._slice_channels(layer, scoped, axis)
        if not whole and math.prod(scoped.data.shape) <= base.LIVE_LIMIT:
            # Planes are small; reading them now detaches them from the source layer. A 3-D
            # display's volume stays a lazy view instead.
            channels = [np.asarray(channel) for channel in channels]
        return channels, placement

    def _slice_channels(self, layer: Image, scoped: ScopedData, axis: int) -> list[Any]:
        """Every channel of the visible plane: the slice with the channel axis freed."""
        if axis in scoped.axes:
            raise OperationError(
                f"Axis {axis} of layer '{layer.name}' is displayed, so its channels are not "
                "planes of the view. Choose another axis, or the whole volume."
            )
        level = layer.data[scoped.level] if layer.multiscale else layer.data
        index = list(scoped.index)
        index[axis] = slice(None)
        position = sum(1 for kept in scoped.axes if kept < axis)
        return split_channels(level[tuple(index)], axis=position)

    @staticmethod
    def _channel_look(layer: Image, axis: int, index: int) -> tuple[str, str]:
        if axis == COLOUR_AXIS:
            return RGB_CHANNELS[index]
        facts = layer.metadata.get("bigvol", {})
        names = facts.get("channel_names") or ()
        colours = facts.get("channel_colors") or ()
        name = str(names[index]) if index < len(names) else str(index)
        colour = colours[index] if index < len(colours) else None
        return name, colour or CHANNEL_COLORMAPS[index % len(CHANNEL_COLORMAPS)]

    def on_data_change(self, layer: Layer) -> None:
        """Offer the new data's axes."""
        self.on_update_layers()


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
