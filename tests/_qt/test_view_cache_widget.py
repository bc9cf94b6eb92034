"""The View cache dock and offers, in a real viewer: builds, switches, 3-D within budget.

File opens are counted; nothing is timed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_bigvol as bv
from napari_bigvol._qt.view_cache_widget import (
    ViewCacheOffers,
    ViewCacheWidget,
    is_big_uncached,
    switch_to_cache,
)
from napari_bigvol.errors import OperationError
from napari_bigvol.ops import view_cache as vc


@pytest.fixture
def slices(tmp_path: Path) -> tuple[Path, np.ndarray]:
    volume = np.random.default_rng(3).integers(0, 4000, (48, 40, 56)).astype(np.uint16)
    folder = tmp_path / "data" / "slices"
    folder.mkdir(parents=True)
    for index, plane in enumerate(volume):
        tifffile.imwrite(folder / f"s_{index:03d}.tif", plane)
    return folder, volume


def test_the_dock_builds_the_cache_and_switches_the_layer_keeping_its_settings(
    docked, slices, cache_dir, wait_task, open_counter, notifications
):
    folder, volume = slices
    viewer, widget = docked(ViewCacheWidget)
    [(data, kwargs, _)] = bv.read(folder)
    layer = viewer.add_image(data, **kwargs)
    viewer.add_image(np.zeros((4, 4)), name="above")
    layer.contrast_limits = (100, 3000)
    layer.colormap = "magma"
    layer.opacity = 0.6
    layer.gamma = 0.8
    viewer.layers.selection.active = layer
    assert widget.layer_combo.currentText() == "slices"
    task = widget.build()
    wait_task(task)
    assert task.outcome == "done", task.error
    cached = viewer.layers[0]
    assert cached is layer  # switched in place: widgets following it keep working
    assert cached.name == "slices"
    assert [lay.name for lay in viewer.layers] == ["slices", "above"]
    assert cached.multiscale
    assert cached.contrast_limits == [100, 3000]
    assert cached.colormap.name == "magma"
    assert cached.opacity == pytest.approx(0.6)
    assert cached.gamma == pytest.approx(0.8)
    assert viewer.layers.selection.active is cached
    assert cached.metadata["bigvol"]["view_cache"].startswith(str(cache_dir))
    assert "now reads from the view cache" in widget.status.text()
    assert not notifications.errors
    # A sagittal view now reads no source file.
    with open_counter.watch(folder) as opened:
        viewer.dims.order = (2, 0, 1)
        viewer.dims.set_current_step(2, 20)
        plane = np.asarray(cached.data[0][:, :, 20])
    assert sum(opened.values()) == 0
    np.testing.assert_array_equal(plane, volume[:, :, 20])


def test_a_side_view_of_a_big_layer_offers_the_cache(
    make_napari_viewer, slices, cache_dir, wait_task, monkeypatch, notifications
):
    folder, _ = slices
    monkeypatch.setenv(vc.BUDGET_3D_ENV, "1kB")  # every layer is "big"
    viewer = make_napari_viewer()
    [layer] = viewer.open(folder, plugin="napari-bigvol")
    assert is_big_uncached(layer)
    offers = ViewCacheOffers.install(viewer)
    viewer.dims.order = (1, 0, 2)  # coronal
    assert any("view cache" in m for m in notifications.messages())
    from napari.utils.notifications import notification_manager

    [(label, action)] = notification_manager.records[-1].actions
    assert label == "Build view cache"
    action()
    wait_task(offers.tasks[-1])
    assert offers.tasks[-1].outcome == "done", offers.tasks[-1].error
    assert "view_cache" in viewer.layers["slices"].metadata["bigvol"]
    # Offered once per layer: no new offer for the next change.
    count = len(notifications.messages())
    viewer.dims.order = (2, 0, 1)
    assert len(notifications.messages()) == count


def test_3d_of_an_uncached_big_folder_loads_a_level_within_the_budget(
    make_napari_viewer, slices, cache_dir, monkeypatch, open_counter
):
    folder, volume = slices
    budget = volume.nbytes // 6
    monkeypatch.setenv(vc.BUDGET_3D_ENV, str(budget))
    viewer = make_napari_viewer()
    [layer] = viewer.open(folder, plugin="napari-bigvol")
    assert layer.multiscale
    with open_counter.watch(folder) as opened:
        viewer.dims.ndisplay = 3
    shown = np.asarray(layer._slice.image.raw)
    assert shown.ndim == 3
    assert shown.nbytes <= budget
    # One streamed pass: no slice twice (napari's dask cache may already hold a few).
    assert set(opened.values()) == {1}


def test_3d_from_the_cache_loads_its_smallest_level_within_the_budget(
    make_napari_viewer, slices, cache_dir, monkeypatch, open_counter
):
    folder, volume = slices
    bv.read(folder, cache=True)
    budget = volume.nbytes // 6
    monkeypatch.setenv(vc.BUDGET_3D_ENV, str(budget))
    viewer = make_napari_viewer()
    with open_counter.watch(folder) as opened:
        [layer] = viewer.open(folder, plugin="napari-bigvol")  # reused across sessions
        viewer.dims.ndisplay = 3
    assert "view_cache" in layer.metadata["bigvol"]
    assert np.asarray(layer._slice.image.raw).nbytes <= budget
    assert sum(opened.values()) <= 2  # a header and the contrast-limit plane


def test_switching_a_removed_layer_fails_clearly(make_napari_viewer, slices, cache_dir):
    folder, _ = slices
    viewer = make_napari_viewer()
    [(data, kwargs, _)] = bv.read(folder)
    layer = viewer.add_image(data, **kwargs)
    viewer.layers.remove(layer)
    with pytest.raises(OperationError, match="was removed before its view cache was ready"):
        switch_to_cache(viewer, layer, bv.read(folder, cache=True))


def test_clear_keeps_entries_in_use(docked, slices, cache_dir, tmp_path):
    folder, volume = slices
    other = tmp_path / "other.tif"
    tifffile.imwrite(other, volume[:8])
    viewer, widget = docked(ViewCacheWidget)
    bv.read(other, cache=True)
    [(levels, kwargs, _)] = bv.read(folder, cache=True)
    viewer.add_image(levels, **kwargs)
    assert widget.clear() > 0
    assert [e.source for e in vc.cache_entries()] == [[str(folder)]]
    assert "in use kept" in widget.status.text()


def test_scrolling_an_uncached_big_folder_reads_only_the_current_plane(
    make_napari_viewer, slices, cache_dir, monkeypatch, open_counter
):
    folder, volume = slices
    # A level of a third of the volume, with napari's texture copies; planes of 8+ voxels.
    monkeypatch.setenv(vc.BUDGET_3D_ENV, str(volume.nbytes * vc.TEXTURE_COPIES // 3))
    monkeypatch.setattr(vc, "SMALLEST_PLANE", 8)
    viewer = make_napari_viewer()
    [layer] = viewer.open(folder, plugin="napari-bigvol")
    assert layer.multiscale  # the level for 3-D; napari draws thumbnails from it
    assert layer.data[1].shape == (48, 20, 28)  # halved in the plane only
    for step in (30, 31, 32):
        with open_counter.watch(folder) as opened:
            viewer.dims.set_current_step(0, step)
        # The view and napari's thumbnail (drawn from the smallest level) each read the
        # current plane; no other plane is touched. A shared plane cache would make it one.
        assert set(opened) == {str(folder / f"s_{step:03d}.tif")}
        assert sum(opened.values()) <= 2


def test_napari_reads_a_cached_side_plane_in_grouped_tasks(
    make_napari_viewer, tmp_path, cache_dir, open_counter, task_count
):
    # napari slices with dask's fusion off: dask's own graph of a plane runs a read and a
    # getitem task for every 64^3 cube the plane crosses (4 x 4 here, so 33 tasks and a
    # join), and napari reads the plane twice (the part in view, and its thumbnail).
    volume = np.random.default_rng(5).integers(0, 4000, (256, 256, 96)).astype(np.uint16)
    folder = tmp_path / "data" / "tall"
    folder.mkdir(parents=True)
    for index, plane in enumerate(volume):
        tifffile.imwrite(folder / f"s_{index:03d}.tif", plane)
    [(levels, kwargs, _)] = bv.read(folder, cache=True)
    viewer = make_napari_viewer()
    viewer.add_image(levels, **kwargs)
    viewer.dims.order = (2, 0, 1)  # sagittal: z up, y across
    with open_counter.watch(cache_dir) as opened, task_count:
        viewer.dims.set_current_step(2, 70)
    # napari reads the part of the plane in view, then the whole plane for its thumbnail:
    # every cube of the plane is opened, none more than twice.
    assert len(opened) == 4 * 4
    assert max(opened.values()) <= 2
    assert all(Path(path).name == str(70 // 64) for path in opened)
    assert task_count.tasks < 2 * 4 * 4 + 1  # fewer than dask's own graph for one of them
    np.testing.assert_array_equal(np.asarray(levels[0][:, :, 70]), volume[:, :, 70])
