"""The streamed histogram agrees exactly with numpy.histogram, and its statistics with numpy."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_bigvol.errors import Cancelled, OperationError
from napari_bigvol.ops import _kernels
from napari_bigvol.ops.histogram import (
    channel_histogram_stats,
    histogram,
    histogram_stats,
    value_counts,
)

SMALL_DTYPES = ["bool", "uint8", "int8", "uint16", "int16", ">i2", "float16"]
WIDE_DTYPES = ["uint32", "int32", "int64", "uint64", "float32", "float64", ">f4"]
CHUNKS = [(5, 17, 31), (40, 50, 30), (1, 50, 30)]


def random_volume(dtype: str, seed: int = 0, shape=(40, 50, 30)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.3
    if dtype.kind == "f":
        values = rng.normal(100.0, 60.0, shape)
        values[rng.random(shape) < 0.05] = 0.0  # exact zeros for exclude_zeros
        return values.astype(dtype)
    info = np.iinfo(dtype)
    low, high = max(info.min, -3000), min(info.max, 70000)
    values = rng.integers(low, high, shape, endpoint=True)
    values[rng.random(shape) < 0.05] = 0
    return values.astype(dtype)


def reference(values: np.ndarray, bins, value_range, exclude_zeros=False):
    """numpy.histogram of the values the documented rules count."""
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)  # numpy does this too, with a warning
    if values.dtype.kind == "f" and value_range is None:
        values = values[np.isfinite(values)]
    if exclude_zeros:
        values = values[values != 0]
    return np.histogram(values, bins, value_range)


def assert_same_histogram(result, expected):
    counts, edges = result
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, expected[0])
    assert edges.dtype == expected[1].dtype
    np.testing.assert_array_equal(edges, expected[1])  # exact, not approximately


BIN_CASES = [
    (50, None),
    (7, None),
    (256, None),
    (13, (10, 120)),
    (10, (-5.5, 300.25)),
    (3, (0.0, 0.0)),
    (64, (np.float32(0.1), np.float32(99.9))),
    ([-100.0, 0.0, 0.5, 50.0, 1000.0, 70000.0], None),
]


@pytest.mark.parametrize("dtype", SMALL_DTYPES + WIDE_DTYPES)
@pytest.mark.parametrize(("bins", "value_range"), BIN_CASES)
def test_histogram_equals_numpy(dtype, bins, value_range):
    volume = random_volume(dtype)
    result = histogram(da.from_array(volume, chunks=(7, 20, 30)), bins, value_range)
    assert_same_histogram(result, reference(volume, bins, value_range))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "int32"])
@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("exclude_zeros", [False, True])
def test_histogram_chunks_and_exclude_zeros(dtype, chunks, exclude_zeros):
    volume = random_volume(dtype, seed=3)
    result = histogram(da.from_array(volume, chunks=chunks), 50, exclude_zeros=exclude_zeros)
    assert_same_histogram(result, reference(volume, 50, None, exclude_zeros))


@pytest.mark.parametrize("seed", range(12))
def test_histogram_random_ranges_and_bins(seed):
    rng = np.random.default_rng(seed)
    dtype = rng.choice(SMALL_DTYPES + WIDE_DTYPES)
    volume = random_volume(dtype, seed=seed, shape=(9, 33, 21))
    low = float(rng.uniform(-200, 200))
    value_range = (low, low + float(rng.uniform(0.001, 500)))
    bins = int(rng.integers(1, 300))
    result = histogram(da.from_array(volume, chunks=(4, 11, 21)), bins, value_range)
    assert_same_histogram(result, reference(volume, bins, value_range))


def test_numpy_input_gives_the_same_as_dask_input():
    volume = random_volume("uint16", seed=5)
    assert_same_histogram(histogram(volume, 30), np.histogram(volume, 30))


def test_values_on_edges_and_the_closed_last_bin():
    # 0..10 in 10 bins: every value sits on an edge; 10 belongs to the last bin.
    values = np.arange(11, dtype=np.int32).repeat(3)
    assert_same_histogram(histogram(da.from_array(values, chunks=4), 10), np.histogram(values, 10))
    floats = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
    assert_same_histogram(
        histogram(da.from_array(floats, chunks=100), 7, (0.1, 0.9)),
        np.histogram(floats, 7, (0.1, 0.9)),
    )


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_non_finite_values_are_never_counted(dtype):
    volume = random_volume(dtype, seed=1).ravel()
    volume[::17] = np.nan
    volume[5] = np.inf
    volume[9] = -np.inf
    chunked = da.from_array(volume, chunks=1000)
    # numpy refuses to autodetect a range with NaNs; the documented result is the
    # histogram of the finite values.
    with pytest.raises(ValueError, match="not finite"):
        np.histogram(volume, 20)
    assert_same_histogram(histogram(chunked, 20), np.histogram(volume[np.isfinite(volume)], 20))
    # With an explicit range numpy itself drops them: identical results.
    assert_same_histogram(histogram(chunked, 20, (0, 200)), np.histogram(volume, 20, (0, 200)))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "int64"])
def test_constant_and_empty_data(dtype):
    constant = np.full((6, 7), 42, dtype)
    result = histogram(da.from_array(constant, chunks=3), 5)
    assert_same_histogram(result, np.histogram(constant, 5))
    empty = np.zeros((0, 4), dtype)
    assert_same_histogram(histogram(da.from_array(empty), 5), np.histogram(empty, 5))
    zeros = np.zeros((3, 3), dtype)
    assert_same_histogram(
        histogram(zeros, 4, exclude_zeros=True), np.histogram(zeros[zeros != 0], 4)
    )


def test_zero_dimensional_input():
    assert_same_histogram(histogram(np.float32(2.5), 3), np.histogram(np.float32(2.5), 3))


@pytest.mark.parametrize(
    ("bins", "value_range", "message"),
    [
        (0, None, "must be positive"),
        ("auto", None, "estimated bin counts"),
        (10, (5, 1), "max must be larger than min"),
        (10, (0, np.inf), "not finite"),
        ([3.0, 1.0, 2.0], None, "increase monotonically"),
    ],
)
def test_invalid_bins_or_range_raise_operation_errors(bins, value_range, message):
    with pytest.raises(OperationError, match=message):
        histogram(np.arange(10), bins, value_range)


@pytest.mark.parametrize("dtype", ["U5", "O", "complex64", "M8[s]"])
def test_non_numeric_dtype_is_refused(dtype):
    with pytest.raises(OperationError, match="not numeric"):
        histogram(np.zeros(3, dtype), 5)


def test_real_rgb_images_per_channel(ihc_rgb, astronaut_rgb):
    for image in (ihc_rgb, astronaut_rgb):
        chunked = da.from_array(image, chunks=(100, 128, 3))
        for channel in range(3):
            assert_same_histogram(
                histogram(chunked[..., channel], 50), np.histogram(image[..., channel], 50)
            )
        # The lesson's "histogram of the masked image after the zeros are removed".
        masked = np.where(image[..., 0] < 125, image[..., 0], 0)
        assert_same_histogram(
            histogram(da.from_array(masked, chunks=128), 50, exclude_zeros=True),
            np.histogram(masked[masked != 0], 50),
        )


def test_real_multipage_tiffs(skimage_data):
    import tifffile

    for name in ("multipage.tif", "multipage_rgb.tif"):
        stack = tifffile.imread(skimage_data / name)
        assert_same_histogram(
            histogram(da.from_array(stack, chunks=(1, *stack.shape[1:])), 25),
            np.histogram(stack, 25),
        )


def test_real_mri_raw_and_scaled(mri_int16, nibabel_data):
    import nibabel

    assert mri_int16.dtype == np.dtype(">i2")  # non-native byte order, as stored
    chunked = da.from_array(mri_int16, chunks=(11, 41, 25))
    for bins in (50, 256):
        assert_same_histogram(histogram(chunked, bins), np.histogram(mri_int16, bins))
    scaled = nibabel.load(nibabel_data / "example4d.nii.gz").get_fdata(dtype=np.float32)
    assert_same_histogram(
        histogram(da.from_array(scaled, chunks=(64, 96, 8, 1)), 50), np.histogram(scaled, 50)
    )


@pytest.mark.parametrize("dtype", SMALL_DTYPES)
def test_small_dtype_statistics_are_exact(dtype):
    volume = random_volume(dtype, seed=9)
    stats = histogram_stats(
        da.from_array(volume, chunks=(9, 25, 30)), percentiles=(0, 0.5, 25, 50, 73.3, 99, 100)
    )
    values = volume.astype(np.uint8) if volume.dtype.kind == "b" else volume
    exact = values.astype(np.float64)
    assert stats.count == volume.size
    assert stats.minimum == values.min()
    assert stats.maximum == values.max()
    assert stats.mean == pytest.approx(math.fsum(exact.ravel()) / exact.size, rel=1e-15)
    assert stats.std == pytest.approx(np.std(exact), rel=1e-12)
    assert stats.percentile_tolerance == 0.0
    for q, value in stats.percentiles.items():
        assert value == np.percentile(values, q), q
    assert_same_histogram((stats.counts, stats.edges), reference(volume, 50, None))


@pytest.mark.parametrize("dtype", WIDE_DTYPES)
@pytest.mark.parametrize("exclude_zeros", [False, True])
def test_wide_dtype_statistics(dtype, exclude_zeros):
    volume = random_volume(dtype, seed=11)
    stats = histogram_stats(
        da.from_array(volume, chunks=(9, 25, 30)),
        bins=20,
        exclude_zeros=exclude_zeros,
        percentiles=(1, 50, 99),
    )
    values = volume[volume != 0] if exclude_zeros else volume.ravel()
    assert stats.count == values.size
    assert stats.minimum == values.min()
    assert stats.maximum == values.max()
    assert stats.mean == pytest.approx(np.mean(values, dtype=np.float64), rel=1e-12)
    assert stats.std == pytest.approx(np.std(values, dtype=np.float64), rel=1e-12)
    assert 0 < stats.percentile_tolerance <= (float(values.max()) - float(values.min())) / 65536
    for q, value in stats.percentiles.items():
        assert abs(value - np.percentile(values, q)) <= stats.percentile_tolerance
    assert_same_histogram((stats.counts, stats.edges), reference(volume, 20, None, exclude_zeros))


def test_statistics_of_nothing_are_nan():
    stats = histogram_stats(np.zeros((4, 4), np.float32), exclude_zeros=True)
    assert stats.count == 0
    assert math.isnan(stats.mean)
    assert math.isnan(stats.percentiles[50.0])
    assert stats.counts.sum() == 0


def test_percentiles_outside_0_100_are_refused():
    with pytest.raises(OperationError, match="between 0 and 100"):
        histogram_stats(np.arange(5), percentiles=(50, 101))


def test_value_counts(mri_int16):
    values, counts = value_counts(da.from_array(mri_int16, chunks=(5, 41, 25)))
    expected_values, expected_counts = np.unique(mri_int16, return_counts=True)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(counts, expected_counts)
    with pytest.raises(OperationError, match="8- or 16-bit"):
        value_counts(np.zeros(3, np.float32))


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_counting_kernel_equals_bincount_in_every_layout(dtype, layout):
    codes = random_volume(dtype, seed=2).view(f"u{np.dtype(dtype).itemsize}")
    if layout == "F":
        codes = np.asfortranarray(codes)
    elif layout == "strided":
        codes = codes[::2, 1::3]
    n_codes = 1 << (8 * codes.itemsize)
    expected = np.bincount(codes.ravel(), minlength=n_codes)
    np.testing.assert_array_equal(_kernels.count_codes(codes, n_codes), expected)


@pytest.mark.parametrize(("dtype", "passes"), [("uint16", 1), ("float32", 2)])
def test_whole_volume_streams_chunk_files_once_per_pass(tmp_path, open_counter, dtype, passes):
    volume = random_volume(dtype, seed=4)
    store = tmp_path / "volume.zarr"
    zarr.create_array(store, data=volume, chunks=(10, 25, 30))
    lazy = da.from_zarr(zarr.open_array(store, mode="r"))
    with open_counter.watch(store) as opened:
        counts, _ = histogram(lazy, 40)
    chunk_files = {path: n for path, n in opened.items() if "/c/" in path}
    assert len(chunk_files) == 8  # every chunk read ...
    assert set(chunk_files.values()) == {passes}  # ... once per pass, never more
    np.testing.assert_array_equal(counts, np.histogram(volume, 40)[0])


@pytest.mark.parametrize("dtype", ["uint16", "float64"])
def test_progress_is_monotonic_and_ends_at_total(dtype):
    volume = da.from_array(random_volume(dtype), chunks=(5, 50, 30))
    calls = []
    histogram_stats(volume, progress=lambda done, total: calls.append((done, total)))
    done = [d for d, _ in calls]
    totals = {t for _, t in calls}
    assert len(totals) == 1
    assert done == sorted(done)
    assert done[-1] == totals.pop()


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_cancel_stops_early(block_loads, dtype):
    volume = block_loads.wrap(da.from_array(random_volume(dtype), chunks=(1, 50, 30)))
    processed = []
    with pytest.raises(Cancelled):
        histogram(
            volume,
            progress=lambda done, total: processed.append(done),
            should_stop=lambda: len(processed) >= 3,
        )
    assert len(processed) == 3
    # Only the blocks already in flight when the stop came were computed.
    assert block_loads.count < volume.npartitions


def assert_same_stats(left, right):
    np.testing.assert_array_equal(left.counts, right.counts)
    np.testing.assert_array_equal(left.edges, right.edges)
    assert (left.count, left.minimum, left.maximum) == (right.count, right.minimum, right.maximum)
    assert left.mean == pytest.approx(right.mean, rel=1e-12)
    assert left.std == pytest.approx(right.std, rel=1e-12)
    assert left.percentiles.keys() == right.percentiles.keys()
    for q in left.percentiles:
        assert left.percentiles[q] == pytest.approx(right.percentiles[q], abs=1e-9), q


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "int32"])
@pytest.mark.parametrize(("chunks", "axis"), [((100, 128, 3), -1), ((64, 64, 1), 2)])
def test_channel_statistics_in_one_pass_equal_each_channel_alone(
    astronaut_rgb, block_loads, dtype, chunks, axis
):
    image = astronaut_rgb.astype(dtype)
    lazy = block_loads.wrap(da.from_array(image, chunks=chunks))
    per_channel = channel_histogram_stats(lazy, axis, bins=40, exclude_zeros=True)
    # Each block is read once per pass (two passes for wide dtypes), not once per channel.
    passes = 1 if image.dtype.itemsize <= 2 else 2
    assert block_loads.count == passes * lazy.npartitions
    assert len(per_channel) == 3
    for channel, stats in enumerate(per_channel):
        alone = histogram_stats(image[..., channel], bins=40, exclude_zeros=True)
        assert_same_stats(stats, alone)


def test_channel_statistics_along_a_leading_axis_with_a_given_range(skimage_data):
    import tifffile

    stack = tifffile.imread(skimage_data / "multipage_rgb.tif")  # (2, 3, 10, 10) float64
    progress = []
    per_channel = channel_histogram_stats(
        da.from_array(stack, chunks=(1, 3, 5, 10)),
        axis=1,
        bins=7,
        range=(0.1, 0.9),
        progress=lambda done, total: progress.append((done, total)),
    )
    for channel, stats in enumerate(per_channel):
        assert_same_histogram(
            (stats.counts, stats.edges), np.histogram(stack[:, channel], 7, (0.1, 0.9))
        )
    assert progress[-1][0] == progress[-1][1]
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    with pytest.raises(OperationError, match="no channel axis 4"):
        channel_histogram_stats(stack, axis=4)
