"""A dock widget's background work: its progress bar, Cancel button and running tasks.

Progress has one source, the runner's :class:`~napari_bigvol._qt._runner.BackgroundTask`
(which also feeds napari's activity dock); this panel shows the same figures inside
the dock, where the user is looking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QSizePolicy, QWidget

from napari_bigvol._qt._runner import BackgroundTask, Computation, error_message, run_in_background
from napari_bigvol.errors import OperationError

T = TypeVar("T")


class TaskPanel(QWidget):
    """Runs a widget's background tasks and shows their progress, with Cancel.

    Attributes
    ----------
    progress_bar : QProgressBar
        Progress of the latest task, "description 40%". The panel is hidden while
        nothing runs.
    cancel_button : QPushButton
        Cancels every task of the panel; enabled only while one runs.
    tasks : list of BackgroundTask
        Tasks still running.

    Signals
    -------
    message(str, bool)
        The outcome to show: text, and whether it is an error.
    """

    message = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks: list[BackgroundTask] = []
        self._layers: dict[int, Any] = {}
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running whole-volume computation")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.cancel_button.clicked.connect(self.cancel_all)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress_bar, stretch=1)
        row.addWidget(self.cancel_button, alignment=Qt.AlignmentFlag.AlignRight)
        self.hide()  # shown only while a task runs

    def run(
        self,
        compute: Computation[T],
        *,
        description: str,
        on_done: Callable[[T], None],
        layer: Any = None,
        is_current: Callable[[Any], bool] = lambda layer: True,
        on_cancelled: Callable[[], None] | None = None,
    ) -> BackgroundTask[T]:
        """Start ``compute`` in a worker; see :meth:`LayerWidget.run_task`."""

        def deliver(result: T) -> None:
            _require_current(layer, is_current)
            self.message.emit(f"{description}: done.", False)
            on_done(result)

        def cancelled() -> None:
            self.message.emit(f"{description}: {task.cancel_reason}.", False)
            if on_cancelled is not None:
                on_cancelled()

        task = run_in_background(
            compute,
            description=description,
            on_done=deliver,
            on_error=lambda exc: self.message.emit(error_message(description, exc), True),
            on_cancelled=cancelled,
            parent=self,
        )
        self._track(task, layer)
        return task

    def _track(self, task: BackgroundTask, layer: Any) -> None:
        """Show ``task``'s progress in the bar, and let Cancel (or ``layer``'s removal) stop it."""
        self.tasks.append(task)
        if layer is not None:
            self._layers[id(task)] = layer
        task.progressed.connect(self._show_progress)
        task.finished.connect(lambda: self._forget(task))
        self.progress_bar.setRange(0, 0)  # busy until the first figures arrive
        self.progress_bar.setFormat(f"{task.description} %p%")
        self.show()
        self.cancel_button.setEnabled(True)

    def cancel_all(self) -> None:
        """Cancel every running task."""
        for task in self.tasks:
            task.cancel()

    def cancel_for(self, layer: Any, reason: str) -> None:
        """Cancel the tasks working on ``layer``."""
        for task in self.tasks:
            if self._layers.get(id(task)) is layer:
                task.cancel(reason)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)

    def _forget(self, task: BackgroundTask) -> None:
        if task in self.tasks:
            self.tasks.remove(task)
        self._layers.pop(id(task), None)
        self.cancel_button.setEnabled(bool(self.tasks))
        self.setVisible(bool(self.tasks))


def _require_current(layer: Any, is_current: Callable[[Any], bool]) -> None:
    """Refuse a result for a ``layer`` that left the viewer while the task ran."""
    if layer is not None and not is_current(layer):
        raise OperationError(f"layer '{layer.name}' was removed while this ran; result discarded.")
