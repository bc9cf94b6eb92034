"""Every tutorial script in examples/ runs end to end in a real napari viewer, on small data."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import skimage.io

import napari_bigvol

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def tutorial(monkeypatch):
    """Import a tutorial script by name, as ``python examples/NAME.py`` would find it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name: str):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_mri_tiff_folder_is_browsed_one_file_per_slice(
    tutorial, make_napari_viewer, tmp_path, open_counter
):
    script = tutorial("mri_tiff_folder")
    folder = script.prepare(tmp_path, shape=(24, 64, 48))
    files = sorted(folder.glob(script.PATTERN))
    assert len(files) == 24
    assert script.prepare(tmp_path, shape=(24, 64, 48)) == folder  # reused, not rewritten

    viewer = make_napari_viewer()
    with open_counter.watch(folder) as opened:
        browsed = script.run(viewer, folder)
    assert browsed.shape == (24, 64, 48)
    assert browsed.scale == pytest.approx((8.533, 3.2, 4.267), abs=1e-3)
    # Lazy: a few files probed for the header, then one file per slice napari drew; most
    # files are never opened.
    assert {files[i] for i in browsed.slices_shown} <= {Path(p) for p in opened}
    assert len(opened) <= len(browsed.slices_shown) + 4 < len(files)
    layer = viewer.layers[0]
    np.testing.assert_array_equal(
        np.asarray(layer.data[browsed.slices_shown[-1]]),
        skimage.io.imread(files[browsed.slices_shown[-1]]),
    )


def test_nifti_planes_contrast_comes_from_the_histogram(tutorial, make_napari_viewer, tmp_path):
    script = tutorial("nifti_planes")
    path = script.prepare(tmp_path, shape=(20, 40, 32))
    viewer = make_napari_viewer()
    planes = script.run(viewer, path)
    layer = viewer.layers[0]
    assert planes.shape == (20, 40, 32)
    volume = np.asarray(layer.data)
    nonzero = volume[volume != 0]
    assert planes.voxels_counted == nonzero.size
    assert planes.contrast_limits[1] == pytest.approx(np.percentile(nonzero, 99.5))
    assert tuple(layer.contrast_limits) == pytest.approx(planes.contrast_limits)
    # The run ends on the axial plane; the other two are reachable the same way.
    assert viewer.dims.order == (0, 1, 2)
    script.show_plane(viewer, "coronal", position=0.0)
    assert viewer.dims.order == (1, 0, 2)
    # The plugin turned the camera: superior up, radiological.
    assert viewer.scene.camera.orientation2d == ("up", "left")


def test_histology_channels_estimate_stain_fractions(tutorial, make_napari_viewer, tmp_path):
    script = tutorial("histology_channels")
    path = script.prepare(tmp_path)
    viewer = make_napari_viewer()
    amounts = script.run(viewer, path)
    rgb = skimage.io.imread(Path(skimage.data.__file__).parent / "ihc.png")[..., :3]
    assert [layer.name for layer in viewer.layers][1:4] == ["red", "green", "blue"]
    for index, name in enumerate(script.CHANNELS):
        counts, _ = amounts.histograms[name]
        expected, _ = np.histogram(rgb[..., index], bins=64, range=(0, 256))
        np.testing.assert_array_equal(counts, expected)
    for stain, (channel, _) in script.STAINS.items():
        values = rgb[..., script.CHANNELS.index(channel)]
        expected = np.count_nonzero(values < amounts.thresholds[stain]) / values.size
        assert amounts.fractions[stain] == pytest.approx(expected)
        # A higher threshold keeps more pixels: the estimate moves monotonically.
        series = [amounts.sensitivity[stain][s] for s in (-20.0, -10.0)]
        series += [amounts.fractions[stain]]
        series += [amounts.sensitivity[stain][s] for s in (10.0, 20.0)]
        assert series == sorted(series)
    assert viewer.layers["DAB mask"].data.shape == rgb.shape[:2]
    dab = viewer.layers["DAB mask"].data.astype(bool)
    masked = np.asarray(viewer.layers["DAB masked"].data)
    np.testing.assert_array_equal(masked[dab], rgb[dab])
    assert not masked[~dab].any()
    assert amounts.dab_to_hematoxylin > 0


def test_tiff_to_ome_zarr_round_trip(tutorial, make_napari_viewer, tmp_path, open_counter):
    script = tutorial("tiff_to_ome_zarr")
    path = script.prepare(tmp_path, shape=(40, 96, 80))
    viewer = make_napari_viewer()
    converted = script.run(viewer, path)
    assert converted.store.is_dir()
    assert converted.level_shapes[0] == (40, 96, 80)
    assert converted.chunks == (40, 64, 64)  # 64-voxel cubes, clipped to the volume
    [layer] = viewer.layers
    np.testing.assert_array_equal(
        np.asarray(layer.data[0] if layer.multiscale else layer.data),
        skimage.io.imread(path),
    )
    # Reopened fast: a sagittal column of the tiled store touches only the cubes it crosses.
    level = layer.data[0] if layer.multiscale else layer.data
    with open_counter.watch(converted.store) as opened:
        np.asarray(level[:, :40, 10])
    chunk_files = [p for p in opened if not p.endswith((".json", ".zattrs", ".zarray"))]
    assert len(chunk_files) == 1


def test_dicom_series_to_ome_zarr_keeps_order_geometry_and_window(
    tutorial, make_napari_viewer, tmp_path, open_counter
):
    import pydicom

    script = tutorial("dicom_to_ome_zarr")
    folder = script.prepare(tmp_path, shape=(12, 40, 32))
    files = sorted(folder.iterdir())
    assert len(files) == 12
    assert all(not f.suffix for f in files)  # no extension: found by the DICM marker
    assert script.prepare(tmp_path, shape=(12, 40, 32)) == folder  # reused, not rewritten

    # Opening reads every header once and decodes nothing (the window gives the contrast);
    # choosing the reader peeked at one file's 132-byte preamble, as no name says DICOM.
    with open_counter.watch(folder) as opened:
        napari_bigvol.read(folder)
    assert set(opened) == {str(f) for f in files}
    assert sum(opened.values()) == len(files) + 1

    viewer = make_napari_viewer()
    converted = script.run(viewer, folder)
    series, store = viewer.layers
    assert series.name == "4 T1 synthetic brain"
    assert converted.contrast_limits == (100.0, 1900.0)
    # Slices come out in position order whatever the file names and instance numbers say.
    # An axial series: napari's planes are the files (rows and columns flipped as the
    # display convention needs, which the layer records).
    by_position = sorted(files, key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    axes = series.metadata["bigvol"]["axes"]
    assert [axes[label]["source_axis"] for label in series.axis_labels] == ["k", "j", "i"]
    flips = tuple(
        slice(None, None, -1) if axes[label]["flipped"] else slice(None)
        for label in series.axis_labels[1:]
    )
    for k in (0, 5, 11):
        np.testing.assert_array_equal(
            np.asarray(series.data[k]), pydicom.dcmread(by_position[k]).pixel_array[flips]
        )
    # The store keeps the millimetre geometry: same world position, same voxel.
    assert converted.store_scale == pytest.approx(converted.scale)
    assert converted.store_translate == pytest.approx(converted.translate)
    level = store.data[0] if store.multiscale else store.data
    np.testing.assert_array_equal(np.asarray(level), np.asarray(series.data))
