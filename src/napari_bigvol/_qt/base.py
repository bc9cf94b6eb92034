"""The base class of napari-bigvol's dock widgets: viewer events wired once.

Modelled on napari-matplotlib's ``BaseNapariMPLWidget``. :class:`LayerWidget` owns the
controls every widget shares (a layer chooser, a scope choice, a message line and a
Cancel button for background work), connects to the viewer's events once, and calls
hooks that subclasses override:

``on_update_layers()``
    The chosen layer changed (selection, insertion, removal or rename).
``on_slice_change()``
    The displayed slice changed (dims step, order, 2-D/3-D display, or the level of a
    pyramid napari shows after a zoom). By default it
    asks for a :meth:`~LayerWidget.draw` when the scope is the visible slice.
``on_data_change(layer)``
    The chosen layer's data were replaced (caches keyed on the layer are stale).
``on_theme_change()``
    The viewer's theme changed.
``draw()``
    Recompute what the widget shows. :meth:`~LayerWidget.request_draw` coalesces bursts
    of events (scrolling fires many) into one call on the next turn of the event loop.

Subclasses add their own rows to :attr:`~LayerWidget.form`, call
:meth:`~LayerWidget.ready` at the end of their ``__init__`` and start whole-volume work
with :meth:`~LayerWidget.run_task`, which ties the task to a layer: removing the layer
cancels it, and a result for a layer that is gone is discarded with a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from napari.layers import Image, Layer
from napari.utils.notifications import show_error
from napari.utils.theme import get_theme
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_bigvol._models._layers import Scope
from napari_bigvol._napari.scope import ScopedData, displayed_values, scoped_data
from napari_bigvol._qt._runner import BackgroundTask, Computation, error_message, run_in_background
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.compute import require_numeric

if TYPE_CHECKING:
    import napari

T = TypeVar("T")


class LayerWidget(QWidget):
    """Dock widget base: layer chooser, scope choice, messages and background tasks.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the widget is docked in.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    viewer : napari.Viewer
        The viewer.
    layer_combo : QComboBox
        The layers the widget can work on (``layer_types``), by name.
    scope_combo : QComboBox
        ``Scope.SLICE`` or ``Scope.VOLUME`` (item data are :class:`Scope` members).
    form : QFormLayout
        Where subclasses add their controls, below the layer and scope rows.
    note : QLabel
        What the display shows or why it is empty, set by each :meth:`draw`.
    message : QLabel
        The outcome of the last action: results, bad input, failures.
    cancel_button : QPushButton
        Cancels this widget's background tasks; enabled only while one runs.
    tasks : list of BackgroundTask
        Background tasks still running.

    Examples
    --------
    >>> class NameWidget(LayerWidget):  # doctest: +SKIP
    ...     def __init__(self, napari_viewer):
    ...         super().__init__(napari_viewer)
    ...         self.ready()
    ...
    ...     def draw(self):
    ...         self.show_message(self.layer.name if self.layer else "no layer")
    """

    #: Layer classes offered in the layer chooser.
    layer_types: tuple[type[Layer], ...] = (Image,)

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ready = False
        self._keep_choice = False
        # napari hands plugins a PublicOnlyProxy, which wraps every layer in a new proxy on
        # each access: identity checks and the per-layer weak caches need the real objects.
        # Only public attributes are used here either way.
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.tasks: list[BackgroundTask] = []
        self._task_layers: dict[int, Layer] = {}
        self._watched_layer: Layer | None = None
        self._displayed_level: int | None = None  # of a multiscale chosen layer
        self._connections: list[tuple[Any, Callable]] = []
        self._plane_cache: tuple[tuple, np.ndarray] | None = None

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

        self.note = _message_label()
        self.message = _message_label()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running whole-volume computation")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.cancel_button.clicked.connect(self.cancel_tasks)

        self.footer = QHBoxLayout()
        self.footer.addWidget(self.message, stretch=1)
        self.footer.addWidget(self.cancel_button, alignment=Qt.AlignmentFlag.AlignRight)
        outer = QVBoxLayout(self)
        outer.addLayout(self.form)
        self.body = QVBoxLayout()
        outer.addLayout(self.body)
        outer.addWidget(self.note)
        outer.addLayout(self.footer)
        outer.addStretch(1)

        self._draw_timer = QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.setInterval(0)
        self._draw_timer.timeout.connect(self._draw_safely)

        self._connect(self.viewer.layers.events.inserted, self._on_layers_changed)
        self._connect(self.viewer.layers.events.removed, self._on_layer_removed)
        self._connect(self.viewer.layers.events.moved, self._on_layers_changed)
        self._connect(self.viewer.layers.selection.events.active, self._on_active_layer)
        self._connect(self.viewer.dims.events.current_step, self._on_dims_change)
        self._connect(self.viewer.dims.events.order, self._on_dims_change)
        self._connect(self.viewer.dims.events.ndisplay, self._on_dims_change)
        self._connect(self.viewer.events.theme, self._on_theme_event)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_chosen)
        self.scope_combo.currentIndexChanged.connect(self._on_scope_chosen)
        # Disconnect from the viewer when Qt deletes the widget; the callable holds no
        # reference to self, which may already be half-destroyed then.
        self.destroyed.connect(_disconnect_all(self._connections))
        self._fill_layer_combo(prefer=self.viewer.layers.selection.active)
        # Subclasses that do not call ready() start on the next turn of the event loop.
        # A child timer: it dies with the widget, so it never calls into a deleted one.
        self._start_timer = QTimer(self)
        self._start_timer.setSingleShot(True)
        self._start_timer.timeout.connect(self._start_if_waiting)
        self._start_timer.start(0)

    def ready(self) -> None:
        """Start following the viewer; subclasses call this at the end of ``__init__``.

        Hooks are only called from here on, so they can use every attribute the
        subclass created. Without this call the widget starts on the next turn of the
        event loop. Calling it again does nothing.
        """
        if self._ready:
            return
        self._ready = True
        self._fill_layer_combo(prefer=self.viewer.layers.selection.active)
        if self._watched_layer is None:
            self.on_update_layers()  # no layer yet: still show that

    def _start_if_waiting(self) -> None:
        if not self._ready:
            self.ready()

    # ---- hooks for subclasses -------------------------------------------------------------

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

    def on_data_change(self, layer: Layer) -> None:
        """React to new data in the chosen layer; by default redraw."""
        self.request_draw()

    def on_theme_change(self) -> None:
        """React to a change of the viewer's theme."""

    def draw(self) -> None:
        """Recompute what the widget shows for the chosen layer and scope."""

    # ---- state ----

    @property
    def layer(self) -> Layer | None:
        """The chosen layer, or None when there is none."""
        name = self.layer_combo.currentText()
        if name and name in self.viewer.layers:
            layer = self.viewer.layers[name]
            if isinstance(layer, self.layer_types):
                return layer
        return None

    @layer.setter
    def layer(self, layer: Layer) -> None:
        self.layer_combo.setCurrentText(layer.name)

    @property
    def scope(self) -> Scope:
        """The scope the user chose."""
        return self.scope_combo.currentData()

    @scope.setter
    def scope(self, scope: Scope) -> None:
        self.scope_combo.setCurrentIndex(self.scope_combo.findData(scope))

    def require_layer(self, *, numeric: bool = True) -> Layer:
        """Return the chosen layer, or raise a message-ready error.

        Parameters
        ----------
        numeric : bool
            Also require a real (integer, float or boolean) dtype.

        Returns
        -------
        napari.layers.Layer
            The chosen layer.

        Raises
        ------
        OperationError
            If no suitable layer is chosen, or its dtype is not numeric.
        """
        layer = self.layer
        if layer is None:
            kinds = " or ".join(t.__name__.lower() for t in self.layer_types)
            raise OperationError(f"No {kinds} layer selected: add or select one first.")
        if numeric:
            require_numeric(layer.dtype, f"layer '{layer.name}'")
        return layer

    def effective_scope(self, layer: Layer) -> Scope:
        """Return the scope to use for ``layer``: a 2-D layer's whole volume is its only slice."""
        if self.scope is Scope.VOLUME and layer.ndim <= 2:
            return Scope.SLICE
        return self.scope

    def scope_note(self, layer: Layer) -> str:
        """Say so when the whole-volume scope falls back to the slice of a 2-D layer."""
        if self.scope is Scope.VOLUME and self.effective_scope(layer) is Scope.SLICE:
            return f"Layer '{layer.name}' is 2-D: its whole volume is the visible slice."
        return ""

    def scoped(self, layer: Layer) -> ScopedData:
        """Return the lazy input for ``layer`` in the effective scope (:meth:`effective_scope`)."""
        return scoped_data(layer, self.viewer, self.effective_scope(layer))

    def plane_values(self, layer: Layer, plane: ScopedData) -> np.ndarray:
        """Return the visible slice's values: those napari displays, or read once per plane.

        napari has just read the plane it draws; reading it again would double the
        files a step opens (:func:`~napari_bigvol._napari.scope.displayed_values`).
        """
        shown = displayed_values(layer, plane)
        if shown is not None:
            return shown
        key = (id(layer), id(layer.data), repr(plane.index), plane.level)
        if self._plane_cache is None or self._plane_cache[0] != key:
            self._plane_cache = (key, np.asarray(plane.data))
        return self._plane_cache[1]

    def theme_colors(self) -> dict[str, str]:
        """Return the napari theme's colours as hex strings (``background``, ``text``...)."""
        theme = get_theme(self.viewer.theme)
        return {
            key: value.as_hex()
            for key, value in theme.model_dump().items()
            if hasattr(value, "as_hex")
        }

    # ---- messages and redraws -------------------------------------------------------------

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show the outcome of an action (or its error) on the message line."""
        self._set_label(self.message, text, error)

    def show_note(self, text: str, *, error: bool = False) -> None:
        """Show what the current display means (or why it is empty) on the note line.

        :meth:`draw` sets the note each time, so a note never outlives its cause.
        """
        self._set_label(self.note, text, error)

    def _set_label(self, label: QLabel, text: str, error: bool) -> None:
        # The theme's warning colour reads on dark and light backgrounds alike.
        colour = self.theme_colors()["warning"] if error else ""
        label.setStyleSheet(f"color: {colour};" if colour else "")
        label.setText(text)
        label.setVisible(bool(text))

    def request_draw(self) -> None:
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

    # ---- background work ------------------------------------------------------------------

    def run_task(
        self,
        compute: Computation[T],
        *,
        description: str,
        on_done: Callable[[T], None],
        layer: Layer | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> BackgroundTask[T]:
        """Run ``compute`` in a napari thread worker, tied to this widget and ``layer``.

        Parameters
        ----------
        compute : callable
            ``compute(progress, should_stop)``, as for
            :func:`~napari_bigvol._qt._runner.run_in_background`.
        description : str
            Shown on the progress bar and in messages.
        on_done : callable
            ``on_done(result)`` on the GUI thread after success.
        layer : napari.layers.Layer, optional
            The layer the result is for. If it is removed from the viewer, the task is
            cancelled; a result arriving for a removed layer is discarded.
        on_cancelled : callable, optional
            Called after a cancel, after the message line says so.

        Returns
        -------
        BackgroundTask
            The running task.
        """

        def deliver(result: T) -> None:
            if layer is not None and layer not in self.viewer.layers:
                raise OperationError(
                    f"layer '{layer.name}' was removed while this ran; result discarded."
                )
            self.show_message(f"{description}: done.")
            on_done(result)

        def cancelled() -> None:
            self.show_message(f"{description}: {task.cancel_reason}.")
            if on_cancelled is not None:
                on_cancelled()

        def failed(exc: Exception) -> None:
            text = error_message(description, exc)
            self.show_message(text, error=True)
            show_error(text)

        self.show_message(f"{description}: running...")
        task = run_in_background(
            compute,
            description=description,
            on_done=deliver,
            on_error=failed,
            on_cancelled=cancelled,
            parent=self,
        )
        self.tasks.append(task)
        if layer is not None:
            self._task_layers[id(task)] = layer
        task.finished.connect(lambda: self._forget_task(task))
        self.cancel_button.setEnabled(True)
        return task

    def cancel_tasks(self) -> None:
        """Cancel every background task of this widget."""
        for task in self.tasks:
            task.cancel()

    def _forget_task(self, task: BackgroundTask) -> None:
        if task in self.tasks:
            self.tasks.remove(task)
        self._task_layers.pop(id(task), None)
        self.cancel_button.setEnabled(bool(self.tasks))

    # ---- viewer events ----------------------------------------------------------------------

    def _connect(self, emitter: Any, callback: Callable) -> None:
        emitter.connect(callback)
        self._connections.append((emitter, callback))

    def _fill_layer_combo(self, prefer: Layer | None = None) -> None:
        if not isinstance(prefer, self.layer_types):
            # Keep the layer already chosen, under its current (perhaps new) name.
            prefer = self._watched_layer if self._watched_layer in self.viewer.layers else None
        current = prefer.name if prefer is not None else None
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, self.layer_types)]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names[::-1])  # top of the layer list first, as in napari
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self._on_layer_chosen()

    def _on_layers_changed(self, event: Any = None) -> None:
        self._fill_layer_combo()

    def _on_layer_removed(self, event: Any) -> None:
        removed = event.value
        for task in self.tasks:
            if self._task_layers.get(id(task)) is removed:
                task.cancel(f"cancelled because layer '{removed.name}' was removed")
        self._fill_layer_combo()

    @contextmanager
    def keeping_choice(self) -> Iterator[None]:
        """Add output layers inside this block without moving the layer chooser.

        napari selects every layer it adds; the widget should keep working on its source.

        Examples
        --------
        >>> with widget.keeping_choice():  # doctest: +SKIP
        ...     widget.viewer.add_labels(mask, name="mask")
        """
        chosen = self.layer
        self._keep_choice = True
        try:
            yield
        finally:
            self._keep_choice = False
            if chosen is not None and chosen in self.viewer.layers:
                self.viewer.layers.selection.active = chosen

    def _on_active_layer(self, event: Any) -> None:
        if self._keep_choice:
            return
        if isinstance(event.value, self.layer_types):
            self.layer_combo.setCurrentText(event.value.name)

    def _on_layer_chosen(self, index: int | None = None) -> None:
        layer = self.layer
        if not self._ready or layer is self._watched_layer:
            return
        self._watch_layer(layer)
        self.on_update_layers()

    def _watch_layer(self, layer: Layer | None) -> None:
        old = self._watched_layer
        if old is not None:
            old.events.data.disconnect(self._on_layer_data)
            old.events.name.disconnect(self._on_layers_changed)
            old.events.set_data.disconnect(self._on_displayed_data)
            self.unwatch_layer(old)
        self._watched_layer = layer
        if layer is not None:
            layer.events.data.connect(self._on_layer_data)
            layer.events.name.connect(self._on_layers_changed)
            layer.events.set_data.connect(self._on_displayed_data)
            self._displayed_level = layer.data_level if layer.multiscale else None
            self.watch_layer(layer)

    def watch_layer(self, layer: Layer) -> None:
        """Connect to events of the newly chosen ``layer`` (subclasses extend)."""

    def unwatch_layer(self, layer: Layer) -> None:
        """Disconnect what :meth:`watch_layer` connected on ``layer``."""

    def _on_layer_data(self, event: Any = None) -> None:
        if self._watched_layer is not None:
            self.on_data_change(self._watched_layer)

    def _on_displayed_data(self, event: Any = None) -> None:
        # Zooming makes napari show another level of a pyramid, without a dims event.
        layer = self._watched_layer
        if (
            self._ready
            and layer is not None
            and layer.multiscale
            and layer.data_level != self._displayed_level
        ):
            self._displayed_level = layer.data_level
            self.on_slice_change()

    def _on_scope_chosen(self, index: int) -> None:
        if self._ready:
            self.on_scope_change()

    def _on_dims_change(self, event: Any = None) -> None:
        if self._ready:
            self.on_slice_change()

    def _on_theme_event(self, event: Any = None) -> None:
        if self._ready:
            self.on_theme_change()

    def closeEvent(self, event: Any) -> None:
        """Cancel background work and let go of the viewer when the dock closes."""
        self.cancel_tasks()
        self._watch_layer(None)
        _disconnect_all(self._connections)()
        super().closeEvent(event)


def _message_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    label.hide()
    return label


class _disconnect_all:
    """Callable that disconnects the recorded (emitter, callback) pairs once."""

    def __init__(self, connections: list[tuple[Any, Callable]]) -> None:
        self.connections = connections

    def __call__(self, *args: Any) -> None:
        while self.connections:
            emitter, callback = self.connections.pop()
            emitter.disconnect(callback)
