"""The Threshold mask dock widget: a live preview, Otsu, and lazy whole-volume masks.

While the slider moves, a preview Labels layer shows the mask: its data are the lazy
``threshold_mask`` of the source (every multiscale level), so napari computes only the
plane it displays, and scrolling needs nothing from this widget but a new count for the
slice. "Create layers" adds a binary mask (Labels) and/or the masked image, placed
exactly over the source: lazy dask layers for the whole volume (ready at once, computed
plane by plane as the user scrolls), or 2-D layers of the visible slice. The masked
fraction and volume of the whole volume are then counted in the background.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any, Literal

import dask.array as da
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
from napari_bigvol._models._layers import Scope
from napari_bigvol._napari.scope import ScopedData, visible_slice, whole_volume
from napari_bigvol._qt.base import LayerWidget, threshold_broadcast
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.threshold import (
    MaskStatistics,
    apply_mask,
    mask_statistics,
    otsu_threshold_of,
    threshold_mask,
    value_range_estimate,
)

if TYPE_CHECKING:
    import napari

Mode = Literal["above", "below"]
#: Label value of the masked voxels in the mask and preview layers.
MASK_LABEL = 1
#: The preview's colour: bright on grey images, and not one of the RGB channel colours.
PREVIEW_COLOUR = "cyan"


def describe_statistics(stats: MaskStatistics, where: str) -> str:
    """Word mask statistics for the widget, e.g. ``"whole volume: 12.5% masked ..."``.

    Parameters
    ----------
    stats : MaskStatistics
        From :func:`~napari_bigvol.ops.threshold.mask_statistics`.
    where : str
        What was counted ("visible slice", "whole volume").

    Returns
    -------
    str
        One line.

    Examples
    --------
    >>> from napari_bigvol.ops.threshold import MaskStatistics
    >>> describe_statistics(MaskStatistics(50, 400, 0.125, 0.5, 25.0, "mm³"), "whole volume")
    'whole volume: 12.5% masked, 50 of 400 voxels, 25 mm³'
    """
    return (
        f"{where}: {stats.fraction * 100:.5g}% masked, {stats.masked:,} of {stats.total:,} "
        f"voxels, {stats.volume:.6g} {stats.unit}"
    )


class ThresholdMaskWidget(LayerWidget):
    """Threshold an image layer into a binary mask and a masked image.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    mode_combo : QComboBox
        ``"above"`` (``data > t``) or ``"below"`` (``data < t``), as item data.
    threshold_slider : superqt.QDoubleSlider
        Spans the layer's value range (from metadata or a cheap estimate).
    threshold_spin : QDoubleSpinBox
        The threshold as a number; any value may be typed.
    otsu_button : QPushButton
        Sets the threshold by Otsu's method on the whole-volume histogram (background).
    preview_check : QCheckBox
        Shows the live preview layer.
    mask_check, masked_image_check : QCheckBox
        Which outputs "Create layers" adds.
    create_button : QPushButton
        Adds the outputs for the chosen scope.
    stats_label : QLabel
        Masked fraction and volume of the visible slice, and of the whole volume after a
        count.
    preview_layer : napari.layers.Labels or None
        The live preview.
    value_range : tuple of float
        The range the slider spans.

    Examples
    --------
    >>> widget = ThresholdMaskWidget(viewer)  # doctest: +SKIP
    >>> widget.threshold = 125; widget.mode = "below"  # doctest: +SKIP
    >>> widget.create_button.click()  # doctest: +SKIP
    """

    layer_types = (Image,)

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        self.preview_layer: Labels | None = None
        self.value_range: tuple[float, float] = (0.0, 1.0)
        self.slice_statistics: MaskStatistics | None = None
        self._plane_cache: tuple[tuple, np.ndarray] | None = None
        self._broadcast_layer: Image | None = None
        # The threshold last used on each layer, restored when the user comes back to it.
        self._thresholds: weakref.WeakKeyDictionary[Image, float] = weakref.WeakKeyDictionary()
        self.volume_statistics: tuple[tuple[Any, float, str], MaskStatistics] | None = None

        self.mode_combo = QComboBox()
        self.mode_combo.addItem("above (data > t)", "above")
        self.mode_combo.addItem("below (data < t)", "below")
        self.threshold_slider = QDoubleSlider(Qt.Orientation.Horizontal)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(-1e300, 1e300)
        self.threshold_spin.setKeyboardTracking(False)
        self.threshold_spin.setFixedWidth(110)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold_slider, stretch=1)
        threshold_row.addWidget(self.threshold_spin)
        self.otsu_button = QPushButton("Otsu")
        self.otsu_button.setToolTip("Otsu's threshold of the whole-volume histogram")
        self.preview_check = QCheckBox("Live preview")
        self.preview_check.setChecked(True)
        self.mask_check = QCheckBox("Mask (labels)")
        self.mask_check.setChecked(True)
        self.masked_image_check = QCheckBox("Masked image")
        outputs = QHBoxLayout()
        outputs.addWidget(self.mask_check)
        outputs.addWidget(self.masked_image_check)
        outputs.addStretch(1)
        self.create_button = QPushButton("Create layers")
        self.stats_label = QLabel()
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.form.addRow("Mode", self.mode_combo)
        self.form.addRow("Threshold", threshold_row)
        automatic = QHBoxLayout()
        automatic.addWidget(self.otsu_button)
        automatic.addWidget(self.preview_check)
        automatic.addStretch(1)
        self.form.addRow("", automatic)
        self.form.addRow("Outputs", outputs)
        self.form.addRow(self.create_button)
        self.body.addWidget(self.stats_label)

        self.threshold_slider.valueChanged.connect(self._on_slider)
        self.threshold_spin.valueChanged.connect(self._on_threshold_typed)
        self.mode_combo.currentIndexChanged.connect(self._on_threshold_change)
        self.preview_check.toggled.connect(self._on_threshold_change)
        self.otsu_button.clicked.connect(self.compute_otsu)
        self.create_button.clicked.connect(self.create_layers)
        self._connect(self.viewer.layers.events.removed, self._on_any_layer_removed)
        self.ready()

    # ---- state ----

    @property
    def threshold(self) -> float:
        """The threshold ``t``."""
        return float(self.threshold_spin.value())

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.threshold_spin.setValue(float(value))

    @property
    def mode(self) -> Mode:
        """``"above"`` or ``"below"``."""
        return self.mode_combo.currentData()

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))

    def require_grey_layer(self) -> Image:
        """Return the chosen layer if it can be thresholded, else raise a clear error."""
        layer = self.require_layer()
        if layer.rgb:
            raise OperationError(
                f"Layer '{layer.name}' is RGB: split it into channels first (Split channels) "
                "and threshold one channel."
            )
        return layer

    # ---- hooks ----

    def on_update_layers(self) -> None:
        """Span the slider over the new layer's value range and refresh the preview."""
        layer = self.layer
        self._remove_preview()  # it belongs to the previous layer
        self._plane_cache = None
        self.volume_statistics = None
        if layer is None or layer.rgb:
            self._broadcast(None)
            self.request_draw()
            return
        try:
            self._set_value_range(layer)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        self._on_threshold_change()

    def on_data_change(self, layer: Layer) -> None:
        """Re-span the slider and rebuild the preview for the new data."""
        self.on_update_layers()

    def on_slice_change(self) -> None:
        """Count the new slice; the preview layer follows the scroll by itself."""
        self.request_draw()

    def draw(self) -> None:
        """Update the preview layer's threshold and the visible slice's count."""
        try:
            layer = self.require_grey_layer()
        except OperationError:
            self._remove_preview()
            self.stats_label.setText("")
            raise
        threshold, mode = self.threshold, self.mode
        plane = visible_slice(layer, self.viewer)
        live = math.prod(plane.data.shape) <= _layers.LIVE_LIMIT
        warning = self._range_warning(layer)
        # A 3-D display shows a volume: counting it live would block the GUI.
        note = self.scope_note(layer) or (
            "" if live else "3-D display: create the layers to count the whole volume."
        )
        self.show_note(warning or note, error=bool(warning))
        if self.preview_check.isChecked():
            self._show_preview(layer, threshold, mode)
        else:
            self._remove_preview()
        self.slice_statistics = None
        if live:
            mask = threshold_mask(self._plane_values(plane), threshold, mode)
            self.slice_statistics = mask_statistics(mask, plane.scale, plane.units)
        self._show_statistics()

    def _plane_values(self, plane: ScopedData) -> np.ndarray:
        """Return the visible slice's values, read once per plane, not per slider step."""
        key = (repr(plane.index), plane.level)  # reset with the layer or its data
        if self._plane_cache is None or self._plane_cache[0] != key:
            self._plane_cache = (key, np.asarray(plane.data))
        return self._plane_cache[1]

    def _show_statistics(self) -> None:
        lines = []
        if self.slice_statistics is not None:
            lines.append(describe_statistics(self.slice_statistics, "visible slice"))
        counted = self.volume_statistics
        if counted is not None and counted[0] == (self.layer, self.threshold, self.mode):
            lines.append(describe_statistics(counted[1], "whole volume"))
        self.stats_label.setText("\n".join(lines))

    # ---- threshold controls ----

    def _set_value_range(self, layer: Image) -> None:
        levels = layer.data if layer.multiscale else [layer.data]
        # The smallest level's few blocks and napari's own range: cheap, never a full read.
        low, high = value_range_estimate(levels[-1])
        range_low, range_high = layer.contrast_limits_range
        low, high = min(low, range_low), max(high, range_high)
        self.value_range = (float(low), float(high))
        integer = np.dtype(layer.dtype).kind in "biu"
        self.threshold_spin.blockSignals(True)
        self.threshold_slider.blockSignals(True)
        self.threshold_spin.setDecimals(1 if integer else max(3, 2 - int(math.log10(high - low))))
        self.threshold_spin.setSingleStep(1.0 if integer else (high - low) / 100)
        self.threshold_slider.setRange(low, high)
        middle = (low + high) / 2
        remembered = self._thresholds.get(layer)
        if remembered is not None:
            self.threshold_spin.setValue(remembered)
        else:
            self.threshold_spin.setValue(math.floor(middle) + 0.5 if integer else middle)
        self.threshold_slider.setValue(self.threshold)
        self.threshold_spin.blockSignals(False)
        self.threshold_slider.blockSignals(False)

    def _on_slider(self, value: float) -> None:
        self.threshold_spin.blockSignals(True)
        self.threshold_spin.setValue(value)
        self.threshold_spin.blockSignals(False)
        self._on_threshold_change()

    def _on_threshold_typed(self, value: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(min(max(value, self.value_range[0]), self.value_range[1]))
        self.threshold_slider.blockSignals(False)
        self._on_threshold_change()

    def _on_threshold_change(self, *args: Any) -> None:
        self._broadcast(self.layer)
        self.request_draw()

    def _broadcast(self, layer: Image | None) -> None:
        """Tell the Histogram widget which threshold this widget shows (None: none)."""
        previous, self._broadcast_layer = self._broadcast_layer, layer
        if previous is not None and previous is not layer:
            threshold_broadcast().set(previous, None)
        if layer is not None:
            self._thresholds[layer] = self.threshold
            threshold_broadcast().set(layer, self.threshold)

    def _range_warning(self, layer: Image) -> str:
        low, high = self.value_range
        threshold = self.threshold
        if low <= threshold <= high:
            return ""
        side = "above" if threshold > high else "below"
        empty = (self.mode == "above") == (side == "above")
        result = "empty" if empty else "everything"
        return (
            f"Threshold {threshold:g} is {side} the value range of layer '{layer.name}' "
            f"({low:g} to {high:g}): the mask will probably be {result}."
        )

    # ---- preview ----

    def _show_preview(self, layer: Image, threshold: float, mode: Mode) -> None:
        levels = layer.data if layer.multiscale else [layer.data]
        # Lazy masks: napari computes only the displayed plane of the displayed level.
        masks = [threshold_mask(_lazy(level), threshold, mode) for level in levels]
        data = masks if layer.multiscale else masks[0]
        preview = self.preview_layer
        if preview is None or preview not in self.viewer.layers:
            placement = whole_volume(layer).layer_kwargs()
            preview = Labels(
                data,
                name=f"{layer.name} threshold preview",
                multiscale=layer.multiscale,
                opacity=0.45,
                colormap=DirectLabelColormap(
                    color_dict={None: "transparent", 0: "transparent", MASK_LABEL: PREVIEW_COLOUR}
                ),
                **placement,
            )
            preview.metadata["bigvol_preview_of"] = layer.name
            self.preview_layer = preview
            with self.keeping_choice():
                self.viewer.layers.append(preview)
        else:
            preview.data = data

    def _remove_preview(self) -> None:
        preview, self.preview_layer = self.preview_layer, None
        if preview is not None and preview in self.viewer.layers:
            self.viewer.layers.remove(preview)

    def _on_any_layer_removed(self, event: Any) -> None:
        if event.value is self.preview_layer:
            self.preview_layer = None
            self.preview_check.setChecked(False)

    # ---- actions ----

    def compute_otsu(self) -> None:
        """Set the threshold by Otsu's method on the whole-volume histogram, in the background."""
        try:
            layer = self.require_grey_layer()
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        volume = whole_volume(layer).data

        def done(threshold: float) -> None:
            self.mode = "above"
            self.threshold = threshold
            self.show_message(f"Otsu threshold of '{layer.name}': {threshold:g} (keep above).")

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
            layer = self.require_grey_layer()
            if not (self.mask_check.isChecked() or self.masked_image_check.isChecked()):
                raise OperationError("Choose an output: mask, masked image or both.")
            scoped = self.scoped(layer)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        threshold, mode = self.threshold, self.mode
        whole = self.effective_scope(layer) is Scope.VOLUME
        with self.keeping_choice():
            outputs = self._add_outputs(layer, scoped, threshold, mode, lazy=whole)
        notes = [
            f"Added {', '.join(outputs)}.",
            self._range_warning(layer),
            self.scope_note(layer),
        ]
        self.show_message(" ".join(filter(None, notes)))
        if whole:
            self._count_volume(layer, scoped, threshold, mode)

    def _add_outputs(
        self, layer: Image, scoped: ScopedData, threshold: float, mode: Mode, *, lazy: bool
    ) -> list[str]:
        sign = ">" if mode == "above" else "<"
        where = "" if lazy else " (slice)"
        placement = scoped.layer_kwargs()
        multiscale = lazy and layer.multiscale
        if lazy:
            # Every level of a pyramid, so napari can still pick one; numpy data wrapped
            # in dask too, so the outputs cost no memory until napari shows a plane.
            levels = [_lazy(level) for level in (layer.data if multiscale else [scoped.data])]
        else:
            levels = [np.asarray(scoped.data)]
        masks = [threshold_mask(level, threshold, mode) for level in levels]
        names = []
        if self.mask_check.isChecked():
            labels = [mask.astype(np.uint8) for mask in masks]
            name = f"{layer.name} {sign} {threshold:g} mask{where}"
            self.viewer.add_labels(
                labels if multiscale else labels[0], name=name, multiscale=multiscale, **placement
            )
            names.append(f"'{name}'")
        if self.masked_image_check.isChecked():
            masked = [apply_mask(level, mask) for level, mask in zip(levels, masks, strict=True)]
            name = f"{layer.name} masked {sign} {threshold:g}{where}"
            self.viewer.add_image(
                masked if multiscale else masked[0],
                name=name,
                multiscale=multiscale,
                colormap=layer.colormap,
                contrast_limits=layer.contrast_limits,
                **placement,
            )
            names.append(f"'{name}'")
        return names

    def _count_volume(
        self, layer: Image, scoped: ScopedData, threshold: float, mode: Mode
    ) -> None:
        # Lazy, so even in-memory data are counted plane by plane in the worker.
        mask = threshold_mask(_lazy(scoped.data), threshold, mode)

        def done(stats: MaskStatistics) -> None:
            self.volume_statistics = ((layer, threshold, mode), stats)
            self._show_statistics()

        self.run_task(
            lambda progress, should_stop: mask_statistics(
                mask, scoped.scale, scoped.units, progress=progress, should_stop=should_stop
            ),
            description=f"Masked volume of '{layer.name}'",
            on_done=done,
            layer=layer,
        )

    def closeEvent(self, event: Any) -> None:
        """Remove the preview with the widget."""
        self._remove_preview()
        self._broadcast(None)
        super().closeEvent(event)


def _lazy(array: Any) -> da.Array:
    """``array`` as dask, so a preview mask is computed only where napari looks."""
    if isinstance(array, da.Array):
        return array
    # One chunk per plane of the leading axes: napari's plane needs one chunk.
    chunks = tuple(1 for _ in array.shape[:-2]) + tuple(array.shape[-2:])
    return da.from_array(array, chunks=chunks)
