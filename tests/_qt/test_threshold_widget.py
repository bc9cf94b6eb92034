"""The Threshold mask dock widget in a real viewer: preview, outputs, Otsu, counts, bad input."""

from __future__ import annotations

import threading

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
from napari.layers import Labels
from skimage import io
from skimage.filters import threshold_otsu

from napari_bigvol._models._layers import Scope
from napari_bigvol._models.broadcast import threshold_broadcast
from napari_bigvol._qt.threshold_widget import ThresholdMaskWidget


def settle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget._draw_timer.isActive(), timeout=5000)


@pytest.fixture
def anatomical(nibabel_data):
    """nibabel's real anatomical MRI (int16), as a (z, y, x) numpy volume."""
    image = nib.load(nibabel_data / "anatomical.nii")
    return np.asarray(image.dataobj).transpose(2, 1, 0)


def add_mri(viewer, volume, **kwargs):
    return viewer.add_image(
        volume,
        name="mri",
        scale=(3.0, 2.0, 2.0),
        translate=(10.0, -5.0, 7.0),
        axis_labels=("z", "y", "x"),
        units=("mm", "mm", "mm"),
        **kwargs,
    )


def test_slider_spans_the_value_range_without_a_full_read(docked, qtbot):
    viewer, widget = docked(ThresholdMaskWidget)
    reads = []

    def load(block_id=None):
        reads.append(block_id)
        return np.full((1, 32, 32), block_id[0] * 10, np.uint16)

    volume = da.map_blocks(load, chunks=((1,) * 50, (32,), (32,)), dtype=np.uint16)
    viewer.add_image(volume, name="lazy", contrast_limits=(0, 490))
    settle(qtbot, widget)
    low, high = widget.value_range
    assert (low, high) == (0.0, 490.0)
    assert widget.threshold_slider.minimum() == low
    assert widget.threshold_slider.maximum() == high
    assert len(reads) < 50  # napari's displayed plane and a few sampled blocks, not the volume


def test_preview_follows_slider_mode_and_scroll(docked, qtbot, anatomical):
    viewer, widget = docked(ThresholdMaskWidget)
    layer = add_mri(viewer, anatomical)
    widget.mode = "below"
    widget.threshold = 6000
    viewer.dims.set_current_step(0, 12)
    settle(qtbot, widget)
    preview = widget.preview_layer
    assert isinstance(preview, Labels)
    # The mask of the plane napari shows, one plane thick on that plane.
    assert preview.data.shape == (1, *anatomical.shape[1:])
    np.testing.assert_array_equal(preview.data[0], anatomical[12] < 6000)
    np.testing.assert_array_equal(preview.scale, layer.scale)
    np.testing.assert_array_equal(preview.translate, (10.0 + 12 * 3.0, -5.0, 7.0))
    plane = anatomical[12] < 6000
    percent = plane.mean() * 100
    expected = f"visible slice: {percent:.5g}% masked, {plane.sum():,} of {plane.size:,}"
    assert widget.stats_label.text().startswith(expected)
    assert f"{plane.sum() * 4.0:.6g} mm²" in widget.stats_label.text()
    # Moving the slider updates the same preview layer.
    widget.threshold_slider.setValue(3000.0)
    settle(qtbot, widget)
    assert widget.threshold == 3000.0
    np.testing.assert_array_equal(preview.data[0], anatomical[12] < 3000)
    # Scrolling recounts the new slice and moves the preview to it.
    viewer.dims.set_current_step(0, 3)
    settle(qtbot, widget)
    assert widget.preview_layer is preview
    np.testing.assert_array_equal(preview.data[0], anatomical[3] < 3000)
    np.testing.assert_array_equal(preview.translate, (10.0 + 3 * 3.0, -5.0, 7.0))
    assert f"{(anatomical[3] < 3000).sum():,} of" in widget.stats_label.text()
    # The source layer stays chosen and selected.
    assert widget.layer is layer
    assert viewer.layers.selection.active is layer


@pytest.mark.parametrize("chunks", [(1, 41, 33), (5, 20, 16)])
def test_whole_volume_outputs_are_lazy_and_placed_on_the_source(
    docked, qtbot, wait_task, anatomical, chunks
):
    viewer, widget = docked(ThresholdMaskWidget)
    layer = add_mri(viewer, da.from_array(anatomical, chunks=chunks))
    widget.scope = Scope.VOLUME
    widget.threshold = 5000.5
    widget.masked_image_check.setChecked(True)
    widget.create_button.click()
    mask_layer = viewer.layers["mri > 5000.5 mask"]
    masked_layer = viewer.layers["mri masked > 5000.5"]
    assert isinstance(mask_layer, Labels)
    assert isinstance(mask_layer.data, da.Array)
    assert isinstance(masked_layer.data, da.Array)
    expected_mask = anatomical > 5000.5
    np.testing.assert_array_equal(np.asarray(mask_layer.data), expected_mask)
    np.testing.assert_array_equal(np.asarray(masked_layer.data), anatomical * expected_mask)
    for output in (mask_layer, masked_layer):
        np.testing.assert_array_equal(output.scale, layer.scale)
        np.testing.assert_array_equal(output.translate, layer.translate)
        assert tuple(output.axis_labels) == ("z", "y", "x")
        assert [str(u) for u in output.units] == ["millimeter"] * 3
    assert widget.layer is layer
    (task,) = widget.tasks
    wait_task(task)
    count = int(expected_mask.sum())
    volume = count * 12.0  # 3 mm x 2 mm x 2 mm voxels
    line = widget.stats_label.text().splitlines()[-1]
    assert line == (
        f"whole volume: {expected_mask.mean() * 100:.5g}% masked, {count:,} of "
        f"{anatomical.size:,} voxels, {volume:.6g} mm³"
    )
    assert widget.message.text() == "Masked volume of 'mri': done."


def test_visible_slice_outputs_are_planes(docked, qtbot, anatomical):
    viewer, widget = docked(ThresholdMaskWidget)
    add_mri(viewer, anatomical)
    viewer.dims.set_current_step(0, 9)
    widget.mode = "below"
    widget.threshold = 125
    widget.masked_image_check.setChecked(True)
    widget.create_button.click()
    mask = viewer.layers["mri < 125 mask (slice)"]
    masked = viewer.layers["mri masked < 125 (slice)"]
    # The source's axes, one plane thick at z index 9: napari draws them on that plane only.
    np.testing.assert_array_equal(mask.data, (anatomical[9] < 125)[np.newaxis])
    np.testing.assert_array_equal(
        masked.data, np.where(anatomical[9] < 125, anatomical[9], 0)[np.newaxis]
    )
    for output in (mask, masked):
        np.testing.assert_array_equal(output.scale, (3.0, 2.0, 2.0))
        np.testing.assert_array_equal(output.translate, (10.0 + 9 * 3.0, -5.0, 7.0))
        assert not output._slice.empty
    assert widget.tasks == []  # nothing to count in the background
    viewer.dims.set_current_step(0, 10)
    assert mask._slice.empty
    assert masked._slice.empty
    viewer.dims.set_current_step(0, 9)
    assert not mask._slice.empty


def test_multiscale_outputs_mask_every_level(docked, qtbot, wait_task):
    viewer, widget = docked(ThresholdMaskWidget)
    base = np.random.default_rng(1).integers(0, 1000, (4, 128, 128)).astype(np.uint16)
    levels = [da.from_array(base), da.from_array(base[:, ::2, ::2])]
    viewer.add_image(levels, multiscale=True, name="pyramid")
    widget.scope = Scope.VOLUME
    widget.threshold = 500
    widget.create_button.click()
    mask = viewer.layers["pyramid > 500 mask"]
    assert mask.multiscale
    for level, source in zip(mask.data, levels, strict=True):
        np.testing.assert_array_equal(np.asarray(level), np.asarray(source) > 500)
    wait_task(widget.tasks[0])
    assert f"{int((base > 500).sum()):,} of {base.size:,}" in widget.stats_label.text()


def test_otsu_from_the_whole_volume_histogram(docked, qtbot, wait_task, skimage_data):
    viewer, widget = docked(ThresholdMaskWidget)
    stack = io.imread(skimage_data / "multipage.tif")
    viewer.add_image(da.from_array(stack, chunks=(1, *stack.shape[1:])), name="pages")
    widget.mode = "below"
    widget.otsu_button.click()
    (task,) = widget.tasks
    wait_task(task)
    assert widget.threshold == pytest.approx(threshold_otsu(stack))
    assert widget.mode == "below"  # Otsu sets the threshold, never silently the mode
    assert widget.message.text() == (
        f"Otsu threshold of 'pages': {widget.threshold:g} (keep below; mode unchanged)."
    )


def test_threshold_is_shared_with_the_histogram(docked, qtbot, anatomical):
    viewer, widget = docked(ThresholdMaskWidget)
    layer = add_mri(viewer, anatomical)
    widget.threshold = 777
    assert threshold_broadcast().get(layer) == 777


def test_threshold_outside_the_data_range(docked, qtbot, skimage_data):
    viewer, widget = docked(ThresholdMaskWidget)
    ihc = io.imread(skimage_data / "ihc.png")[..., 0]
    viewer.add_image(ihc, name="ihc red")
    widget.threshold = 300
    settle(qtbot, widget)
    assert widget.note.text() == (
        "Threshold 300 is above the value range of layer 'ihc red' (0 to 255): "
        "the mask will probably be empty."
    )
    widget.mode = "below"
    settle(qtbot, widget)
    assert widget.note.text().endswith("the mask will probably be everything.")
    widget.threshold = 100
    settle(qtbot, widget)
    assert widget.note.text() == ""


def test_rgb_layer_is_refused(docked, qtbot, skimage_data):
    viewer, widget = docked(ThresholdMaskWidget)
    viewer.add_image(io.imread(skimage_data / "astronaut.png"), name="astronaut", rgb=True)
    settle(qtbot, widget)
    expected = (
        "Layer 'astronaut' is RGB: split it into channels first (Split channels) "
        "and threshold one channel."
    )
    assert widget.note.text() == expected
    widget.create_button.click()
    assert widget.message.text() == ""  # the refusal shows once, in the note
    assert widget.note.text() == expected
    assert widget.preview_layer is None
    assert len(viewer.layers) == 1


def test_no_layer_and_no_output(docked, qtbot, anatomical):
    viewer, widget = docked(ThresholdMaskWidget)
    widget.create_button.click()
    assert widget.message.text() == "No image layer selected: add or select one first."
    add_mri(viewer, anatomical)
    widget.mask_check.setChecked(False)
    widget.create_button.click()
    assert widget.message.text() == "Choose an output: mask, masked image or both."


def test_two_dimensional_layer_with_whole_volume_scope(docked, qtbot, skimage_data):
    viewer, widget = docked(ThresholdMaskWidget)
    ihc = io.imread(skimage_data / "ihc.png")[..., 1]
    viewer.add_image(ihc, name="flat")
    widget.scope = Scope.VOLUME
    widget.threshold = 125
    widget.mode = "below"
    settle(qtbot, widget)
    assert widget.note.text() == "Layer 'flat' is 2-D: its whole volume is the visible slice."
    widget.create_button.click()
    np.testing.assert_array_equal(viewer.layers["flat < 125 mask (slice)"].data, ihc < 125)


def test_layer_removed_while_counting(docked, qtbot, wait_task):
    viewer, widget = docked(ThresholdMaskWidget)
    gate = threading.Event()

    def load(block_id=None):
        gate.wait(0.05)
        return np.full((1, 16, 16), block_id[0], np.uint16)

    volume = da.map_blocks(load, chunks=((1,) * 400, (16,), (16,)), dtype=np.uint16)
    layer = viewer.add_image(volume, name="doomed", contrast_limits=(0, 400))
    widget.scope = Scope.VOLUME
    widget.preview_check.setChecked(False)
    widget.threshold = 10
    widget.create_button.click()
    (task,) = widget.tasks
    viewer.layers.remove(layer)
    wait_task(task)
    assert task.outcome == "cancelled"
    assert widget.message.text() == (
        "Masked volume of 'doomed': cancelled because layer 'doomed' was removed."
    )


def test_closing_removes_the_preview(docked, qtbot, anatomical):
    viewer, widget = docked(ThresholdMaskWidget)
    layer = add_mri(viewer, anatomical)
    settle(qtbot, widget)
    assert widget.preview_layer in viewer.layers
    widget.close()
    assert [each.name for each in viewer.layers] == ["mri"]
    assert threshold_broadcast().get(layer) is None


def test_whole_volume_outputs_of_an_in_memory_layer_are_lazy_too(
    docked, qtbot, wait_task, anatomical
):
    viewer, widget = docked(ThresholdMaskWidget)
    add_mri(viewer, anatomical)
    widget.scope = Scope.VOLUME
    widget.threshold = 4000
    widget.masked_image_check.setChecked(True)
    widget.create_button.click()
    mask = viewer.layers["mri > 4000 mask"].data
    masked = viewer.layers["mri masked > 4000"].data
    # No second copy of the volume: dask views computed plane by plane when shown.
    assert isinstance(mask, da.Array)
    assert isinstance(masked, da.Array)
    assert mask.numblocks[0] == anatomical.shape[0]
    np.testing.assert_array_equal(np.asarray(masked), np.where(anatomical > 4000, anatomical, 0))
    wait_task(widget.tasks[0])
    assert f"{int((anatomical > 4000).sum()):,} of" in widget.stats_label.text()


@pytest.mark.parametrize("budget", ["16KiB", "64MiB"])
def test_three_d_display_is_counted_live_only_within_the_3d_budget(
    docked, qtbot, anatomical, monkeypatch, budget
):
    from napari_bigvol._models import _layers

    monkeypatch.setattr(_layers, "LIVE_LIMIT", 5000)  # above a plane, below the volume
    monkeypatch.setenv("NAPARI_BIGVOL_3D_BUDGET", budget)
    viewer, widget = docked(ThresholdMaskWidget)
    add_mri(viewer, anatomical)
    settle(qtbot, widget)
    assert widget.stats_label.text().startswith("visible slice:")
    viewer.dims.ndisplay = 3
    settle(qtbot, widget)
    # napari loaded this single-scale volume whole for 3-D (68 kB of int16).
    if budget == "64MiB":  # within the budget: counted from napari's values, no read
        assert widget.note.text() == ""
        assert widget.stats_label.text().startswith("visible slice:")
        assert isinstance(widget.preview_layer.data, np.ndarray)
    else:  # over it: left to the lazy preview and the background count
        assert widget.note.text() == "3-D display: create the layers to count the whole volume."
        assert widget.stats_label.text() == ""
        assert isinstance(widget.preview_layer.data, da.Array)  # napari renders the lazy mask
    viewer.dims.ndisplay = 2
    settle(qtbot, widget)
    assert widget.preview_layer.data.shape == (1, *anatomical.shape[1:])


def test_zooming_a_pyramid_recounts_the_displayed_level(docked, qtbot, make_napari_viewer):
    # Shown: napari picks a pyramid level from the canvas size and zoom only when it draws.
    viewer, widget = docked(ThresholdMaskWidget, viewer=make_napari_viewer(show=True))
    base = np.random.default_rng(2).integers(0, 1000, (2, 1024, 1024)).astype(np.uint16)
    levels = [base, base[:, ::2, ::2], base[:, ::4, ::4], base[:, ::8, ::8]]
    layer = viewer.add_image(levels, multiscale=True, name="pyramid")
    widget.threshold = 500
    settle(qtbot, widget)
    before = layer.data_level
    camera = viewer.scene.camera
    camera.zoom = camera.zoom * 16
    qtbot.waitUntil(lambda: layer.data_level != before, timeout=5000)
    settle(qtbot, widget)
    plane = levels[layer.data_level][0] > 500
    assert widget.stats_label.text().startswith(
        f"visible slice: {plane.mean() * 100:.5g}% masked, {plane.sum():,} of {plane.size:,}"
    )
