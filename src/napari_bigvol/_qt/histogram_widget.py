"""The Histogram dock widget: Qt controls and plot for the histogram model.

The visible slice is histogrammed as the user scrolls, from the plane napari already
read. The whole volume is streamed chunk by chunk in a worker, with progress in the
dock and Cancel, by :func:`~napari_bigvol.ops.histogram.channel_histogram_stats` (one
pass for all RGB channels); :class:`~napari_bigvol._models.histogram.HistogramModel`
caches its exact counts per layer and settings until the layer's data change.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from napari.layers import Image, Layer
from qtpy.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
)

from napari_bigvol._models import _layers
from napari_bigvol._models._layers import Scope
from napari_bigvol._models.broadcast import threshold_broadcast
from napari_bigvol._models.histogram import (
    HistogramModel,
    HistogramResult,
    HistogramSettings,
    describe,
    histogram_channels,
    parse_percentiles,
    request_key,
    stats_html,
)
from napari_bigvol._napari.scope import ScopedData, displayed_values
from napari_bigvol._qt._plot import Curve, HistogramCanvas, PlotColors
from napari_bigvol._qt._runner import BackgroundTask
from napari_bigvol._qt.base import LayerWidget
from napari_bigvol.errors import OperationError

__all__ = ["HistogramWidget", "parse_percentiles"]

#: Curve colours of RGB(A) channels, in channel order.
RGB_COLORS = ("#ff4040", "#40e040", "#4080ff", "#c0c0c0")


class HistogramWidget(LayerWidget):
    """Histogram of an image layer's visible slice or whole volume, in the dock.

    Attributes
    ----------
    model : HistogramModel
        Cached whole-volume results and the requests running.
    bins_spin : QSpinBox
        Number of bins (default 50).
    log_check, zeros_check : QCheckBox
        Logarithmic count axis; leave zeros out (the histogram of a masked image).
    percentiles_edit : QLineEdit
        Percentiles to report, comma-separated.
    compute_button : QPushButton
        Starts the whole-volume histogram in the background (switching the scope to it).
    canvas : HistogramCanvas
        The plot; dragging on it sets the layer's contrast limits.
    stats_label : QLabel
        Count, min, max, mean, std and percentiles per channel.
    result : HistogramResult or None
        What the plot shows.

    Examples
    --------
    >>> widget = HistogramWidget(viewer)  # doctest: +SKIP
    >>> viewer.window.add_dock_widget(widget)  # doctest: +SKIP
    """

    layer_types = (Image,)

    def build(self) -> None:
        """Add the settings, the Compute button, the plot and the statistics."""
        self.model = HistogramModel()
        self.result: HistogramResult | None = None
        self._live_task: BackgroundTask | None = None  # the 3-D display's, if any
        self._build_settings()
        self.canvas = HistogramCanvas()
        self.stats_label = QLabel()
        self.stats_label.setWordWrap(True)
        self.body.addWidget(self.canvas, stretch=1)
        self.body.addWidget(self.stats_label)
        self._connect_controls()
        self.on_theme_change()
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

    def _build_settings(self) -> None:
        """Add the bins, log, zeros and percentile controls and the Compute button."""
        self.bins_spin = QSpinBox()
        self.bins_spin.setRange(1, 65536)
        self.bins_spin.setValue(50)
        self.log_check = QCheckBox("Log counts")
        self.zeros_check = QCheckBox("Exclude zeros")
        self.zeros_check.setToolTip("Leave zeros out, e.g. the background of a masked image")
        self.percentiles_edit = QLineEdit("1, 50, 99")
        self.percentiles_edit.setToolTip("Percentiles to report, between 0 and 100")
        options = QHBoxLayout()
        for widget in (self.bins_spin, self.log_check, self.zeros_check):
            options.addWidget(widget)
        options.addStretch(1)
        self.form.addRow("Bins", options)
        self.form.addRow("Percentiles", self.percentiles_edit)
        self.compute_button = QPushButton("Compute whole volume")
        self.compute_button.setToolTip(
            "Exact counts over every chunk, in the background (switches Scope to Whole volume)"
        )
        self.form.addRow(self.compute_button)

    def _connect_controls(self) -> None:
        self.compute_button.clicked.connect(self.compute_volume)
        self.bins_spin.valueChanged.connect(self.request_draw)
        self.zeros_check.toggled.connect(self.request_draw)
        self.percentiles_edit.editingFinished.connect(self.request_draw)
        self.log_check.toggled.connect(self.canvas.set_log_y)
        self.canvas.range_dragged.connect(self._set_contrast_limits)
        self._connect(threshold_broadcast().changed, self._on_threshold)

    # ---- hooks ----

    def on_update_layers(self) -> None:
        """Show the chosen layer's lines and histogram."""
        layer = self.layer
        self.canvas.set_contrast_limits(None if layer is None else layer.contrast_limits)
        self.canvas.set_threshold(threshold_broadcast().get(layer))
        two_d = layer is not None and layer.ndim <= 2
        self.compute_button.setEnabled(layer is not None and not two_d)
        self.request_draw()

    def on_data_change(self, layer: Layer) -> None:
        """Forget cached whole-volume histograms of ``layer``; they describe old data."""
        self.model.forget(layer)
        self.request_draw()

    def on_theme_change(self) -> None:
        """Redraw the plot in the viewer's theme colours."""
        theme = self.theme_colors()
        self.canvas.set_colors(
            PlotColors(
                background=theme["canvas"],
                text=theme["text"],
                axis=theme["primary"],
                contrast_limits=theme["current"],
                threshold=theme["warning"],
            )
        )
        self._single_colour = theme["text"]  # the best contrast on the canvas, in any theme

    def watch_layer(self, layer: Layer) -> None:
        """Follow the layer's contrast limits."""
        layer.events.contrast_limits.connect(self._on_contrast_limits)

    def unwatch_layer(self, layer: Layer) -> None:
        """Stop following the layer's contrast limits."""
        layer.events.contrast_limits.disconnect(self._on_contrast_limits)

    # ---- drawing ----

    def settings(self) -> HistogramSettings:
        """Return the current bins, zero exclusion and percentiles."""
        return HistogramSettings(
            bins=self.bins_spin.value(),
            exclude_zeros=self.zeros_check.isChecked(),
            percentiles=parse_percentiles(self.percentiles_edit.text()),
        )

    def draw(self) -> None:
        """Histogram the visible slice now, or show the cached whole-volume histogram."""
        try:
            layer = self.require_layer()
            settings = self.settings()
        except OperationError:
            self._show_result(None)
            raise
        if self.effective_scope(layer) is Scope.VOLUME:
            self._draw_volume(layer, settings)
            return
        scoped = self.scoped(layer)
        self.show_note(self.scope_note(layer))
        if math.prod(scoped.data.shape) > _layers.LIVE_LIMIT:
            # A 3-D display shows a whole (level of the) volume: too much for the GUI
            # thread, so it is counted in the background, replacing older runs; from the
            # level napari loaded for the canvas when it holds it (nothing read again).
            shown = displayed_values(layer, scoped)
            if shown is not None:
                scoped = dataclasses.replace(scoped, data=shown)
            self._histogram_in_background(layer, scoped, settings, cache=False)
            return
        # Sliced first, then read once (or taken from napari): a plane, never the volume.
        names, stats = histogram_channels(self.plane_values(layer, scoped), scoped.rgb, settings)
        self._show_result(HistogramResult(names, stats, describe(layer, scoped)))

    def _draw_volume(self, layer: Image, settings: HistogramSettings) -> None:
        cached = self.model.cached(layer, settings)
        self._show_result(cached)
        running = any(task.running for task in self.tasks)
        self.show_note(
            ""
            if cached or running
            else "The whole-volume histogram reads every chunk: press 'Compute whole volume'."
        )

    def compute_volume(self) -> None:
        """Start the exact whole-volume histogram of the chosen layer in the background."""
        try:
            layer = self.require_layer()
            settings = self.settings()
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        if self.scope is Scope.SLICE:
            self.scope = Scope.VOLUME  # say what the plot will show
        if self.effective_scope(layer) is Scope.SLICE:
            self.request_draw()  # a 2-D layer: its whole volume is the slice
            return
        if self.model.cached(layer, settings) is None:
            self._histogram_in_background(layer, self.scoped(layer), settings, cache=True)
        self.request_draw()

    def _histogram_in_background(
        self, layer: Image, scoped: ScopedData, settings: HistogramSettings, *, cache: bool
    ) -> None:
        """Stream the histogram of ``scoped`` in a worker; cache whole-volume results."""
        key = request_key(layer, settings, scoped)
        if not self.model.start(key):
            return  # already on its way
        live = self._live_task
        if not cache and live is not None and live.running:
            live.cancel("replaced by the newly displayed data")
        source, description = layer.data, describe(layer, scoped)

        def done(result: tuple) -> None:
            _require_same_data(layer, source)
            histogram = HistogramResult(*result, description)
            if cache:
                self.model.store(layer, settings, histogram)
                self.request_draw()  # shows it, if the layer and settings are still chosen
            elif self.layer is layer:
                self._show_result(histogram)

        task = self.run_task(
            lambda progress, should_stop: histogram_channels(
                scoped.data, scoped.rgb, settings, progress=progress, should_stop=should_stop
            ),
            description=f"Histogram of '{layer.name}'",
            on_done=done,
            layer=layer,
        )
        task.finished.connect(lambda: self.model.finish(key))
        if not cache:
            self._live_task = task

    def _show_result(self, result: HistogramResult | None) -> None:
        self.result = result
        if result is None:
            self.canvas.set_curves([])
            self.stats_label.setText("")
            return
        colours = RGB_COLORS if len(result.stats) > 1 else (self._single_colour,)
        self.canvas.set_curves(
            [
                Curve(name, stats.edges, stats.counts, colour)
                for name, stats, colour in zip(
                    result.channels, result.stats, colours, strict=False
                )
            ]
        )
        self.stats_label.setText(stats_html(result))

    # ---- events ----

    def _on_contrast_limits(self, event: Any = None) -> None:
        layer = self.layer
        if layer is not None:
            self.canvas.set_contrast_limits(layer.contrast_limits)

    def _on_threshold(self, layer: Layer) -> None:
        if layer is self.layer:
            self.canvas.set_threshold(threshold_broadcast().get(layer))

    def _set_contrast_limits(self, low: float, high: float) -> None:
        layer = self.layer
        if layer is None:
            return
        range_low, range_high = layer.contrast_limits_range
        if low < range_low or high > range_high:
            layer.contrast_limits_range = (min(low, range_low), max(high, range_high))
        layer.contrast_limits = (low, high)


def _require_same_data(layer: Layer, source: Any) -> None:
    """Refuse a result computed from ``source`` when ``layer`` has new data since."""
    if layer.data is not source:
        raise OperationError(
            f"the data of layer '{layer.name}' changed while this ran; result discarded."
        )
