"""NIfTI reader: voxels, world coordinates, laziness, gzip random access and bad input.

Every file is real: nibabel's shipped test NIfTI files, or files written with nibabel in
``tmp_path``. Voxel values are compared with nibabel's own ``dataobj`` and
``apply_orientation``; world coordinates with ``apply_affine`` through a real napari layer.
"""

from __future__ import annotations

import gzip
import itertools
import os
import pickle
import re
import struct
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cloudpickle
import dask
import nibabel as nib
import numpy as np
import pytest
from napari.layers import Image
from nibabel.affines import apply_affine, from_matvec
from nibabel.eulerangles import euler2mat
from nibabel.orientations import (
    aff2axcodes,
    apply_orientation,
    axcodes2ornt,
    io_orientation,
    ornt_transform,
)

from napari_bigvol.errors import ReadError, ReadWarning
from napari_bigvol.io import nifti, reader_for
from napari_bigvol.io import read as read_any

pytestmark = pytest.mark.filterwarnings(
    # napari warns when a layer whose affine rotates out of the displayed plane is
    # sliced; that is exactly what an oblique NIfTI (example4d.nii.gz) is.
    "ignore:Non-orthogonal slicing is being requested:UserWarning"
)

REAL_FILES = [
    "anatomical.nii",
    "functional.nii",
    "example4d.nii.gz",
    "example_nifti2.nii.gz",
    "standard.nii.gz",
]
ZOOMS = (1.5, 2.0, 2.5)
ORIGIN = (-40.0, 25.0, 12.5)
# Linear parts of affines whose voxel axes point along these anatomical directions.
ORIENTATIONS = {
    "RAS": np.diag(ZOOMS),
    "LAS": np.diag(ZOOMS) * [-1, 1, 1],
    "LPI": -np.diag(ZOOMS),
    # i runs posterior, j superior, k left: a sagittal acquisition.
    "PSL": np.array([[0, 0, -ZOOMS[2]], [-ZOOMS[0], 0, 0], [0, ZOOMS[1], 0]]),
    "oblique": euler2mat(0.35, 0.0, 0.2) @ np.diag(ZOOMS) @ np.diag([-1, 1, 1]),
}
NAPARI_AXCODES = ("S", "A", "R")
RAS_LABELS = ("I→S", "P→A", "L→R")


def write_nifti(
    path: Path,
    data: np.ndarray,
    linear: np.ndarray | None = None,
    *,
    scaling: tuple[float, float] | None = None,
    cal: tuple[float, float] | None = None,
    nifti2: bool = False,
    units: tuple[str, str] = ("mm", "sec"),
) -> Path:
    """Write ``data`` with nibabel; ``scaling`` stores raw values with scl_slope/inter."""
    affine = from_matvec(ORIENTATIONS["RAS"] if linear is None else linear, ORIGIN)
    header_class = nib.Nifti2Header if nifti2 else nib.Nifti1Header
    header = header_class()
    header.set_data_dtype(data.dtype)
    image_class = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    image = image_class(data, affine, header)
    if scaling is not None:
        image.header.set_slope_inter(*scaling)
    if cal is not None:
        image.header["cal_min"], image.header["cal_max"] = cal
    image.header.set_xyzt_units(*units)
    if data.ndim > 3:
        image.header["pixdim"][4] = 0.8
    nib.save(image, path)
    return path


def unique_volume(shape: tuple[int, ...], dtype: str = "int16", seed: int = 0) -> np.ndarray:
    """Every voxel a different value, so a value identifies its voxel."""
    return (
        np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape).astype(dtype)
    )


def nibabel_reoriented(image: nib.Nifti1Image) -> np.ndarray:
    """The voxels in napari order, computed by nibabel's own reorientation (float64)."""
    voxels = np.asarray(image.dataobj)
    if voxels.ndim < 3:
        voxels = voxels.reshape(voxels.shape + (1,) * (3 - voxels.ndim))
    transform = ornt_transform(io_orientation(image.affine), axcodes2ornt(NAPARI_AXCODES))
    reoriented = apply_orientation(voxels, transform)
    leading = [a for a in range(3, reoriented.ndim) if reoriented.shape[a] > 1]
    reoriented = reoriented.reshape(
        reoriented.shape[:3] + tuple(reoriented.shape[a] for a in leading)
    )
    return np.moveaxis(
        reoriented, list(range(3, reoriented.ndim)), list(range(reoriented.ndim - 3))
    )


def world_of_voxel(image: nib.Nifti1Image, ijk: tuple[int, ...]) -> np.ndarray:
    """napari world (RAS, napari axis order S, A, R) of a voxel, from nibabel's apply_affine."""
    r, a, s = apply_affine(image.affine, ijk[:3])
    return np.array([s, a, r])


def assert_world_matches_affine(path: Path, voxels: list[tuple[int, ...]]) -> None:
    """For each voxel: napari data->world (as RAS) equals apply_affine, and values agree."""
    [(data, kwargs, _)] = nifti.read(path)
    layer = Image(data, **kwargs)
    image = nib.load(path)
    reference = np.asarray(image.dataobj)
    computed = data.compute()
    for ijk in voxels:
        world = world_of_voxel(image, ijk)
        leading = list(ijk[3:])
        t_world = [kwargs["translate"][0] + kwargs["scale"][0] * t for t in leading]
        index = np.asarray(layer.world_to_data([*t_world, *world]))
        rounded = np.round(index).astype(int)
        np.testing.assert_allclose(index, rounded, atol=1e-6)
        s, a, r = np.asarray(layer.data_to_world(rounded))[-3:]
        np.testing.assert_allclose([r, a, s], apply_affine(image.affine, ijk[:3]))
        np.testing.assert_allclose(computed[tuple(rounded)], reference[ijk], rtol=1e-6)


@contextmanager
def bytes_read() -> Iterator[list[int]]:
    """Bytes this process read from files (``rchar``, all threads) inside the block."""
    io_file = Path("/proc/self/io")
    if not io_file.exists():
        pytest.skip("needs Linux /proc/self/io to count bytes read")

    def rchar() -> int:
        return int(io_file.read_text().split("rchar:")[1].split()[0])

    result: list[int] = []
    before = rchar()
    yield result
    result.append(rchar() - before)


# --- accepts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("brain.nii", True),
        ("brain.nii.gz", True),
        ("BRAIN.NII", True),
        ("Brain.Nii.Gz", True),
        ("/data/sub-*_T1w.nii.gz", True),
        ("brain.nii.gzip", False),
        ("brain.mgz", False),
        ("brain.tif", False),
        ("folder", False),
    ],
)
def test_accepts_by_name_only(name, expected):
    assert nifti.accepts(name) is expected
    assert nifti.accepts(Path(name)) is expected


def test_accepts_never_raises():
    assert nifti.accepts(None) is False  # type: ignore[arg-type]


# --- real nibabel files ----------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_voxels_equal_nibabel_reoriented(nibabel_data, name):
    path = nibabel_data / name
    [(data, kwargs, layer_type)] = nifti.read(path)
    image = nib.load(path)
    expected = nibabel_reoriented(image)
    assert layer_type == "image"
    assert data.shape == expected.shape
    np.testing.assert_allclose(data.compute(), expected, rtol=1e-6)
    assert kwargs["axis_labels"][-3:] == RAS_LABELS
    assert kwargs["metadata"]["bigvol"]["source"] == os.fspath(path)
    np.testing.assert_array_equal(kwargs["metadata"]["bigvol"]["affine"], image.affine)


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_world_coordinates_follow_affine(nibabel_data, name):
    shape = nib.load(nibabel_data / name).shape
    last_volume = tuple(n - 1 for n in shape[3:])
    corners = [(*ijk, *last_volume) for ijk in itertools.product(*[(0, n - 1) for n in shape[:3]])]
    inner = [tuple(n // 2 for n in shape), tuple(min(n - 1, 1) for n in shape)]
    assert_world_matches_affine(nibabel_data / name, corners + inner)


@pytest.mark.parametrize("name", REAL_FILES)
def test_axis_mapping_agrees_with_aff2axcodes(nibabel_data, name):
    [(_, kwargs, _)] = nifti.read(nibabel_data / name)
    axcodes = aff2axcodes(nib.load(nibabel_data / name).affine)
    opposite = {"S": "I", "A": "P", "R": "L"}
    axes = kwargs["metadata"]["bigvol"]["axes"]
    for label, wanted in zip(RAS_LABELS, NAPARI_AXCODES, strict=True):
        code = axcodes[axes[label]["disk_axis"]]
        assert code in (wanted, opposite[wanted])
        assert axes[label]["flipped"] is (code != wanted)
    assert kwargs["metadata"]["bigvol"]["axcodes"] == list(axcodes)


def test_real_file_facts(nibabel_data):
    [(data, kwargs, _)] = nifti.read(nibabel_data / "functional.nii")
    assert data.shape == (20, 3, 21, 17)
    assert kwargs["axis_labels"] == ("t", *RAS_LABELS)
    assert kwargs["units"] == ("second", "millimeter", "millimeter", "millimeter")
    assert kwargs["scale"] == (2.0, 8.0, 4.0, 4.0)
    assert kwargs["contrast_limits"] == pytest.approx((629.8262, 5571.6216), rel=1e-6)
    bigvol = kwargs["metadata"]["bigvol"]
    assert bigvol["contrast_limits_from"] == "header cal_min/cal_max"
    assert bigvol["format"] == "NIfTI-1"
    assert bigvol["header"]["scl_slope"] == pytest.approx(0.0754069686)
    assert data.dtype == np.float32  # int16 with scl_slope
    [(_, kwargs2, _)] = nifti.read(nibabel_data / "example_nifti2.nii.gz")
    assert kwargs2["metadata"]["bigvol"]["format"] == "NIfTI-2"
    assert "affine" in kwargs2  # this file is oblique


def test_cifti_is_refused_clearly(nibabel_data):
    with pytest.raises(ReadError, match=r"row_major\.dconn\.nii: a CIFTI-2 file \(.*\), not an"):
        nifti.read(nibabel_data / "row_major.dconn.nii")


# --- orientation, dimensions and dtypes on written files ---------------------------------


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
@pytest.mark.parametrize("shape", [(5, 6, 7), (5, 6, 7, 3)], ids=["3d", "4d"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_world_coordinates_for_orientations(tmp_path, orientation, shape, suffix):
    path = write_nifti(tmp_path / f"v{suffix}", unique_volume(shape), ORIENTATIONS[orientation])
    image = nib.load(path)
    assert "".join(aff2axcodes(image.affine)) == (
        "LAS" if orientation == "oblique" else orientation
    )
    every_voxel = list(np.ndindex(shape))
    assert_world_matches_affine(path, every_voxel)
    np.testing.assert_array_equal(nifti.read(path)[0][0].compute(), nibabel_reoriented(image))


def test_axial_plane_rows_run_to_anterior_and_columns_to_the_right(tmp_path):
    """Whatever the voxel order, an axial plane's last row is anterior, last column right.

    The camera, not the data, puts anterior at the top and the right on the screen's left
    (tests/_napari/test_anatomical.py).
    """
    ras_volume = np.zeros((4, 5, 3), np.uint8)  # axes run to R, A and S
    ras_volume[3, :, :] = 1  # the subject's rightmost voxels
    ras_volume[:, 4, :] = 2  # the most anterior voxels
    for orientation in ("RAS", "LPI", "PSL"):
        # The same anatomy stored along this orientation's voxel axes.
        to_disk = ornt_transform(axcodes2ornt(("R", "A", "S")), axcodes2ornt(tuple(orientation)))
        disk = apply_orientation(ras_volume, to_disk)
        path = write_nifti(tmp_path / f"{orientation}.nii", disk, ORIENTATIONS[orientation])
        assert aff2axcodes(nib.load(path).affine) == tuple(orientation)
        plane = nifti.read(path)[0][0][1].compute()
        assert (plane[-1, :-1] == 2).all(), orientation  # anterior: the last row
        assert (plane[:-1, -1] == 1).all(), orientation  # right: the last column


@pytest.mark.parametrize(
    ("dtype", "scaling", "expected"),
    [
        ("uint8", None, "uint8"),
        ("int16", None, "int16"),
        (">i2", None, "int16"),
        ("int32", None, "int32"),
        ("float32", None, "float32"),
        ("float64", None, "float64"),
        ("uint8", (0.5, 10.0), "float32"),
        ("int16", (0.25, -3.0), "float32"),
        ("uint16", (2.0, 0.0), "float32"),
        ("int32", (0.5, 1.0), "float64"),
        ("float64", (2.0, 1.0), "float64"),
    ],
)
@pytest.mark.parametrize("nifti2", [False, True], ids=["nifti1", "nifti2"])
def test_dtype_and_scaling(tmp_path, dtype, scaling, expected, nifti2):
    volume = np.random.default_rng(1).integers(0, 200, (4, 6, 5)).astype(dtype)
    path = write_nifti(tmp_path / "s.nii.gz", volume, scaling=scaling, nifti2=nifti2)
    [(data, kwargs, _)] = nifti.read(path)
    assert data.dtype == np.dtype(expected)
    computed = data.compute()
    assert computed.dtype == np.dtype(expected)
    np.testing.assert_allclose(computed, nibabel_reoriented(nib.load(path)), rtol=1e-6)
    summary = kwargs["metadata"]["bigvol"]["header"]
    assert (summary["scl_slope"], summary["scl_inter"]) == (scaling or (None, None))


@pytest.mark.parametrize(
    ("disk_shape", "napari_shape", "labels"),
    [
        ((6, 5), (1, 5, 6), RAS_LABELS),
        ((6, 5, 4, 1), (4, 5, 6), RAS_LABELS),
        ((6, 5, 4, 2), (2, 4, 5, 6), ("t", *RAS_LABELS)),
        ((6, 5, 4, 1, 3), (3, 4, 5, 6), ("u", *RAS_LABELS)),
        ((6, 5, 4, 2, 3), (2, 3, 4, 5, 6), ("t", "u", *RAS_LABELS)),
    ],
)
def test_dimensions(tmp_path, disk_shape, napari_shape, labels):
    path = write_nifti(tmp_path / "d.nii", unique_volume(disk_shape))
    [(data, kwargs, _)] = nifti.read(path)
    assert data.shape == napari_shape
    assert kwargs["axis_labels"] == labels
    assert len(kwargs["scale"]) == len(kwargs["translate"]) == len(kwargs["units"]) == len(labels)
    np.testing.assert_array_equal(data.compute(), nibabel_reoriented(nib.load(path)))


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (("mm", "sec"), ("second", "millimeter", "millimeter", "millimeter")),
        (("micron", "msec"), ("millisecond", "micrometer", "micrometer", "micrometer")),
        (("unknown", "unknown"), ("pixel", "millimeter", "millimeter", "millimeter")),
    ],
)
def test_units_from_xyzt_units(tmp_path, units, expected):
    path = write_nifti(tmp_path / "u.nii", unique_volume((3, 4, 5, 2)), units=units)
    [(data, kwargs, _)] = nifti.read(path)
    assert kwargs["units"] == expected
    assert kwargs["scale"][0] == pytest.approx(0.8)
    Image(data, **kwargs)  # napari accepts these unit names


# --- contrast limits -----------------------------------------------------------------------


def test_contrast_limits_from_header_cal(tmp_path):
    path = write_nifti(tmp_path / "c.nii", unique_volume((4, 5, 6)), cal=(10.0, 50.0))
    [(_, kwargs, _)] = nifti.read(path)
    assert kwargs["contrast_limits"] == (10.0, 50.0)
    assert kwargs["metadata"]["bigvol"]["contrast_limits_from"] == "header cal_min/cal_max"


@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 5, 6, 3)])
def test_contrast_limits_from_the_middle_plane_napari_shows_first(tmp_path, shape):
    path = write_nifti(tmp_path / "c.nii.gz", unique_volume(shape), scaling=(0.5, 3.0))
    [(data, kwargs, _)] = nifti.read(path)
    middle = tuple((n - 1) // 2 for n in data.shape[:-2])
    plane = data[middle].compute()
    assert kwargs["contrast_limits"] == (plane.min(), plane.max())
    assert kwargs["contrast_limits"] != (data.min().compute(), data.max().compute())
    assert "middle plane" in kwargs["metadata"]["bigvol"]["contrast_limits_from"]


def test_contrast_limits_ignore_nan_and_inf(tmp_path):
    volume = unique_volume((4, 5, 6), "float32")
    volume[:2, :, 2] = np.nan  # the middle plane, z = 2
    volume[3, 0, 2] = np.inf
    path = write_nifti(tmp_path / "f.nii", volume)
    [(_, kwargs, _)] = nifti.read(path)
    finite = volume[:, :, 2][np.isfinite(volume[:, :, 2])]
    assert kwargs["contrast_limits"] == (finite.min(), finite.max())


def test_constant_volume_gets_a_valid_window(tmp_path):
    path = write_nifti(tmp_path / "zeros.nii", np.zeros((3, 4, 5), np.float32))
    [(data, kwargs, _)] = nifti.read(path)
    assert kwargs["contrast_limits"] == (0.0, 1.0)
    Image(data, **kwargs)


# --- laziness, reads per plane, gzip random access ----------------------------------------


def test_open_reads_no_pixels_when_header_has_a_window(tmp_path, open_counter):
    shape = (128, 128, 32)
    path = write_nifti(tmp_path / "v.nii", unique_volume(shape), cal=(0.0, 100.0))
    nifti.read(path)  # warm imports and caches outside the measurement
    with open_counter.watch(tmp_path) as opened, bytes_read() as amount:
        [(data, _, _)] = nifti.read(path)
    assert opened[str(path)] >= 1  # the header
    assert amount[0] < 128 * 128 * 2  # less than one plane: the header only
    with open_counter.watch(tmp_path) as opened:
        dask.compute(*[data[k] for k in range(shape[2])], scheduler="threads", num_workers=4)
    assert opened == {str(path): 1}  # one handle for all planes and threads


@pytest.mark.parametrize("orientation", ["RAS", "LPI"])
def test_one_plane_reads_one_plane_of_bytes(tmp_path, open_counter, orientation):
    shape = (128, 128, 64)  # 2 MiB int16 in total, 32 KiB per plane
    plane_bytes = shape[0] * shape[1] * 2
    path = write_nifti(
        tmp_path / "v.nii", unique_volume(shape, "int16"), ORIENTATIONS[orientation]
    )
    [(data, _, _)] = nifti.read(path)
    data[0].compute()  # open the handle and warm dask's thread pool
    with open_counter.watch(tmp_path) as opened, bytes_read() as amount:
        plane = data[40].compute()
    assert plane.shape == (128, 128)
    assert not opened  # the handle stays open
    assert plane_bytes <= amount[0] <= plane_bytes + 16384


def test_gz_random_access_reuses_seek_points(tmp_path):
    """Jumps and scrolls decompress from nearby seek points, never from the start."""
    shape = (256, 256, 192)  # 24 MiB decompressed, 128 KiB per slice
    plane_bytes = 256 * 256 * 2
    noise = np.random.default_rng(2).integers(0, 4096, shape, dtype=np.int16)
    path = write_nifti(tmp_path / "v.nii.gz", noise, cal=(0.0, 4096.0))
    compressed = path.stat().st_size
    last = shape[2] - 1
    with bytes_read() as fresh:
        nib.load(path).dataobj[:, :, last]  # what a reader without an index pays
    assert fresh[0] > 0.8 * compressed

    def check(k: int) -> None:
        # RAS on disk: napari's y and x are j and i, transposed.
        np.testing.assert_array_equal(data[k].compute(), noise[:, :, k].T)

    [(data, _, _)] = nifti.read(path)
    with bytes_read() as first:
        check(last)
    assert first[0] > 0.8 * compressed  # building the index is one pass
    jumps = []
    for k in (150, 20, 171, 60, 111, 5, last):
        with bytes_read() as amount:
            check(k)
        jumps.append(amount[0])
    with bytes_read() as scroll:
        for k in range(last, last - 48, -1):
            check(k)
    # A jump costs at most one seek-point spacing (1 MiB) of decompression plus the
    # 1 MiB compressed read buffer, wherever it lands; a scroll reads planes in 2 MiB
    # slabs, so it costs about the planes themselves.
    assert max(jumps) < 3 * 2**20 < fresh[0] / 4
    assert scroll[0] < 2 * 48 * plane_bytes < 48 * fresh[0] / 50


@pytest.mark.parametrize("orientation", ["LAS", "LPI", "PSL"])
def test_gz_scrolling_both_ways_reads_the_right_planes(tmp_path, orientation):
    shape = (40, 36, 64, 2)  # 2.8 KiB planes: slabs of hundreds of planes
    path = write_nifti(
        tmp_path / "s.nii.gz", unique_volume(shape, "int32"), ORIENTATIONS[orientation]
    )
    expected = nibabel_reoriented(nib.load(path))
    [(data, _, _)] = nifti.read(path)
    nz = data.shape[1]
    visits = [(0, z) for z in range(nz)] + [(1, z) for z in reversed(range(nz))]
    visits += [(0, 5), (1, 5), (1, 6), (0, 6), (0, 7), (1, 30), (1, 29), (1, 28), (0, 2)]
    for t, z in visits:
        plane = data[t, z].compute()
        np.testing.assert_array_equal(plane, expected[t, z])
        plane[...] = -1  # a caller writing into its plane must not corrupt later reads
    np.testing.assert_array_equal(data[0, 6].compute(), expected[0, 6])


def test_gz_handle_and_index_survive_between_planes(tmp_path, open_counter):
    shape = (256, 256, 48)
    path = write_nifti(tmp_path / "v.nii.gz", unique_volume(shape, "int32"), cal=(0.0, 1.0))
    [(data, _, _)] = nifti.read(path)
    with open_counter.watch(tmp_path) as opened:
        for k in (47, 3, 30, 12, 47):
            data[k].compute()
    assert opened == {str(path): 1}


def test_threads_read_planes_correctly(tmp_path):
    shape = (64, 64, 24, 3)
    path = write_nifti(tmp_path / "v.nii.gz", unique_volume(shape, "int32"), ORIENTATIONS["LAS"])
    [(data, _, _)] = nifti.read(path)
    expected = nibabel_reoriented(nib.load(path))
    order = np.random.default_rng(3).permutation(shape[3] * shape[2])
    planes = [data[i // shape[2], i % shape[2]] for i in order]
    for _ in range(2):
        results = dask.compute(*planes, scheduler="threads", num_workers=8)
        for i, plane in zip(order, results, strict=True):
            np.testing.assert_array_equal(plane, expected[i // shape[2], i % shape[2]])


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_array_pickles_for_distributed_workers(tmp_path, suffix):
    path = write_nifti(tmp_path / f"p{suffix}", unique_volume((8, 9, 10)), scaling=(2.0, 1.0))
    [(data, _, _)] = nifti.read(path)
    data[4].compute()  # an open handle and gzip index must not leak into the pickle
    clone = cloudpickle.loads(cloudpickle.dumps(data))
    assert clone.name == data.name
    np.testing.assert_array_equal(clone.compute(), data.compute())
    assert pickle.loads(pickle.dumps(data)).shape == data.shape


@pytest.mark.slow
def test_array_computes_on_a_distributed_cluster(tmp_path):
    from distributed import Client, LocalCluster

    path = write_nifti(tmp_path / "p.nii.gz", unique_volume((8, 9, 10, 2)), ORIENTATIONS["PSL"])
    [(data, _, _)] = nifti.read(path)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        result = client.compute(data).result()
    np.testing.assert_array_equal(result, nibabel_reoriented(nib.load(path)))


def test_name_is_deterministic(tmp_path):
    path = write_nifti(tmp_path / "n.nii", unique_volume((3, 4, 5)))
    first = nifti.read(path)[0][0]
    assert nifti.read(path)[0][0].name == first.name
    write_nifti(path, unique_volume((3, 4, 5), seed=9))
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))
    assert nifti.read(path)[0][0].name != first.name


# --- several files, globs, dispatch --------------------------------------------------------


def test_glob_and_list_give_one_layer_per_file(tmp_path):
    for i in (10, 2, 1):
        write_nifti(tmp_path / f"run{i}.nii.gz", unique_volume((3, 4, 5), seed=i))
    names = [kwargs["name"] for _, kwargs, _ in nifti.read(str(tmp_path / "run*.nii.gz"))]
    assert names == ["run1", "run2", "run10"]
    listed = nifti.read([tmp_path / "run2.nii.gz", tmp_path / "run1.nii.gz"])
    assert [kwargs["name"] for _, kwargs, _ in listed] == ["run2", "run1"]


def test_package_dispatch_reaches_this_reader(nibabel_data):
    path = str(nibabel_data / "anatomical.nii")
    assert reader_for(path) is not None
    [(data, kwargs, _)] = read_any(path)
    assert kwargs["name"] == "anatomical"
    assert data.shape == (25, 41, 33)


# --- bad input ---------------------------------------------------------------------------


def _valid_bytes(tmp_path: Path, nifti2: bool = False) -> bytearray:
    path = write_nifti(tmp_path / "src.nii", unique_volume((4, 5, 6)), nifti2=nifti2)
    return bytearray(path.read_bytes())


def _with_bytes(tmp_path: Path, offset: int, patch: bytes) -> bytes:
    header = _valid_bytes(tmp_path)
    header[offset : offset + len(patch)] = patch
    return bytes(header)


def _absurd_dims(tmp_path: Path, nifti2: bool) -> bytes:
    header = _valid_bytes(tmp_path, nifti2)
    if nifti2:
        struct.pack_into("<3q", header, 24, 10**6, 10**6, 10**6)
    else:
        struct.pack_into("<3h", header, 42, 30000, 30000, 30000)
    return bytes(header)


BAD_FILES = {
    "empty.nii": (lambda tmp: b"", "not a NIfTI file"),
    "garbage.nii": (lambda tmp: b"GARBAGE!" + os.urandom(4000), "not a NIfTI file"),
    "garbage.nii.gz": (lambda tmp: gzip.compress(b"GARBAGE!" * 500), "not a NIfTI file"),
    "bad_magic.nii": (lambda tmp: _with_bytes(tmp, 344, b"xyz\0"), "the NIfTI header is invalid"),
    "pair_magic.nii": (lambda tmp: _with_bytes(tmp, 344, b"ni1\0"), "not a single-file NIfTI"),
    "bad_datatype.nii": (
        lambda tmp: _with_bytes(tmp, 70, struct.pack("<h", 9999)),
        "the NIfTI header is invalid",
    ),
    "short_header.nii.gz": (
        lambda tmp: gzip.compress(bytes(_valid_bytes(tmp)[:200])),
        "the NIfTI header cannot be read",
    ),
    "not_gzip.nii.gz": (lambda tmp: b"NOTGZIP" + os.urandom(4000), "not a gzip file"),
    "truncated.nii": (lambda tmp: bytes(_valid_bytes(tmp)[:400]), "truncated"),
    "absurd.nii": (lambda tmp: _absurd_dims(tmp, False), r"30000 x 30000 x 30000 int16"),
    "absurd.nii.gz": (
        lambda tmp: gzip.compress(_absurd_dims(tmp, False)),
        "more than a .* gzip file can hold",
    ),
    "absurd2.nii": (lambda tmp: _absurd_dims(tmp, True), r"1000000 x 1000000 x 1000000"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_raise_read_error_without_allocating(tmp_path, name):
    make, problem = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    tracemalloc.start()
    try:
        with pytest.raises(ReadError, match=rf"^{re.escape(str(path))}: .*{problem}"):
            nifti.read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


@pytest.mark.parametrize("nifti2", [False, True], ids=["nifti1", "nifti2"])
def test_unset_vox_offset_means_data_right_after_the_header(tmp_path, nifti2):
    volume = unique_volume((3, 4, 5))
    path = write_nifti(tmp_path / "v.nii", volume, nifti2=nifti2)
    raw = bytearray(path.read_bytes())
    field_format, field_position = ("<q", 168) if nifti2 else ("<f", 108)
    struct.pack_into(field_format, raw, field_position, 0)
    path.write_bytes(bytes(raw))
    assert nib.load(path).dataobj.offset == 0  # nibabel would read the header as voxels
    [(data, kwargs, _)] = nifti.read(path)
    np.testing.assert_array_equal(
        data.compute(), nibabel_reoriented(nib.Nifti1Image(volume, nib.load(path).affine))
    )
    assert kwargs["metadata"]["bigvol"]["header"]["vox_offset"] == (544 if nifti2 else 352)


def test_degenerate_affine_falls_back_to_nibabels_base_grid(tmp_path):
    path = write_nifti(tmp_path / "flat.nii", unique_volume((3, 4, 5)), ORIENTATIONS["LAS"])
    raw = bytearray(path.read_bytes())
    struct.pack_into("<2h", raw, 252, 0, 1)  # qform_code unset, sform_code "scanner"
    struct.pack_into("<12f", raw, 280, *[0.0] * 12)  # an all-zero sform
    path.write_bytes(bytes(raw))
    [(data, kwargs, _)] = nifti.read(path)
    assert kwargs["scale"] == ZOOMS[::-1]
    # nibabel's grid for headers without qform and sform: LAS, centred on the volume.
    base = nib.Nifti1Header()
    base.set_data_shape((3, 4, 5))
    base.set_zooms(ZOOMS)
    center = apply_affine(base.get_base_affine(), (1, 1.5, 2))
    np.testing.assert_allclose(center, 0.0, atol=1e-12)
    layer = Image(data, **kwargs)
    np.testing.assert_allclose(layer.data_to_world((2, 1.5, 1)), 0.0, atol=1e-12)
    assert "degenerate" in kwargs["metadata"]["bigvol"]["affine_note"]


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ReadError, match=r"missing\.nii: no such file"):
        nifti.read(tmp_path / "missing.nii")
    (tmp_path / "folder.nii").mkdir()
    with pytest.raises(ReadError, match=r"folder\.nii: is a folder"):
        nifti.read(tmp_path / "folder.nii")


def test_truncated_gz_fails_when_the_missing_plane_is_read(tmp_path):
    shape = (64, 64, 40)
    path = write_nifti(tmp_path / "full.nii.gz", unique_volume(shape), cal=(0.0, 1.0))
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    [(data, _, _)] = nifti.read(truncated)  # the header is intact
    data[0].compute()  # planes before the cut are fine
    with pytest.raises(
        ReadError,
        match=rf"^{re.escape(str(truncated))}: cannot read plane 39, the file is truncated",
    ):
        data[39].compute()


@pytest.mark.parametrize("channels", ["RGB", "RGBA"])
def test_rgb_voxels_become_an_rgb_layer(tmp_path, channels):
    shape = (4, 5, 6)
    colour = np.dtype([(name, "u1") for name in channels])
    voxels = np.zeros(shape, colour)
    for offset, name in enumerate(channels):
        voxels[name] = (unique_volume(shape) + offset) % 256
    path = write_nifti(tmp_path / "rgb.nii.gz", voxels, ORIENTATIONS["LAS"], scaling=(2.0, 1.0))
    [(data, kwargs, _)] = nifti.read(path)
    assert data.shape == (6, 5, 4, len(channels))
    assert data.dtype == np.uint8
    assert kwargs["rgb"] is True
    # nibabel itself fails to apply scl_slope to RGB voxels; the standard says not to.
    transform = ornt_transform(io_orientation(nib.load(path).affine), axcodes2ornt(NAPARI_AXCODES))
    expected = np.stack([apply_orientation(voxels[name], transform) for name in channels], -1)
    np.testing.assert_array_equal(data.compute(), expected)
    layer = Image(data, **kwargs)
    assert layer.rgb
    assert layer.ndim == 3


def test_complex_voxels_are_refused(tmp_path):
    path = write_nifti(tmp_path / "c.nii", np.ones((3, 4, 5), np.complex64))
    with pytest.raises(ReadError, match="complex64 cannot be displayed"):
        nifti.read(path)


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_a_ras_point_is_at_the_same_world_position_in_every_voxel_order(tmp_path, orientation):
    """Scans of one subject overlay: RAS (-50, 40, 10) is world (z, y, x) = (10, 40, -50)."""
    marker_ras = np.array([-50.0, 40.0, 10.0])
    marker_voxel = (2, 3, 4)
    linear = ORIENTATIONS[orientation]
    volume = np.zeros((5, 6, 7), np.uint8)
    volume[marker_voxel] = 255
    affine = from_matvec(linear, marker_ras - linear @ marker_voxel)
    nib.save(nib.Nifti1Image(volume, affine), tmp_path / "marker.nii")
    [(data, kwargs, _)] = nifti.read(tmp_path / "marker.nii")
    layer = Image(data, **kwargs)
    index = np.round(layer.world_to_data((10.0, 40.0, -50.0))).astype(int)
    assert data[tuple(index)].compute() == 255
    status = layer.get_status((10.0, 40.0, -50.0), world=True)
    assert status["coords"] == "[10.00, 40.00, -50.00]"  # the status bar reads S, A, R


# --- header values nibabel parses but that describe no image (issue 8) --------------------


def _edited(tmp_path: Path, name: str, *fields: tuple[str, object]) -> Path:
    """A real NIfTI-1 file with header fields overwritten in place, as a damaged copy has."""
    path = write_nifti(tmp_path / name, unique_volume((4, 5, 6)))
    raw = bytearray(path.read_bytes())
    header_dtype = nib.Nifti1Header().structarr.dtype
    for field, value in fields:
        field_dtype, offset = header_dtype.fields[field][:2]
        raw[offset : offset + field_dtype.itemsize] = np.asarray(value, field_dtype).tobytes()
    path.write_bytes(bytes(raw))
    return path


NONSENSE_HEADERS = {
    "nan_sform.nii": [("sform_code", 1), ("srow_x", [np.nan, 0, 0, 0])],
    "big_quatern.nii": [("qform_code", 1), ("sform_code", 0), ("quatern_b", 2.0)],
    "nan_vox_offset.nii": [("vox_offset", np.nan)],
    "units255.nii": [("xyzt_units", 255)],
}


@pytest.mark.parametrize("name", list(NONSENSE_HEADERS))
def test_nonsense_header_values_are_read_errors_naming_the_file(tmp_path, name):
    """Each raised a raw LinAlgError, ValueError or KeyError with no file name."""
    path = _edited(tmp_path, name, *NONSENSE_HEADERS[name])

    with pytest.raises(ReadError, match=re.escape(name)) as caught:
        _read_every_plane(path)
    assert caught.value.__cause__ is not None or "header" in str(caught.value)


def _read_every_plane(path: Path) -> None:
    [(data, _, _)] = nifti.read(path)
    data.compute()


def test_infinite_time_step_is_unknown_with_a_warning(tmp_path):
    path = write_nifti(tmp_path / "bold.nii", unique_volume((4, 5, 6, 3)))
    raw = bytearray(path.read_bytes())
    struct.pack_into("<f", raw, 76 + 4 * 4, np.inf)  # pixdim[4]
    path.write_bytes(bytes(raw))

    with pytest.warns(ReadWarning, match=r"bold\.nii: the voxel size is not a positive"):
        [(_, kwargs, _)] = nifti.read(path)

    assert kwargs["scale"][0] == 1.0
    assert np.all(np.isfinite(kwargs["scale"]))


@pytest.mark.parametrize("name", ["pipe.nii", "pipe.nii.gz"])
def test_a_fifo_named_like_nifti_is_refused_without_opening_it(tmp_path, open_counter, name):
    """Opening a FIFO waits for a writer forever; the reader must look before it opens."""
    path = tmp_path / name
    os.mkfifo(path)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            read_any(str(path))
        except BaseException as error:  # handed to the test thread below
            outcome.append(error)

    with open_counter.watch(tmp_path) as opened:
        # A thread, so that a regression fails this test instead of hanging the suite.
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(60)

    assert not opened
    assert len(outcome) == 1, "the reader blocked on the FIFO"
    assert isinstance(outcome[0], ReadError), outcome
    assert "is a pipe, device or socket" in str(outcome[0])
