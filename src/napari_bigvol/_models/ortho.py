"""State and decisions of the *Orthogonal views* dock, without Qt or napari.

The dock shows, beside napari's main canvas, the two other planes through the current
point, with a crosshair at the point in every view; a click in any view moves the point
in all of them. This module decides everything that does not need a canvas, so it is
tested without a viewer:

* which world axes each side view displays (:func:`side_views`, from the main viewer's
  ``dims.order``);
* the current point, snapped to the voxel grid napari displays (:class:`OrthoViews`);
* where a click moves the point, what counts as a click rather than a pan, and in which
  layer modes a click on the main canvas is left to the layer;
* where the crosshair lines run in each view;
* the side views' camera orientation (:func:`side_camera_orientation`, the single place
  that follows the main viewer's conventions);
* which layer properties the side views mirror (:data:`MIRRORED_PROPERTIES`).

The Qt class (:mod:`napari_bigvol._qt.ortho_widget`) lays out the canvases and forwards
events between napari and this model.

Why not the napari-orthogonal-views plugin
-------------------------------------------
The peer plugin (studied at version 0.5.0) shows secondary ``ViewerModel`` canvases well,
but it does not fit here as a dependency: it replaces napari's central widget instead of
being a dock widget, moves the point with a keyboard shortcut rather than a click, draws
its crosshair through napari's private vispy overlay registry, and pulls in OpenCV and
tqdm for a screen recorder. With our lazy layers it also reads more: it copies the whole
point into every view, and napari re-slices a layer whenever any coordinate of its point
changes, so one step of the main slider re-read both side planes (25 file opens on a
12-slice TIFF folder with napari's dask cache off, against 1 here, where a side view gets
only the axes it slices: :meth:`OrthoViews.view_point`). napari-bigvol builds on the same
public idea (a secondary ``ViewerModel`` per plane, rendered by napari's ``QtViewer``, its
layers sharing the main layers' lazy arrays) with its own model and a dock widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from psygnal import Signal

from napari_bigvol.io._orientation import LABEL_AXCODES

__all__ = [
    "CLICK_TOLERANCE",
    "MIRRORED_PROPERTIES",
    "AxisRange",
    "OrthoViews",
    "PlaneView",
    "main_view",
    "side_camera_orientation",
    "side_views",
]

#: Canvas pixels the mouse may move between press and release for a click; more is a
#: drag, which pans the view and leaves the point alone.
CLICK_TOLERANCE = 3

#: Layer properties the side views copy from the main viewer's layers whenever they
#: change (those a layer type lacks are skipped). New ``data`` (and the ``multiscale`` flag
#: that comes with a pyramid) are mirrored as well, sharing the array.
MIRRORED_PROPERTIES = (
    "visible",
    "opacity",
    "blending",
    "contrast_limits",
    "gamma",
    "colormap",
    "interpolation2d",
    "depiction",
    "rendering",
    "scale",
    "translate",
    "rotate",
    "shear",
    "affine",
    "name",
    "units",
    "axis_labels",
    "contour",
    "selected_label",
    "show_selected_label",
)

#: Layer modes in which a click on the main canvas moves the point. In any other mode
#: (painting labels, adding points, transforming) the click belongs to the layer.
_POINTING_MODES = frozenset({None, "pan_zoom"})

#: Units left out of captions: napari's default for data without physical units.
_UNITLESS = frozenset({"", "pixel", "px"})

#: The anatomical plane a scanner (RAS) view slices, by the axis code it slices along.
_ANATOMICAL_PLANES = {"S": "Axial", "A": "Coronal", "R": "Sagittal"}


class AxisRange(NamedTuple):
    """The world extent of one axis, as napari's ``dims.range``: first and last sample."""

    start: float
    stop: float
    step: float

    def snap(self, value: float) -> float:
        """Return the sample of this axis nearest ``value`` (the one napari displays).

        Examples
        --------
        >>> AxisRange(10.0, 48.0, 2.0).snap(13.2)
        14.0
        >>> AxisRange(10.0, 48.0, 2.0).snap(500.0)
        48.0
        """
        if self.step <= 0:
            return float(self.start)
        last = round((self.stop - self.start) / self.step)
        index = min(max(round((value - self.start) / self.step), 0), last)
        return float(self.start + index * self.step)


@dataclass(frozen=True)
class PlaneView:
    """The plane a canvas shows: the world axis drawn down its rows and across its columns.

    Attributes
    ----------
    rows : int
        World axis shown vertically.
    cols : int
        World axis shown horizontally.
    order : tuple of int
        The napari ``dims.order`` that displays ``(rows, cols)``.

    Examples
    --------
    >>> view = side_views((0, 1, 2))[0]
    >>> view.rows, view.cols, view.order, view.slice_axis
    (0, 2, (1, 0, 2), 1)
    """

    rows: int
    cols: int
    order: tuple[int, ...]

    @property
    def displayed(self) -> tuple[int, int]:
        """The two displayed world axes, ``(rows, cols)``."""
        return (self.rows, self.cols)

    @property
    def slice_axis(self) -> int:
        """The spatial axis this view slices through (the third of the last three)."""
        return self.order[-3]

    def title(
        self, axis_labels: Sequence[str], point: Sequence[float], units: Sequence[str] = ()
    ) -> str:
        """Name the plane for a caption: its axes, and where it cuts the sliced axis.

        Scanner (RAS) axes, labelled as napari-bigvol's NIfTI and DICOM readers label
        them, give the anatomical plane and the RAS coordinate instead.

        Examples
        --------
        >>> side_views((0, 1, 2))[0].title(("z", "y", "x"), (4.0, 12.5, 3.0), ("mm",) * 3)
        'z-x plane at y = 12.5 mm'
        >>> side_views((0, 1, 2))[0].title(("I→S", "P→A", "L→R"), (4.0, -20.4, 3.0), ("mm",) * 3)
        'Coronal at A = -20.4 mm'
        >>> side_views((0, 1, 2))[0].title(("-3", "-2", "-1"), (4.0, 64.0, 3.0))
        'axis 0-axis 2 plane at axis 1 = 64'
        """
        # napari labels unlabelled axes -3, -2, -1: name them by their index instead.
        axis_labels = [
            f"axis {index}" if label.lstrip("-").isdigit() else label
            for index, label in enumerate(axis_labels)
        ]
        axis = self.slice_axis
        unit = f" {units[axis]}" if axis < len(units) and units[axis] not in _UNITLESS else ""
        code = LABEL_AXCODES.get(axis_labels[axis])
        if code is not None:
            return f"{_ANATOMICAL_PLANES[code]} at {code} = {point[axis]:g}{unit}"
        return (
            f"{axis_labels[self.rows]}-{axis_labels[self.cols]} plane at "
            f"{axis_labels[axis]} = {point[axis]:g}{unit}"
        )


def main_view(order: Sequence[int]) -> PlaneView:
    """Return the plane of napari's main canvas for a ``dims.order`` (2-D display).

    Examples
    --------
    >>> main_view((0, 1, 2)).displayed
    (1, 2)
    """
    return PlaneView(rows=order[-2], cols=order[-1], order=tuple(order))


def side_views(order: Sequence[int]) -> tuple[PlaneView, PlaneView]:
    """Return the two planes orthogonal to the main canvas's, for the main ``dims.order``.

    The main canvas slices axis ``s`` and shows rows ``r`` and columns ``c`` (the last
    three entries of ``order``). Both side views put ``s`` down their rows, as
    neuroimaging viewers do (FSLeyes, ITK-SNAP): the first shows ``s`` against the main
    columns ``c`` (coronal for an axial main view), the second ``s`` against the main rows
    ``r`` (sagittal). Leading axes (time, channel) keep their place and their point.

    Examples
    --------
    >>> first, second = side_views((0, 1, 2))
    >>> first.displayed, second.displayed
    ((0, 2), (0, 1))
    >>> side_views((3, 0, 1, 2))[1].order  # a time axis stays first
    (3, 2, 0, 1)
    """
    if len(order) < 3:
        raise ValueError(
            f"orthogonal views need at least 3 dimensions, got dims.order {tuple(order)}"
        )
    *rest, sliced, rows, cols = (int(axis) for axis in order)
    return (
        PlaneView(rows=sliced, cols=cols, order=(*rest, rows, sliced, cols)),
        PlaneView(rows=sliced, cols=rows, order=(*rest, cols, sliced, rows)),
    )


def side_camera_orientation(main_orientation: tuple[Any, ...]) -> tuple[Any, ...]:
    """Return the camera orientation of the side views, given the main viewer's.

    This is the one place that decides it. The side views copy the main camera's
    ``orientation`` (depth, vertical, horizontal), so a convention set on the main viewer
    holds in every view. Side views of scanner (RAS) layers are the exception: each gets
    napari-bigvol's anatomical camera controller, as the main viewer does, which turns
    every plane upright in the current display convention
    (:func:`napari_bigvol._display.camera_orientation`), so the same convention holds there.

    Examples
    --------
    >>> side_camera_orientation(("towards", "up", "left"))
    ('towards', 'up', 'left')
    """
    return tuple(main_orientation)


def is_click(press: Sequence[float], release: Sequence[float]) -> bool:
    """Whether a press and release (canvas pixels) are a click rather than a drag.

    Examples
    --------
    >>> is_click((100, 80), (101, 82)), is_click((100, 80), (140, 80))
    (True, False)
    """
    moved = np.abs(np.subtract(release, press, dtype=float))
    return bool(np.all(moved <= CLICK_TOLERANCE))


def click_moves_point(layer_mode: str | None) -> bool:
    """Whether a click on the main canvas moves the point, given the active layer's mode.

    Examples
    --------
    >>> click_moves_point("pan_zoom"), click_moves_point(None), click_moves_point("paint")
    (True, True, False)
    """
    return (str(layer_mode) if layer_mode is not None else None) in _POINTING_MODES


class OrthoViews:
    """The current point, the axes of every view and where their crosshairs run.

    Parameters
    ----------
    order : sequence of int
        The main viewer's ``dims.order``.
    ranges : sequence of (start, stop, step)
        The main viewer's ``dims.range``, one per world axis.
    point : sequence of float, optional
        The current world point (default: the first sample of every axis).

    Attributes
    ----------
    point_changed : psygnal.Signal
        Emitted with the new point (a tuple of floats) whenever it moves.
    axes_changed : psygnal.Signal
        Emitted when the views' axes change (a new ``dims.order`` or dimensionality).
    crosshair_changed : psygnal.Signal
        Emitted with the new visibility when the crosshair is shown or hidden.

    Examples
    --------
    >>> model = OrthoViews((0, 1, 2), [(0, 19, 1), (0, 29, 1), (0, 39, 1)])
    >>> coronal, sagittal = model.views
    >>> model.click(coronal, (7.2, 99.0, 12.4))  # y, the axis it slices, is kept
    (7.0, 0.0, 12.0)
    >>> model.crosshair(sagittal)  # (row, col) ends of the horizontal, then vertical line
    array([[ 7. , -0.5],
           [ 7. , 29.5],
           [-0.5,  0. ],
           [19.5,  0. ]])
    """

    point_changed = Signal(tuple)
    axes_changed = Signal()
    crosshair_changed = Signal(bool)

    def __init__(
        self,
        order: Sequence[int] = (),
        ranges: Sequence[Sequence[float]] = (),
        point: Sequence[float] | None = None,
    ) -> None:
        self._order: tuple[int, ...] = tuple(int(axis) for axis in order)
        self._ranges: tuple[AxisRange, ...] = tuple(AxisRange(*map(float, r)) for r in ranges)
        self._point: tuple[float, ...] = self.snap(
            point if point is not None else [r.start for r in self._ranges]
        )
        self._crosshair_visible = True

    @property
    def ndim(self) -> int:
        """Number of world axes."""
        return len(self._order)

    @property
    def order(self) -> tuple[int, ...]:
        """The main viewer's ``dims.order``."""
        return self._order

    @property
    def ranges(self) -> tuple[AxisRange, ...]:
        """The world extent of every axis."""
        return self._ranges

    @property
    def point(self) -> tuple[float, ...]:
        """The current world point, on the voxel grid."""
        return self._point

    @property
    def views(self) -> tuple[PlaneView, ...]:
        """The two side views, or none when the data have fewer than 3 dimensions."""
        return side_views(self._order) if self.ndim >= 3 else ()

    @property
    def crosshair_visible(self) -> bool:
        """Whether the views draw the crosshair."""
        return self._crosshair_visible

    @crosshair_visible.setter
    def crosshair_visible(self, visible: bool) -> None:
        if bool(visible) != self._crosshair_visible:
            self._crosshair_visible = bool(visible)
            self.crosshair_changed.emit(self._crosshair_visible)

    def update_dims(self, order: Sequence[int], ranges: Sequence[Sequence[float]]) -> None:
        """Follow the main viewer's ``dims.order`` and ``dims.range``.

        Emits :attr:`axes_changed` when the views' axes change and :attr:`point_changed`
        when the point has to move onto the new grid.
        """
        new_order = tuple(int(axis) for axis in order)
        new_ranges = tuple(AxisRange(*map(float, r)) for r in ranges)
        axes_changed = new_order != self._order
        self._order, self._ranges = new_order, new_ranges
        if len(self._point) != len(new_ranges):
            self._point = tuple(r.start for r in new_ranges)
        if axes_changed:
            self.axes_changed.emit()
        self.set_point(self._point)

    def set_point(self, point: Sequence[float]) -> bool:
        """Move the point (snapped to the grid); return whether it moved.

        A point of another dimensionality (from a viewer still updating its dims) is
        ignored.
        """
        if len(point) != len(self._ranges):
            return False
        snapped = self.snap(point)
        if snapped == self._point:
            return False
        self._point = snapped
        self.point_changed.emit(snapped)
        return True

    def view_point(self, view: PlaneView, current: Sequence[float]) -> tuple[float, ...]:
        """Return the dims point for a side view: the point on the axes it slices.

        The axes the view displays keep their ``current`` values: napari re-reads a
        layer's plane whenever any coordinate of its dims point changes, a displayed one
        included, and the crosshair (not the dims) marks the point in the plane.

        Examples
        --------
        >>> model = OrthoViews((0, 1, 2), [(0, 9, 1)] * 3, point=(1, 2, 3))
        >>> coronal = model.views[0]  # z against x, slicing y
        >>> model.view_point(coronal, (7.0, 7.0, 7.0))
        (7.0, 2.0, 7.0)
        """
        return tuple(
            float(current[axis]) if axis in view.displayed else value
            for axis, value in enumerate(self._point)
        )

    def set_from_view(self, view: PlaneView, point: Sequence[float]) -> bool:
        """Follow a side view's own dims (its slider): take the axes it slices.

        Returns whether the point moved. The view's displayed coordinates are ignored
        (see :meth:`view_point`).
        """
        if len(point) != len(self._point):
            return False
        return self.set_point(
            [
                value if axis in view.displayed else float(point[axis])
                for axis, value in enumerate(self._point)
            ]
        )

    def click(self, view: PlaneView, position: Sequence[float]) -> tuple[float, ...]:
        """Move the point to a click at world ``position`` in ``view``; return the point.

        Only the two axes the view displays take the click's coordinates; the axis the
        view slices keeps its value, so clicking never jumps to another plane of the
        clicked view. Clicks beyond the data land on its edge.
        """
        moved = list(self._point)
        for axis in view.displayed:
            moved[axis] = float(position[axis])
        self.set_point(moved)
        return self._point

    def crosshair(self, view: PlaneView) -> np.ndarray:
        """Return the crosshair of ``view``: two segments in world ``(row, col)`` coordinates.

        Rows 0-1 are the horizontal line (at the point's ``rows`` coordinate, across the
        data's full width, from edge to edge of its voxels), rows 2-3 the vertical line.
        """
        rows, cols = self._ranges[view.rows], self._ranges[view.cols]
        row, col = self._point[view.rows], self._point[view.cols]
        row_ends = (rows.start - rows.step / 2, rows.stop + rows.step / 2)
        col_ends = (cols.start - cols.step / 2, cols.stop + cols.step / 2)
        return np.array(
            [[row, col_ends[0]], [row, col_ends[1]], [row_ends[0], col], [row_ends[1], col]],
            dtype=float,
        )

    def snap(self, point: Sequence[float]) -> tuple[float, ...]:
        """Return ``point`` on the voxel grid: the samples napari displays for it.

        Examples
        --------
        >>> OrthoViews((0, 1, 2), [(0, 9, 1)] * 3).snap((19.5, 4.4, -3.0))
        (9.0, 4.0, 0.0)
        """
        return tuple(r.snap(float(p)) for r, p in zip(self._ranges, point, strict=True))
