"""Threshold masks, masked images, Otsu, mask statistics, components and value ranges."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from scipy import ndimage
from skimage.filters import threshold_otsu

from napari_bigvol.errors import Cancelled, OperationError
from napari_bigvol.ops.histogram import histogram
from napari_bigvol.ops.threshold import (
    apply_mask,
    count_components,
    mask_statistics,
    otsu_threshold,
    otsu_threshold_of,
    threshold_mask,
    value_range_estimate,
)

NUMERIC_DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "int32", "float16", "float32"]


def ramp(dtype: str, shape=(6, 20, 30)) -> np.ndarray:
    values = np.arange(np.prod(shape)).reshape(shape) % 251 - 60
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return values % 2 == 0
    if dtype.kind == "u":
        values = np.abs(values)
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
@pytest.mark.parametrize("mode", ["above", "below"])
@pytest.mark.parametrize("threshold", [-1000, -0.5, 0, 17, 17.5, 125, 1e9])
def test_threshold_mask_equals_the_comparison(dtype, mode, threshold):
    data = ramp(dtype)
    expected = data.astype(np.float64) > threshold
    if mode == "below":
        expected = data.astype(np.float64) < threshold
    result = threshold_mask(data, threshold, mode)
    assert isinstance(result, np.ndarray)
    assert result.dtype == bool
    np.testing.assert_array_equal(result, expected)


def test_dask_input_stays_lazy(block_loads):
    data = block_loads.wrap(da.from_array(ramp("uint16"), chunks=(1, 20, 30)))
    mask = threshold_mask(data, 100, mode="below")
    masked = apply_mask(data, mask)
    assert isinstance(mask, da.Array)
    assert isinstance(masked, da.Array)
    assert block_loads.count == 0  # nothing computed yet
    np.testing.assert_array_equal(
        masked[2].compute(), np.where(ramp("uint16")[2] < 100, ramp("uint16")[2], 0)
    )
    assert block_loads.count == 1  # one plane computed one block


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_thresholds_between_representable_values_stay_exact(dtype):
    # 125.3 is not a float16: comparing in float16 would round it to 125.25 and keep
    # 125.25 > 125.3. The mask must equal the exact comparison.
    data = np.array([125.25, 125.3, 125.375, 125.5], dtype)
    exact = data.astype(np.float64)
    for t in (125.3, 125.31, 125.26, np.nextafter(125.25, 200)):
        np.testing.assert_array_equal(threshold_mask(data, t), exact > t)
        np.testing.assert_array_equal(threshold_mask(data, t, "below"), exact < t)


def test_seed_lesson_below_threshold_on_a_real_image(ihc_rgb):
    # The lesson's `mask = img < 125` and `img * mask`, on scikit-image's IHC slide.
    img = ihc_rgb[..., 2]
    mask = threshold_mask(img, 125, mode="below")
    np.testing.assert_array_equal(mask, img < 125)
    np.testing.assert_array_equal(apply_mask(img, mask), img * mask)
    assert apply_mask(img, mask).dtype == np.uint8


def test_apply_mask_on_rgb_broadcasts_over_colours(astronaut_rgb):
    mask = astronaut_rgb[..., 0] > 100
    masked = apply_mask(astronaut_rgb, mask)
    np.testing.assert_array_equal(masked, astronaut_rgb * mask[..., None])
    lazy = apply_mask(da.from_array(astronaut_rgb, chunks=(128, 128, 3)), da.from_array(mask))
    np.testing.assert_array_equal(lazy.compute(), masked)


@pytest.mark.parametrize("dtype", [*NUMERIC_DTYPES, "int64", "uint64", "float64"])
@pytest.mark.parametrize("lazy", [False, True])
def test_apply_mask_keeps_the_dtype_and_zeroes_outside(dtype, lazy):
    data = ramp(dtype)
    mask = ramp("uint8") % 3 == 0
    masked = apply_mask(da.from_array(data, chunks=(2, 20, 30)) if lazy else data, mask)
    assert isinstance(masked, da.Array) == lazy
    assert masked.dtype == data.dtype
    expected = np.where(mask, data, np.zeros((), data.dtype))
    np.testing.assert_array_equal(np.asarray(masked), expected)


def test_apply_mask_zeroes_nans_and_keeps_float_dtype():
    data = np.array([np.nan, 1.5, np.nan, 4.0], np.float32)
    masked = apply_mask(data, np.array([0, 1, 1, 0], np.uint8))
    assert masked.dtype == np.float32
    np.testing.assert_array_equal(masked, [0.0, 1.5, np.nan, 0.0])


def test_apply_mask_refuses_mismatched_shapes():
    with pytest.raises(OperationError, match=r"does not match the image"):
        apply_mask(np.zeros((4, 5)), np.zeros((5, 4), bool))
    with pytest.raises(OperationError, match=r"does not match the image"):
        apply_mask(np.zeros((4, 5, 2)), np.zeros((4, 5), bool))


def test_bad_threshold_input():
    with pytest.raises(OperationError, match="NaN"):
        threshold_mask(np.zeros(3), float("nan"))
    with pytest.raises(OperationError, match="'above' or 'below'"):
        threshold_mask(np.zeros(3), 1, mode="over")
    with pytest.raises(OperationError, match="not numeric"):
        threshold_mask(np.array(["a", "b"]), 1)


@pytest.mark.parametrize("name", ["camera.png", "moon.png", "coins.png"])
def test_otsu_of_real_images_agrees_with_scikit_image(skimage_data, name):
    import imageio.v3 as iio

    image = iio.imread(skimage_data / name)
    chunked = da.from_array(image, chunks=(100, 512))
    assert otsu_threshold_of(chunked) == threshold_otsu(image)
    # From a float histogram the same way scikit-image builds it for float images.
    as_float = image.astype(np.float32) / 7
    counts, edges = histogram(da.from_array(as_float, chunks=128), 256)
    assert otsu_threshold(counts, edges) == pytest.approx(threshold_otsu(as_float), rel=1e-6)
    assert otsu_threshold_of(as_float) == pytest.approx(threshold_otsu(as_float), rel=1e-6)


def test_otsu_of_a_real_mri_volume(mri_int16, nibabel_data):
    import nibabel

    chunked = da.from_array(mri_int16, chunks=(5, 41, 25))
    assert otsu_threshold_of(chunked) == threshold_otsu(mri_int16.astype(np.int16))
    scaled = nibabel.load(nibabel_data / "example4d.nii.gz").get_fdata(dtype=np.float32)[..., 0]
    assert otsu_threshold_of(da.from_array(scaled, chunks=(64, 96, 6))) == pytest.approx(
        threshold_otsu(scaled), rel=1e-6
    )


def test_otsu_of_a_histogram_with_given_centres():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(30, 5, 5000), rng.normal(90, 10, 3000)])
    counts, edges = np.histogram(values, 64)
    centres = (edges[:-1] + edges[1:]) / 2
    assert otsu_threshold(counts, edges) == threshold_otsu(hist=(counts, centres))


def test_otsu_edge_cases():
    assert otsu_threshold_of(np.full((3, 3), 7, np.uint8)) == 7.0
    with pytest.raises(OperationError, match="histogram is empty"):
        otsu_threshold(np.zeros(4), np.arange(5))
    with pytest.raises(OperationError, match="n counts and n \\+ 1 edges"):
        otsu_threshold(np.ones(4), np.arange(4))


def test_mask_statistics_in_physical_units(mri_int16):
    mask = threshold_mask(da.from_array(mri_int16, chunks=(5, 41, 25)), 300)
    stats = mask_statistics(mask, voxel_size=(2.0, 2.0, 2.0), units=("mm", "mm", "mm"))
    expected = int(np.count_nonzero(mri_int16 > 300))
    assert stats.masked == expected
    assert stats.total == mri_int16.size
    assert stats.fraction == expected / mri_int16.size
    assert stats.voxel_volume == 8.0
    assert stats.volume == expected * 8.0
    assert stats.unit == "mm³"


def test_mask_statistics_units():
    mask = np.ones((2, 3, 4), bool)
    mixed = mask_statistics(mask, (1.0, 500.0, 500.0), ("millimeter", "micrometer", "µm"))
    assert mixed.voxel_volume == pytest.approx(0.25)
    assert mixed.unit == "mm³"
    assert mask_statistics(mask[0], (0.5, 0.5), "micrometer").unit == "µm²"
    assert mask_statistics(mask).unit == "voxel"
    assert mask_statistics(mask, (2, 2, 2), "pixel").unit == "(scale unit)³"
    # A 4-D layer's scale applies to a 3-D mask by its last three entries.
    assert mask_statistics(mask, (9.0, 1.0, 1.0, 2.0), "mm").voxel_volume == 2.0
    with pytest.raises(OperationError, match="does not cover"):
        mask_statistics(mask, (1.0, 1.0))


def test_mask_statistics_streams_from_disk_with_progress_and_cancel(tmp_path, open_counter):
    volume = ramp("uint16", shape=(12, 40, 30))
    store = tmp_path / "volume.zarr"
    zarr.create_array(store, data=volume, chunks=(1, 40, 30))
    lazy = da.from_zarr(zarr.open_array(store, mode="r"))
    calls = []
    with open_counter.watch(store) as opened:
        stats = mask_statistics(
            threshold_mask(lazy, 50), progress=lambda d, t: calls.append((d, t))
        )
    assert stats.masked == int(np.count_nonzero(volume > 50))
    assert [d for d, _ in calls] == list(range(1, 13))
    assert all(t == 12 for _, t in calls)
    assert {n for path, n in opened.items() if "/c/" in path} == {1}
    with pytest.raises(Cancelled):
        mask_statistics(threshold_mask(lazy, 50), should_stop=lambda: True)


@pytest.mark.parametrize("connectivity", [1, 2, 3])
@pytest.mark.parametrize("chunks", [(8, 16, 16), (16, 32, 32)])
def test_count_components_matches_scipy(connectivity, chunks):
    rng = np.random.default_rng(connectivity)
    mask = ndimage.binary_opening(rng.random((16, 32, 32)) > 0.6)
    structure = ndimage.generate_binary_structure(3, connectivity)
    expected = ndimage.label(mask, structure)[1]
    assert count_components(da.from_array(mask, chunks=chunks), connectivity) == expected


def test_count_components_progress_cancel_and_bad_connectivity():
    mask = np.zeros((8, 8), bool)
    mask[1, 1] = mask[5, 5] = True
    calls = []
    assert count_components(mask, progress=lambda d, t: calls.append((d, t))) == 2
    assert calls[-1][0] == calls[-1][1]
    with pytest.raises(Cancelled):
        count_components(da.from_array(mask, chunks=2), should_stop=lambda: True)
    with pytest.raises(OperationError, match="connectivity must be between 1 and 2"):
        count_components(mask, connectivity=3)


def test_count_components_reads_no_more_than_dask_compute(block_loads):
    from dask_image import ndmeasure

    mask = np.zeros((16, 16, 16), bool)
    mask[2:14, 7:9, 7:9] = True  # one rod across every block boundary along z
    lazy = block_loads.wrap(da.from_array(mask, chunks=(4, 8, 8)))
    # dask-image's label graph itself computes blocks again inside its tasks: the
    # engine must add nothing to what dask's own compute of that graph reads. Those
    # inner computes read one block more or less from run to run (579 or 580 here), so
    # the engine is held to the most of three runs of dask's own.
    _, components = ndmeasure.label(lazy, ndimage.generate_binary_structure(3, 1))
    by_dask = []
    for _ in range(3):
        block_loads.count = 0
        assert dask.compute(components, scheduler="threads")[0] == 1
        by_dask.append(block_loads.count)
    block_loads.count = 0
    calls = []
    assert count_components(lazy, progress=lambda d, t: calls.append((d, t))) == 1
    assert block_loads.count <= max(by_dask)
    assert len(calls) > lazy.npartitions  # task progress: more steps than blocks
    assert calls[-1][0] == calls[-1][1]


def test_value_range_estimate(block_loads):
    assert value_range_estimate(np.zeros(4, np.uint8)) == (0.0, 255.0)
    assert value_range_estimate(np.zeros(4, np.int8)) == (-128.0, 127.0)
    assert value_range_estimate(np.zeros(4, bool)) == (0.0, 1.0)
    assert value_range_estimate(np.zeros(4, np.uint16), contrast_limits=(10, 4000)) == (
        10.0,
        4000.0,
    )
    assert value_range_estimate(np.full(4, 3.0)) == (3.0, 4.0)
    floats = np.linspace(-1, 1, 100 * 50).reshape(100, 50)
    floats[0, 0] = np.nan
    lazy = block_loads.wrap(da.from_array(floats, chunks=(1, 50)))
    low, high = value_range_estimate(lazy)
    assert block_loads.count == 3  # first, middle and last block, not the 100 blocks
    assert low == pytest.approx(-1 + 2 / 4999)  # the NaN is skipped
    assert high == 1.0
