"""A small histogram plot drawn with QPainter, in napari's theme colours.

It needs no plotting library: a histogram is a few step curves, two vertical lines and
some tick labels. Dragging on the plot picks a value range, which the Histogram widget
applies as the layer's contrast limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qtpy.QtCore import QPointF, QRectF, QSize, Qt, Signal
from qtpy.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

# Pixels a press may miss a contrast-limit line by and still grab it.
GRAB_DISTANCE = 6


@dataclass(frozen=True)
class Curve:
    """One histogram curve: ``counts[i]`` values fell in ``[edges[i], edges[i + 1])``."""

    label: str
    edges: np.ndarray
    counts: np.ndarray
    color: str


@dataclass
class PlotColors:
    """The colours the plot is drawn with (hex strings), taken from the napari theme."""

    background: str = "#262930"
    text: str = "#f0f1f2"
    axis: str = "#5a626c"
    contrast_limits: str = "#80d1ff"
    threshold: str = "#ffa500"


class HistogramCanvas(QWidget):
    """A themed histogram plot with contrast-limit and threshold lines.

    Attributes
    ----------
    curves : list of Curve
        What is drawn.
    log_y : bool
        Whether counts are drawn on a logarithmic axis.
    contrast_limits : tuple of float or None
        Drawn as two dashed vertical lines.
    threshold : float or None
        Drawn as one solid vertical line.

    Signals
    -------
    range_dragged(float, float)
        Emitted while the user drags on the plot: the (low, high) value range chosen.
        Pressing near a contrast-limit line moves that line only; pressing elsewhere
        starts a new range at the press.
    """

    range_dragged = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: list[Curve] = []
        self.log_y = False
        self.contrast_limits: tuple[float, float] | None = None
        self.threshold: float | None = None
        self.colors = PlotColors()
        self._drag_anchor: float | None = None
        self.setMinimumHeight(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(False)
        self.setToolTip("Drag to set the layer's contrast limits; drag a dashed line to move it")

    def sizeHint(self) -> QSize:
        """Prefer a plot a little wider than tall."""
        return QSize(320, 200)

    # ---- data ----

    def set_curves(self, curves: list[Curve]) -> None:
        """Replace the curves drawn."""
        self.curves = list(curves)
        self.update()

    def set_log_y(self, log_y: bool) -> None:
        """Draw counts on a logarithmic (True) or linear axis."""
        self.log_y = bool(log_y)
        self.update()

    def set_contrast_limits(self, limits: tuple[float, float] | None) -> None:
        """Set the contrast-limit lines (None hides them)."""
        self.contrast_limits = None if limits is None else (float(limits[0]), float(limits[1]))
        self.update()

    def set_threshold(self, threshold: float | None) -> None:
        """Set the threshold line (None hides it)."""
        self.threshold = None if threshold is None else float(threshold)
        self.update()

    def set_colors(self, colors: PlotColors) -> None:
        """Redraw with new (theme) colours."""
        self.colors = colors
        self.update()

    # ---- geometry ----

    def value_range(self) -> tuple[float, float]:
        """Return the values the x axis spans: those of all curves."""
        lows = [float(curve.edges[0]) for curve in self.curves]
        highs = [float(curve.edges[-1]) for curve in self.curves]
        if not lows:
            return (0.0, 1.0)
        low, high = min(lows), max(highs)
        if high <= low:
            high = low + 1.0
        return low, high

    def plot_rect(self) -> QRectF:
        """Return the area inside the axes, leaving room for tick labels."""
        height = self.fontMetrics().height()
        return QRectF(self.rect()).adjusted(8, 6, -10, -(height + 8))

    def value_to_x(self, value: float) -> float:
        """Map a data value to a widget x coordinate."""
        low, high = self.value_range()
        rect = self.plot_rect()
        return rect.left() + (value - low) / (high - low) * rect.width()

    def x_to_value(self, x: float) -> float:
        """Map a widget x coordinate to a data value, clamped to the plotted range."""
        low, high = self.value_range()
        rect = self.plot_rect()
        fraction = min(max((x - rect.left()) / max(rect.width(), 1.0), 0.0), 1.0)
        return low + fraction * (high - low)

    def _count_to_y(self, count: float, top: float) -> float:
        rect = self.plot_rect()
        if self.log_y:
            fraction = math.log10(1 + count) / max(math.log10(1 + top), 1e-12)
        else:
            fraction = count / top if top > 0 else 0.0
        return rect.bottom() - fraction * rect.height()

    # ---- drawing ----

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the axes, the curves and the lines."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(self.colors.background))
        rect = self.plot_rect()
        painter.setPen(QPen(QColor(self.colors.axis), 1))
        painter.drawRect(rect)
        if not self.curves:
            painter.setPen(QColor(self.colors.text))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no histogram yet")
            painter.end()
            return
        top = max(float(curve.counts.max(initial=0)) for curve in self.curves)
        for curve in self.curves:
            self._draw_curve(painter, curve, top, filled=len(self.curves) == 1)
        self._draw_lines(painter, rect)
        self._draw_labels(painter, rect, top)
        painter.end()

    def _draw_curve(self, painter: QPainter, curve: Curve, top: float, filled: bool) -> None:
        # Decimate to about one step per pixel: thousands of bins would only overdraw.
        edges, counts = curve.edges, curve.counts
        step = max(1, len(counts) // max(int(self.plot_rect().width()), 1))
        if step > 1:
            usable = len(counts) - len(counts) % step
            counts = np.concatenate(
                [counts[:usable].reshape(-1, step).max(axis=1), counts[usable:]]
            )
            edges = np.concatenate([edges[:usable:step], edges[usable:]])
        baseline = self.plot_rect().bottom()
        path = QPainterPath(QPointF(self.value_to_x(float(edges[0])), baseline))
        for left, right, count in zip(edges[:-1], edges[1:], counts, strict=True):
            y = self._count_to_y(float(count), top)
            path.lineTo(self.value_to_x(float(left)), y)
            path.lineTo(self.value_to_x(float(right)), y)
        path.lineTo(self.value_to_x(float(edges[-1])), baseline)
        color = QColor(curve.color)
        if filled:
            fill = QColor(color)
            fill.setAlpha(90)
            painter.fillPath(path, fill)
        painter.setPen(QPen(color, 1.5))
        painter.drawPath(path)

    def _draw_lines(self, painter: QPainter, rect: QRectF) -> None:
        if self.contrast_limits is not None:
            pen = QPen(QColor(self.colors.contrast_limits), 1.5, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            for value in self.contrast_limits:
                x = self.value_to_x(value)
                painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        if self.threshold is not None:
            painter.setPen(QPen(QColor(self.colors.threshold), 2))
            x = self.value_to_x(self.threshold)
            painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))

    def _draw_labels(self, painter: QPainter, rect: QRectF, top: float) -> None:
        painter.setPen(QColor(self.colors.text))
        low, high = self.value_range()
        metrics = self.fontMetrics()
        baseline = rect.bottom() + metrics.ascent() + 4
        for value in _ticks(low, high, 5):
            text = _format_value(value)
            x = self.value_to_x(value) - metrics.horizontalAdvance(text) / 2
            x = min(max(x, rect.left()), rect.right() - metrics.horizontalAdvance(text))
            painter.drawText(QPointF(x, baseline), text)
        scale = "log " if self.log_y else ""
        label = f"max {scale}count {int(top):,}"
        self._back_text(painter, rect.left() + 2, metrics.horizontalAdvance(label) + 4)
        painter.setPen(QColor(self.colors.text))
        painter.drawText(QPointF(rect.left() + 4, rect.top() + metrics.ascent() + 2), label)
        if len(self.curves) > 1:
            x = rect.right() - 4
            y = rect.top() + metrics.ascent() + 2
            width = sum(metrics.horizontalAdvance(c.label) + 8 for c in self.curves)
            self._back_text(painter, x - width - 4, width + 6)
            for curve in reversed(self.curves):
                x -= metrics.horizontalAdvance(curve.label) + 8
                painter.setPen(QColor(curve.color))
                painter.drawText(QPointF(x, y), curve.label)

    def _back_text(self, painter: QPainter, left: float, width: float) -> None:
        """Shade a strip along the top of the plot, so text stays readable over curves."""
        backing = QColor(self.colors.background)
        backing.setAlpha(200)
        height = self.fontMetrics().height() + 4
        painter.fillRect(QRectF(left, self.plot_rect().top() + 1, width, height), backing)

    # ---- dragging ----

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Start a drag: grab a contrast-limit line, or anchor a new range."""
        if event.button() != Qt.MouseButton.LeftButton or not self.curves:
            return
        x = event.position().x()
        self._drag_anchor = self.x_to_value(x)
        if self.contrast_limits is not None:
            distances = [abs(self.value_to_x(v) - x) for v in self.contrast_limits]
            nearest = int(np.argmin(distances))
            if distances[nearest] <= GRAB_DISTANCE:
                # Moving one line keeps the other as the anchor.
                self._drag_anchor = self.contrast_limits[1 - nearest]

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Emit the range between the anchor and the pointer."""
        if self._drag_anchor is None:
            return
        value = self.x_to_value(event.position().x())
        low, high = sorted((self._drag_anchor, value))
        if high > low:
            self.set_contrast_limits((low, high))
            self.range_dragged.emit(low, high)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """Finish the drag."""
        self.mouseMoveEvent(event)
        self._drag_anchor = None


def _ticks(low: float, high: float, count: int) -> list[float]:
    """Round tick values between ``low`` and ``high``, about ``count`` of them."""
    span = high - low
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _format_value(value: float) -> str:
    """Short tick text: integers plainly, others with three significant digits."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"
