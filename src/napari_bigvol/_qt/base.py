"""The base class of napari-bigvol's dock widgets: viewer events wired once.

Modelled on napari-matplotlib's ``BaseNapariMPLWidget``. :class:`LayerWidget` owns the
controls every widget shares (a layer chooser, a scope choice, a note and a message
line, and a :class:`~napari_bigvol._qt._tasks.TaskPanel` with the progress bar and
Cancel), connects to the viewer's events once, and calls hooks that subclasses
override:

``build()``
    Add the widget's own controls (to :attr:`~LayerWidget.form` and
    :attr:`~LayerWidget.body`) and its model. Called once, before any other hook.
``on_update_layers()``
    The chosen layer changed (selection, insertion, removal or rename).
``on_slice_change()``
    The displayed slice changed (dims step, order, 2-D/3-D display, or the level of a
    pyramid napari shows after a zoom). By default it asks for a :meth:`~LayerWidget.draw`
    when the scope is the visible slice.
``on_data_change(layer)``
    The chosen layer's data were replaced (caches keyed on the layer are stale).
``on_theme_change()``
    The viewer's theme changed.
``draw()``
    Recompute what the widget shows. :meth:`~LayerWidget.request_draw` coalesces bursts
    of events (scrolling fires many) into one call on the next turn of the event loop.

State and decisions live in each widget's model (:mod:`napari_bigvol._models`); the Qt
classes lay out controls and forward events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from napari.layers import Image, Layer
from napari.utils.notifications import show_error
from napari.utils.theme import get_theme
from qtpy.QtCore import QEvent, QObject, QSize, Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QLabel,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_bigvol._models import _layers
from napari_bigvol._models._layers import Scope
from napari_bigvol._napari.scope import ScopedData, displayed_values, scoped_data
from napari_bigvol._qt._runner import BackgroundTask, Computation, error_message
from napari_bigvol._qt._tasks import TaskPanel
from napari_bigvol.errors import OperationError

if TYPE_CHECKING:
    import napari

T = TypeVar("T")
#: Height (pixels) below which a dock scrolls its controls rather than squeezing them.
MIN_HEIGHT = 160


class DockWidget(QWidget):
    """A dock widget that follows one napari viewer and lets go of it when closed.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the widget is docked in.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    viewer : napari.Viewer
        The viewer itself, not the proxy napari hands plugins.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # napari hands plugins a PublicOnlyProxy, which wraps every layer in a new proxy on
        # each access: identity checks and the per-layer weak caches need the real objects.
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self._connections: list[tuple[Any, Callable]] = []
        # Let go of the viewer when Qt deletes the widget; the callable holds no
        # reference to self, which may already be half-destroyed then.
        self.destroyed.connect(_disconnect_all(self._connections))

    def _connect(self, emitter: Any, callback: Callable) -> None:
        """Connect ``callback`` to a viewer event, or add it to a napari callback list."""
        if isinstance(emitter, list):  # such as viewer.mouse_drag_callbacks
            emitter.append(callback)
        else:
            emitter.connect(callback)
        self._connections.append((emitter, callback))

    def disconnect_viewer(self) -> None:
        """Undo every :meth:`_connect`; calling it again does nothing."""
        _disconnect_all(self._connections)()


class ViewerFollower(DockWidget):
    """The viewer events every dock widget follows: layer choice, slice, data.

    Keeps :attr:`layer_combo` in step with the viewer's layers and selection, watches the
    chosen layer's data and displayed pyramid level, and calls the hooks
    ``on_update_layers``, ``on_data_change``, ``on_slice_change``, ``watch_layer`` and
    ``unwatch_layer`` that :class:`LayerWidget` defines.
    """

    layer_types: tuple[type[Layer], ...] = (Image,)
    layer_combo: QComboBox

    def watch_layer(self, layer: Layer) -> None:
        """Connect to events of the newly chosen ``layer`` (subclasses extend)."""

    def unwatch_layer(self, layer: Layer) -> None:
        """Disconnect what :meth:`watch_layer` connected on ``layer``."""

    # ---- state ----

    def on_data_change(self, layer: Layer) -> None:
        """React to new data in the chosen layer; by default redraw."""
        self.request_draw()

    @property
    def layer(self) -> Layer | None:
        """The chosen layer, or None when there is none."""
        name = self.layer_combo.currentText()
        layer = self.viewer.layers[name] if name and name in self.viewer.layers else None
        return layer if isinstance(layer, self.layer_types) else None

    @layer.setter
    def layer(self, layer: Layer) -> None:
        self.layer_combo.setCurrentText(layer.name)

    @contextmanager
    def keeping_choice(self) -> Iterator[None]:
        """Add output layers inside this block without moving the layer chooser.

        napari selects every layer it adds; the widget should keep working on its source.
        """
        chosen = self.layer
        self._keep_choice = True
        try:
            yield
        finally:
            self._keep_choice = False
            if chosen is not None and chosen in self.viewer.layers:
                self.viewer.layers.selection.active = chosen

    def theme_colors(self) -> dict[str, str]:
        """Return the napari theme's colours as hex strings (``background``, ``text``...)."""
        theme = get_theme(self.viewer.theme).model_dump()
        return {key: value.as_hex() for key, value in theme.items() if hasattr(value, "as_hex")}

    # ---- viewer events ----------------------------------------------------------------------

    def _fill_layer_combo(self, event: Any = None, prefer: Layer | None = None) -> None:
        if not isinstance(prefer, self.layer_types):
            # Keep the layer already chosen, under its current (perhaps new) name.
            prefer = self._watched_layer if self._watched_layer in self.viewer.layers else None
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, self.layer_types)]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names[::-1])  # top of the layer list first, as in napari
        if prefer is not None and prefer.name in names:
            self.layer_combo.setCurrentText(prefer.name)
        self.layer_combo.blockSignals(False)
        self._on_layer_chosen()

    def _on_layer_removed(self, event: Any) -> None:
        removed = event.value
        self.task_panel.cancel_for(
            removed, f"cancelled because layer '{removed.name}' was removed"
        )
        self._fill_layer_combo()

    def _on_active_layer(self, event: Any) -> None:
        if not self._keep_choice and isinstance(event.value, self.layer_types):
            self.layer_combo.setCurrentText(event.value.name)

    def _on_layer_chosen(self, index: int | None = None) -> None:
        layer = self.layer
        if layer is self._watched_layer:
            return
        self._watch_layer(layer)
        self.show_message("")  # the last outcome was about another layer
        self.on_update_layers()

    def _watch_layer(self, layer: Layer | None) -> None:
        old, self._watched_layer = self._watched_layer, layer
        if old is not None:
            old.events.data.disconnect(self._on_layer_data)
            old.events.name.disconnect(self._fill_layer_combo)
            old.events.set_data.disconnect(self._on_displayed_data)
            self.unwatch_layer(old)
        if layer is not None:
            layer.events.data.connect(self._on_layer_data)
            layer.events.name.connect(self._fill_layer_combo)
            layer.events.set_data.connect(self._on_displayed_data)
            self._displayed_level = layer.data_level if layer.multiscale else None
            self.watch_layer(layer)

    def _on_layer_data(self, event: Any = None) -> None:
        self._plane_cache = None
        if self._watched_layer is not None:
            self.on_data_change(self._watched_layer)

    def _on_displayed_data(self, event: Any = None) -> None:
        # Zooming makes napari show another level of a pyramid, without a dims event.
        layer = self._watched_layer
        if layer is not None and layer.multiscale and layer.data_level != self._displayed_level:
            self._displayed_level = layer.data_level
            self.on_slice_change()

    def _on_dims_change(self, event: Any = None) -> None:
        self.on_slice_change()

    def closeEvent(self, event: Any) -> None:
        """Cancel background work and let go of the viewer when the dock closes."""
        self.cancel_tasks()
        self._watch_layer(None)
        self.disconnect_viewer()
        super().closeEvent(event)


class LayerWidget(ViewerFollower):
    """Dock widget base: layer chooser, scope choice, messages and background tasks.

    Constructed as every :class:`DockWidget`, from the viewer (and a Qt parent).

    Attributes
    ----------
    layer_combo, scope_combo : QComboBox
        The layers the widget can work on (``layer_types``), by name; the
        :class:`~napari_bigvol._models._layers.Scope` (item data).
    form : QFormLayout
        Where subclasses add their controls, below the layer and scope rows.
    body : QVBoxLayout
        Where subclasses add plots and results, below the form.
    note, message : QLabel
        What the display shows or why it is empty (set by each :meth:`draw`); the
        outcome of the last action.
    task_panel : TaskPanel
        Progress bar and Cancel button of this widget's background tasks.

    Examples
    --------
    >>> class NameWidget(LayerWidget):  # doctest: +SKIP
    ...     def draw(self):
    ...         self.show_message(self.layer.name if self.layer else "no layer")
    """

    #: Layer classes offered in the layer chooser.
    layer_types: tuple[type[Layer], ...] = (Image,)
    #: Title of the widget's dialogs (the dock's name in the Plugins menu).
    title = "napari-bigvol"

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        self._keep_choice = False
        self._watched_layer: Layer | None = None
        self._displayed_level: int | None = None  # of a multiscale chosen layer
        self._plane_cache: tuple[tuple, np.ndarray] | None = None
        self._build_common()
        self.build()
        self._draw_timer = _next_turn_timer(self, self._draw_safely)
        self._connect_viewer()
        self._fill_layer_combo(prefer=self.viewer.layers.selection.active)
        if self._watched_layer is None:
            self.on_update_layers()  # no layer yet: still show that

    def _build_common(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The layer this tool works on")
        self.scope_combo = QComboBox()
        for scope in Scope:
            self.scope_combo.addItem(scope.label, scope)
        self.scope_combo.setToolTip(
            "Visible slice: the plane napari displays now.\n"
            "Whole volume: all of the layer, computed chunk by chunk in the background."
        )
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.addRow("Layer", self.layer_combo)
        self.form.addRow("Scope", self.scope_combo)
        self.note, self.message = _message_label(), _message_label()
        self.task_panel = TaskPanel()
        self.task_panel.message.connect(self._on_task_message)
        content = QWidget()
        inner = QVBoxLayout(content)
        inner.addLayout(self.form)
        self.body = QVBoxLayout()
        inner.addLayout(self.body)
        for widget in (self.note, self.message, self.task_panel):
            inner.addWidget(widget)
        inner.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(_DockScroll(content))
        # No taller than the controls: spare height goes to docks with a plot.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    def _connect_viewer(self) -> None:
        layers, dims = self.viewer.layers, self.viewer.dims
        self._connect(layers.events.inserted, self._fill_layer_combo)
        self._connect(layers.events.removed, self._on_layer_removed)
        self._connect(layers.events.moved, self._fill_layer_combo)
        self._connect(layers.selection.events.active, self._on_active_layer)
        for event in (dims.events.current_step, dims.events.order, dims.events.ndisplay):
            self._connect(event, self._on_dims_change)
        self._connect(self.viewer.events.theme, lambda event=None: self.on_theme_change())
        self.layer_combo.currentIndexChanged.connect(self._on_layer_chosen)
        self.scope_combo.currentIndexChanged.connect(lambda index: self.on_scope_change())

    # ---- hooks for subclasses -------------------------------------------------------------

    def build(self) -> None:
        """Add the widget's controls and model (called once, before the other hooks)."""

    def on_update_layers(self) -> None:
        """React to a change of the chosen layer; by default redraw."""
        self.request_draw()

    def on_slice_change(self) -> None:
        """React to a change of the displayed slice; by default redraw in slice scope."""
        if self.scope is Scope.SLICE:
            self.request_draw()

    def on_scope_change(self) -> None:
        """React to a change of the scope choice; by default redraw."""
        self.request_draw()

    def on_theme_change(self) -> None:
        """React to a change of the viewer's theme."""

    def draw(self) -> None:
        """Recompute what the widget shows for the chosen layer and scope."""

    @property
    def scope(self) -> Scope:
        """The scope the user chose."""
        return self.scope_combo.currentData()

    @scope.setter
    def scope(self, scope: Scope) -> None:
        self.scope_combo.setCurrentIndex(self.scope_combo.findData(scope))

    @property
    def tasks(self) -> list[BackgroundTask]:
        """Background tasks still running."""
        return self.task_panel.tasks

    @property
    def cancel_button(self) -> Any:
        """The Cancel button of the background tasks."""
        return self.task_panel.cancel_button

    def require_layer(self, *, numeric: bool = True) -> Layer:
        """Return the chosen layer, or raise a message-ready :class:`OperationError`."""
        kinds = " or ".join(t.__name__.lower() for t in self.layer_types)
        return _layers.require_layer(self.layer, kinds, numeric=numeric)

    def effective_scope(self, layer: Layer) -> Scope:
        """Return the scope to use for ``layer``: a 2-D layer's whole volume is its only slice."""
        return _layers.effective_scope(self.scope, layer)

    def scope_note(self, layer: Layer) -> str:
        """Say so when the whole-volume scope falls back to the slice of a 2-D layer."""
        return _layers.scope_note(self.scope, layer)

    def scoped(self, layer: Layer) -> ScopedData:
        """Return the lazy input for ``layer`` in the effective scope."""
        return scoped_data(layer, self.viewer, self.effective_scope(layer))

    def plane_values(self, layer: Layer, plane: ScopedData) -> np.ndarray:
        """Return the visible slice's values: those napari displays, or read once per plane.

        napari has just read the plane it draws; reading it again would double the files
        a step opens (:func:`~napari_bigvol._napari.scope.displayed_values`).
        """
        shown = displayed_values(layer, plane)
        if shown is not None:
            return shown
        key = (id(layer), id(layer.data), repr(plane.index), plane.level)
        if self._plane_cache is None or self._plane_cache[0] != key:
            self._plane_cache = (key, np.asarray(plane.data))
        return self._plane_cache[1]

    # ---- messages, redraws and background work -----------------------------------------

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show the outcome of an action (or its error) on the message line.

        An error the note already shows is not repeated.
        """
        self._set_label(self.message, "" if error and text == self.note.text() else text, error)

    def show_note(self, text: str, *, error: bool = False) -> None:
        """Show what the display means (or why it is empty); each :meth:`draw` sets it."""
        self._set_label(self.note, text, error)
        if text and text == self.message.text():
            self._set_label(self.message, "", False)

    def _set_label(self, label: QLabel, text: str, error: bool) -> None:
        # The theme's warning colour reads on dark and light backgrounds alike.
        colour = self.theme_colors()["warning"] if error else ""
        label.setStyleSheet(f"color: {colour};" if colour else "")
        label.setText(text)
        label.setVisible(bool(text))

    def _on_task_message(self, text: str, error: bool) -> None:
        self.show_message(text, error=error)
        if error:
            show_error(text)

    def request_draw(self, *args: Any) -> None:
        """Ask for :meth:`draw` on the next turn of the event loop (bursts coalesce)."""
        self._draw_timer.start()

    def _draw_safely(self) -> None:
        try:
            self.draw()
        except OperationError as exc:
            self.show_note(str(exc), error=True)
        except Exception as exc:  # a Qt slot: an escaping error would abort napari
            text = error_message(f"{type(self).__name__} redraw", exc)
            self.show_note(text, error=True)
            show_error(text)

    def run_task(
        self,
        compute: Computation[T],
        *,
        description: str,
        on_done: Callable[[T], None],
        layer: Layer | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> BackgroundTask[T]:
        """Run ``compute(progress, should_stop)`` in a worker, tied to this widget and ``layer``.

        Progress shows in the dock's bar (and napari's activity dock); ``on_done(result)``
        runs on the GUI thread. Removing ``layer`` cancels the task, and a result for a
        removed layer is discarded with a message. ``on_cancelled`` follows a cancel.
        """
        self.show_message("")
        return self.task_panel.run(
            compute,
            description=description,
            on_done=on_done,
            layer=layer,
            is_current=lambda layer: layer in self.viewer.layers,
            on_cancelled=on_cancelled,
        )

    def cancel_tasks(self) -> None:
        """Cancel every background task of this widget."""
        self.task_panel.cancel_all()

    def confirm(self, question: str) -> bool:
        """Ask ``question`` in a Yes/No dialog (No by default); return True for Yes."""
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, self.title, question, buttons.Yes | buttons.No, buttons.No
        )
        return answer == buttons.Yes


class _DockScroll(QScrollArea):
    """Scrolls a dock's controls instead of growing the window past the screen.

    It asks for the controls' full size, but accepts little height: with three docks on
    a 1200-pixel screen each scrolls rather than pushing the window off the screen.
    """

    def __init__(self, content: QWidget) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(content)
        content.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Pass the controls' new size needs on: a scroll area would keep them to itself."""
        if event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def sizeHint(self) -> QSize:
        """Ask for the room the controls need: all of it when the screen has it."""
        return self.widget().sizeHint() + QSize(self._bar_width(), 0)

    def minimumSizeHint(self) -> QSize:
        """Keep the full width but little height: below it, the controls scroll."""
        hint = self.widget().minimumSizeHint()
        return QSize(hint.width() + self._bar_width(), min(hint.height(), MIN_HEIGHT))

    def _bar_width(self) -> int:
        return self.verticalScrollBar().sizeHint().width()


def _next_turn_timer(parent: QObject, slot: Callable[[], None]) -> QTimer:
    """Return a timer that calls ``slot`` once on the next turn of the event loop.

    Starting it again before then changes nothing: a burst of events makes one call.
    """
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(0)
    timer.timeout.connect(slot)
    return timer


def _message_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
    label.hide()
    return label


class _disconnect_all:
    """Callable that disconnects the recorded (emitter, callback) pairs once."""

    def __init__(self, connections: list[tuple[Any, Callable]]) -> None:
        self.connections = connections

    def __call__(self, *args: Any) -> None:
        while self.connections:
            emitter, callback = self.connections.pop()
            if not isinstance(emitter, list):
                emitter.disconnect(callback)
            elif callback in emitter:
                emitter.remove(callback)
