"""The Split channels dock widget: Qt controls for the Split channels model.

The model decides the axis, refuses or questions a split and builds the channel layers;
this widget offers the axes, asks the model's question in a dialog and adds the layers.
"""

from __future__ import annotations

from napari.layers import Image, Layer
from qtpy.QtWidgets import QComboBox, QPushButton

from napari_bigvol._models.channels import COLOUR_AXIS, SplitChannelsModel, axis_choices
from napari_bigvol._qt.base import LayerWidget
from napari_bigvol.errors import OperationError

__all__ = ["COLOUR_AXIS", "SplitChannelsWidget"]


class SplitChannelsWidget(LayerWidget):
    """Split an image layer into one layer per channel, lazily.

    Attributes
    ----------
    model : SplitChannelsModel
        The state and decisions.
    axis_combo : QComboBox
        The axis to split along; item data are axis numbers, ``-1`` for RGB colours.
        Empty ("choose an axis") for a layer without a channel axis.
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
    title = "Split channels"

    def build(self) -> None:
        """Add the axis chooser and the Split button."""
        self.model = SplitChannelsModel(self.viewer)
        self.added: list[Image] = []
        self.axis_combo = QComboBox()
        self.axis_combo.setToolTip("The axis whose positions become separate layers")
        self.axis_combo.setPlaceholderText("choose an axis")
        self.split_button = QPushButton("Split")
        self.form.addRow("Channel axis", self.axis_combo)
        self.form.addRow(self.split_button)
        self.split_button.clicked.connect(self.split)
        self.axis_combo.currentIndexChanged.connect(self._on_axis_chosen)

    @property
    def axis(self) -> int | None:
        """The chosen axis (``-1`` for RGB colours), or None."""
        return self.model.axis

    @axis.setter
    def axis(self, axis: int | None) -> None:
        self.axis_combo.setCurrentIndex(self.axis_combo.findData(axis) if axis is not None else -1)

    def on_update_layers(self) -> None:
        """Offer the new layer's axes, with its channel axis (if any) chosen."""
        layer = self.layer
        self.model.set_layer(layer)
        self.axis_combo.blockSignals(True)
        self.axis_combo.clear()
        for text, axis in axis_choices(layer) if layer is not None else ():
            self.axis_combo.addItem(text, axis)
        self.axis_combo.blockSignals(False)
        self.axis = self.model.axis
        self.show_message("")
        if layer is None:
            self.show_note("No image layer selected: add or select one first.")
        elif self.model.axis is None:
            self.show_note(f"Layer '{layer.name}' has no channel axis: choose one to split along.")
        else:
            self.show_note("")

    def _on_axis_chosen(self, index: int) -> None:
        self.model.axis = self.axis_combo.currentData()

    def on_slice_change(self) -> None:
        """Nothing to redraw: a split happens only on request."""

    def on_scope_change(self) -> None:
        """Nothing to redraw: a split happens only on request."""

    def split(self) -> None:
        """Add one layer per channel of the chosen layer, for the chosen scope."""
        self.added = []
        self.model.scope = self.scope
        try:
            plan = self.model.plan()
            if plan.question and not self.confirm(plan.question):
                self.show_message("Split cancelled.")
                return
            outputs = self.model.outputs(plan)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        layer = plan.layer
        with self.keeping_choice():
            for output in outputs:
                self.added.append(
                    self.viewer.add_image(
                        output.data,
                        name=output.name,
                        colormap=output.colormap,
                        blending="additive",
                        multiscale=isinstance(output.data, list),
                        # Given, so napari does not scan a huge lazy channel for them.
                        contrast_limits=layer.contrast_limits,
                        metadata={"bigvol": {"channel_of": layer.name, "channel": output.index}},
                        **output.placement,
                    )
                )
        names = ", ".join(f"'{added.name}'" for added in self.added)
        self.show_message(f"Added {names}.")

    def on_data_change(self, layer: Layer) -> None:
        """Offer the new data's axes."""
        self.on_update_layers()
