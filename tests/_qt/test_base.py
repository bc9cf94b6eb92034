"""The widget base class: layer chooser, scope, viewer events, tasks tied to layers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_bigvol._models._layers import Scope
from napari_bigvol._qt.base import LayerWidget
from napari_bigvol.errors import Cancelled, OperationError


class RecordingWidget(LayerWidget):
    """Counts the hooks the base class calls."""

    def build(self):
        self.calls: list[str] = []

    def on_update_layers(self):
        self.calls.append("layers")
        super().on_update_layers()

    def on_data_change(self, layer):
        self.calls.append("data")
        super().on_data_change(layer)

    def on_theme_change(self):
        self.calls.append("theme")

    def draw(self):
        self.calls.append("draw")


@pytest.fixture
def viewer_and_widget(docked):
    return docked(RecordingWidget)


def test_layer_chooser_follows_the_viewer(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    assert widget.layer is None
    first = viewer.add_image(np.zeros((4, 8, 8)), name="first")
    viewer.add_labels(np.zeros((4, 8, 8), np.uint8), name="labels")
    second = viewer.add_image(np.ones((4, 8, 8)), name="second")
    # Only image layers are offered, top of the layer list first.
    assert [widget.layer_combo.itemText(i) for i in range(widget.layer_combo.count())] == [
        "second",
        "first",
    ]
    assert widget.layer is second
    viewer.layers.selection.active = first
    assert widget.layer is first
    first.name = "renamed"
    assert widget.layer_combo.currentText() == "renamed"
    viewer.layers.remove(first)
    assert widget.layer is second
    qtbot.waitUntil(lambda: "draw" in widget.calls)


def test_slice_changes_coalesce_into_one_draw(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    viewer.add_image(np.zeros((10, 8, 8)), name="volume")
    qtbot.wait(10)
    widget.calls.clear()
    for z in range(10):
        viewer.dims.set_current_step(0, z)
    qtbot.wait(20)
    assert widget.calls.count("draw") == 1
    widget.scope = Scope.VOLUME
    qtbot.wait(20)
    widget.calls.clear()
    viewer.dims.set_current_step(0, 3)
    qtbot.wait(20)
    assert "draw" not in widget.calls  # the whole volume does not depend on the slice


def test_data_and_theme_events_reach_the_hooks(viewer_and_widget):
    viewer, widget = viewer_and_widget
    layer = viewer.add_image(np.zeros((4, 8, 8)), name="volume")
    widget.calls.clear()
    layer.data = np.ones((4, 8, 8))
    viewer.theme = "light"
    assert widget.calls[:2] == ["data", "theme"]
    assert widget.theme_colors()["background"] != "#262930"  # napari's dark background


def test_no_layer_gives_a_clear_error(viewer_and_widget):
    viewer, widget = viewer_and_widget
    viewer.add_labels(np.zeros((8, 8), np.uint8), name="labels")  # not an image
    with pytest.raises(OperationError, match="No image layer selected: add or select one"):
        widget.require_layer()


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int16", "uint16", "float32", "float64"])
def test_numeric_dtypes_are_accepted(dtype, viewer_and_widget):
    viewer, widget = viewer_and_widget
    layer = viewer.add_image(np.zeros((8, 8), dtype), contrast_limits=(0, 1))
    assert widget.require_layer() is layer


def test_two_dimensional_layer_treats_whole_volume_as_the_slice(viewer_and_widget):
    viewer, widget = viewer_and_widget
    flat = viewer.add_image(np.zeros((8, 8)), name="flat")
    rgb = viewer.add_image(np.zeros((8, 8, 3), np.uint8), name="rgb", rgb=True)
    volume = viewer.add_image(np.zeros((3, 8, 8)), name="volume")
    widget.scope = Scope.VOLUME
    assert widget.effective_scope(flat) is Scope.SLICE
    assert widget.effective_scope(rgb) is Scope.SLICE
    assert widget.effective_scope(volume) is Scope.VOLUME


def test_removing_the_layer_cancels_its_task(viewer_and_widget, wait_task):
    viewer, widget = viewer_and_widget
    layer = viewer.add_image(np.zeros((3, 8, 8)), name="doomed")
    started = threading.Event()
    delivered = []

    def compute(progress, should_stop):
        started.set()
        while not should_stop():
            threading.Event().wait(0.005)
        raise Cancelled("cancelled")

    task = widget.run_task(compute, description="Work", on_done=delivered.append, layer=layer)
    assert widget.cancel_button.isEnabled()
    assert started.wait(10)
    viewer.layers.remove(layer)
    wait_task(task)
    assert delivered == []
    assert widget.message.text() == "Work: cancelled because layer 'doomed' was removed."
    assert not widget.cancel_button.isEnabled()
    assert widget.tasks == []


def test_result_for_a_removed_layer_is_discarded(viewer_and_widget, wait_task, notifications):
    viewer, widget = viewer_and_widget
    layer = viewer.add_image(np.zeros((3, 8, 8)), name="gone")
    release = threading.Event()
    delivered = []

    def compute(progress, should_stop):
        release.wait(10)
        return 1  # ignores should_stop: the result arrives after the removal

    task = widget.run_task(compute, description="Work", on_done=delivered.append, layer=layer)
    widget.task_panel._layers.clear()  # so removal does not cancel: test the late-delivery guard
    viewer.layers.remove(layer)
    release.set()
    wait_task(task)
    assert delivered == []
    expected = "Work failed: layer 'gone' was removed while this ran; result discarded."
    assert widget.message.text() == expected
    assert notifications.errors == [expected]


def test_cancel_button_cancels(viewer_and_widget, wait_task):
    _, widget = viewer_and_widget
    started = threading.Event()

    def compute(progress, should_stop):
        started.set()
        while not should_stop():
            threading.Event().wait(0.005)
        raise Cancelled("cancelled")

    task = widget.run_task(compute, description="Work", on_done=lambda r: None)
    assert started.wait(10)
    widget.cancel_button.click()
    wait_task(task)
    assert task.outcome == "cancelled"
    assert widget.message.text() == "Work: cancelled."


class BrokenWidget(LayerWidget):
    """A widget whose draw has a bug."""

    def draw(self):
        raise KeyError("bug")


def test_an_unexpected_draw_error_is_reported_not_fatal(docked, qtbot, notifications):
    _, widget = docked(BrokenWidget)
    qtbot.waitUntil(lambda: widget.note.text() != "")
    expected = "BrokenWidget redraw failed: KeyError: 'bug'"
    assert widget.note.text() == expected
    assert notifications.errors == [expected]


class BuiltWidget(LayerWidget):
    """A subclass that adds its controls in build(): hooks find them from the start."""

    def build(self):
        self.updates: list[object] = []

    def on_update_layers(self):
        self.updates.append(self.layer)


def test_widgets_start_at_once_with_their_controls_built(docked):
    viewer = docked(LayerWidget)[0]
    layer = viewer.add_image(np.zeros((4, 8, 8)), name="volume")
    _, widget = docked(BuiltWidget, viewer=viewer)
    assert widget.layer is layer
    assert widget.updates == [layer]  # no timer, no ready(): synchronous start


def test_progress_shows_in_the_dock_and_hides_after(viewer_and_widget, qtbot, wait_task):
    _, widget = viewer_and_widget
    gate = threading.Event()

    def compute(progress, should_stop):
        for done in range(1, 5):
            progress(done, 4)
            gate.wait(10)
        return 4

    task = widget.run_task(compute, description="Work", on_done=lambda r: None)
    bar = widget.task_panel.progress_bar
    assert bar.isVisibleTo(widget)
    qtbot.waitUntil(lambda: bar.maximum() == 4 and bar.value() >= 1, timeout=10_000)
    assert bar.format().startswith("Work")
    assert widget.message.text() == ""  # no "running..." line: the bar says it
    gate.set()
    wait_task(task)
    assert not bar.isVisibleTo(widget)
    assert widget.message.text() == "Work: done."


@pytest.mark.parametrize(
    ("display_name", "class_name"),
    [
        ("Threshold mask", "ThresholdMaskWidget"),
        ("Split channels", "SplitChannelsWidget"),
        ("Histogram", "HistogramWidget"),
    ],
)
def test_widgets_open_from_the_plugin_menu(make_napari_viewer, display_name, class_name):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 8, 8), np.uint8), name="volume")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-bigvol", display_name)
    assert type(widget).__name__ == class_name
    # napari passes a proxy of the viewer; the widget works on the real layers behind it.
    assert widget.viewer is viewer
    assert widget.layer is viewer.layers["volume"]


def test_three_docks_fit_a_1200_pixel_screen(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QScrollArea

    from napari_bigvol._qt.export_widget import ExportZarrWidget
    from napari_bigvol._qt.histogram_widget import HistogramWidget
    from napari_bigvol._qt.threshold_widget import ThresholdMaskWidget

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1400, 1000)
    viewer.add_image(np.random.default_rng(0).integers(0, 999, (8, 64, 64)), name="v")
    widgets = [cls(viewer) for cls in (ThresholdMaskWidget, HistogramWidget, ExportZarrWidget)]
    for widget in widgets:
        viewer.window.add_dock_widget(widget)
    qtbot.wait(100)
    assert window.height() <= 1200
    assert window.minimumSizeHint().height() <= 1000
    for widget in widgets:
        assert widget.minimumSizeHint().height() <= 160  # below that, its controls scroll
        assert widget.sizeHint().height() > 160  # and it asks for all of them
        # Never cut on the right: the dock is as wide as the controls need.
        content = widget.findChild(QScrollArea).widget()
        assert content.width() >= content.minimumSizeHint().width()
