"""Channel splitting gives lazy views: no copy, no read, instant on any size."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_bigvol.errors import OperationError
from napari_bigvol.ops.channels import split_channels
from napari_bigvol.ops.histogram import histogram


@pytest.mark.parametrize("image_name", ["ihc_rgb", "astronaut_rgb"])
def test_real_rgb_images_split_into_views(request, image_name):
    image = request.getfixturevalue(image_name)
    channels = split_channels(image)
    assert len(channels) == 3
    for index, channel in enumerate(channels):
        assert channel.shape == image.shape[:2]
        assert np.shares_memory(channel, image)  # a view, not a copy
        np.testing.assert_array_equal(channel, image[..., index])


def test_seed_workflow_histogram_of_each_channel(ihc_rgb):
    lazy = da.from_array(ihc_rgb, chunks=(128, 128, 3))
    for index, channel in enumerate(split_channels(lazy)):
        counts, edges = histogram(channel, 50)
        expected = np.histogram(ihc_rgb[..., index], 50)
        np.testing.assert_array_equal(counts, expected[0])
        np.testing.assert_array_equal(edges, expected[1])


def test_real_multichannel_tiff_along_a_chosen_axis(skimage_data):
    import tifffile

    stack = tifffile.imread(skimage_data / "multipage_rgb.tif")  # (2, 3, 10, 10)
    for axis in (1, -3):
        channels = split_channels(stack, axis=axis)
        assert len(channels) == 3
        for index, channel in enumerate(channels):
            np.testing.assert_array_equal(channel, stack[:, index])


@pytest.mark.parametrize("chunks", [(1, 512, 512, 3), (64, 256, 256, 1)])
def test_a_100_gb_dask_stack_splits_without_computing(block_loads, chunks):
    shape = (50_000, 1024, 1024, 3)  # 150 GB of float32 ...
    huge = block_loads.wrap(da.zeros(shape, dtype=np.float32, chunks=chunks))
    channels = split_channels(huge)
    assert [c.shape for c in channels] == [shape[:-1]] * 3
    assert all(c.dtype == np.float32 for c in channels)
    assert block_loads.count == 0  # ... of which nothing was read
    # One plane of one channel reads one block (or the blocks of that plane only).
    assert float(channels[1][7, :4, :4].sum().compute()) == 0.0
    assert block_loads.count == 1


@pytest.mark.parametrize(
    ("chunks", "axis"), [((1, 6, 8, 2), -1), ((1, 6, 8, 1), -1), ((2, 3, 8, 2), 0)]
)
def test_lazy_channels_add_one_graph_layer(chunks, axis):
    values = np.arange(4 * 6 * 8 * 2).reshape(4, 6, 8, 2)
    stack = da.from_array(values, chunks=chunks)
    for index, channel in enumerate(split_channels(stack, axis)):
        # Splitting adds one indexing step and nothing else.
        assert len(channel.__dask_graph__().layers) == len(stack.__dask_graph__().layers) + 1
        np.testing.assert_array_equal(channel.compute(), np.take(values, index, axis=axis))


@pytest.mark.parametrize(("shape", "axis"), [((5, 6, 1), -1), ((1, 5, 6), 0)])
def test_a_single_channel_is_nothing_to_split(shape, axis):
    with pytest.raises(OperationError, match="nothing to split"):
        split_channels(np.zeros(shape), axis=axis)


@pytest.mark.parametrize("axis", [3, -4, 10])
def test_axis_out_of_range(axis):
    with pytest.raises(OperationError, match=f"cannot split channels along axis {axis}"):
        split_channels(np.zeros((2, 3, 4)), axis=axis)
