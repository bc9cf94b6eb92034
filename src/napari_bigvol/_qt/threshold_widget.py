"""The Threshold mask dock widget: Qt controls for the threshold model.

:class:`~napari_bigvol._models.threshold.ThresholdModel` holds the threshold per layer,
its warnings and the outputs. This widget lays out the slider, spin box and buttons,
shows a live preview and the visible slice's count, and adds the layers the model
describes. The preview and the count use the plane napari already holds
(:func:`~napari_bigvol._napari.scope.displayed_values`), so a docked widget reads no
file napari has not read; the preview is a Labels layer one plane thick at that plane.
Whole-volume counts and Otsu's threshold run in the background.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)
from superqt import QDoubleSlider

from napari_bigvol._models import _layers
from napari_bigvol._models._layers import Scope, require_grey
from napari_bigvol._models.threshold import MaskOutput, ThresholdModel
from napari_bigvol._napari.scope import (
    ScopedData,
    displayed_values,
    visible_slice,
    whole_volume,
)
from napari_bigvol._qt.base import LayerWidget
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.threshold import MaskStatistics, mask_statistics, otsu_threshold_of
from napari_bigvol.ops.view_cache import TEXTURE_COPIES, budget_3d

#: Label value of the masked voxels in the mask and preview layers.
MASK_LABEL = 1
#: The preview's colour: bright on grey images, and not one of the RGB channel colours.
PREVIEW_COLOUR = "cyan"


def _counted_live(layer: Image, plane: ScopedData) -> bool:
    """Whether to count and preview ``plane`` on the GUI thread, at once.

    Yes when reading it is quick, or when napari already holds its values within the 3-D
    level budget (a 3-D display of a budgeted level: a comparison, no read). A
    single-scale volume napari loaded whole in 3-D can be far bigger: that one is left to
    the lazy preview and the background count.
    """
    if math.prod(plane.data.shape) <= _layers.LIVE_LIMIT:
        return True
    shown = displayed_values(layer, plane)
    return shown is not None and shown.nbytes <= budget_3d() // TEXTURE_COPIES


class ThresholdMaskWidget(LayerWidget):
    """Threshold an image layer into a binary mask and a masked image.

    Attributes
    ----------
    model : ThresholdModel
        Threshold, mode and value range per layer; warnings; outputs.
    mode_combo, threshold_slider, threshold_spin
        The :class:`ThresholdControls`: mode, and the threshold as slider and number.
    otsu_button : QPushButton
        Sets the threshold by Otsu's method on the whole-volume histogram (background).
    preview_check, mask_check, masked_image_check : QCheckBox
        The live preview; which outputs "Create layers" (``create_button``) adds.
    stats_label : QLabel
        Masked fraction (and volume) of the visible slice, and of the whole volume.
    preview_layer : napari.layers.Labels or None
        The live preview.

    Examples
    --------
    >>> widget = ThresholdMaskWidget(viewer)  # doctest: +SKIP
    >>> widget.threshold = 125; widget.mode = "below"  # doctest: +SKIP
    >>> widget.create_button.click()  # doctest: +SKIP
    """

    layer_types = (Image,)

    def build(self) -> None:
        """Add the threshold controls and connect them to the model."""
        self.model = ThresholdModel()
        self.preview = ThresholdPreview(self.viewer, self.keeping_choice)
        self.slice_statistics: MaskStatistics | None = None
        self._build_controls()
        self.model.threshold_changed.connect(self.request_draw)
        self.model.mode_changed.connect(self.request_draw)
        self.preview_check.toggled.connect(self.request_draw)
        self.otsu_button.clicked.connect(self.compute_otsu)
        self.create_button.clicked.connect(self.create_layers)
        self._connect(self.viewer.layers.events.removed, self._on_any_layer_removed)

    def _build_controls(self) -> None:
        self.controls = ThresholdControls(self.model)
        self.mode_combo = self.controls.mode_combo
        self.threshold_slider = self.controls.threshold_slider
        self.threshold_spin = self.controls.threshold_spin
        self.otsu_button = QPushButton("Otsu")
        self.otsu_button.setToolTip("Otsu's threshold of the whole-volume histogram")
        self.preview_check = QCheckBox("Live preview")
        self.preview_check.setChecked(True)
        self.mask_check = QCheckBox("Mask (labels)")
        self.mask_check.setChecked(True)
        self.masked_image_check = QCheckBox("Masked image")
        self.create_button = QPushButton("Create layers")
        self.stats_label = QLabel()
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form.addRow("Mode", self.mode_combo)
        self.form.addRow("Threshold", _row(self.threshold_slider, self.threshold_spin))
        self.form.addRow("", _row(self.otsu_button, self.preview_check, stretch=True))
        self.form.addRow("Outputs", _row(self.mask_check, self.masked_image_check, stretch=True))
        self.form.addRow(self.create_button)
        self.body.addWidget(self.stats_label)

    @property
    def threshold(self) -> float:
        """The threshold ``t``."""
        return self.model.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.model.set_threshold(value)

    @property
    def mode(self) -> str:
        """``"above"`` or ``"below"``."""
        return self.model.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self.model.set_mode(mode)

    @property
    def value_range(self) -> tuple[float, float]:
        """The range the slider spans."""
        return self.model.value_range

    # ---- hooks ----

    def on_update_layers(self) -> None:
        """Give the model the new layer; its range and threshold come back through events."""
        self._remove_preview()  # it belongs to the previous layer
        try:
            self.model.set_layer(self.layer)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        self.request_draw()

    def on_data_change(self, layer: Layer) -> None:
        """Re-span the slider and rebuild the preview for the new data."""
        self.on_update_layers()

    def on_slice_change(self) -> None:
        """Count the new slice and move the preview to it."""
        self.request_draw()

    def draw(self) -> None:
        """Update the preview and the visible slice's count."""
        try:
            layer = require_grey(self.layer)
        except OperationError:
            self._remove_preview()
            self.stats_label.setText("")
            raise
        plane = visible_slice(layer, self.viewer)
        live = _counted_live(layer, plane)
        warning = self.model.range_warning()
        # A 3-D display shows a volume: counting it live would block the GUI.
        note = self.scope_note(layer) or (
            "" if live else "3-D display: create the layers to count the whole volume."
        )
        self.show_note(warning or note, error=bool(warning))
        self.slice_statistics = values = None
        if live:
            values = self.plane_values(layer, plane)
            self.slice_statistics = self.model.slice_statistics(plane, values)
        self._show_preview(layer, plane, values if live else None)
        self.stats_label.setText(self.model.statistics_text(self.slice_statistics))

    # ---- preview ----

    def _show_preview(self, layer: Image, plane: ScopedData, values: Any) -> None:
        """Preview the mask of the plane napari shows, one plane thick on that plane.

        A 3-D display's volume (``values`` None) gets a lazy mask of every level.
        """
        if not self.preview_check.isChecked():
            self._remove_preview()
        elif values is None:
            data, multiscale = self.model.preview_volume()
            self.preview.show(layer, data, whole_volume(layer).layer_kwargs(), multiscale)
        else:
            data, placement = plane.place(self.model.plane_mask(values))
            self.preview.show(layer, data, placement, multiscale=False)

    @property
    def preview_layer(self) -> Labels | None:
        """The live preview layer, or None."""
        return self.preview.layer

    def _remove_preview(self) -> None:
        with self.keeping_choice():
            self.preview.remove()

    def _on_any_layer_removed(self, event: Any) -> None:
        if event.value is self.preview.layer:  # the user deleted it: stop previewing
            self.preview.layer = None
            self.preview_check.setChecked(False)

    # ---- actions ----

    def compute_otsu(self) -> None:
        """Set the threshold by Otsu's method on the whole-volume histogram, in the background."""
        try:
            layer = require_grey(self.layer)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        volume = whole_volume(layer).data

        def done(threshold: float) -> None:
            if self.model.layer is layer:
                self.show_message(self.model.otsu_found(threshold))

        self.run_task(
            lambda progress, should_stop: otsu_threshold_of(
                volume, progress=progress, should_stop=should_stop
            ),
            description=f"Otsu threshold of '{layer.name}'",
            on_done=done,
            layer=layer,
        )

    def create_layers(self) -> None:
        """Add the chosen outputs for the scope; count a whole volume in the background."""
        try:
            layer = require_grey(self.layer)
            scoped = self.scoped(layer)
            whole = self.effective_scope(layer) is Scope.VOLUME
            outputs = self.model.outputs(
                scoped,
                whole=whole,
                mask=self.mask_check.isChecked(),
                masked_image=self.masked_image_check.isChecked(),
            )
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        with self.keeping_choice():
            for output in outputs:
                self._add(layer, output)
        names = ", ".join(f"'{output.name}'" for output in outputs)
        notes = [f"Added {names}.", self.model.range_warning(), self.scope_note(layer)]
        self.show_message(" ".join(filter(None, notes)))
        if whole:
            self._count_volume(layer, scoped)

    def _add(self, layer: Image, output: MaskOutput) -> None:
        if output.kind == "labels":
            self.viewer.add_labels(
                output.data, name=output.name, multiscale=output.multiscale, **output.placement
            )
        else:
            self.viewer.add_image(
                output.data,
                name=output.name,
                multiscale=output.multiscale,
                colormap=layer.colormap,
                contrast_limits=layer.contrast_limits,
                **output.placement,
            )

    def _count_volume(self, layer: Image, scoped: ScopedData) -> None:
        mask, voxel_size, units, key = self.model.volume_mask(scoped)

        def done(stats: MaskStatistics) -> None:
            self.model.record_volume_statistics(key, stats)
            self.stats_label.setText(self.model.statistics_text(self.slice_statistics))

        self.run_task(
            lambda progress, should_stop: mask_statistics(
                mask, voxel_size, units, progress=progress, should_stop=should_stop
            ),
            description=f"Masked volume of '{layer.name}'",
            on_done=done,
            layer=layer,
        )

    def closeEvent(self, event: Any) -> None:
        """Remove the preview with the widget."""
        self._remove_preview()
        self.model.release()
        super().closeEvent(event)


class ThresholdControls(QWidget):
    """The mode chooser, slider and spin box, kept in step with a :class:`ThresholdModel`.

    The slider spans the model's value range; any value may be typed in the spin box.
    """

    def __init__(self, model: ThresholdModel) -> None:
        super().__init__()
        self.model = model
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("above (data > t)", "above")
        self.mode_combo.addItem("below (data < t)", "below")
        self.threshold_slider = QDoubleSlider(Qt.Orientation.Horizontal)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(-1e300, 1e300)
        self.threshold_spin.setKeyboardTracking(False)
        self.threshold_spin.setFixedWidth(110)
        model.threshold_changed.connect(self._show_threshold)
        model.mode_changed.connect(self._show_mode)
        model.range_changed.connect(self._show_range)
        self.threshold_slider.valueChanged.connect(model.set_threshold)
        self.threshold_spin.valueChanged.connect(model.set_threshold)
        self.mode_combo.currentIndexChanged.connect(
            lambda index: model.set_mode(self.mode_combo.currentData())
        )

    def _show_threshold(self, value: float) -> None:
        low, high = self.model.value_range
        with _quiet(self.threshold_spin):
            self.threshold_spin.setValue(value)
        with _quiet(self.threshold_slider):
            self.threshold_slider.setValue(min(max(value, low), high))

    def _show_mode(self, mode: str) -> None:
        with _quiet(self.mode_combo):
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))

    def _show_range(self, value_range: tuple[float, float]) -> None:
        low, high = value_range
        integer = self.model.integer
        decimals = 1 if integer else max(3, 2 - int(math.log10(high - low or 1)))
        self.threshold_spin.setDecimals(decimals)
        self.threshold_spin.setSingleStep(1.0 if integer else (high - low) / 100)
        with _quiet(self.threshold_slider):
            self.threshold_slider.setRange(low, high)


class ThresholdPreview:
    """The live preview: one Labels layer, replaced only when its shape must change."""

    def __init__(self, viewer: Any, keeping_choice: Any) -> None:
        self.viewer = viewer
        self.keeping_choice = keeping_choice
        self.layer: Labels | None = None

    def show(self, source: Image, data: Any, placement: dict[str, Any], multiscale: bool) -> None:
        """Show ``data`` (a plane or lazy levels) at ``placement`` over ``source``."""
        layer = self.layer
        if layer is not None and layer in self.viewer.layers and _fits(layer, data, multiscale):
            _move(layer, placement)  # first, so napari redraws once, with the new data
            layer.data = data
            return
        self.remove()
        self.layer = Labels(
            data,
            name=f"{source.name} threshold preview",
            multiscale=multiscale,
            opacity=0.45,
            colormap=DirectLabelColormap(
                color_dict={None: "transparent", 0: "transparent", MASK_LABEL: PREVIEW_COLOUR}
            ),
            metadata={"bigvol_preview_of": source.name},
            **placement,
        )
        with self.keeping_choice():
            self.viewer.layers.append(self.layer)

    def remove(self) -> None:
        """Take the preview out of the viewer."""
        layer, self.layer = self.layer, None
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)


def _fits(layer: Labels, data: Any, multiscale: bool) -> bool:
    """Return whether ``layer`` can take ``data`` in place (same kind and shape)."""
    shape = list((data[0] if multiscale else data).shape)
    return layer.multiscale == multiscale and layer.level_shapes[0].tolist() == shape


def _move(layer: Labels, placement: dict[str, Any]) -> None:
    """Give ``layer`` the ``placement``'s translate and affine, only where they differ."""
    if "translate" in placement and not np.allclose(layer.translate, placement["translate"]):
        layer.translate = placement["translate"]
    if "affine" in placement and not np.allclose(layer.affine.affine_matrix, placement["affine"]):
        layer.affine = placement["affine"]


@contextmanager
def _quiet(control: QWidget) -> Iterator[None]:
    """Set a control from the model without it reporting the change back."""
    control.blockSignals(True)
    try:
        yield
    finally:
        control.blockSignals(False)


def _row(*widgets: QWidget, stretch: bool = False) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget, stretch=0 if stretch else int(widget is widgets[0]))
    if stretch:
        row.addStretch(1)
    return row
