"""Upright anatomical views and orientation letters in a real napari viewer."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from nibabel.affines import apply_affine
from nibabel.orientations import axcodes2ornt, ornt_transform

import napari_bigvol as bv
from napari_bigvol._napari._anatomical import installed

# dims.order showing each anatomical plane of (S, A, R) layers.
PLANES = {"axial": (0, 1, 2), "coronal": (1, 0, 2), "sagittal": (2, 0, 1)}
SHAPE_RAS = (28, 24, 20)  # voxels along R, A and S
ZOOMS = (2.0, 2.0, 2.5)
# The marker: the patient's left (low R index), anterior and superior.
MARKER_RAS_VOXEL = (5, 18, 15)


@pytest.fixture
def convention():
    """Restore the process-wide display convention after a test changes it."""
    before = bv.display_convention()
    yield
    bv.set_display_convention(before)


def write_marker_scan(path: Path, axcodes: str) -> np.ndarray:
    """A dim box with a bright 3-voxel cube at the marker, stored in ``axcodes`` order.

    Returns the marker's RAS position in millimetres, from nibabel.
    """
    volume = np.full(SHAPE_RAS, 60, np.uint8)
    i, j, k = MARKER_RAS_VOXEL
    volume[i - 1 : i + 2, j - 1 : j + 2, k - 1 : k + 2] = 255
    affine = np.diag([*ZOOMS, 1.0])
    affine[:3, 3] = [-30.0, -20.0, 5.0]
    image = nib.Nifti1Image(volume, affine)
    stored = image.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes)))
    assert "".join(nib.aff2axcodes(stored.affine)) == axcodes
    nib.save(stored, path)
    return apply_affine(affine, MARKER_RAS_VOXEL)


def open_marker_scan(viewer, path: Path, marker_ras: np.ndarray):
    [layer] = viewer.open(path, plugin="napari-bigvol")
    layer.contrast_limits = (0, 255)
    r, a, s = marker_ras
    viewer.dims.point = (s, a, r)  # world (z, y, x) = (S, A, R)
    return layer


def marker_on_screen(viewer) -> tuple[float, float]:
    """Where the bright marker is in the data's screen box: (row, column) fractions."""
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    brightness = shot.mean(axis=-1)
    data_box = np.argwhere(brightness > 30)  # the dim box, marker included
    marker = np.argwhere(brightness > 200)
    assert len(marker), "the marker is not on screen"
    top_left, bottom_right = data_box.min(axis=0), data_box.max(axis=0)
    row, column = (marker.mean(axis=0) - top_left) / (bottom_right - top_left)
    return float(row), float(column)


@pytest.mark.parametrize("axcodes", ["RAS", "LPI", "PSL"])
def test_marker_is_where_radiologists_expect_it_in_every_plane(
    make_napari_viewer, tmp_path, axcodes
):
    viewer = make_napari_viewer(show=True)
    marker_ras = write_marker_scan(tmp_path / f"{axcodes}.nii.gz", axcodes)
    layer = open_marker_scan(viewer, tmp_path / f"{axcodes}.nii.gz", marker_ras)
    # The status bar's world position is RAS: [S, A, R] in napari's axis order ...
    r, a, s = marker_ras
    status = layer.get_status((s, a, r), world=True)
    assert status["coords"] == f"[{s:.2f}, {a:.2f}, {r:.2f}]"
    assert status["value"] == "255"
    # ... and the canvas reads it in R, A, S order, as FSLeyes and nilearn print it.
    viewer.cursor.position = (s, a, r)
    readout = installed(viewer).readout
    assert readout.visible
    assert readout.text == f"RAS ({r:.1f}, {a:.1f}, {s:.1f}) mm"
    places = {}
    for plane, order in PLANES.items():
        viewer.dims.order = order
        viewer.reset_view()
        places[plane] = marker_on_screen(viewer)
    # Axial: anterior up, the patient's left on the screen's right (radiological).
    row, column = places["axial"]
    assert row < 0.4, places
    assert column > 0.6, places
    # Coronal: superior up, the patient's left on the right.
    row, column = places["coronal"]
    assert row < 0.4, places
    assert column > 0.6, places
    # Sagittal: superior up, anterior on the left.
    row, column = places["sagittal"]
    assert row < 0.4, places
    assert column < 0.4, places


def test_neurological_display_puts_the_left_on_the_left(make_napari_viewer, tmp_path, convention):
    viewer = make_napari_viewer(show=True)
    marker_ras = write_marker_scan(tmp_path / "scan.nii", "LAS")
    open_marker_scan(viewer, tmp_path / "scan.nii", marker_ras)
    row, column = marker_on_screen(viewer)
    assert row < 0.4  # anterior up
    assert column > 0.6  # radiological by default
    bv.set_display_convention("neurological")
    row, column = marker_on_screen(viewer)
    assert row < 0.4
    assert column < 0.4
    assert installed(viewer).letters["left"].text == "L"


def letters(viewer) -> dict[str, str]:
    return {
        edge: overlay.text
        for edge, overlay in installed(viewer).letters.items()
        if overlay.visible
    }


def test_letters_and_camera_follow_dims_order(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    write_marker_scan(tmp_path / "scan.nii", "RAS")
    viewer.open(tmp_path / "scan.nii", plugin="napari-bigvol")
    expected = {
        "axial": ({"top": "A", "bottom": "P", "left": "R", "right": "L"}, ("up", "left")),
        "coronal": ({"top": "S", "bottom": "I", "left": "R", "right": "L"}, ("up", "left")),
        "sagittal": ({"top": "S", "bottom": "I", "left": "A", "right": "P"}, ("up", "left")),
    }
    for plane, (edge_letters, orientation2d) in expected.items():
        viewer.dims.order = PLANES[plane]
        assert letters(viewer) == edge_letters, plane
        assert tuple(map(str, viewer.scene.camera.orientation2d)) == orientation2d, plane
    # napari's transpose button swaps the displayed axes: letters follow.
    viewer.dims.order = (0, 2, 1)
    assert letters(viewer) == {"top": "R", "bottom": "L", "left": "A", "right": "P"}
    # A user flip of the camera is reflected, not undone.
    viewer.dims.order = PLANES["axial"]
    viewer.scene.camera.orientation2d = ("down", "left")
    assert letters(viewer)["top"] == "P"
    # No letters and no position readout in 3-D.
    viewer.dims.ndisplay = 3
    assert letters(viewer) == {}
    assert not installed(viewer).readout.visible
    assert tuple(map(str, viewer.scene.camera.orientation)) == ("away", "up", "left")


def test_other_viewers_and_layers_are_left_alone(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    tiff_like = viewer.add_image(np.zeros((4, 5, 6)), axis_labels=("z", "y", "x"))
    view = bv.anatomical_view(viewer)
    assert bv.anatomical_view(viewer) is view
    default = ("towards", "down", "right")
    assert tuple(map(str, viewer.scene.camera.orientation)) == default
    assert letters(viewer) == {}
    write_marker_scan(tmp_path / "scan.nii", "RAS")
    [scan] = viewer.open(tmp_path / "scan.nii", plugin="napari-bigvol")
    viewer.layers.selection.active = scan
    assert tuple(map(str, viewer.scene.camera.orientation))[1:] == ("up", "left")
    # Without the scanner layer the camera is put back as it was found.
    viewer.layers.remove(scan)
    assert tuple(map(str, viewer.scene.camera.orientation)) == default
    assert letters(viewer) == {}
    assert not installed(viewer).readout.visible
    assert tiff_like in viewer.layers


def test_a_viewer_that_never_opened_a_scan_gets_no_controller(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((5, 8, 8), np.uint16), photometric="minisblack")
    viewer.open(path, plugin="napari-bigvol")
    assert installed(viewer) is None


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing is being requested:UserWarning")
def test_nibabels_files_open_upright(make_napari_viewer, nibabel_data):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-bigvol", "real_mri")
    assert tuple(map(str, viewer.scene.camera.orientation)) == ("away", "up", "left")
    assert letters(viewer) == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    # An oblique 4-D series joins it: a leading t axis, the same RAS axes.
    [series] = viewer.open(nibabel_data / "example4d.nii.gz", plugin="napari-bigvol")
    assert series.axis_labels == ("t", "I→S", "P→A", "L→R")
    assert letters(viewer)["top"] == "A"
