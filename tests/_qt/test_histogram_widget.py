"""The Histogram dock widget in a real viewer: plot data, stats, scope, cancel, bad input."""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt, QTimer
from skimage import io

from napari_bigvol._models._layers import Scope
from napari_bigvol._models.histogram import parse_percentiles
from napari_bigvol._qt.histogram_widget import HistogramWidget
from napari_bigvol._qt.threshold_widget import ThresholdMaskWidget
from napari_bigvol.errors import OperationError


def settle(qtbot, widget):
    """Let the coalesced redraw run."""
    qtbot.waitUntil(lambda: not widget._draw_timer.isActive(), timeout=5000)


def volume_of(dtype, shape=(6, 40, 50), seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 30, shape).astype(dtype)
    high = min(np.iinfo(dtype).max, 4000)
    return rng.integers(0, high, shape).astype(dtype)


def assert_matches_numpy(stats, values, bins=50):
    counts, edges = np.histogram(values, bins)
    np.testing.assert_array_equal(stats.counts, counts)
    np.testing.assert_array_equal(stats.edges, edges)
    assert stats.minimum == values.min()
    assert stats.maximum == values.max()
    assert stats.mean == pytest.approx(values.mean(dtype=np.float64), rel=1e-9)
    assert stats.std == pytest.approx(values.std(dtype=np.float64), rel=1e-6)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_visible_slice_follows_the_scroll(docked, qtbot, dtype):
    viewer, widget = docked(HistogramWidget)
    volume = volume_of(dtype)
    viewer.add_image(volume, name="volume")
    for z in (2, 5):
        viewer.dims.set_current_step(0, z)
        settle(qtbot, widget)
        (stats,) = widget.result.stats
        assert_matches_numpy(stats, volume[z])
        assert widget.result.description == f"visible slice at axis 0 = {z}, 2,000 values"
    curve = widget.canvas.curves[0]
    np.testing.assert_array_equal(curve.counts, np.histogram(volume[5], 50)[0])
    assert "mean" in widget.stats_label.text()
    assert f"{volume[5].max():.6g}" in widget.stats_label.text()


def test_follows_the_dims_order(docked, qtbot):
    viewer, widget = docked(HistogramWidget)
    volume = volume_of("uint16")
    viewer.add_image(volume, name="volume")
    viewer.dims.order = (2, 0, 1)  # display (z, y) planes; x is the slider
    viewer.dims.set_current_step(2, 7)
    settle(qtbot, widget)
    assert_matches_numpy(widget.result.stats[0], volume[:, :, 7])


def test_rgb_gives_one_curve_per_channel(docked, qtbot, skimage_data):
    viewer, widget = docked(HistogramWidget)
    astronaut = io.imread(skimage_data / "astronaut.png")
    viewer.add_image(astronaut, name="astronaut", rgb=True)
    settle(qtbot, widget)
    assert widget.result.channels == ("red", "green", "blue")
    for channel, stats in enumerate(widget.result.stats):
        assert_matches_numpy(stats, astronaut[..., channel])
    assert [curve.label for curve in widget.canvas.curves] == ["red", "green", "blue"]
    header = widget.stats_label.text()
    assert "red" in header
    assert "blue" in header


def test_exclude_zeros_bins_and_percentiles(docked, qtbot, skimage_data):
    viewer, widget = docked(HistogramWidget)
    ihc = io.imread(skimage_data / "ihc.png")[..., 0]
    masked = np.where(ihc < 125, ihc, 0).astype(np.uint8)  # the lesson's masked image
    viewer.add_image(masked, name="masked")
    widget.zeros_check.setChecked(True)
    widget.bins_spin.setValue(20)
    widget.percentiles_edit.setText("5, 95")
    widget.percentiles_edit.editingFinished.emit()
    settle(qtbot, widget)
    (stats,) = widget.result.stats
    kept = masked[masked != 0]
    np.testing.assert_array_equal(stats.counts, np.histogram(kept, 20)[0])
    assert stats.percentiles == {5.0: np.percentile(kept, 5), 95.0: np.percentile(kept, 95)}
    assert "p95" in widget.stats_label.text()
    widget.log_check.setChecked(True)
    assert widget.canvas.log_y


def test_multiscale_uses_the_displayed_level(docked, qtbot):
    viewer, widget = docked(HistogramWidget)
    base = volume_of("uint16", shape=(4, 256, 256))
    levels = [base, base[:, ::2, ::2], base[:, ::4, ::4]]
    layer = viewer.add_image(levels, multiscale=True, name="pyramid")
    viewer.dims.set_current_step(0, 3)
    settle(qtbot, widget)
    level = layer.data_level
    assert_matches_numpy(widget.result.stats[0], levels[level][3])
    assert f"level {level}" in widget.result.description


@pytest.mark.parametrize("chunks", [(1, 40, 50), (4, 20, 25), (6, 40, 50)])
def test_whole_volume_is_exact_and_cached(docked, qtbot, wait_task, chunks):
    viewer, widget = docked(HistogramWidget)
    volume = volume_of("uint16", shape=(6, 40, 50))
    layer = viewer.add_image(da.from_array(volume, chunks=chunks), name="lazy")
    widget.scope = Scope.VOLUME
    settle(qtbot, widget)
    assert widget.result is None
    assert "Compute whole volume" in widget.note.text()
    widget.compute_button.click()
    (task,) = widget.tasks
    wait_task(task)
    assert task.outcome == "done"
    assert_matches_numpy(widget.result.stats[0], volume)
    assert widget.result.description == "whole volume, 12,000 values (exact)"
    # Cached: pressing again starts nothing.
    widget.compute_button.click()
    assert widget.tasks == []
    # New data invalidate the cache.
    layer.data = da.from_array(volume + 1, chunks=chunks)
    settle(qtbot, widget)
    assert widget.result is None
    widget.compute_button.click()
    wait_task(widget.tasks[0])
    assert_matches_numpy(widget.result.stats[0], volume + 1)


def test_rgb_whole_volume(docked, qtbot, wait_task, skimage_data):
    viewer, widget = docked(HistogramWidget)
    stack = io.imread(skimage_data / "multipage_rgb.tif")
    viewer.add_image(da.from_array(stack, chunks=(1, *stack.shape[1:])), rgb=True, name="rgb")
    widget.scope = Scope.VOLUME
    widget.compute_button.click()
    wait_task(widget.tasks[0])
    for channel, stats in enumerate(widget.result.stats):
        assert_matches_numpy(stats, stack[..., channel])


def test_contrast_limit_lines_and_dragging(docked, qtbot):
    viewer, widget = docked(HistogramWidget)
    volume = volume_of("uint16")
    layer = viewer.add_image(volume, name="volume", contrast_limits=(100, 3000))
    settle(qtbot, widget)
    assert widget.canvas.contrast_limits == (100, 3000)
    layer.contrast_limits = (200, 2500)
    assert widget.canvas.contrast_limits == (200, 2500)
    canvas = widget.canvas
    y = int(canvas.plot_rect().center().y())
    start, end = QPoint(int(canvas.value_to_x(1000)), y), QPoint(int(canvas.value_to_x(2000)), y)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas, end)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=end)
    low, high = layer.contrast_limits
    value_low, value_high = canvas.value_range()
    tolerance = 2 * (value_high - value_low) / canvas.plot_rect().width()  # two pixels
    assert low == pytest.approx(1000, abs=tolerance)
    assert high == pytest.approx(2000, abs=tolerance)
    assert widget.canvas.contrast_limits == tuple(layer.contrast_limits)


def test_threshold_line_follows_the_threshold_widget(docked, qtbot):
    viewer, histogram = docked(HistogramWidget)
    layer = viewer.add_image(volume_of("uint16"), name="volume")
    _, threshold = docked(ThresholdMaskWidget, viewer=viewer)
    threshold.threshold = 1234
    assert histogram.canvas.threshold == 1234
    assert histogram.layer is layer


def slow_volume(blocks: int, gate: threading.Event):
    """A lazy uint16 volume whose blocks wait for ``gate`` (or a short time) before loading."""

    def load(block_id=None):
        gate.wait(0.05)
        return np.full((1, 64, 64), block_id[0] % 7, np.uint16)

    return da.map_blocks(load, chunks=((1,) * blocks, (64,), (64,)), dtype=np.uint16)


def test_cancel_leaves_no_result(docked, qtbot, wait_task):
    viewer, widget = docked(HistogramWidget)
    never = threading.Event()
    viewer.add_image(slow_volume(2000, never), name="big", contrast_limits=(0, 7))
    widget.scope = Scope.VOLUME
    widget.compute_button.click()
    (task,) = widget.tasks
    qtbot.waitUntil(lambda: task.progress_bar.n > 0, timeout=10_000)
    widget.cancel_button.click()
    wait_task(task)
    assert task.outcome == "cancelled"
    assert task.progress_bar.n < 2000
    assert not task.worker.is_running
    assert widget.result is None
    assert widget.model.cached(viewer.layers["big"], widget.settings()) is None
    assert widget.message.text() == "Histogram of 'big': cancelled."
    assert not widget.cancel_button.isEnabled()


def test_event_loop_runs_during_whole_volume_histogram(docked, qtbot, wait_task):
    viewer, widget = docked(HistogramWidget)
    gate = threading.Event()
    viewer.add_image(slow_volume(60, gate), name="slow", contrast_limits=(0, 7))
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    widget.scope = Scope.VOLUME
    widget.compute_button.click()
    (task,) = widget.tasks
    qtbot.waitUntil(lambda: len(ticks) >= 20, timeout=10_000)
    assert task.running  # the GUI ticked 20 times while the histogram was being computed
    gate.set()
    wait_task(task)
    timer.stop()
    expected = np.bincount(np.arange(60) % 7, minlength=7) * 64 * 64
    assert widget.result.stats[0].count == 60 * 64 * 64
    assert widget.result.stats[0].counts.sum() == expected.sum()


def test_layer_removed_while_computing(docked, qtbot, wait_task, notifications):
    viewer, widget = docked(HistogramWidget)
    layer = viewer.add_image(slow_volume(500, threading.Event()), name="doomed")
    widget.scope = Scope.VOLUME
    widget.compute_button.click()
    (task,) = widget.tasks
    viewer.layers.remove(layer)
    wait_task(task)
    assert task.outcome == "cancelled"
    assert widget.message.text() == (
        "Histogram of 'doomed': cancelled because layer 'doomed' was removed."
    )
    assert widget.result is None
    assert notifications.errors == []


def test_no_layer(docked, qtbot):
    _viewer, widget = docked(HistogramWidget)
    settle(qtbot, widget)
    assert widget.note.text() == "No image layer selected: add or select one first."
    assert widget.canvas.curves == []
    widget.compute_button.click()  # disabled without a layer: nothing happens
    assert widget.tasks == []


def test_two_dimensional_layer_with_whole_volume_scope(docked, qtbot, skimage_data):
    viewer, widget = docked(HistogramWidget)
    ihc = io.imread(skimage_data / "ihc.png")[..., 2]
    viewer.add_image(ihc, name="flat")
    widget.scope = Scope.VOLUME
    settle(qtbot, widget)
    assert widget.note.text() == "Layer 'flat' is 2-D: its whole volume is the visible slice."
    assert_matches_numpy(widget.result.stats[0], ihc)
    assert not widget.compute_button.isEnabled()


def test_bad_percentiles(docked, qtbot):
    viewer, widget = docked(HistogramWidget)
    viewer.add_image(volume_of("uint8"), name="volume")
    widget.percentiles_edit.setText("50, 150")
    widget.percentiles_edit.editingFinished.emit()
    settle(qtbot, widget)
    assert widget.note.text() == "percentile 150 is outside 0-100"
    assert widget.result is None
    with pytest.raises(OperationError, match="'a' is not a number"):
        parse_percentiles("1, a")


def test_plot_follows_the_theme(docked, qtbot):
    viewer, widget = docked(HistogramWidget)
    viewer.theme = "dark"
    dark = widget.canvas.colors
    viewer.theme = "light"
    light = widget.canvas.colors
    assert dark.background != light.background
    assert light.background == widget.theme_colors()["canvas"]
    assert light.text == widget.theme_colors()["text"]


@pytest.mark.slow
def test_whole_volume_on_a_process_cluster_matches_local(docked, qtbot, wait_task, tmp_path):
    import tifffile
    from distributed import LocalCluster

    import napari_bigvol
    from napari_bigvol.ops import compute

    volume = np.random.default_rng(3).gamma(2.0, 300.0, (10, 40, 36)).astype(np.uint16)
    for index, plane in enumerate(volume):
        tifffile.imwrite(tmp_path / f"Axial_{index}.tiff", plane)
    ((data, kwargs, _),) = napari_bigvol.read(str(tmp_path / "Axial_*.tiff"))
    viewer, widget = docked(HistogramWidget)
    layer = viewer.add_image(data, **kwargs)
    widget.scope = Scope.VOLUME
    widget.compute_button.click()
    wait_task(widget.tasks[0])
    local = widget.result.stats[0]
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        compute.set_scheduler(cluster.scheduler_address)
        try:
            widget.on_data_change(layer)  # forget the cached local result
            widget.compute_button.click()
            wait_task(widget.tasks[0], timeout=120_000)
        finally:
            compute.set_scheduler(None)
            compute.close_clients()
    remote = widget.result.stats[0]
    np.testing.assert_array_equal(remote.counts, local.counts)
    np.testing.assert_array_equal(remote.edges, local.edges)
    assert (remote.mean, remote.std, remote.percentiles) == (
        local.mean,
        local.std,
        local.percentiles,
    )
    assert_matches_numpy(local, volume)


def test_three_d_display_is_streamed_in_the_background(docked, qtbot, wait_task, monkeypatch):
    from napari_bigvol._models import _layers

    # Between a plane (40 x 50 values) and the volume (6 x 40 x 50), as a real volume is.
    monkeypatch.setattr(_layers, "LIVE_LIMIT", 5000)
    viewer, widget = docked(HistogramWidget)
    started = []
    run_task = widget.run_task

    def recording_run_task(*args, **kwargs):
        # A spy that calls through: the small volume may finish before the test looks.
        task = run_task(*args, **kwargs)
        started.append(task)
        return task

    monkeypatch.setattr(widget, "run_task", recording_run_task)
    volume = volume_of("uint16")
    viewer.add_image(volume, name="volume")
    settle(qtbot, widget)
    assert started == []  # a 2-D plane is drawn on the GUI thread
    viewer.dims.ndisplay = 3
    settle(qtbot, widget)
    (task,) = started
    wait_task(task)
    assert widget.result.description == "whole volume, 12,000 values (exact)"
    assert_matches_numpy(widget.result.stats[0], volume)


def test_pressing_compute_twice_starts_one_task(docked, qtbot, wait_task):
    viewer, widget = docked(HistogramWidget)
    viewer.add_image(slow_volume(40, threading.Event()), name="slow", contrast_limits=(0, 7))
    widget.scope = Scope.VOLUME
    widget.compute_button.click()
    widget.compute_button.click()
    (task,) = widget.tasks
    wait_task(task)
    assert widget.result.stats[0].count == 40 * 64 * 64


def test_zooming_a_pyramid_follows_the_displayed_level(docked, qtbot, make_napari_viewer):
    # Shown: napari picks a pyramid level from the canvas size and zoom only when it draws.
    viewer, widget = docked(HistogramWidget, viewer=make_napari_viewer(show=True))
    base = volume_of("uint16", shape=(2, 1024, 1024))
    levels = [base, base[:, ::2, ::2], base[:, ::4, ::4], base[:, ::8, ::8]]
    layer = viewer.add_image(levels, multiscale=True, name="pyramid")
    settle(qtbot, widget)
    before = layer.data_level
    camera = viewer.scene.camera
    camera.zoom = camera.zoom * 16  # look closer: napari picks a finer level
    qtbot.waitUntil(lambda: layer.data_level != before, timeout=5000)
    settle(qtbot, widget)
    level = layer.data_level
    assert f"level {level}" in widget.result.description
    assert_matches_numpy(widget.result.stats[0], levels[level][0])


def test_compute_switches_to_the_whole_volume_and_shows_progress_in_the_dock(
    docked, qtbot, wait_task
):
    viewer, widget = docked(HistogramWidget)
    gate = threading.Event()
    viewer.add_image(slow_volume(40, gate), name="slow", contrast_limits=(0, 7))
    assert widget.scope is Scope.SLICE
    assert widget.compute_button.isEnabled()  # no need to switch the scope first
    widget.compute_button.click()
    assert widget.scope is Scope.VOLUME
    (task,) = widget.tasks
    settle(qtbot, widget)
    assert widget.task_panel.isVisibleTo(widget)  # progress in the dock, not only Activity
    assert widget.note.text() == ""  # no "Press ..." while it runs
    assert "running" not in widget.message.text()
    gate.set()
    wait_task(task)
    settle(qtbot, widget)
    assert not widget.task_panel.isVisibleTo(widget)
    assert widget.note.text() == ""
    assert widget.result.stats[0].count == 40 * 64 * 64


def test_a_finished_message_does_not_outlive_a_layer_change(docked, qtbot, wait_task):
    viewer, widget = docked(HistogramWidget)
    viewer.add_image(volume_of("uint16"), name="first")
    widget.compute_button.click()
    wait_task(widget.tasks[0])
    assert widget.message.text() == "Histogram of 'first': done."
    viewer.add_image(volume_of("uint8"), name="second")
    assert widget.layer.name == "second"
    assert widget.message.text() == ""
