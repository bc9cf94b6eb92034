"""The Orthogonal views dock in a real viewer: planes, clicks, layer mirroring, file reads."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
import tifffile
from dask.callbacks import Callback
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QDockWidget

import napari_bigvol
from napari_bigvol._display import camera_orientation
from napari_bigvol._qt.ortho_widget import (
    MIN_CANVAS,
    NEEDS_3D,
    READING,
    OrthogonalViewsWidget,
)

# Not a cube, so every plane has its own shape and a transposed plane cannot pass.
SHAPE = (12, 40, 30)


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 4000, SHAPE, dtype=np.uint16)


@pytest.fixture
def tiff_folder(tmp_path, volume) -> Path:
    folder = tmp_path / "axial"
    folder.mkdir()
    for index, plane in enumerate(volume):
        tifffile.imwrite(folder / f"slice_{index:03d}.tif", plane)
    return folder


@pytest.fixture
def ortho(make_napari_viewer, qtbot):
    """``ortho(path=None)`` -> (viewer, widget): a shown viewer, the file opened, docked."""

    made = []

    def make(path: Path | None = None, **open_kwargs):
        viewer = make_napari_viewer(show=True)
        if path is not None:
            viewer.open(str(path), plugin="napari-bigvol", **open_kwargs)
        widget = OrthogonalViewsWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Orthogonal views")
        qtbot.wait(10)  # let the dock lay out
        settle(widget, qtbot)
        made.append(widget)
        return viewer, widget

    yield make
    # A plane still being read is handed to its canvas through the event loop: let it
    # arrive, or the queued hand-over keeps the canvas alive past napari's leak check.
    for widget in made:
        if not widget._closed:
            settle(widget, qtbot)
        widget.close_views()
    qtbot.wait(50)  # hand-overs of planes no longer wanted are queued too


@pytest.fixture
def no_dask_cache(make_napari_viewer):
    """Switch off napari's opportunistic dask cache, so every plane shown is a plane read.

    (make_napari_viewer resets the settings after the test.)
    """
    from napari.settings import get_settings

    get_settings().application.dask.enabled = False


def settle(widget, qtbot) -> None:
    """Wait until both side views show their planes (read on a worker thread)."""
    qtbot.waitUntil(lambda: widget.loaded, timeout=10_000)


def pixel_of(canvas, world_rows_cols) -> tuple[float, float]:
    """Canvas pixel (x, y) where a napari canvas draws world (row, col)."""
    transform = canvas.view.transform * canvas.view.scene.transform
    x, y = transform.map([world_rows_cols[1], world_rows_cols[0]])[:2]
    return (float(x), float(y))


def click(canvas, pixel, *, drag_to=None) -> None:
    """Press and release the left button on a napari canvas, through vispy's events."""
    events = canvas._scene_canvas.events
    events.mouse_press(pos=pixel, button=1, modifiers=())
    if drag_to is not None:
        events.mouse_move(pos=drag_to, button=1, modifiers=(), buttons=[1])
    events.mouse_release(pos=drag_to or pixel, button=1, modifiers=())


def displayed_plane(layer) -> np.ndarray:
    """The plane a layer holds for its canvas now (napari's sliced view, not recomputed)."""
    return np.asarray(layer._slice.image.raw)


def expected_planes(volume, layer, point) -> tuple[np.ndarray, np.ndarray]:
    """numpy slicing of the source through ``point``: the z-x and z-y planes."""
    y, x = np.round(layer.world_to_data(point)[1:]).astype(int)
    return volume[:, y, :], volume[:, :, x]


def test_dock_opens_from_the_plugins_menu(make_napari_viewer, volume):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="volume")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-bigvol", "Orthogonal views")
    assert type(widget).__name__ == "OrthogonalViewsWidget"
    assert widget.viewer is viewer  # napari's proxy unwrapped
    assert [[layer.name for layer in p.viewer_model.layers] for p in widget.panels] == [
        ["volume"],
        ["volume"],
    ]


def test_the_dock_cannot_float_its_gl_canvases(make_napari_viewer, volume, qtbot):
    """Floating reparents the side canvases; under Mesa that aborted napari (vispy #1759)."""
    viewer = make_napari_viewer(show=True)
    viewer.add_image(volume, name="volume")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-bigvol", "Orthogonal views")
    qtbot.wait(10)
    floatable = QDockWidget.DockWidgetFeature.DockWidgetFloatable
    assert not dock.features() & floatable  # no drag-out, no double-click float
    assert not dock.titleBarWidget().float_button.isVisible()  # napari's own button
    viewer.window._qt_window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    qtbot.wait(10)  # napari rebuilds the title bar for the new side
    assert not dock.titleBarWidget().float_button.isVisible()
    assert not dock.isFloating()
    widget.close_views()


def test_side_views_show_the_planes_through_the_point(ortho, tiff_folder, volume, qtbot):
    viewer, widget = ortho(tiff_folder)
    layer = viewer.layers[0]
    coronal, sagittal = (panel.viewer_model.layers[0] for panel in widget.panels)
    assert [panel.plane.displayed for panel in widget.panels] == [(0, 2), (0, 1)]
    for point in [(5, 17, 11), (0, 0, 0), (11, 39, 29)]:
        viewer.dims.point = point
        settle(widget, qtbot)
        expected_coronal, expected_sagittal = expected_planes(volume, layer, point)
        np.testing.assert_array_equal(displayed_plane(coronal), expected_coronal)
        np.testing.assert_array_equal(displayed_plane(sagittal), expected_sagittal)
        assert [panel.caption.text() for panel in widget.panels] == [
            f"z-x plane at y = {point[1]}",
            f"z-y plane at x = {point[2]}",
        ]
    # The copies share the reader's lazy array: nothing was computed into memory.
    assert coronal.data is layer.data
    assert sagittal.data is layer.data


@pytest.mark.parametrize("panel_index", [0, 1])
def test_a_click_in_a_side_view_moves_the_point_everywhere(
    ortho, tiff_folder, volume, panel_index, qtbot
):
    viewer, widget = ortho(tiff_folder)
    viewer.dims.point = (3, 10, 7)
    panel = widget.panels[panel_index]
    rows, cols = panel.plane.displayed
    kept = panel.plane.slice_axis
    canvas = panel.qt_viewer.canvas
    click(canvas, pixel_of(canvas, (8.3, 20.2)))
    # napari's own mapping of that pixel to the world
    position = panel.viewer_model.cursor.position
    expected = list(viewer.dims.point)
    assert expected[rows] == round(position[rows]) == 8
    assert expected[cols] == round(position[cols]) == 20
    assert expected[kept] == (3, 10, 7)[kept]  # the clicked view stays on its plane
    point = tuple(viewer.dims.point)
    assert widget.model.point == point
    for other in widget.panels:  # each side view is on its plane through the point
        axis = other.plane.slice_axis
        assert other.dims.point[axis] == point[axis]
    # ...and the other side view now shows the plane through the clicked point
    settle(widget, qtbot)
    coronal, sagittal = expected_planes(volume, viewer.layers[0], point)
    other = widget.panels[1 - panel_index].viewer_model.layers[0]
    np.testing.assert_array_equal(displayed_plane(other), (sagittal, coronal)[panel_index])


def test_a_click_on_the_main_canvas_moves_the_point(ortho, tiff_folder, volume, qtbot):
    viewer, widget = ortho(tiff_folder)
    viewer.dims.point = (4, 10, 7)
    canvas = viewer.window._qt_viewer.canvas
    click(canvas, pixel_of(canvas, (30, 25)))
    assert tuple(viewer.dims.point) == (4, 30, 25)
    assert [panel.dims.point[panel.plane.slice_axis] for panel in widget.panels] == [30, 25]
    settle(widget, qtbot)
    coronal, sagittal = expected_planes(volume, viewer.layers[0], (4, 30, 25))
    panels = [panel.viewer_model.layers[0] for panel in widget.panels]
    np.testing.assert_array_equal(displayed_plane(panels[0]), coronal)
    np.testing.assert_array_equal(displayed_plane(panels[1]), sagittal)


def test_drags_pan_and_other_modes_keep_their_clicks(ortho, tiff_folder):
    viewer, _widget = ortho(tiff_folder)
    viewer.dims.point = (4, 10, 7)
    canvas = viewer.window._qt_viewer.canvas
    start = pixel_of(canvas, (30, 25))
    click(canvas, start, drag_to=(start[0] + 40, start[1]))
    assert tuple(viewer.dims.point) == (4, 10, 7)
    labels = viewer.add_labels(np.zeros(SHAPE, np.uint8), name="mask")
    labels.mode = "paint"
    click(canvas, pixel_of(canvas, (30, 25)))
    assert tuple(viewer.dims.point)[1:] == (10, 7)  # the click painted instead
    assert labels.data.any()


def test_opening_the_dock_reads_each_side_plane_once(
    make_napari_viewer, tiff_folder, open_counter, no_dask_cache, qtbot
):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(tiff_folder), plugin="napari-bigvol")
    with open_counter.watch(tiff_folder) as opened:
        widget = OrthogonalViewsWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Orthogonal views")
        qtbot.wait(10)
        settle(widget, qtbot)
    # Two side planes across every slice file. The point moves to the centre of the main
    # canvas, so napari slices the main plane once more (its dask cache, off here,
    # usually serves that).
    expected = {str(path): 2 for path in sorted(tiff_folder.iterdir())}
    expected[str(tiff_folder / f"slice_{viewer.dims.current_step[0]:03d}.tif")] += 1
    assert dict(opened) == expected
    center = viewer.scene.camera.center
    assert viewer.dims.point[1:] == (round(center[-2]), round(center[-1]))


def test_the_dock_starts_at_the_centre_of_the_main_view(ortho, tiff_folder):
    # After a change of scale napari's point on the displayed axes sits at an edge.
    viewer, widget = ortho()
    layer = viewer.open(str(tiff_folder), plugin="napari-bigvol")[0]
    widget.close_views()
    layer.scale = (1.0, 0.4, 0.4)
    viewer.reset_view()
    widget = OrthogonalViewsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Orthogonal views 2")
    y, x = viewer.scene.camera.center[-2:]
    assert widget.model.point[1:] == pytest.approx((y, x), abs=0.21)  # half a voxel


def test_scrolling_the_main_viewer_moves_the_crosshair_not_the_side_planes(
    ortho, tiff_folder, open_counter, no_dask_cache, qtbot
):
    viewer, widget = ortho(tiff_folder)
    viewer.dims.point = (4, 10, 7)
    settle(widget, qtbot)
    with open_counter.watch(tiff_folder) as opened:
        viewer.dims.set_current_step(0, 5)
    # the main canvas reads plane 5; neither side plane changed, so they read nothing
    assert dict(opened) == {str(tiff_folder / "slice_005.tif"): 1}
    assert widget.model.point == (5, 10, 7)
    for panel in widget.panels:
        segments = panel.crosshair.line.pos
        # the horizontal line of each side view is at the new z
        np.testing.assert_allclose(segments[:2, 1], [5, 5])
    main_lines = widget._main_crosshair.line.pos
    np.testing.assert_allclose(main_lines[:2, 1], [10, 10])  # at y, across
    np.testing.assert_allclose(main_lines[2:, 0], [7, 7])  # at x, down


def test_a_side_click_reads_only_the_planes_that_changed(
    ortho, tiff_folder, open_counter, make_napari_viewer, no_dask_cache, qtbot
):
    # Baseline: the same point change in a viewer without the dock.
    plain = make_napari_viewer()
    plain.open(str(tiff_folder), plugin="napari-bigvol")
    plain.dims.point = (4, 10, 7)
    with open_counter.watch(tiff_folder) as alone:
        plain.dims.point = (8, 10, 20)
    viewer, widget = ortho(tiff_folder)
    viewer.dims.point = (4, 10, 7)
    settle(widget, qtbot)
    coronal = widget.panels[0]
    canvas = coronal.qt_viewer.canvas
    with open_counter.watch(tiff_folder) as opened:
        click(canvas, pixel_of(canvas, (8, 20)))  # z = 8, x = 20 on the z-x plane at y = 10
        settle(widget, qtbot)
    assert widget.model.point == (8, 10, 20)
    # The main canvas reads plane 8 as it would alone; the z-y view at the new x reads
    # every file once; the clicked z-x view stays on its plane and reads nothing.
    assert dict(alone) == {str(tiff_folder / "slice_008.tif"): 1}
    expected = {str(path): 1 for path in sorted(tiff_folder.iterdir())}
    expected[str(tiff_folder / "slice_008.tif")] += 1
    assert dict(opened) == expected


def test_layers_and_their_display_are_mirrored(ortho, volume):
    viewer, widget = ortho()
    image = viewer.add_image(volume, name="volume", scale=(3.0, 1.0, 1.0))
    copies = [panel.viewer_model.layers["volume"] for panel in widget.panels]
    image.contrast_limits = (100, 900)
    image.colormap = "magma"
    image.visible = False
    image.opacity = 0.4
    image.gamma = 0.7
    for copy in copies:
        assert copy.contrast_limits == [100, 900]
        assert copy.colormap.name == "magma"
        assert not copy.visible
        assert copy.opacity == pytest.approx(0.4)
        assert copy.gamma == pytest.approx(0.7)
        np.testing.assert_array_equal(copy.scale, (3.0, 1.0, 1.0))
    labels = viewer.add_labels(np.zeros(SHAPE, np.uint8), name="mask")
    viewer.layers.move(1, 0)
    assert [[layer.name for layer in p.viewer_model.layers] for p in widget.panels] == [
        ["mask", "volume"]
    ] * 2
    labels.name = "brain mask"
    viewer.layers.remove(image)
    assert [[layer.name for layer in p.viewer_model.layers] for p in widget.panels] == [
        ["brain mask"]
    ] * 2
    # New data reach the copies, sharing the array.
    labels.data = np.ones(SHAPE, np.uint8)
    assert all(p.viewer_model.layers[0].data is labels.data for p in widget.panels)


def test_a_layer_switched_to_a_pyramid_in_place_is_followed(ortho, volume):
    # What the view cache does when its pyramid is ready: the same layer object turns
    # multiscale with new data, keeping its display settings.
    viewer, widget = ortho()
    image = viewer.add_image(volume, name="volume", contrast_limits=(0, 4000))
    copies = [panel.viewer_model.layers["volume"] for panel in widget.panels]
    levels = [volume, volume[::2, ::2, ::2]]
    image.multiscale = True
    image.data = levels
    for panel, copy in zip(widget.panels, copies, strict=True):
        assert panel.viewer_model.layers["volume"] is copy  # switched, not replaced
        assert copy.multiscale
        assert [level is source for level, source in zip(copy.data, levels, strict=True)] == [
            True,
            True,
        ]
    viewer.dims.point = (6, 20, 12)
    level = copies[0].data_level  # the level napari picked for the side canvas
    np.testing.assert_array_equal(displayed_plane(copies[0]), levels[level][:, 20 // 2**level])


def test_the_views_follow_the_main_dims_order(ortho, tiff_folder):
    viewer, widget = ortho(tiff_folder)
    viewer.dims.order = (1, 0, 2)  # a coronal main view: y sliced
    assert [panel.plane.displayed for panel in widget.panels] == [(1, 2), (1, 0)]
    assert [tuple(panel.dims.order) for panel in widget.panels] == [(0, 1, 2), (2, 1, 0)]


def test_the_side_cameras_copy_the_main_orientation(ortho, tiff_folder):
    viewer, widget = ortho(tiff_folder)
    viewer.scene.camera.orientation2d = ("up", "left")
    for panel in widget.panels:
        assert tuple(panel.viewer_model.scene.camera.orientation2d) == ("up", "left")


def test_two_dimensional_data_get_a_note(ortho):
    viewer, widget = ortho()
    viewer.add_image(np.zeros((20, 30)), name="flat")
    assert widget.note.text() == NEEDS_3D
    assert not widget.note.isHidden()
    assert all(panel.isHidden() for panel in widget.panels)
    viewer.add_image(np.zeros((4, 20, 30)), name="volume")
    assert widget.note.isHidden()
    assert not any(panel.isHidden() for panel in widget.panels)


def test_crosshair_checkbox_hides_every_crosshair(ortho, tiff_folder):
    viewer, widget = ortho(tiff_folder)
    lines = [widget._main_crosshair.line] + [panel.crosshair.line for panel in widget.panels]
    assert all(line.visible for line in lines)
    widget.crosshair_check.setChecked(False)
    assert not any(line.visible for line in lines)
    viewer.dims.ndisplay = 3
    widget.crosshair_check.setChecked(True)
    assert not widget._main_crosshair.line.visible  # no crosshair on a 3-D rendering
    assert all(panel.crosshair.line.visible for panel in widget.panels)


def test_closing_the_dock_releases_the_main_viewer(ortho, tiff_folder):
    viewer, widget = ortho(tiff_folder)
    callbacks = len(viewer.mouse_drag_callbacks)
    main_scene = viewer.window._qt_viewer.canvas.view.scene
    assert widget._main_crosshair.line.parent is main_scene
    viewer.window.remove_dock_widget(widget)  # what the dock's close button does
    assert len(viewer.mouse_drag_callbacks) == callbacks - 1
    assert widget._main_crosshair.line.parent is None
    viewer.dims.point = (2, 3, 4)  # nothing listens any more
    assert widget.model.point != (2, 3, 4)
    assert not hasattr(widget.panels[0], "qt_viewer")  # side canvases closed


def test_nifti_planes_in_world_millimetres(ortho, nibabel_data):
    path = nibabel_data / "anatomical.nii"
    viewer, widget = ortho(path)
    layer = viewer.layers[0]
    reference = np.asarray(nib.load(path).dataobj)
    coronal, sagittal = (panel.viewer_model.layers[0] for panel in widget.panels)
    # Same world placement as the main layer (scale and translate), so clicks line up.
    for copy in (coronal, sagittal):
        np.testing.assert_array_equal(copy.scale, layer.scale)
        np.testing.assert_array_equal(copy.translate, layer.translate)
    volume = np.asarray(layer.data)  # a 25 x 41 x 33 test file
    assert volume.size == reference.size
    expected_coronal, expected_sagittal = expected_planes(volume, layer, viewer.dims.point)
    np.testing.assert_array_equal(displayed_plane(coronal), expected_coronal)
    np.testing.assert_array_equal(displayed_plane(sagittal), expected_sagittal)
    # Upright like the main view: each side camera is the display convention's for its
    # plane, as napari-bigvol turns it for a main view showing that plane.
    codes = {"I→S": "S", "P→A": "A", "L→R": "R"}
    for panel, name in zip(widget.panels, ("Coronal", "Sagittal"), strict=True):
        shown = [codes[panel.dims.axis_labels[axis]] for axis in panel.dims.order]
        assert tuple(panel.viewer_model.scene.camera.orientation) == camera_orientation(shown)
        assert panel.caption.text().startswith(f"{name} at ")


def test_multiscale_ome_zarr_reads_only_the_displayed_chunks(
    ortho, tmp_path, open_counter, no_dask_cache
):
    volume = np.random.default_rng(1).integers(0, 255, (64, 640, 600), dtype=np.uint8)
    store = tmp_path / "volume.ome.zarr"
    napari_bigvol.export_zarr(volume, store, chunks=(16, 64, 64), scale=(2.0, 0.5, 0.5))
    viewer, widget = ortho(store)
    layer = viewer.layers[0]
    assert layer.multiscale
    coronal = widget.panels[0].viewer_model.layers[0]
    assert coronal.data is layer.data
    viewer.dims.point = (40.0, 100.0, 150.0)
    level = coronal.data_level
    chunk_files = [p for p in (store / str(level)).rglob("*") if p.is_file() and p.name[0] != "."]
    with open_counter.watch(store) as opened:
        canvas = widget.panels[1].qt_viewer.canvas
        click(canvas, pixel_of(canvas, (60.0, 200.0)))  # z-y view: moves z and y
    assert widget.model.point[:2] == (60.0, 200.0)
    # Each view reads one plane of chunks at its level, never the volume.
    read = sum(opened.values())
    assert 0 < read < len(chunk_files) / 2


def test_a_time_axis_is_shared_by_every_view(ortho, qtbot):
    series = np.random.default_rng(2).integers(0, 100, (3, 6, 20, 15), dtype=np.uint8)
    viewer, widget = ortho()
    viewer.add_image(series, name="series")
    assert [panel.plane.displayed for panel in widget.panels] == [(1, 3), (1, 2)]
    viewer.dims.point = (2, 3, 11, 9)
    settle(widget, qtbot)
    coronal, sagittal = (panel.viewer_model.layers[0] for panel in widget.panels)
    np.testing.assert_array_equal(displayed_plane(coronal), series[2, :, 11, :])
    np.testing.assert_array_equal(displayed_plane(sagittal), series[2, :, :, 9])
    assert [panel.dims.point[0] for panel in widget.panels] == [2, 2]


class GatedVolume:
    """A volume whose planes other than ``open_plane`` wait for ``gate``; counts reads.

    A side plane reads every z plane; the main canvas reads only ``open_plane``. So while
    the gate is shut, side planes cannot be read, and a click that waited for them would
    never return.
    """

    def __init__(self, volume: np.ndarray, open_plane: int) -> None:
        self.volume, self.open_plane = volume, open_plane
        self.shape, self.dtype, self.ndim = volume.shape, volume.dtype, volume.ndim
        self.gate = threading.Event()
        self.gate.set()
        self.reads: Counter[int] = Counter()  # completed reads, by z plane

    def __getitem__(self, key: tuple) -> np.ndarray:
        plane = key[0].start if isinstance(key[0], slice) else int(key[0])
        if plane != self.open_plane:
            self.gate.wait(timeout=30)
        self.reads[plane] += 1
        return self.volume[key]


def test_a_click_returns_before_the_side_planes_are_read(ortho, volume, qtbot):
    gated = GatedVolume(volume, open_plane=4)
    viewer, widget = ortho()
    viewer.add_image(da.from_array(gated, chunks=(1, -1, -1)), contrast_limits=(0, 4000))
    viewer.dims.point = (4, 10, 7)
    settle(widget, qtbot)
    canvas = viewer.window._qt_viewer.canvas
    clicks = [(30, 25), (20, 5), (35, 12), (8, 28), (25, 14)]
    gated.gate.clear()
    try:
        gated.reads.clear()
        for row, col in clicks:
            click(canvas, pixel_of(canvas, (row, col)))
            # The click returned and moved the point, while no side plane could be read.
            assert tuple(viewer.dims.point) == (4, row, col)
        assert not widget.loaded
        assert [panel.caption.text().endswith(READING) for panel in widget.panels] == [True] * 2
        assert sum(n for plane, n in gated.reads.items() if plane != 4) == 0
    finally:
        gated.gate.set()
    settle(widget, qtbot)
    coronal, sagittal = expected_planes(volume, viewer.layers[0], (4, *clicks[-1]))
    copies = [panel.viewer_model.layers[0] for panel in widget.panels]
    np.testing.assert_array_equal(displayed_plane(copies[0]), coronal)
    np.testing.assert_array_equal(displayed_plane(copies[1]), sagittal)
    assert not any(panel.caption.text().endswith(READING) for panel in widget.panels)
    # Superseded planes did not pile up: each side view read at most the plane it was
    # reading when the clicks began (stopped at its next chunk) and the last one,
    # against one plane per click (5 per side view) if every request ran.
    gated_planes = SHAPE[0] - 1
    side_reads = sum(n for plane, n in gated.reads.items() if plane != 4)
    assert 2 * gated_planes <= side_reads <= 2 * 2 * gated_planes


def test_side_reads_stay_out_of_the_global_dask_callbacks(ortho, tiff_folder, qtbot):
    # napari's opportunistic cache is such a global callback; its bookkeeping is not
    # thread-safe, so it must only ever run on the GUI thread's computes.
    threads = set()
    recorder = Callback(pretask=lambda key, dsk, state: threads.add(threading.get_ident()))
    with recorder:
        viewer, widget = ortho(tiff_folder)
        for point in [(3, 10, 7), (8, 30, 20)]:
            viewer.dims.point = point
            settle(widget, qtbot)
    assert threads == {threading.main_thread().ident}


def test_side_canvases_keep_a_size_beside_other_docks(ortho, tiff_folder):
    _viewer, widget = ortho(tiff_folder)
    for panel in widget.panels:
        native = panel.qt_viewer.canvas.native
        assert native.minimumWidth() == native.minimumHeight() == MIN_CANVAS
        assert native.height() >= MIN_CANVAS


def test_zooming_a_side_view_reads_the_finer_level_off_the_gui_thread(ortho, qtbot):
    # A two-level pyramid whose full-resolution level waits for a gate: napari reads the
    # level a zoom needs from the canvas's draw, which must not wait for it.
    rng = np.random.default_rng(4)
    fine = rng.integers(0, 4000, (32, 768, 768), dtype=np.uint16)
    gated = GatedVolume(fine, open_plane=-1)  # every plane waits while the gate is shut
    pyramid = [da.from_array(gated, chunks=(1, -1, -1)), da.from_array(fine[:, ::2, ::2])]
    viewer, widget = ortho()
    viewer.add_image(pyramid, multiscale=True, contrast_limits=(0, 4000))
    viewer.dims.point = (16, 300, 300)
    settle(widget, qtbot)
    panel = widget.panels[0]
    copy = panel.viewer_model.layers[0]
    assert copy.data_level == 1  # the whole plane in view: the coarse level
    gated.gate.clear()
    try:
        gated.reads.clear()
        panel.viewer_model.scene.camera.zoom *= 16
        qtbot.waitUntil(lambda: copy.data_level == 0, timeout=5_000)
        qtbot.wait(100)  # more draws: none may wait for the gate
        assert not widget.loaded  # the finer plane is on its way
        assert sum(gated.reads.values()) == 0
    finally:
        gated.gate.set()
    settle(widget, qtbot)
    corners = copy.corner_pixels
    region = tuple(
        slice(low, high + 1) if axis in copy._slice_input.displayed else int(point)
        for axis, (low, high, point) in enumerate(
            zip(*corners, copy._data_slice.point, strict=True)
        )
    )
    np.testing.assert_array_equal(displayed_plane(copy), fine[region])
