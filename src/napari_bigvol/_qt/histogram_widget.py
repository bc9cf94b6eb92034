"""The Histogram dock widget: exact histograms of the visible slice or the whole volume.

The visible slice is histogrammed on the GUI thread as the user scrolls (one plane of the
displayed multiscale level: sliced first, then converted to numpy). The whole volume is
streamed chunk by chunk in a napari thread worker with a progress bar and Cancel; its
exact counts are cached per layer and settings until the layer's data change.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Layer
from qtpy.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_bigvol._models import _layers
from napari_bigvol._models._layers import Scope, axis_names
from napari_bigvol._models.broadcast import threshold_broadcast
from napari_bigvol._napari.scope import ScopedData
from napari_bigvol._qt._plot import Curve, HistogramCanvas, PlotColors
from napari_bigvol._qt.base import LayerWidget
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.channels import split_channels
from napari_bigvol.ops.histogram import HistogramStats, histogram_stats

if TYPE_CHECKING:
    import napari

    from napari_bigvol._qt._runner import BackgroundTask, ProgressCallback, StopCheck

#: Curve colours of RGB(A) channels, in channel order.
RGB_COLORS = ("#ff4040", "#40e040", "#4080ff", "#c0c0c0")
RGB_NAMES = ("red", "green", "blue", "alpha")


@dataclass(frozen=True)
class HistogramSettings:
    """What a histogram depends on besides the data: the cache key with the layer."""

    bins: int
    exclude_zeros: bool
    percentiles: tuple[float, ...]


@dataclass(frozen=True)
class HistogramResult:
    """The histograms shown: one :class:`HistogramStats` per channel, and what they cover."""

    channels: tuple[str, ...]
    stats: tuple[HistogramStats, ...]
    description: str


def parse_percentiles(text: str) -> tuple[float, ...]:
    """Read a comma-separated list of percentiles such as ``"1, 50, 99"``.

    Parameters
    ----------
    text : str
        Numbers between 0 and 100, separated by commas or spaces.

    Returns
    -------
    tuple of float
        The percentiles, sorted, without duplicates.

    Raises
    ------
    OperationError
        When an entry is not a number or lies outside [0, 100].

    Examples
    --------
    >>> parse_percentiles("99, 1 50")
    (1.0, 50.0, 99.0)
    """
    values = []
    for item in text.replace(",", " ").split():
        try:
            value = float(item)
        except ValueError:
            raise OperationError(f"percentile {item!r} is not a number") from None
        if not 0.0 <= value <= 100.0:
            raise OperationError(f"percentile {value:g} is outside 0-100")
        values.append(value)
    return tuple(sorted(set(values)))


def histogram_channels(
    scoped: ScopedData,
    settings: HistogramSettings,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> tuple[tuple[str, ...], tuple[HistogramStats, ...]]:
    """Histogram ``scoped.data``, one result per RGB(A) channel or one for grey data.

    Parameters
    ----------
    scoped : ScopedData
        The input, from :func:`~napari_bigvol._napari.scope.scoped_data`.
    settings : HistogramSettings
        Bins, zero exclusion and percentiles.
    progress, should_stop : callable, optional
        As for :func:`~napari_bigvol.ops.histogram.histogram_stats`; progress covers all
        channels.

    Returns
    -------
    tuple
        ``(channel names, stats)``.
    """
    data = scoped.data
    if scoped.rgb:
        channels = split_channels(data, axis=-1)
        names = RGB_NAMES[: len(channels)]
    else:
        channels, names = [data], ("values",)
    results = []
    for number, channel in enumerate(channels):

        def channel_progress(done: int, total: int, offset: int = number) -> None:
            if progress is not None:
                progress(offset * total + done, len(channels) * total)

        results.append(
            histogram_stats(
                channel,
                settings.bins,
                exclude_zeros=settings.exclude_zeros,
                percentiles=settings.percentiles,
                progress=channel_progress,
                should_stop=should_stop,
            )
        )
    return tuple(names), tuple(results)


class HistogramWidget(LayerWidget):
    """Histogram of an image layer's visible slice or whole volume, in the dock.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    bins_spin : QSpinBox
        Number of bins (default 50).
    log_check : QCheckBox
        Logarithmic count axis.
    zeros_check : QCheckBox
        Leave zeros out (the histogram of a masked image).
    percentiles_edit : QLineEdit
        Percentiles to report, comma-separated.
    compute_button : QPushButton
        Starts the whole-volume histogram in the background.
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

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        self.result: HistogramResult | None = None
        self._running: dict[tuple, BackgroundTask] = {}
        self._live_task: BackgroundTask | None = None  # the 3-D display's, if any
        self._cache: weakref.WeakKeyDictionary[Layer, dict[HistogramSettings, HistogramResult]]
        self._cache = weakref.WeakKeyDictionary()

        self.bins_spin = QSpinBox()
        self.bins_spin.setRange(1, 65536)
        self.bins_spin.setValue(50)
        self.log_check = QCheckBox("Log counts")
        self.zeros_check = QCheckBox("Exclude zeros")
        self.zeros_check.setToolTip("Leave zeros out, e.g. the background of a masked image")
        self.percentiles_edit = QLineEdit("1, 50, 99")
        self.percentiles_edit.setToolTip("Percentiles to report, between 0 and 100")
        options = QHBoxLayout()
        options.addWidget(self.log_check)
        options.addWidget(self.zeros_check)
        options.addStretch(1)
        self.form.addRow("Bins", self.bins_spin)
        self.form.addRow("", options)
        self.form.addRow("Percentiles", self.percentiles_edit)
        self.compute_button = QPushButton("Compute whole volume")
        self.compute_button.setToolTip("Exact counts over every chunk, in the background")
        self.compute_button.clicked.connect(self.compute_volume)
        self.form.addRow(self.compute_button)

        self.canvas = HistogramCanvas()
        self.stats_label = QLabel()
        self.stats_label.setWordWrap(True)
        self.body.addWidget(self.canvas, stretch=1)
        self.body.addWidget(self.stats_label)

        self.bins_spin.valueChanged.connect(self._on_settings_change)
        self.zeros_check.toggled.connect(self._on_settings_change)
        self.percentiles_edit.editingFinished.connect(self._on_settings_change)
        self.log_check.toggled.connect(self.canvas.set_log_y)
        self.canvas.range_dragged.connect(self._set_contrast_limits)
        self._connect(threshold_broadcast().changed, self._on_threshold)
        self.on_theme_change()
        self.ready()

    # ---- hooks ----

    def on_update_layers(self) -> None:
        """Show the chosen layer's lines and histogram."""
        layer = self.layer
        self.canvas.set_contrast_limits(None if layer is None else layer.contrast_limits)
        self.canvas.set_threshold(threshold_broadcast().get(layer))
        self._update_controls()
        self.request_draw()

    def on_scope_change(self) -> None:
        """Switch between the live slice and the (cached) whole volume."""
        self._update_controls()
        self.request_draw()

    def on_data_change(self, layer: Layer) -> None:
        """Forget cached whole-volume histograms of ``layer``; they describe old data."""
        self._cache.pop(layer, None)
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
        if self.effective_scope(layer) is Scope.SLICE:
            scoped = self.scoped(layer)
            self.show_note(self.scope_note(layer))
            if math.prod(scoped.data.shape) > _layers.LIVE_LIMIT:
                # A 3-D display shows a whole (level of the) volume: too much for the GUI
                # thread, so it is streamed like the whole volume, replacing older runs.
                self._histogram_in_background(layer, scoped, settings, cache=False)
                return
            # Sliced first (lazily), then read once: a plane, never the volume.
            plane = dataclasses.replace(scoped, data=np.asarray(scoped.data))
            names, stats = histogram_channels(plane, settings)
            self._show_result(HistogramResult(names, stats, _describe(layer, scoped)))
            return
        cached = self._cache.get(layer, {}).get(settings)
        self._show_result(cached)
        self.show_note(
            "" if cached else "Press 'Compute whole volume' for exact counts of every chunk."
        )

    def compute_volume(self) -> None:
        """Start the exact whole-volume histogram of the chosen layer in the background."""
        try:
            layer = self.require_layer()
            settings = self.settings()
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return
        if self.effective_scope(layer) is Scope.SLICE:
            self._draw_safely()  # a 2-D layer: its whole volume is the slice
            return
        cached = self._cache.get(layer, {}).get(settings)
        if cached is not None:
            self._show_result(cached)
            return
        self._histogram_in_background(layer, self.scoped(layer), settings, cache=True)

    def _histogram_in_background(
        self, layer: Image, scoped: ScopedData, settings: HistogramSettings, *, cache: bool
    ) -> None:
        """Stream the histogram of ``scoped`` in a worker; cache whole-volume results."""
        # Slices are unhashable before Python 3.12: key on the fixed positions only.
        fixed = tuple(i if isinstance(i, int) else None for i in scoped.index)
        key = (layer, settings, fixed, scoped.level)
        if key in self._running:
            return  # already on its way
        live = self._live_task
        if not cache and live is not None and live.running:
            live.cancel("replaced by the newly displayed data")
        source = layer.data
        description = _describe(layer, scoped)

        def done(result: tuple[tuple[str, ...], tuple[HistogramStats, ...]]) -> None:
            if layer.data is not source:
                raise OperationError(
                    f"the data of layer '{layer.name}' changed while this ran; result discarded."
                )
            names, stats = result
            histogram = HistogramResult(names, stats, description)
            if cache:
                self._cache.setdefault(layer, {})[settings] = histogram
                self.request_draw()  # shows it, if the layer and settings are still chosen
            elif self.layer is layer:
                self._show_result(histogram)

        task = self.run_task(
            lambda progress, should_stop: histogram_channels(
                scoped, settings, progress=progress, should_stop=should_stop
            ),
            description=f"Histogram of '{layer.name}'",
            on_done=done,
            layer=layer,
        )
        self._running[key] = task
        task.finished.connect(lambda: self._running.pop(key, None))
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
        self.stats_label.setText(_stats_html(result))

    # ---- events ----

    def _on_settings_change(self, *args: Any) -> None:
        self.request_draw()

    def _update_controls(self) -> None:
        layer = self.layer
        volume = layer is not None and self.effective_scope(layer) is Scope.VOLUME
        self.compute_button.setEnabled(volume)

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


def _describe(layer: Layer, scoped: ScopedData) -> str:
    """Say what ``scoped`` covers: "whole volume/image" or "visible slice at z = 3, level 1"."""
    values = f"{math.prod(scoped.data.shape):,} values"
    if scoped.axes == tuple(range(layer.ndim)) and scoped.level == 0:
        return f"whole {'image' if layer.ndim <= 2 else 'volume'}, {values} (exact)"
    labels = axis_names(layer)
    fixed = [
        f"{labels[axis]} = {index}"
        for axis, index in enumerate(scoped.index[: layer.ndim])
        if isinstance(index, int)
    ]
    where = f" at {', '.join(fixed)}" if fixed else ""
    level = f", level {scoped.level}" if getattr(layer, "multiscale", False) else ""
    return f"visible slice{where}{level}, {values}"


def _format(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.6g}"


def _stats_html(result: HistogramResult) -> str:
    """Tabulate the statistics: one row per statistic, one column per channel."""
    first = result.stats[0]
    rows: list[tuple[str, Sequence[str]]] = [
        ("count", [f"{s.count:,}" for s in result.stats]),
        ("min", [_format(s.minimum) for s in result.stats]),
        ("max", [_format(s.maximum) for s in result.stats]),
        ("mean", [_format(s.mean) for s in result.stats]),
        ("std", [_format(s.std) for s in result.stats]),
    ]
    for q in first.percentiles:
        rows.append((f"p{q:g}", [_format(s.percentiles[q]) for s in result.stats]))
    header = "".join(f"<th align='right'>{name}</th>" for name in result.channels)
    body = "".join(
        f"<tr><td>{name}</td>{''.join(f'<td align=right>{v}</td>' for v in values)}</tr>"
        for name, values in rows
    )
    tolerance = max(s.percentile_tolerance for s in result.stats)
    note = f"<br>percentiles within ±{tolerance:.3g}" if tolerance else ""
    return (
        f"<b>{result.description}</b><table cellspacing=4><tr><th></th>{header}</tr>"
        f"{body}</table>{note}"
    )
