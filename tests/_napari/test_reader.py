"""The npe2 reader contribution inside a real napari viewer."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_bigvol._napari._reader import napari_get_reader


@pytest.fixture
def tiff_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "Synthesized_FLASH25_100um_TIFF_Axial_Images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(12):
        plane = rng.integers(0, 4000, size=(48, 40), dtype=np.uint16)
        tifffile.imwrite(folder / f"Synthesized_FLASH25_Axial_{index + 1}.tiff", plane)
    return folder


def _expected_stack(folder: Path) -> np.ndarray:
    files = sorted(folder.glob("*.tiff"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return np.stack([tifffile.imread(f) for f in files])


@pytest.mark.parametrize(
    "path",
    ["notes.txt", "image.czi", "", "/no/such/dir/volume.xyz", ["a.txt", "b.nii"], []],
)
def test_get_reader_returns_none_for_paths_it_does_not_take(path):
    assert napari_get_reader(path) is None


@pytest.mark.parametrize("garbage", [None, 42, object(), [None], ["\0bad"]])
def test_get_reader_never_raises(garbage):
    assert napari_get_reader(garbage) is None


def test_get_reader_takes_a_folder_a_glob_and_a_list(tiff_folder):
    files = sorted(str(p) for p in tiff_folder.iterdir())
    for path in (str(tiff_folder), str(tiff_folder / "*.tiff"), files):
        assert callable(napari_get_reader(path))


def test_open_folder_in_viewer_gives_a_lazy_layer(make_napari_viewer, tiff_folder):
    viewer = make_napari_viewer()
    layers = viewer.open(str(tiff_folder), plugin="napari-bigvol")
    assert len(layers) == 1
    layer = layers[0]
    assert isinstance(layer.data, da.Array)
    np.testing.assert_array_equal(layer.data.compute(), _expected_stack(tiff_folder))
    assert layer.name


def test_glob_from_the_console_adds_the_same_layer(make_napari_viewer, tiff_folder):
    # napari 0.9's viewer.open insists on existing paths, so a glob goes through read().
    import napari_bigvol

    viewer = make_napari_viewer()
    ((data, kwargs, layer_type),) = napari_bigvol.read(
        str(tiff_folder / "Synthesized_FLASH25_Axial_*.tiff")
    )
    assert layer_type == "image"
    layer = viewer.add_image(data, **kwargs)
    assert layer.data.shape == (12, 48, 40)
    np.testing.assert_array_equal(np.asarray(layer.data[9]), _expected_stack(tiff_folder)[9])


@pytest.mark.parametrize(
    ("make_bad_path", "problem"),
    [
        (lambda tmp: tmp / "empty_folder", "no image files"),
        (lambda tmp: tmp / "missing_scan.nii.gz", "no such file"),
    ],
    ids=["empty-folder", "missing-file"],
)
def test_bad_input_becomes_a_notification_not_a_crash(
    make_napari_viewer, tmp_path, make_bad_path, problem
):
    from napari.utils.notifications import notification_manager

    from napari_bigvol.errors import ReadError

    bad_path = make_bad_path(tmp_path)
    if bad_path.suffix == "":
        bad_path.mkdir()
    viewer = make_napari_viewer()
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(str(n.message)))
    if bad_path.exists():
        with pytest.raises(ReadError, match=problem):
            viewer.open(str(bad_path), plugin="napari-bigvol")
        assert any(bad_path.name in m and problem in m for m in messages), messages
    else:
        # napari itself refuses paths that do not exist; from a script, read() names it.
        import napari_bigvol

        with pytest.raises(ReadError, match=f"missing_scan.nii.gz: {problem}"):
            napari_bigvol.read(bad_path)
    assert len(viewer.layers) == 0
    viewer.add_image(np.zeros((4, 4)))
    assert len(viewer.layers) == 1


def _drop(qt_viewer, path: Path) -> None:
    from qtpy.QtCore import QMimeData, QPointF, Qt, QUrl
    from qtpy.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    qt_viewer.dropEvent(event)


def test_drop_a_folder_onto_the_canvas(make_napari_viewer, tiff_folder, qtbot):
    from napari.settings import get_settings

    # What a user does once in napari's "choose reader" dialog with "remember" ticked.
    get_settings().plugins.extension2reader = {f"{tiff_folder}{Path('/')}": "napari-bigvol"}
    viewer = make_napari_viewer()
    _drop(viewer.window._qt_viewer, tiff_folder)
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=10_000)
    layer = viewer.layers[0]
    assert isinstance(layer.data, da.Array)
    assert layer.data.shape == (12, 48, 40)
    np.testing.assert_array_equal(np.asarray(layer.data[0]), _expected_stack(tiff_folder)[0])


def test_dropping_a_truncated_nifti_notifies_the_file_and_problem(
    make_napari_viewer, tmp_path, qtbot
):
    import nibabel as nib
    from napari.utils.notifications import notification_manager
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    broken = tmp_path / "truncated_T1w.nii"
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.int16), np.eye(4)), broken)
    broken.write_bytes(broken.read_bytes()[:-4000])
    from napari.settings import get_settings

    # The user's remembered choice of reader for .nii files.
    get_settings().plugins.extension2reader = {"*.nii": "napari-bigvol"}
    viewer = make_napari_viewer()
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(str(n.message)))
    dialogs: list[str] = []

    def dismiss_reader_dialog() -> None:
        # After our error napari offers the other installed readers; the user cancels.
        dialog = QApplication.activeModalWidget()
        if dialog is not None:
            dialogs.append(type(dialog).__name__)
            dialog.reject()

    QTimer.singleShot(300, dismiss_reader_dialog)
    with qtbot.capture_exceptions():
        _drop(viewer.window._qt_viewer, broken)
    assert len(viewer.layers) == 0
    ours = [m for m in messages if "truncated_T1w.nii" in m and "truncated" in m.split(":", 1)[1]]
    assert ours, messages
    assert dialogs == ["QtReaderDialog"]
    # The viewer still works after the failed drop.
    viewer.add_image(np.zeros((3, 3)))
    assert len(viewer.layers) == 1


@pytest.mark.parametrize("size", ["nan", "inf", "-1"])
def test_bad_physical_size_opens_every_channel_and_says_so(make_napari_viewer, tmp_path, size):
    """OME PhysicalSizeX="nan" gave scale (nan, 0.5, nan): napari failed after adding one
    channel layer of two. Now the size is unknown (1), and a notification says why."""
    from napari.utils.notifications import notification_manager

    path = tmp_path / "cells.ome.tif"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" '
        'SizeX="16" SizeY="12" SizeZ="3" SizeC="2" SizeT="1" '
        f'PhysicalSizeX="{size}" PhysicalSizeY="0.5" PhysicalSizeZ="2.0">'
        '<Channel ID="Channel:0:0" Name="dapi" SamplesPerPixel="1"/>'
        '<Channel ID="Channel:0:1" Name="gfp" SamplesPerPixel="1"/>'
        '<TiffData IFD="0" PlaneCount="6"/></Pixels></Image></OME>'
    )
    data = np.arange(6 * 12 * 16, dtype=np.uint16).reshape(3, 2, 12, 16)
    tifffile.imwrite(path, data, description=xml, metadata=None, photometric="minisblack")
    viewer = make_napari_viewer()
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(str(n.message)))

    viewer.open(str(path), plugin="napari-bigvol")

    assert [layer.name for layer in viewer.layers] == ["cells.ome.tif dapi", "cells.ome.tif gfp"]
    for layer in viewer.layers:
        assert tuple(layer.scale) == (2.0, 0.5, 1.0)
    assert any(
        "cells.ome.tif: the voxel size is not a positive finite number" in m for m in messages
    ), messages
