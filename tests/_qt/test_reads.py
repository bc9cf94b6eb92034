"""Docked widgets read no file napari has not read: they reuse the plane it displays."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import napari_bigvol
from napari_bigvol._models import _layers
from napari_bigvol._qt.histogram_widget import HistogramWidget
from napari_bigvol._qt.threshold_widget import ThresholdMaskWidget


@pytest.fixture
def tiff_folder(tmp_path):
    """A folder of 24 single-plane TIFFs, 40 x 48 uint16: one file per z plane."""
    folder = tmp_path / "slices"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for z in range(24):
        plane = rng.integers(0, 4000, (40, 48), dtype=np.uint16)
        tifffile.imwrite(folder / f"slice_{z:03d}.tif", plane)
    return folder


def opens_per_step(viewer, qtbot, open_counter, folder, widgets, axis, steps=(5, 6, 9)):
    """Files opened by stepping ``axis`` (of the dims order shown), widgets settled each time."""
    counts = []
    for step in steps:
        with open_counter.watch(folder) as opened:
            viewer.dims.set_current_step(axis, step)
            for widget in widgets:
                qtbot.waitUntil(lambda w=widget: not w._draw_timer.isActive(), timeout=5000)
            qtbot.wait(20)
        counts.append(sum(opened.values()))
    return counts


@pytest.mark.parametrize(
    ("order", "axis"),
    [((0, 1, 2), 0), ((1, 0, 2), 1), ((2, 0, 1), 2)],
    ids=["axial", "coronal", "sagittal"],
)
def test_docked_widgets_add_no_file_opens_to_a_step(
    make_napari_viewer, qtbot, open_counter, tiff_folder, order, axis
):
    # No dask chunk cache, so each step reads what it shows.
    data, kwargs, _ = napari_bigvol.read(tiff_folder)[0]
    plain = make_napari_viewer()
    plain.add_image(data, **kwargs, cache=False)
    plain.dims.order = order
    alone = opens_per_step(plain, qtbot, open_counter, tiff_folder, [], axis)

    data, kwargs, _ = napari_bigvol.read(tiff_folder)[0]
    docked = make_napari_viewer()
    docked.add_image(data, **kwargs, cache=False)
    docked.dims.order = order
    widgets = [HistogramWidget(docked), ThresholdMaskWidget(docked)]
    for widget in widgets:
        docked.window.add_dock_widget(widget)
    qtbot.waitUntil(lambda: widgets[0].result is not None, timeout=5000)
    with_widgets = opens_per_step(docked, qtbot, open_counter, tiff_folder, widgets, axis)

    assert all(count > 0 for count in alone)  # napari itself reads the plane it shows
    assert with_widgets == alone
    # And the widgets did show the new plane.
    assert f"= {9}" in widgets[0].result.description
    assert widgets[1].slice_statistics is not None


@pytest.mark.parametrize("live_limit", [None, 100], ids=["live", "over-live-limit"])
def test_in_3d_docked_widgets_read_and_hold_no_more_than_the_displayed_level(
    make_napari_viewer, qtbot, open_counter, tiff_folder, cache_dir, monkeypatch, live_limit
):
    # A 3-D budget under the volume (92 kB), so the reader adds a downsampled 3-D level.
    monkeypatch.setenv("NAPARI_BIGVOL_3D_BUDGET", "64KiB")
    if live_limit is not None:  # a 3-D level too big to count on the GUI thread
        monkeypatch.setattr(_layers, "LIVE_LIMIT", live_limit)

    def switch_to_3d(viewer, widgets):
        with open_counter.watch(tiff_folder) as opened:
            viewer.dims.ndisplay = 3
            for widget in widgets:
                qtbot.waitUntil(lambda w=widget: not w._draw_timer.isActive(), timeout=5000)
                qtbot.waitUntil(lambda w=widget: not w.tasks, timeout=5000)
            qtbot.wait(20)
        return sum(opened.values())

    plain = make_napari_viewer()
    [layer] = plain.open(str(tiff_folder), plugin="napari-bigvol", cache=False)
    assert layer.multiscale
    alone = switch_to_3d(plain, [])

    docked = make_napari_viewer()
    [layer] = docked.open(str(tiff_folder), plugin="napari-bigvol", cache=False)
    widgets = [HistogramWidget(docked), ThresholdMaskWidget(docked)]
    for widget in widgets:
        docked.window.add_dock_widget(widget)
    qtbot.waitUntil(lambda: widgets[0].result is not None, timeout=5000)
    with_widgets = switch_to_3d(docked, widgets)

    # napari reads the displayed (budgeted) level once; the widgets use what it read.
    assert alone > 0
    assert with_widgets == alone
    level = layer.data[-1]
    assert "level 1" in widgets[0].result.description
    assert widgets[1].slice_statistics is not None
    # The preview holds one byte per voxel of the displayed level, never level 0.
    preview = widgets[1].preview_layer
    assert not preview.multiscale
    assert preview.data.shape == level.shape
    assert preview.data.nbytes <= level.size
