"""DICOM reader: real series written by SimpleITK, pydicom's shipped files, dcm2niix as judge."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import tifffile
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut
from pydicom.sequence import Sequence
from pydicom.uid import EnhancedMRImageStorage, ExplicitVRLittleEndian, generate_uid

import napari_bigvol as bv
from napari_bigvol.errors import ReadError
from napari_bigvol.io import _format_for, dicom, reader_for, sequence

DCM2NIIX = Path(sys.executable).with_name("dcm2niix")
# napari says so when a layer's affine rotates out of the displayed plane (oblique data).
OBLIQUE_IN_2D = pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")

# ITK direction matrices (row-major; columns = directions of i, j, k in LPS).
AXIAL = (1, 0, 0, 0, 1, 0, 0, 0, 1)
# Rows run superior to inferior, columns anterior to posterior; slices step right to left,
# against the normal cross(i, j) = (-1, 0, 0), so file order is the reverse of position.
SAGITTAL = (0, 0, 1, 1, 0, 0, 0, -1, 0)
CORONAL = (1, 0, 0, 0, 0, 1, 0, -1, 0)


def _rotation(degrees_x: float, degrees_z: float) -> tuple[float, ...]:
    ax, az = np.radians(degrees_x), np.radians(degrees_z)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return tuple((rz @ rx).ravel())


OBLIQUE = _rotation(20.0, 12.0)
EVERY_DIRECTION = pytest.mark.parametrize(
    "direction",
    [AXIAL, SAGITTAL, CORONAL, OBLIQUE],
    ids=["axial", "sagittal", "coronal", "oblique"],
)


def write_series(
    folder: Path,
    volume: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (0.5, 0.6, 2.0),
    origin: tuple[float, float, float] = (10.0, -20.0, 30.0),
    direction: tuple[float, ...] = AXIAL,
    description: str = "T1 axial",
    number: int = 3,
    names: list[str] | None = None,
    modality: str = "MR",
    extra_tags: dict[str, str] | None = None,
) -> list[Path]:
    """Write ``volume`` (k, j, i) as one DICOM file per k-plane with SimpleITK (GDCM).

    Positions come from ITK's own index-to-physical mapping; InstanceNumber counts
    backwards, and ``names`` (default ``img000.dcm``...) may scramble the file order, so
    neither can stand in for the position.
    """
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    d = direction
    uid = generate_uid()
    tags = {
        "0020|000e": uid,  # SeriesInstanceUID
        "0020|000d": generate_uid(),  # StudyInstanceUID, one per series here
        "0020|0052": generate_uid(),  # FrameOfReferenceUID
        "0008|0020": "20260101",
        "0008|0030": "120000",
        "0008|0021": "20260101",
        "0008|0031": "120000",
        "0008|0070": "napari-bigvol tests",
        "0008|0060": modality,
        "0008|103e": description,
        "0020|0011": str(number),
        "0020|0037": "\\".join(f"{v:.9f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
        **(extra_tags or {}),
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    count = volume.shape[0]
    names = names or [f"img{k:03d}.dcm" for k in range(count)]
    paths = []
    for k in range(count):
        plane = image[:, :, k]
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        plane.SetMetaData("0020|0032", "\\".join(f"{v:.9f}" for v in position))
        plane.SetMetaData("0020|0013", str(count - k))
        path = folder / names[k]
        # GDCM picks the writer by extension; the name is the file's own business.
        written = path.with_name(path.name + ".dcm") if path.suffix != ".dcm" else path
        writer.SetFileName(str(written))
        writer.Execute(plane)
        written.rename(path)
        paths.append(path)
    return paths


def volume_values(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A volume whose every voxel differs: slice k holds 1000 k plus shuffled in-plane indices."""
    rng = np.random.default_rng(seed)
    count, rows, columns = shape
    assert rows * columns <= 1000  # unique
    assert count <= 32  # within int16
    in_plane = np.stack([rng.permutation(rows * columns) for _ in range(count)])
    planes = 1000 * np.arange(count).reshape(-1, 1)
    return (planes + in_plane).reshape(shape).astype(np.int16)


def as_layer(volume: np.ndarray, kwargs: dict) -> np.ndarray:
    """``volume`` (k, j, i: slice, row, column) in the layer's axis order, from its metadata.

    The reader records which source axis each napari axis reads, and whether flipped; the
    expected data follow from that record, whatever the display convention chooses.
    """
    axes = kwargs["metadata"]["bigvol"]["axes"]
    numpy_axis = {"k": 0, "j": 1, "i": 2}
    labels = kwargs["axis_labels"]
    arranged = volume.transpose([numpy_axis[axes[label]["source_axis"]] for label in labels])
    flips = [slice(None, None, -1) if axes[label]["flipped"] else slice(None) for label in labels]
    return arranged[tuple(flips)]


def layer(path, **kwargs):
    """A napari Image layer built from the reader's kwargs, for its data-to-world transform."""
    from napari.layers import Image

    [(data, layer_kwargs, kind)] = bv.read(path, **kwargs)
    assert kind == "image"
    return Image(data, **layer_kwargs)


# --- geometry ---------------------------------------------------------------------------


@EVERY_DIRECTION
def test_affine_is_simpleitk_geometry_in_ras(tmp_path, direction):
    volume = volume_values((5, 7, 9))
    write_series(tmp_path / "s", volume, direction=direction)
    [(_, kwargs, _)] = bv.read(tmp_path / "s")
    affine = np.array(kwargs["metadata"]["bigvol"]["affine"])
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.5, 0.6, 2.0))
    image.SetOrigin((10.0, -20.0, 30.0))
    image.SetDirection(direction)
    rng = np.random.default_rng(1)
    for index in rng.integers(0, (9, 7, 5), size=(20, 3)):
        x, y, z = image.TransformIndexToPhysicalPoint([int(v) for v in index])  # LPS
        # Slices are sorted along the normal: the reader's k runs against ITK's for SAGITTAL.
        k = index[2] if np.linalg.det(np.reshape(direction, (3, 3))) > 0 else 4 - index[2]
        ras = affine @ [index[0], index[1], k, 1]
        np.testing.assert_allclose(ras[:3], (-x, -y, z), atol=1e-5)


def assert_overlays_its_dcm2niix_conversion(source: Path, tmp_path: Path) -> None:
    """Convert ``source`` with dcm2niix; both layers agree at every voxel, world and value."""
    out = tmp_path / "nifti"
    out.mkdir()
    subprocess.run(
        [str(DCM2NIIX), "-f", "converted", "-z", "n", "-o", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    dicom_layer = layer(source)
    nifti_layer = layer(out / "converted.nii")
    assert dicom_layer.data.shape == nifti_layer.data.shape
    dicom_voxels = np.asarray(dicom_layer.data)
    nifti_voxels = np.asarray(nifti_layer.data)
    assert np.unique(dicom_voxels).size == dicom_voxels.size  # every voxel identifiable
    for index in np.ndindex(dicom_voxels.shape):
        world = dicom_layer.data_to_world(index)
        back = np.asarray(nifti_layer.world_to_data(world))
        np.testing.assert_allclose(back, np.round(back), atol=1e-4)
        np.testing.assert_allclose(world, nifti_layer.data_to_world(np.round(back)), atol=1e-4)
        assert dicom_voxels[index] == nifti_voxels[tuple(np.round(back).astype(int))]


@pytest.mark.slow
@OBLIQUE_IN_2D
@EVERY_DIRECTION
def test_series_overlays_its_dcm2niix_conversion_voxel_by_voxel(tmp_path, direction):
    write_series(tmp_path / "series", volume_values((6, 10, 12)), direction=direction)
    assert_overlays_its_dcm2niix_conversion(tmp_path / "series", tmp_path)


@pytest.mark.slow
def test_ct_series_in_hounsfield_units_matches_dcm2niix(tmp_path):
    rescale = {"0028|1052": "-1024", "0028|1053": "1", "0028|1054": "HU"}
    write_series(tmp_path / "ct", volume_values((4, 8, 9)), modality="CT", extra_tags=rescale)
    [(data, _, _)] = bv.read(tmp_path / "ct")
    assert data.dtype == np.float32
    assert_overlays_its_dcm2niix_conversion(tmp_path / "ct", tmp_path)


@pytest.mark.slow
@OBLIQUE_IN_2D
def test_enhanced_multiframe_overlays_its_dcm2niix_conversion(tmp_path):
    volume = volume_values((5, 6, 7))
    write_enhanced(tmp_path / "e.dcm", volume, OBLIQUE, (0.5, 0.6, 2.0), (10.0, -20.0, 30.0))
    assert_overlays_its_dcm2niix_conversion(tmp_path / "e.dcm", tmp_path)


def test_slices_are_ordered_by_position_not_by_name_or_instance_number(tmp_path):
    volume = volume_values((6, 8, 8))
    names = ["b.dcm", "f.dcm", "a.dcm", "e.dcm", "c.dcm", "d.dcm"]
    write_series(tmp_path / "s", volume, names=names)
    [(data, kwargs, _)] = bv.read(tmp_path / "s")
    np.testing.assert_array_equal(np.asarray(data), as_layer(volume, kwargs))
    assert kwargs["metadata"]["bigvol"]["axes"][kwargs["axis_labels"][0]]["source_axis"] == "k"
    assert kwargs["scale"] == pytest.approx((2.0, 0.6, 0.5))
    assert kwargs["units"] == ("millimeter", "millimeter", "millimeter")


def test_spacing_comes_from_positions_not_slice_thickness(tmp_path):
    volume = volume_values((4, 6, 6))
    # GDCM writes SliceThickness/SpacingBetweenSlices tags that disagree with positions.
    write_series(tmp_path / "s", volume, spacing=(0.5, 0.5, 3.3), extra_tags={"0018|0050": "1"})
    [(_, kwargs, _)] = bv.read(tmp_path / "s")
    assert kwargs["scale"][0] == pytest.approx(3.3)


@OBLIQUE_IN_2D
def test_gantry_tilt_keeps_its_shear_in_the_affine(tmp_path):
    volume = volume_values((5, 6, 8))
    files = write_series(tmp_path / "s", volume)
    for k, path in enumerate(files):  # each slice slides 0.7 mm posterior: a tilted gantry
        ds = pydicom.dcmread(path)
        x, y, z = ds.ImagePositionPatient
        ds.ImagePositionPatient = [x, y + 0.7 * k, z]
        ds.save_as(path)
    tilted = layer(tmp_path / "s")
    for k, path in enumerate(files):
        x, y, z = (float(v) for v in pydicom.dcmread(path).ImagePositionPatient)
        ras = np.array(tilted.metadata["bigvol"]["affine"]) @ [0, 0, k, 1]
        np.testing.assert_allclose(ras[:3], (-x, -y, z), atol=1e-6)
    # The slice step is 2 mm along the normal plus 0.7 mm in-plane, and napari's world
    # coordinates follow the sheared slices.
    assert tilted.metadata["bigvol"]["slice_step_lps_mm"] == pytest.approx([0, 0.7, 2.0])
    top, bottom = tilted.data_to_world((4, 0, 0)), tilted.data_to_world((0, 0, 0))
    assert np.linalg.norm(np.subtract(top, bottom)) == pytest.approx(4 * np.hypot(2.0, 0.7))


def test_slices_that_do_not_line_up_are_refused(tmp_path):
    files = _series_with(tmp_path)
    ds = pydicom.dcmread(files[3])
    x, y, z = ds.ImagePositionPatient
    ds.ImagePositionPatient = [x + 5, y, z]
    ds.save_as(files[3])
    with pytest.raises(ReadError, match=r"img003\.dcm: the slices do not line up"):
        bv.read(tmp_path / "s")


# --- laziness -----------------------------------------------------------------------------


def test_open_reads_headers_then_each_plane_decodes_one_file(tmp_path, open_counter):
    volume = volume_values((12, 16, 16))
    files = write_series(
        tmp_path / "s", volume, extra_tags={"0028|1050": "500", "0028|1051": "900"}
    )
    with open_counter.watch(tmp_path) as opened:
        [(data, kwargs, _)] = bv.read(tmp_path / "s")
    # One header read per file, no pixel decode: the window gives the contrast limits.
    assert opened == {str(f): 1 for f in files}
    assert kwargs["contrast_limits"] == (50.0, 950.0)
    with open_counter.watch(tmp_path) as opened:
        plane = np.asarray(data[7])
    assert list(opened) == [str(files[7])]
    np.testing.assert_array_equal(plane, as_layer(volume, kwargs)[7])


def test_without_a_window_only_the_middle_slice_is_decoded(tmp_path, open_counter):
    volume = volume_values((5, 6, 6))
    files = write_series(tmp_path / "s", volume)
    with open_counter.watch(tmp_path) as opened:
        [(_, kwargs, _)] = bv.read(tmp_path / "s")
    assert opened[str(files[2])] == 2
    assert sum(opened.values()) == len(files) + 1
    assert kwargs["contrast_limits"] == (float(volume[2].min()), float(volume[2].max()))


def test_the_lazy_array_pickles_for_a_distributed_cluster(tmp_path):
    volume = volume_values((3, 5, 5))
    # GDCM stores volume + 1024, so that the rescale gives back the volume.
    write_series(tmp_path / "s", volume, extra_tags={"0028|1052": "-1024", "0028|1053": "1"})
    [(data, kwargs, _)] = bv.read(tmp_path / "s")
    assert kwargs["metadata"]["bigvol"]["rescaled"]
    copy = pickle.loads(pickle.dumps(data))
    np.testing.assert_array_equal(np.asarray(copy), as_layer(volume.astype(np.float32), kwargs))


# --- folders, names, dispatch ----------------------------------------------------------


def test_folder_without_extensions_with_stray_files(tmp_path):
    volume = volume_values((4, 6, 6))
    write_series(tmp_path / "s", volume, names=[f"IM{k:04d}" for k in range(4)])
    (tmp_path / "s" / "README").write_text("exported by a scanner")
    shutil.copy(get_testdata_file("DICOMDIR"), tmp_path / "s" / "DICOMDIR")
    assert dicom.accepts(str(tmp_path / "s"))
    assert _format_for(str(tmp_path / "s")) is dicom
    [(data, kwargs, _)] = bv.read(tmp_path / "s")
    np.testing.assert_array_equal(np.asarray(data), as_layer(volume, kwargs))
    skipped = {Path(p).name for p in kwargs["metadata"]["bigvol"]["skipped"]}
    assert skipped == {"README", "DICOMDIR"}


def test_folder_of_tiffs_still_goes_to_the_sequence_reader(tmp_path, write_slices, open_counter):
    folder, _ = write_slices(count=3)
    with open_counter.watch(folder) as opened:
        assert not dicom.accepts(str(folder))
        assert _format_for(str(folder)) is sequence
    assert not opened  # decided from the names alone


def test_unnamed_dicom_files_beside_a_thumbnail_are_a_series(tmp_path):
    volume = volume_values((3, 6, 6))
    write_series(tmp_path / "s", volume, names=["1", "2", "3"])
    thumbnail = np.zeros((4, 4), np.uint8)
    tifffile.imwrite(tmp_path / "s" / "thumbnail.tif", thumbnail)
    assert _format_for(str(tmp_path / "s")) is dicom
    [(data, _, _)] = bv.read(tmp_path / "s")
    assert data.shape == (3, 6, 6)


def test_several_series_give_one_layer_each_named_and_sorted(tmp_path):
    write_series(tmp_path / "d", volume_values((3, 6, 6)), description="T2 FLAIR", number=7)
    write_series(
        tmp_path / "d",
        volume_values((4, 5, 5), seed=1),
        description="",
        number=2,
        names=[f"x{k}.dcm" for k in range(4)],
    )
    layers = bv.read(tmp_path / "d")
    assert [kwargs["name"] for _, kwargs, _ in layers] == ["d series 2", "7 T2 FLAIR"]
    assert [data.shape for data, _, _ in layers] == [(4, 5, 5), (3, 6, 6)]


def test_dropped_files_and_a_glob_open_as_their_series(tmp_path):
    volume = volume_values((4, 6, 6))
    files = write_series(tmp_path / "s", volume)
    for path in ([str(f) for f in reversed(files)], str(tmp_path / "s" / "*.dcm")):
        assert reader_for(path) is not None
        [(data, kwargs, _)] = bv.read(path)
        np.testing.assert_array_equal(np.asarray(data), as_layer(volume, kwargs))


def test_viewer_opens_a_series_folder_with_the_plugin(make_napari_viewer, tmp_path):
    volume = volume_values((4, 6, 6))
    write_series(tmp_path / "s", volume, description="T1 axial", number=3)
    viewer = make_napari_viewer()
    [image] = viewer.open(str(tmp_path / "s"), plugin="napari-bigvol")
    assert image.name == "3 T1 axial"
    expected = as_layer(volume, {"axis_labels": image.axis_labels, "metadata": image.metadata})
    np.testing.assert_array_equal(np.asarray(image.data), expected)
    [single] = viewer.open(get_testdata_file("CT_small.dcm"), plugin="napari-bigvol")
    assert single.data.shape == (1, 128, 128)


# --- values -------------------------------------------------------------------------------


def test_ct_rescale_gives_hounsfield_units_in_float32():
    path = get_testdata_file("CT_small.dcm")
    [(data, kwargs, _)] = bv.read(path)
    ds = pydicom.dcmread(path)
    assert (ds.RescaleSlope, ds.RescaleIntercept) == (1, -1024)
    assert data.dtype == np.float32
    expected = apply_modality_lut(ds.pixel_array, ds)[np.newaxis]
    np.testing.assert_array_equal(np.asarray(data), as_layer(expected, kwargs))
    assert kwargs["metadata"]["bigvol"]["rescaled"] is True


def test_no_rescale_keeps_the_stored_dtype_and_window_sets_contrast():
    path = get_testdata_file("MR_small.dcm")
    [(data, kwargs, _)] = bv.read(path)
    ds = pydicom.dcmread(path)
    assert data.dtype == np.int16
    np.testing.assert_array_equal(np.asarray(data), as_layer(ds.pixel_array[np.newaxis], kwargs))
    centre, width = float(ds.WindowCenter), float(ds.WindowWidth)
    assert kwargs["contrast_limits"] == (centre - width / 2, centre + width / 2)


def test_big_endian_file_gives_native_byte_order():
    [(data, _, _)] = bv.read(get_testdata_file("MR_small_bigendian.dcm"))
    [(little, _, _)] = bv.read(get_testdata_file("MR_small.dcm"))
    assert data.dtype == np.dtype("int16")
    assert data.dtype.isnative
    np.testing.assert_array_equal(np.asarray(data), np.asarray(little))


def test_per_slice_rescale_is_applied_slice_by_slice(tmp_path):
    volume = volume_values((3, 4, 4))
    files = write_series(tmp_path / "s", volume)
    for k, path in enumerate(files):  # PET-style: every slice has its own slope
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = 0.5 * (k + 1), -10
        ds.save_as(path)
    [(data, kwargs, _)] = bv.read(tmp_path / "s")
    expected = volume * (0.5 * np.arange(1, 4)).reshape(-1, 1, 1) - 10
    np.testing.assert_allclose(np.asarray(data), as_layer(expected, kwargs))
    assert data.dtype == np.float32


# --- multi-frame --------------------------------------------------------------------------


def write_enhanced(path: Path, volume: np.ndarray, direction, spacing, origin) -> None:
    """An Enhanced MR file: one frame per k-plane, geometry in per-frame functional groups."""
    d = np.reshape(direction, (3, 3))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = EnhancedMRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "MR", generate_uid(), 5
    ds.SeriesDescription = "enhanced"
    ds.Rows, ds.Columns = volume.shape[1:]
    ds.NumberOfFrames = volume.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [*d[:, 0], *d[:, 1]]
    measures = Dataset()
    measures.PixelSpacing = [spacing[1], spacing[0]]
    measures.SliceThickness = 9.9  # wrong on purpose: positions decide
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 2, 5, "US"
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in reversed(range(volume.shape[0])):  # frames stored in reverse position order
        position = Dataset()
        position.ImagePositionPatient = list(np.asarray(origin) + d[:, 2] * spacing[2] * k)
        frame = Dataset()
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.ascontiguousarray(volume[::-1]).tobytes()
    ds.save_as(path, enforce_file_format=True)


@OBLIQUE_IN_2D
def test_enhanced_multiframe_matches_the_same_volume_as_a_series(tmp_path, open_counter):
    volume = volume_values((5, 6, 7))
    spacing, origin = (0.5, 0.6, 2.0), (10.0, -20.0, 30.0)
    write_series(tmp_path / "s", volume, direction=OBLIQUE, spacing=spacing, origin=origin)
    write_enhanced(tmp_path / "e.dcm", volume, OBLIQUE, spacing, origin)
    series, enhanced = layer(tmp_path / "s"), layer(tmp_path / "e.dcm")
    assert enhanced.data.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(enhanced.data), np.asarray(series.data) * 2 + 5)
    for index in np.ndindex(2, 2, 2):
        corner = np.array(index) * (np.array(series.data.shape) - 1)
        np.testing.assert_allclose(
            enhanced.data_to_world(corner), series.data_to_world(corner), atol=1e-6
        )
    with open_counter.watch(tmp_path) as opened:
        np.asarray(enhanced.data[2])  # one frame: one open of the file
    assert opened == {str(tmp_path / "e.dcm"): 1}


@pytest.mark.parametrize(
    ("name", "shape", "axes"),
    [
        ("examples_ybr_color.dcm", (30, 240, 320, 3), ("t", "y", "x")),  # JPEG cine, RGB
        ("SC_rgb_rle_2frame.dcm", (2, 100, 100, 3), ("z", "y", "x")),
        ("JPEG2000.dcm", (1024, 256), ("y", "x")),  # decoded by Pillow's openjpeg
    ],
)
def test_files_without_patient_geometry_open_as_images(name, shape, axes):
    path = get_testdata_file(name)
    [(data, kwargs, _)] = bv.read(path)
    assert data.shape == shape
    assert kwargs["axis_labels"] == axes
    last = pydicom.pixels.pixel_array(path, index=data.shape[0] - 1 if len(axes) == 3 else None)
    np.testing.assert_array_equal(np.asarray(data[-1] if len(axes) == 3 else data), last)


# --- bad input ----------------------------------------------------------------------------


def _series_with(tmp_path: Path, **kwargs) -> list[Path]:
    return write_series(tmp_path / "s", volume_values((6, 8, 8)), **kwargs)


def test_missing_slice_is_a_gap_naming_the_files(tmp_path):
    files = _series_with(tmp_path)
    files[3].unlink()
    with pytest.raises(ReadError, match=r"img004\.dcm: a gap between slices: 4 mm from img002"):
        bv.read(tmp_path / "s")


def test_duplicate_position_is_refused(tmp_path):
    files = _series_with(tmp_path)
    shutil.copy(files[2], tmp_path / "s" / "copy.dcm")
    with pytest.raises(ReadError, match="a duplicate slice position"):
        bv.read(tmp_path / "s")


def test_mixed_sizes_are_refused(tmp_path):
    _series_with(tmp_path)
    other = write_series(tmp_path / "o", volume_values((1, 4, 4)))[0]
    ds = pydicom.dcmread(other)
    ds.SeriesInstanceUID = pydicom.dcmread(tmp_path / "s" / "img000.dcm").SeriesInstanceUID
    ds.save_as(tmp_path / "s" / "small.dcm")
    with pytest.raises(ReadError, match=r"small\.dcm: mixed sizes in one series"):
        bv.read(tmp_path / "s")


def test_mixed_orientations_are_refused(tmp_path):
    files = _series_with(tmp_path)
    ds = pydicom.dcmread(files[4])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(files[4])
    with pytest.raises(ReadError, match=r"img004\.dcm: mixed orientations in one series"):
        bv.read(tmp_path / "s")


def test_compressed_without_decoder_names_the_packages_to_install():
    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    assert not pydicom.pixels.get_decoder(
        pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    ).is_available, "a JPEG-LS decoder is installed: pick another file for this test"
    with pytest.raises(ReadError, match=r"JPEG-LS .* no installed package decodes it") as info:
        bv.read(path)
    assert "pylibjpeg" in str(info.value)
    assert "python-gdcm" in str(info.value)
    assert str(info.value).startswith(path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("DICOMDIR", "a DICOMDIR"),
        ("reportsi.dcm", r"not an image: the object \(SOP class Basic Text SR Storage\)"),
        ("rtstruct.dcm", r"not an image: the object \(SOP class RT Structure Set Storage\)"),
        ("MR_truncated.dcm", "it is truncated or its header is corrupt"),
    ],
)
def test_non_images_and_broken_files_are_refused_by_name(name, message):
    path = get_testdata_file(name)
    with pytest.raises(ReadError, match=message) as info:
        bv.read(path)
    assert str(info.value).startswith(path)


def test_header_claiming_huge_frames_is_refused_before_allocating(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.NumberOfFrames = 100_000_000
    ds.save_as(tmp_path / "huge.dcm")
    with pytest.raises(ReadError, match="the header claims 100000000 frame"):
        bv.read(tmp_path / "huge.dcm")


def test_folder_without_images_is_refused(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    shutil.copy(get_testdata_file("reportsi.dcm"), folder / "a.dcm")
    with pytest.raises(ReadError, match="holds no DICOM images"):
        bv.read(folder)


def test_accepts_is_cheap_and_never_raises(tmp_path):
    assert not dicom.accepts(str(tmp_path / "missing"))
    assert not dicom.accepts("\0bad")
    assert dicom.accepts(str(tmp_path / "x.DCM"))
    assert not dicom.accepts(str(tmp_path))  # an empty folder is the sequence reader's


# --- damaged files (cases the fuzz suite found; tests/io/fuzz_driver.py) -------------------


@pytest.mark.parametrize(
    ("at", "where"),
    [(100, "before the DICM marker"), (190, "inside the file meta"), (700, "before Rows")],
)
@pytest.mark.parametrize("which", [0, -1], ids=["first", "last"])
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")  # the cut UID
def test_truncated_end_slice_is_an_error_not_a_shorter_series(tmp_path, at, where, which):
    files = _series_with(tmp_path)
    cut = files[which]
    cut.write_bytes(cut.read_bytes()[:at])
    with pytest.raises(ReadError, match="truncated") as info:
        bv.read(tmp_path / "s")
    assert str(info.value).startswith(str(cut)), where


def test_non_image_objects_in_a_series_folder_are_still_skipped(tmp_path):
    _series_with(tmp_path)
    shutil.copy(get_testdata_file("reportsi.dcm"), tmp_path / "s" / "report.dcm")
    [(data, kwargs, _)] = bv.read(tmp_path / "s")
    assert data.shape[0] == 6
    assert kwargs["metadata"]["bigvol"]["skipped"] == [str(tmp_path / "s" / "report.dcm")]


def test_corrupt_element_length_allocates_nothing_it_claims(tmp_path):
    import tracemalloc

    path = _series_with(tmp_path)[0]
    header = pydicom.dcmread(path)
    assert header.is_implicit_VR  # GDCM's default: every value length takes 4 bytes
    length_at = header.get_item("Rows").value_tell - 4
    raw = bytearray(path.read_bytes())
    raw[length_at : length_at + 4] = (0xFFFFFFF0).to_bytes(4, "little")  # claims 4 GiB
    path.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(ReadError, match=r"img000\.dcm"):
            bv.read(tmp_path / "s")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"reading the header allocated {peak / 2**30:.1f} GiB"


@pytest.mark.parametrize(
    ("keyword", "value", "expected"),
    [
        ("ImagePositionPatient", [0.0, "inf", 0.0], "no geometry"),
        ("ImagePositionPatient", [1e308, 0.0, 0.0], "no geometry"),
        ("PixelSpacing", [-1.0, 0.5], "unit spacing"),
        ("PixelSpacing", ["nan", 0.5], "unit spacing"),
        ("SliceThickness", "inf", "opens"),
        ("ImageOrientationPatient", [1e308, 0, 0, 0, 1, 0], "no geometry"),
        ("ImageOrientationPatient", [2, 0, 0, 0, 1, 0], "refused"),
        ("ImageOrientationPatient", [1, 0, 0, 1, 0, 0], "refused"),
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR DS:UserWarning")  # damaged on purpose
def test_unusable_geometry_values_are_unknown_or_refused(tmp_path, keyword, value, expected):
    path = tmp_path / "odd.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds[keyword].value = value  # written as the text it would be in a damaged file
    ds.save_as(path)
    if expected == "refused":
        with pytest.raises(ReadError, match=r"odd\.dcm: ImageOrientationPatient .* corrupt"):
            bv.read(path)
        return
    [(data, kwargs, _)] = bv.read(path)
    assert np.all(np.isfinite(kwargs["scale"]))
    assert min(kwargs["scale"]) > 0
    assert data.shape[-2:] == (128, 128)
    if expected == "no geometry":
        assert "affine" not in kwargs["metadata"]["bigvol"]
    if expected == "unit spacing":
        assert tuple(kwargs["scale"][-2:]) == pytest.approx((1.0, 1.0))


def test_unknown_value_representation_names_the_file(tmp_path):
    files = _series_with(tmp_path)
    ds = pydicom.dcmread(files[0])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # so that VRs are in the file
    ds.save_as(files[0], enforce_file_format=True)
    raw = bytearray(files[0].read_bytes())
    modality = raw.index(b"\x08\x00\x60\x00CS")  # (0008,0060) Modality, explicit VR "CS"
    raw[modality + 4 : modality + 6] = b"\x43\x81"  # a VR that does not exist
    files[0].write_bytes(bytes(raw))
    with pytest.raises(ReadError, match=r"img000\.dcm: not a readable DICOM file"):
        bv.read(tmp_path / "s")
