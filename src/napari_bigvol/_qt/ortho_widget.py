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

The side views slice asynchronously (:mod:`napari_bigvol._napari._side_slicer`): a
side plane across a folder of thousands of TIFF slices takes seconds to read, so it is
read on a worker thread, a click returns at once, and a plane superseded by a newer click
stops reading. The main canvas slices as napari always does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.components import ViewerModel
from napari.layers import Layer
from napari.qt import QtViewer
from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
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
from napari_bigvol._napari._side_slicer import SidePlaneSlicer, read_view_changes_off_thread
from napari_bigvol._qt.base import DockWidget

if TYPE_CHECKING:
    import napari

#: Crosshair colour: yellow stands out on grey MRI and on napari's colormaps.
CROSSHAIR_COLOR = (1.0, 0.85, 0.0, 0.9)

#: Smallest side canvas (pixels each way): a plane stays readable when other docks share
#: the column (napari then shrinks those docks, which scroll, or grows the window).
MIN_CANVAS = 120

#: Added to a side view's caption while its plane is being read.
READING = " (reading…)"

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
    """One side view: a caption above a napari canvas showing copies of the main layers.

    It shows the plane :attr:`plane` of ``model`` through the model's point, and moves
    the point when the user scrolls or clicks in it.
    """

    def __init__(self, name: str, model: OrthoViews) -> None:
        super().__init__()
        self.model = model
        self.viewer_model = ViewerModel(title=name)
        # Before the canvas is made: it applies the planes the slicer reads off-thread.
        self.viewer_model._layer_slicer = SidePlaneSlicer()
        self.qt_viewer = QtViewer(self.viewer_model)
        self.qt_viewer.setAcceptDrops(False)  # files are opened in the main viewer
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.qt_viewer, stretch=1)
        self.qt_viewer.canvas.native.setMinimumSize(MIN_CANVAS, MIN_CANVAS)
        self.crosshair = _Crosshair(self.qt_viewer.canvas)
        # Scanner (RAS) layers: the same upright camera and edge letters as the main viewer
        # (it does nothing for other data).
        self.anatomy = anatomical_view(self.viewer_model)
        self.plane: PlaneView | None = None
        self._title = ""
        #: The copy of each main layer, keyed by ``id(main layer)``.
        self.copies: dict[int, Layer] = {}
        self._framed_camera: tuple | None = None
        self.viewer_model.canvas.events.size.connect(self._on_canvas_size)
        self.dims.events.point.connect(self._on_point)
        self.viewer_model.mouse_drag_callbacks.append(self._on_drag)

    @property
    def dims(self) -> Any:
        return self.viewer_model.dims

    @property
    def loaded(self) -> bool:
        """Whether every copy shows the plane last asked for (none is being read)."""
        return all(copy.loaded for copy in self.copies.values())

    def close_canvas(self) -> None:
        """Close the canvas and drop it (napari's tests count QtViewers still referenced)."""
        slicer = self.viewer_model._layer_slicer
        slicer.stop()  # before the layers go: removing them would ask for planes
        for copy in self.copies.values():  # a plane may still be on its way
            copy.events.set_data.disconnect(self._show_caption)
        self.copies.clear()
        self.viewer_model.layers.clear()
        slicer.shutdown()
        self.crosshair.remove()
        self.qt_viewer.close()
        del self.qt_viewer

    # -- copies of the main layers ------------------------------------------------------
    def add_copy(self, layer: Layer, index: int) -> None:
        """Insert a copy of the main ``layer`` at ``index``, on this view's plane."""
        # Inserted hidden, so napari reads nothing until the side view's axes and point
        # are set: the first plane it reads is the one it shows.
        copy = _copy_layer(layer)
        read_view_changes_off_thread(copy)  # pan and zoom never read on the GUI thread
        first = not self.viewer_model.layers
        self.viewer_model.layers.insert(index, copy)
        self.copies[id(layer)] = copy
        copy.events.set_data.connect(self._show_caption)  # a plane arrived
        reframe = self.fit_dims()
        self.set_visible(copy, layer.visible)
        if first or reframe:
            self.frame()

    def set_visible(self, copy: Layer, visible: bool) -> None:
        """Show or hide a copy; its plane is read off the GUI thread.

        napari's ``visible`` setter would read the plane at once, on the GUI thread.
        """
        with copy._block_refresh():
            copy.visible = visible
        if visible:
            self.viewer_model._update_layers(layers=[copy])

    def remove_copy(self, layer: Layer) -> None:
        """Remove the copy of the main ``layer``, if there is one."""
        copy = self.copies.pop(id(layer), None)
        if copy is not None:
            copy.events.set_data.disconnect(self._show_caption)
            self.viewer_model.layers.remove(copy)

    def sync_order(self, layers: Any) -> None:
        """Stack the copies in the order of the main viewer's ``layers``."""
        for index, layer in enumerate(layers):
            copy = self.copies[id(layer)]
            current = self.viewer_model.layers.index(copy)
            if current != index:
                self.viewer_model.layers.move(current, index)

    # -- plane, point and camera ----------------------------------------------------------
    def show_plane(self, plane: PlaneView | None) -> None:
        """Show ``plane`` (None hides the view), reframed when its axes changed."""
        self.setVisible(plane is not None)
        self.plane = plane
        if self.fit_dims():
            self.frame()

    def fit_dims(self) -> bool:
        """Give the view its plane's dims order and the current point, if it can.

        Returns whether the order changed (the view then needs reframing).
        """
        dims = self.dims
        if self.plane is None or dims.ndim != self.model.ndim:
            return False
        reorder = tuple(dims.order) != self.plane.order
        if reorder:
            dims.order = self.plane.order
        self.push_point()
        return reorder

    def push_point(self) -> None:
        """Move the view onto its plane through the point (while dims agree)."""
        dims = self.dims
        if self.plane is not None and dims.ndim == self.model.ndim == len(self.model.point):
            _push_point(dims, self.model.view_point(self.plane, dims.point))

    def orient(self, orientation: tuple[Any, ...]) -> None:
        """Turn the camera to ``orientation``, unless the anatomical controller turns it."""
        if not self.anatomy.shows_ras():
            self.viewer_model.scene.camera.orientation = orientation

    def set_axis_labels(self, labels: tuple[str, ...]) -> None:
        if self.dims.ndim == len(labels):
            self.dims.axis_labels = labels

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

    # -- user input and drawing -------------------------------------------------------------
    def _on_point(self, event: Any = None) -> None:
        # Only once the view shows its plane: a side viewer getting its first layer
        # starts at napari's default order and point, which are not the user's.
        plane = self.plane
        if plane is not None and tuple(self.dims.order) == plane.order:
            self.model.set_from_view(plane, self.dims.point)

    def _on_drag(self, viewer_model: ViewerModel, event: Any) -> Iterator[None]:
        if event.button != 1 or self.plane is None:
            return
        yield from _click(self.model, self.plane, event)

    def draw(self, show_crosshair: bool, labels: tuple[str, ...], units: tuple[str, ...]) -> None:
        """Draw the crosshair (if ``show_crosshair``) and the caption for the point."""
        if self.plane is None:
            self.crosshair.show(None)
            return
        self.crosshair.show(self.model.crosshair(self.plane) if show_crosshair else None)
        self._title = self.plane.title(labels, self.model.point, units)
        self._show_caption()

    def _show_caption(self, event: Any = None) -> None:
        self.caption.setText(self._title + ("" if self.loaded else READING))


class _LayerMirror:
    """Keeps the side views' copies of each main layer in step with it.

    Mirrors the :data:`~napari_bigvol._models.ortho.MIRRORED_PROPERTIES`, new data and
    painting, from the main layer's events to its copy in every panel.
    """

    def __init__(self, panels: tuple[_SidePanel, ...]) -> None:
        self.panels = panels
        self._connections: dict[int, list[tuple[Any, Callable]]] = {}

    def add(self, layer: Layer, index: int) -> None:
        """Copy ``layer`` into every panel at ``index`` and follow its events."""
        for panel in self.panels:
            panel.add_copy(layer, index)
        links = self._connections.setdefault(id(layer), [])
        for name in MIRRORED_PROPERTIES:
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                links.append((emitter, self._mirror(layer, name)))
        links.append((layer.events.data, self._mirror_data(layer)))
        if hasattr(layer.events, "paint"):  # labels painted in place: same array
            links.append((layer.events.paint, self._refresh(layer)))
        for emitter, callback in links:
            emitter.connect(callback)

    def remove(self, layer: Layer) -> None:
        """Stop following ``layer`` and remove its copies."""
        self._disconnect(id(layer))
        for panel in self.panels:
            panel.remove_copy(layer)

    def close(self) -> None:
        """Stop following every layer."""
        for key in list(self._connections):
            self._disconnect(key)

    def _disconnect(self, key: int) -> None:
        for emitter, callback in self._connections.pop(key, []):
            emitter.disconnect(callback)

    def _copies(self, layer: Layer) -> Iterator[Layer]:
        for panel in self.panels:
            copy = panel.copies.get(id(layer))
            if copy is not None:
                yield copy

    def _mirror(self, layer: Layer, name: str) -> Callable:
        def mirror(event: Any = None) -> None:
            for panel in self.panels:
                copy = panel.copies.get(id(layer))
                if copy is None:
                    continue
                if name == "visible":
                    panel.set_visible(copy, layer.visible)
                else:
                    setattr(copy, name, getattr(layer, name))

        return mirror

    def _refresh(self, layer: Layer) -> Callable:
        def refresh(event: Any = None) -> None:
            for copy in self._copies(layer):
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
            for copy in self._copies(layer):
                if hasattr(layer, "multiscale"):
                    copy.multiscale = layer.multiscale
                copy.data = layer.data

        return mirror


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


class OrthogonalViewsWidget(DockWidget):
    """Dock widget showing the two planes orthogonal to the main canvas's, linked by a point.

    Constructed as every :class:`~napari_bigvol._qt.base.DockWidget`, from the viewer
    (and a Qt parent); its :attr:`viewer` is the main viewer.

    Attributes
    ----------
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
        super().__init__(napari_viewer, parent)
        dims = self.viewer.dims
        self.model = OrthoViews(dims.order, dims.range, dims.point)
        self._closed = False
        self.panels = tuple(_SidePanel(f"orthogonal view {n}", self.model) for n in (1, 2))
        self._layers = _LayerMirror(self.panels)
        self._build_layout()
        # The main canvas is reached through napari's private _qt_viewer: napari has no
        # public handle on it, and the crosshair is drawn there as in the side views.
        self._main_crosshair = _Crosshair(self.viewer.window._qt_viewer.canvas)
        self._connect_model()
        self._connect_viewer()

        self._center_on_main_view()
        self._apply_axes()
        for index, layer in enumerate(self.viewer.layers):
            self._layers.add(layer, index)
        self._on_axis_labels()
        # Release the side canvases when the main window closes (napari closes its own
        # canvas then), or when the dock is deleted first.
        self._close_filter = _CloseFilter(self.close_views)
        self.viewer.window._qt_window.installEventFilter(self._close_filter)

    @property
    def loaded(self) -> bool:
        """Whether both side views show their planes (none is being read)."""
        return all(panel.loaded for panel in self.panels)

    def sizeHint(self) -> QSize:
        # Narrower than the main canvas: napari gives a dock its size hint.
        return QSize(420, 800)

    def showEvent(self, event: Any) -> None:
        """Keep the dock from floating once napari has put this widget in one."""
        super().showEvent(event)
        dock = self.parent()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parent()
        if dock is not None:
            _keep_docked(dock)
            dock.dockLocationChanged.connect(lambda *_: _keep_docked(dock))

    def _build_layout(self) -> None:
        self.crosshair_check = QCheckBox("Crosshair")
        self.crosshair_check.setChecked(self.model.crosshair_visible)
        self.crosshair_check.setToolTip("Draw the current point as a crosshair in every view")
        self.note = QLabel(NEEDS_3D)
        self.note.setWordWrap(True)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)  # never squeezed to nothing by other docks
        for panel in self.panels:
            splitter.addWidget(panel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.crosshair_check)
        layout.addWidget(self.note)
        layout.addWidget(splitter, stretch=1)
        self.setMinimumWidth(280)

    # -- wiring ---------------------------------------------------------------------
    def _connect_model(self) -> None:
        self.crosshair_check.toggled.connect(self._on_crosshair_check)
        self.model.point_changed.connect(self._on_model_point)
        self.model.axes_changed.connect(self._apply_axes)
        self.model.crosshair_changed.connect(self._draw)

    def _connect_viewer(self) -> None:
        layers, dims = self.viewer.layers, self.viewer.dims
        self._connect(layers.events.inserted, self._on_layer_inserted)
        self._connect(layers.events.removed, self._on_layer_removed)
        self._connect(layers.events.moved, self._sync_layer_order)
        self._connect(dims.events.point, self._on_main_point)
        self._connect(dims.events.order, self._on_main_dims)
        self._connect(dims.events.range, self._on_main_dims)
        self._connect(dims.events.ndisplay, self._draw)
        self._connect(dims.events.axis_labels, self._on_axis_labels)
        self._connect(self.viewer.scene.camera.events.orientation, self._apply_orientation)
        self._connect(self.viewer.mouse_drag_callbacks, self._on_main_drag)

    def close_views(self) -> None:
        """Disconnect from the main viewer and close the side canvases; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.disconnect_viewer()
        self._layers.close()
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
    def _on_layer_inserted(self, event: Any) -> None:
        self._layers.add(event.value, event.index)
        self._apply_axes()

    def _on_layer_removed(self, event: Any) -> None:
        self._layers.remove(event.value)
        self._apply_axes()

    def _sync_layer_order(self, event: Any = None) -> None:
        for panel in self.panels:
            panel.sync_order(self.viewer.layers)

    # -- dims and cameras ---------------------------------------------------------------
    def _apply_axes(self, event: Any = None) -> None:
        """Show each side view's plane (after a new order or dimensionality)."""
        views = self.model.views
        self.note.setVisible(not views)
        for panel, plane in zip(self.panels, views or (None, None), strict=True):
            panel.show_plane(plane)
        self._apply_orientation()
        self._draw()

    def _apply_orientation(self, event: Any = None) -> None:
        orientation = side_camera_orientation(self.viewer.scene.camera.orientation)
        for panel in self.panels:
            panel.orient(orientation)

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

    def _on_model_point(self, point: tuple[float, ...]) -> None:
        main = self.viewer.dims
        # Left alone while it shows the same voxels (napari's initial point can sit
        # between samples): napari would re-read the main plane for a new point.
        if main.ndim != len(point) or self.model.snap(main.point) != point:
            _push_point(main, point)
        for panel in self.panels:
            panel.push_point()
        self._draw()

    def _on_axis_labels(self, event: Any = None) -> None:
        labels = tuple(self.viewer.dims.axis_labels)
        for panel in self.panels:
            panel.set_axis_labels(labels)
        self._draw()

    # -- clicks and drawing ---------------------------------------------------------------
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
        yield from _click(self.model, main_view(self.viewer.dims.order), event)

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
            panel.draw(show, labels, units)


def _click(model: OrthoViews, plane: PlaneView, event: Any) -> Iterator[None]:
    """Move ``model``'s point to where a mouse press on ``plane`` is released, if a click.

    A napari mouse-drag callback: a drag (which pans) leaves the point alone.
    """
    press, position = tuple(event.pos), tuple(event.position)
    yield
    while event.type == "mouse_move":
        yield
    if is_click(press, event.pos):
        model.click(plane, position)


def _keep_docked(dock: QDockWidget) -> None:
    """Take away a dock's float: floating reparents the side canvases' GL widgets.

    Qt then recreates their OpenGL context under vispy's feet; with Mesa it aborts the
    whole process (vispy issue 1759; pymmcore-gui and ndv also forbid floating their
    vispy canvases). napari's own title bar floats the dock from its float button without
    asking the dock's features, so the button is hidden as well; napari rebuilds the title
    bar when the dock moves, hence the second call from ``dockLocationChanged``.
    """
    floatable = QDockWidget.DockWidgetFeature.DockWidgetFloatable
    dock.setFeatures(dock.features() & ~floatable)
    float_button = getattr(dock.titleBarWidget(), "float_button", None)
    if float_button is not None:
        float_button.hide()


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
