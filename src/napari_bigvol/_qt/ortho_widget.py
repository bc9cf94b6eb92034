"""The *Orthogonal views* dock widget: the two other planes through the current point.

Each side view is a napari :class:`~napari.components.ViewerModel` of its own, rendered
by napari's :class:`~napari.qt.QtViewer`, holding a copy of every layer of the main
viewer. A copy shares its layer's array (the same lazy dask array or pyramid, never a
computed one), so a side view reads only the plane it displays, at the pyramid level
napari picks for its canvas. The decisions (which axes each view shows, where the point
goes on a click, where the crosshairs run, the side cameras' orientation, which layer
properties are mirrored) live in the Qt-free :class:`napari_bigvol._models.ortho.OrthoViews`;
this module lays out the canvases and forwards events between napari and that model.
See that module for why napari-orthogonal-views is not used as a dependency.

The side views slice synchronously, like the main canvas. napari's asynchronous slicing
(its experimental setting, or the side viewers' own slicer) was tried: it runs dask
computes on napari's slicing thread beside the GUI thread's, and napari's opportunistic
dask cache (``dask.cache.Cache``) then fails with KeyErrors in its callbacks, so slices
went missing. A side plane therefore costs what the same plane costs in the main canvas:
cheap from a chunked pyramid, seconds across a folder of thousands of TIFF slices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.components import ViewerModel
from napari.layers import Layer
from napari.qt import QtViewer
from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import QCheckBox, QLabel, QSplitter, QVBoxLayout, QWidget
from vispy.scene.visuals import Line

from napari_bigvol._models.ortho import (
    MIRRORED_PROPERTIES,
    OrthoViews,
    PlaneView,
    click_moves_point,
    is_click,
    main_view,
    side_camera_orientation,
)
from napari_bigvol._napari._anatomical import install as anatomical_view

if TYPE_CHECKING:
    import napari

#: Crosshair colour: yellow stands out on grey MRI and on napari's colormaps.
CROSSHAIR_COLOR = (1.0, 0.85, 0.0, 0.9)

#: Shown instead of the side views while the viewer has no data of 3 or more dimensions.
NEEDS_3D = "Orthogonal views show volumes: open data with 3 or more dimensions."


class _Crosshair:
    """Two line segments drawn over a napari canvas, in world coordinates.

    A vispy visual in the canvas's scene, above every layer, so it adds no layer to the
    layer list (and nothing for other widgets or the writer to pick up).
    """

    def __init__(self, canvas: Any) -> None:
        self.line = Line(
            pos=np.zeros((4, 2)),
            color=CROSSHAIR_COLOR,
            connect="segments",
            width=1,
            parent=canvas.view.scene,
        )
        self.line.order = 1_000_000  # drawn after the layers
        self.line.set_gl_state("translucent", depth_test=False)
        self.line.visible = False

    def show(self, segments: np.ndarray | None) -> None:
        """Draw ``segments`` (world ``(row, col)`` ends, from the model), or hide for None."""
        if segments is None:
            self.line.visible = False
            return
        self.line.set_data(pos=segments[:, ::-1])  # the scene is (x, y) = (col, row)
        self.line.visible = True

    def remove(self) -> None:
        self.line.parent = None


class _SidePanel(QWidget):
    """One side view: a caption above a napari canvas showing copies of the main layers."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.viewer_model = ViewerModel(title=name)
        self.qt_viewer = QtViewer(self.viewer_model)
        self.qt_viewer.setAcceptDrops(False)  # files are opened in the main viewer
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.qt_viewer, stretch=1)
        self.crosshair = _Crosshair(self.qt_viewer.canvas)
        # Scanner (RAS) layers: the same upright camera and edge letters as the main viewer
        # (it does nothing for other data).
        self.anatomy = anatomical_view(self.viewer_model)
        self.plane: PlaneView | None = None
        #: The copy of each main layer, keyed by ``id(main layer)``.
        self.copies: dict[int, Layer] = {}
        self._framed_camera: tuple | None = None
        self.viewer_model.canvas.events.size.connect(self._on_canvas_size)

    @property
    def dims(self) -> Any:
        return self.viewer_model.dims

    def close_canvas(self) -> None:
        """Close the canvas and drop it (napari's tests count QtViewers still referenced)."""
        self.copies.clear()
        self.viewer_model.layers.clear()
        self.crosshair.remove()
        self.qt_viewer.close()
        del self.qt_viewer

    def frame(self) -> None:
        """Fit the plane to the canvas (napari's reset_view)."""
        self.viewer_model.reset_view()
        self._framed_camera = self._camera_state()

    def _camera_state(self) -> tuple:
        camera = self.viewer_model.scene.camera
        return (camera.zoom, tuple(camera.center))

    def _on_canvas_size(self, event: Any = None) -> None:
        # The canvas gets its real size only once the dock is laid out: keep the plane
        # fitted to it until the user zooms or pans.
        if self._framed_camera is None or self._framed_camera == self._camera_state():
            self.frame()


def _copy_layer(layer: Layer) -> Layer:
    """Return a hidden layer on the same data and display state (no array copied).

    Hidden, so napari reads nothing until the side view is set up: a visible new layer
    slices itself at the world origin.
    """
    data, state, layer_type = layer.as_layer_data_tuple()
    return Layer.create(data, {**state, "visible": False}, layer_type)


def _unit_text(unit: Any) -> str:
    """Return a short unit name for captions (pint's abbreviation for a pint unit)."""
    return format(unit, "~") if hasattr(unit, "dimensionality") else str(unit)


class OrthogonalViewsWidget(QWidget):
    """Dock widget showing the two planes orthogonal to the main canvas's, linked by a point.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the widget is docked in.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    viewer : napari.Viewer
        The main viewer.
    model : OrthoViews
        The current point, the views' axes and crosshairs.
    panels : tuple of QWidget
        The two side views; each has ``viewer_model`` (a napari ``ViewerModel``),
        ``qt_viewer`` (its ``QtViewer``), ``caption``, ``plane`` and ``copies``.
    crosshair_check : QCheckBox
        Shows or hides the crosshair in every view.
    note : QLabel
        Says why the side views are empty, when they are.

    Examples
    --------
    >>> widget = OrthogonalViewsWidget(viewer)  # doctest: +SKIP
    >>> viewer.window.add_dock_widget(widget, name="Orthogonal views")  # doctest: +SKIP
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # napari hands plugins a PublicOnlyProxy; the canvas and the layer identities
        # (copies are keyed by id) need the real objects.
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        dims = self.viewer.dims
        self.model = OrthoViews(dims.order, dims.range, dims.point)
        self._closed = False
        self._connections: list[tuple[Any, Callable]] = []
        self._layer_connections: dict[int, list[tuple[Any, Callable]]] = {}

        self.crosshair_check = QCheckBox("Crosshair")
        self.crosshair_check.setChecked(self.model.crosshair_visible)
        self.crosshair_check.setToolTip("Draw the current point as a crosshair in every view")
        self.note = QLabel(NEEDS_3D)
        self.note.setWordWrap(True)
        self.panels = (_SidePanel("orthogonal view 1"), _SidePanel("orthogonal view 2"))
        splitter = QSplitter(Qt.Orientation.Vertical)
        for panel in self.panels:
            splitter.addWidget(panel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.crosshair_check)
        layout.addWidget(self.note)
        layout.addWidget(splitter, stretch=1)
        self.setMinimumWidth(280)

        # The main canvas is reached through napari's private _qt_viewer: napari has no
        # public handle on it, and the crosshair is drawn there as in the side views.
        self._main_crosshair = _Crosshair(self.viewer.window._qt_viewer.canvas)

        self.crosshair_check.toggled.connect(self._on_crosshair_check)
        self.model.point_changed.connect(self._on_model_point)
        self.model.axes_changed.connect(self._apply_axes)
        self.model.crosshair_changed.connect(self._draw)

        self._connect(self.viewer.layers.events.inserted, self._on_layer_inserted)
        self._connect(self.viewer.layers.events.removed, self._on_layer_removed)
        self._connect(self.viewer.layers.events.moved, self._sync_layer_order)
        self._connect(dims.events.point, self._on_main_point)
        self._connect(dims.events.order, self._on_main_dims)
        self._connect(dims.events.range, self._on_main_dims)
        self._connect(dims.events.ndisplay, self._draw)
        self._connect(dims.events.axis_labels, self._on_axis_labels)
        self._connect(self.viewer.scene.camera.events.orientation, self._apply_orientation)
        self._connect(self.viewer.mouse_drag_callbacks, self._on_main_drag, callbacks=True)
        for panel in self.panels:
            panel.dims.events.point.connect(self._side_point_callback(panel))
            panel.viewer_model.mouse_drag_callbacks.append(self._side_drag_callback(panel))

        self._center_on_main_view()
        self._apply_axes()
        for index, layer in enumerate(self.viewer.layers):
            self._add_copies(layer, index)
        self._on_axis_labels()
        # Release the side canvases when the main window closes (napari closes its own
        # canvas then), or when the dock is deleted first.
        self._close_filter = _CloseFilter(self.close_views)
        self.viewer.window._qt_window.installEventFilter(self._close_filter)

    def sizeHint(self) -> QSize:
        # Narrower than the main canvas: napari gives a dock its size hint.
        return QSize(420, 800)

    # -- wiring ---------------------------------------------------------------------
    def _connect(self, emitter: Any, callback: Callable, *, callbacks: bool = False) -> None:
        if callbacks:  # a napari callback list (mouse_drag_callbacks)
            emitter.append(callback)
        else:
            emitter.connect(callback)
        self._connections.append((emitter, callback))

    def close_views(self) -> None:
        """Disconnect from the main viewer and close the side canvases; idempotent."""
        if self._closed:
            return
        self._closed = True
        for emitter, callback in self._connections:
            if isinstance(emitter, list):
                if callback in emitter:
                    emitter.remove(callback)
            else:
                emitter.disconnect(callback)
        self._connections.clear()
        for key in list(self._layer_connections):
            self._disconnect_layer(key)
        self._main_crosshair.remove()
        for panel in self.panels:
            panel.close_canvas()

    def closeEvent(self, event: Any) -> None:
        self.close_views()
        super().closeEvent(event)

    def event(self, event: QEvent) -> bool:
        # The dock's close button removes this widget from its dock (napari sets its
        # parent to None) without closing it: stop following the viewer then.
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.close_views()
        return super().event(event)

    # -- layers -----------------------------------------------------------------------
    def _add_copies(self, layer: Layer, index: int) -> None:
        for panel in self.panels:
            # Inserted hidden, so napari reads nothing until the side view's axes and
            # point are set: the first plane it reads is the one it shows.
            copy = _copy_layer(layer)
            first = not panel.viewer_model.layers
            panel.viewer_model.layers.insert(index, copy)
            panel.copies[id(layer)] = copy
            reframe = self._fit_side_dims(panel)
            copy.visible = layer.visible
            if first or reframe:
                panel.frame()
        links = self._layer_connections.setdefault(id(layer), [])
        for name in MIRRORED_PROPERTIES:
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                links.append((emitter, self._mirror(layer, name)))
        links.append((layer.events.data, self._mirror_data(layer)))
        if hasattr(layer.events, "paint"):  # labels painted in place: same array
            links.append((layer.events.paint, self._refresh(layer)))
        for emitter, callback in links:
            emitter.connect(callback)

    def _copies(self, layer: Layer) -> Iterator[tuple[_SidePanel, Layer]]:
        for panel in self.panels:
            copy = panel.copies.get(id(layer))
            if copy is not None:
                yield panel, copy

    def _mirror(self, layer: Layer, name: str) -> Callable:
        def mirror(event: Any = None) -> None:
            for _panel, copy in self._copies(layer):
                setattr(copy, name, getattr(layer, name))

        return mirror

    def _refresh(self, layer: Layer) -> Callable:
        def refresh(event: Any = None) -> None:
            for _panel, copy in self._copies(layer):
                copy.refresh()

        return refresh

    def _mirror_data(self, layer: Layer) -> Callable:
        """Give the copies the layer's new array (a view cache taking over, say), in place.

        In place rather than a new copy: napari's layer removal and insertion stall the
        viewer for about a second (measured by the view cache's benchmark), and a layer
        switched to its cache pyramid turns multiscale, an attribute napari reads at
        every draw.
        """

        def mirror(event: Any = None) -> None:
            for _panel, copy in self._copies(layer):
                if hasattr(layer, "multiscale"):
                    copy.multiscale = layer.multiscale
                copy.data = layer.data

        return mirror

    def _remove_copies(self, layer: Layer) -> None:
        self._disconnect_layer(id(layer))
        for panel, copy in list(self._copies(layer)):
            del panel.copies[id(layer)]
            panel.viewer_model.layers.remove(copy)

    def _disconnect_layer(self, key: int) -> None:
        for emitter, callback in self._layer_connections.pop(key, []):
            emitter.disconnect(callback)

    def _on_layer_inserted(self, event: Any) -> None:
        self._add_copies(event.value, event.index)
        self._apply_axes()

    def _on_layer_removed(self, event: Any) -> None:
        self._remove_copies(event.value)
        self._apply_axes()

    def _sync_layer_order(self, event: Any = None) -> None:
        for panel in self.panels:
            for index, layer in enumerate(self.viewer.layers):
                copy = panel.copies[id(layer)]
                current = panel.viewer_model.layers.index(copy)
                if current != index:
                    panel.viewer_model.layers.move(current, index)

    # -- dims and cameras ---------------------------------------------------------------
    def _fit_side_dims(self, panel: _SidePanel) -> bool:
        """Give a side view its plane's dims order and the current point, if it can.

        Returns whether the order changed (the view then needs reframing).
        """
        dims = panel.dims
        if panel.plane is None or dims.ndim != self.model.ndim:
            return False
        reorder = tuple(dims.order) != panel.plane.order
        if reorder:
            dims.order = panel.plane.order
        self._push_side_point(panel)
        return reorder

    def _push_side_point(self, panel: _SidePanel) -> None:
        """Move a side view onto its plane through the point (while dims agree)."""
        dims = panel.dims
        if panel.plane is not None and dims.ndim == self.model.ndim == len(self.model.point):
            _push_point(dims, self.model.view_point(panel.plane, dims.point))

    def _apply_axes(self, event: Any = None) -> None:
        """Show each side view's plane (after a new order or dimensionality)."""
        views = self.model.views
        self.note.setVisible(not views)
        for panel, plane in zip(self.panels, views or (None, None), strict=True):
            panel.setVisible(plane is not None)
            panel.plane = plane
            if self._fit_side_dims(panel):
                panel.frame()
        self._apply_orientation()
        self._draw()

    def _apply_orientation(self, event: Any = None) -> None:
        orientation = side_camera_orientation(self.viewer.scene.camera.orientation)
        for panel in self.panels:
            if not panel.anatomy.shows_ras():  # else the anatomical controller turns it
                panel.viewer_model.scene.camera.orientation = orientation

    def _center_on_main_view(self) -> None:
        """Start the side planes through the middle of what the main canvas shows.

        napari's point on the axes the main canvas displays is never seen, and can be
        anywhere (an edge of the data after a change of scale, say): as if the user had
        clicked the centre of the main canvas.
        """
        if not self.model.views or self.viewer.dims.ndisplay != 2:
            return
        plane = main_view(self.model.order)
        center = self.viewer.scene.camera.center
        position = list(self.model.point)
        position[plane.rows], position[plane.cols] = center[-2], center[-1]
        self.model.click(plane, position)

    def _on_main_dims(self, event: Any = None) -> None:
        dims = self.viewer.dims
        self.model.update_dims(dims.order, dims.range)
        self._apply_axes()

    def _on_main_point(self, event: Any = None) -> None:
        self.model.set_point(self.viewer.dims.point)

    def _side_point_callback(self, panel: _SidePanel) -> Callable:
        def on_side_point(event: Any = None) -> None:
            # Only once the view shows its plane: a side viewer getting its first layer
            # starts at napari's default order and point, which are not the user's.
            plane = panel.plane
            if plane is not None and tuple(panel.dims.order) == plane.order:
                self.model.set_from_view(plane, panel.dims.point)

        return on_side_point

    def _on_model_point(self, point: tuple[float, ...]) -> None:
        main = self.viewer.dims
        # Left alone while it shows the same voxels (napari's initial point can sit
        # between samples): napari would re-read the main plane for a new point.
        if main.ndim != len(point) or self.model.snap(main.point) != point:
            _push_point(main, point)
        for panel in self.panels:
            self._push_side_point(panel)
        self._draw()

    def _on_axis_labels(self, event: Any = None) -> None:
        labels = tuple(self.viewer.dims.axis_labels)
        for panel in self.panels:
            if panel.dims.ndim == len(labels):
                panel.dims.axis_labels = labels
        self._draw()

    # -- clicks -------------------------------------------------------------------------
    def _on_main_drag(self, viewer: Any, event: Any) -> Iterator[None]:
        """Move the point on a click (not a drag, which pans) on the main canvas."""
        active = self.viewer.layers.selection.active
        if (
            event.button != 1
            or self.viewer.dims.ndisplay != 2
            or not self.model.views
            or not click_moves_point(getattr(active, "mode", None))
        ):
            return
        yield from self._click(main_view(self.viewer.dims.order), event)

    def _side_drag_callback(self, panel: _SidePanel) -> Callable:
        def on_drag(viewer_model: ViewerModel, event: Any) -> Iterator[None]:
            if event.button != 1 or panel.plane is None:
                return
            yield from self._click(panel.plane, event)

        return on_drag

    def _click(self, plane: PlaneView, event: Any) -> Iterator[None]:
        press, position = tuple(event.pos), tuple(event.position)
        yield
        while event.type == "mouse_move":
            yield
        if is_click(press, event.pos):
            self.model.click(plane, position)

    # -- drawing -------------------------------------------------------------------------
    def _on_crosshair_check(self, checked: bool) -> None:
        self.model.crosshair_visible = checked

    def _draw(self, event: Any = None) -> None:
        """Crosshairs and captions for the current point."""
        model = self.model
        show = model.crosshair_visible and bool(model.views)
        main_2d = self.viewer.dims.ndisplay == 2
        self._main_crosshair.show(
            model.crosshair(main_view(model.order)) if show and main_2d else None
        )
        labels = tuple(self.viewer.dims.axis_labels)
        units = tuple(_unit_text(unit) for unit in self.viewer.dims.units or ())
        for panel in self.panels:
            if panel.plane is None:
                panel.crosshair.show(None)
                continue
            panel.crosshair.show(model.crosshair(panel.plane) if show else None)
            panel.caption.setText(panel.plane.title(labels, model.point, units))


def _push_point(dims: Any, point: tuple[float, ...]) -> None:
    """Set a napari dims' point unless it is already there (or of another dimensionality)."""
    if dims.ndim == len(point) and tuple(dims.point) != point:
        dims.point = point


class _CloseFilter(QObject):
    """Calls ``on_close`` when the watched window closes."""

    def __init__(self, on_close: Callable[[], None]) -> None:
        super().__init__()
        self._on_close = on_close

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close:
            self._on_close()
        return False
