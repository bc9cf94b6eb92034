"""The "Export to zarr" dock widget in a real viewer: scopes, overwrite, cancel."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import zarr
from ome_zarr_models import open_ome_zarr

from napari_bigvol._models._layers import Scope
from napari_bigvol._qt.export_widget import ExportZarrWidget
from napari_bigvol.io._planes import stack_planes


@pytest.fixture
def brain():
    return np.random.default_rng(0).integers(0, 3000, (16, 200, 180), dtype=np.uint16)


def test_whole_volume_export(docked, wait_task, tmp_path, brain):
    viewer, widget = docked(ExportZarrWidget)
    viewer.add_image(brain, name="brain", scale=(2.0, 0.5, 0.5), colormap="magenta")
    target = tmp_path / "brain.ome.zarr"
    widget.path_edit.value = str(target)
    widget.chunks_edit.setText("8,64,64")
    widget.format_combo.setCurrentIndex(1)  # zarr v3
    widget.sharding_check.setChecked(True)
    task = widget.export()
    wait_task(task)
    assert task.outcome == "done", task.error
    group = zarr.open_group(target, mode="r")
    open_ome_zarr(group, version="0.5")
    np.testing.assert_array_equal(group["0"][:], brain)
    assert group["0"].chunks == (8, 64, 64)
    channel = dict(group.attrs)["ome"]["omero"]["channels"][0]
    assert channel["color"] == "FF00FF"
    assert widget.message.text() == f"Wrote {target}"


def test_visible_slice_export(docked, wait_task, tmp_path, brain):
    viewer, widget = docked(ExportZarrWidget)
    viewer.add_image(brain, name="brain", scale=(2.0, 0.5, 0.5))
    viewer.dims.set_current_step(0, 5)
    widget.scope = Scope.SLICE
    widget.path_edit.value = str(tmp_path / "plane.zarr")
    wait_task(widget.export())
    group = zarr.open_group(tmp_path / "plane.zarr", mode="r")
    np.testing.assert_array_equal(group["0"][:], brain[5])
    axes = dict(group.attrs)["multiscales"][0]["axes"]
    assert [a["name"] for a in axes] == ["y", "x"]


def test_labels_layer_exports_as_labels(docked, wait_task, tmp_path, brain):
    viewer, widget = docked(ExportZarrWidget)
    viewer.add_labels((brain > 1500).astype(np.uint8), name="mask")
    widget.path_edit.value = str(tmp_path / "mask.zarr")
    wait_task(widget.export())
    group = zarr.open_group(tmp_path / "mask.zarr", mode="r")
    assert dict(group["labels"].attrs)["labels"] == ["mask"]


def test_existing_output_needs_the_tick_and_a_yes_every_time(
    docked, wait_task, answer_dialog, tmp_path, brain
):
    viewer, widget = docked(ExportZarrWidget)
    viewer.add_image(brain, name="brain")
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    widget.path_edit.value = str(target)
    assert widget.export() is None
    assert "tick 'Overwrite existing'" in widget.message.text()
    assert (target / "keep.txt").read_text() == "mine"
    widget.overwrite_check.setChecked(True)
    asked = answer_dialog("No")
    assert widget.export() is None
    assert asked == [f"{target} already exists. Replace it with 'brain'?"]
    assert (target / "keep.txt").read_text() == "mine"
    assert widget.message.text() == f"Export cancelled: {target} kept."
    asked = answer_dialog("Yes")
    wait_task(widget.export())
    assert len(asked) == 1
    assert not (target / "keep.txt").exists()
    np.testing.assert_array_equal(zarr.open_array(target / "0", mode="r")[:], brain)
    # Ticked still, yet the next overwrite asks again.
    asked = answer_dialog("No")
    assert widget.export() is None
    assert len(asked) == 1


def test_output_path_follows_the_chosen_layer(docked, wait_task, tmp_path, brain):
    viewer, widget = docked(ExportZarrWidget)
    first = viewer.add_image(brain, name="first")
    widget.path_edit.value = str(tmp_path / "first.zarr")
    widget.overwrite_check.setChecked(True)
    wait_task(widget.export())
    viewer.add_image(brain[:4], name="second")
    assert widget.layer.name == "second"
    assert widget.output_path != str(tmp_path / "first.zarr")
    assert os.path.basename(widget.output_path) == "second.ome.zarr"
    assert str(widget.path_edit.value) == widget.output_path
    widget.layer = first
    assert widget.output_path == str(tmp_path / "first.zarr")  # what was typed for it


def test_default_output_is_beside_the_source(make_napari_viewer, docked, tmp_path, brain):
    import tifffile

    source = tmp_path / "scan.tif"
    tifffile.imwrite(source, brain[:5], photometric="minisblack")
    viewer = make_napari_viewer()
    viewer.open(source, plugin="napari-bigvol")
    _, widget = docked(ExportZarrWidget, viewer=viewer)
    assert os.path.dirname(widget.output_path) == str(tmp_path)
    assert widget.output_path.endswith(".ome.zarr")


def test_bad_chunks_are_reported(docked, tmp_path, brain):
    viewer, widget = docked(ExportZarrWidget)
    viewer.add_image(brain)
    widget.path_edit.value = str(tmp_path / "x.zarr")
    widget.chunks_edit.setText("64,sixty,64")
    assert widget.export() is None
    assert "chunks must be integers" in widget.message.text()
    assert list(tmp_path.iterdir()) == []


def test_cancel_leaves_nothing(docked, wait_task, qtbot, tmp_path):
    def slow_plane(index: int) -> np.ndarray:
        time.sleep(0.05)
        return np.full((64, 64), index, np.uint16)

    viewer, widget = docked(ExportZarrWidget)
    viewer.add_image(stack_planes(slow_plane, 200, (64, 64), np.uint16), name="slow")
    widget.path_edit.value = str(tmp_path / "slow.zarr")
    widget.chunks_edit.setText("4,64,64")
    task = widget.export()
    qtbot.waitUntil(lambda: widget.task_panel.progress_bar.value() > 0, timeout=30_000)
    widget.cancel_button.click()
    wait_task(task)
    assert task.outcome == "cancelled"
    assert list(tmp_path.iterdir()) == []


def test_the_bar_moves_while_the_first_unit_is_read_and_cancel_stops_it(
    docked, wait_task, qtbot, tmp_path
):
    loads = []

    def slow_plane(index: int) -> np.ndarray:
        loads.append(index)
        time.sleep(0.02)
        return np.full((128, 128), index, np.uint16)

    def chunks_written() -> list:
        return [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith(".")]

    viewer, widget = docked(ExportZarrWidget)
    viewer.add_image(stack_planes(slow_plane, 128, (128, 128), np.uint16), name="slow")
    widget.path_edit.value = str(tmp_path / "slow.zarr")
    widget.chunks_edit.setText("64,64,64")  # a work unit is 64 planes
    task = widget.export()
    qtbot.waitUntil(lambda: widget.task_panel.progress_bar.value() > 0, timeout=30_000)
    # The dock's bar counts plane reads and chunk rows written: it moved before the
    # first 64-plane unit was even read, let alone written.
    assert chunks_written() == []
    assert len(loads) < 64
    assert widget.task_panel.progress_bar.maximum() > 128  # the reads, then the writes
    widget.cancel_button.click()
    wait_task(task)
    assert task.outcome == "cancelled"
    assert list(tmp_path.iterdir()) == []
    assert len(loads) < 128  # the reads stopped too


def drawn_region(image: np.ndarray, control, window) -> np.ndarray:
    """The pixels of a window screenshot where ``control`` is, scaled to the image."""
    from qtpy.QtCore import QPoint

    ratio = image.shape[0] / window.height()
    corner = control.mapTo(window, QPoint(0, 0))
    top, left = round(corner.y() * ratio), round(corner.x() * ratio)
    bottom = round((corner.y() + control.height()) * ratio)
    right = round((corner.x() + control.width()) * ratio)
    assert 0 <= top < bottom <= image.shape[0]
    assert 0 <= left < right <= image.shape[1]
    return image[top:bottom, left:right, :3]


def test_screenshot(make_napari_viewer, docked, wait_task, tmp_path, brain):
    # A shown viewer: a hidden one renders a blank window.
    viewer, widget = docked(ExportZarrWidget, make_napari_viewer(show=True))
    viewer.add_image(brain, name="brain")
    widget.path_edit.value = str(tmp_path / "shot.zarr")
    wait_task(widget.export())
    image = viewer.screenshot(canvas_only=False)
    window = viewer.window._qt_window
    # The brain is drawn in the canvas, and each control of the dock is drawn where Qt
    # placed it: a region of one flat colour would be a control missing or not painted.
    canvas = drawn_region(image, viewer.window._qt_viewer.canvas.native, window)
    assert len(np.unique(canvas.reshape(-1, 3), axis=0)) > 100
    for control in (widget.path_edit.native, widget.chunks_edit, widget.export_button):
        assert control.isVisible()
        pixels = drawn_region(image, control, window).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 1, control
    from skimage.io import imsave

    imsave(tmp_path / "export_widget.png", image)
