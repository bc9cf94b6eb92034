"""Fixtures for the dock-widget tests: a viewer with the widget docked, notifications."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager


class NotificationLog:
    """The napari notifications shown since the fixture started, by severity."""

    def __init__(self) -> None:
        self._start = len(notification_manager.records)

    def messages(self, severity: NotificationSeverity | None = None) -> list[str]:
        return [
            record.message
            for record in notification_manager.records[self._start :]
            if severity is None or record.severity == severity
        ]

    @property
    def errors(self) -> list[str]:
        return self.messages(NotificationSeverity.ERROR)


@pytest.fixture
def notifications() -> NotificationLog:
    """Records napari notifications shown during the test (``.errors``, ``.messages()``)."""
    return NotificationLog()


@pytest.fixture
def docked(make_napari_viewer, qtbot) -> Callable:
    """``docked(WidgetClass)`` -> (viewer, widget): a real viewer with the widget docked."""

    def make(widget_class: type, viewer=None):
        viewer = viewer or make_napari_viewer()
        widget = widget_class(viewer)
        viewer.window.add_dock_widget(widget, name=widget_class.__name__)
        return viewer, widget

    return make


@pytest.fixture
def wait_task(qtbot) -> Callable:
    """``wait_task(task)``: run the event loop until a BackgroundTask has finished."""

    def wait(task, timeout: int = 30_000) -> None:
        qtbot.waitUntil(lambda: task.is_finished, timeout=timeout)

    return wait


@pytest.fixture
def answer_dialog(qtbot) -> Callable:
    """``answer_dialog("Yes")``: the next message box that opens gets that button clicked.

    Returns a list that receives the text of each answered box.
    """
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication, QMessageBox

    def answer(button: str) -> list[str]:
        seen: list[str] = []

        def click() -> None:
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox):
                QTimer.singleShot(10, click)  # not open yet
                return
            seen.append(box.text())
            box.button(getattr(QMessageBox.StandardButton, button)).click()

        QTimer.singleShot(10, click)
        return seen

    return answer
