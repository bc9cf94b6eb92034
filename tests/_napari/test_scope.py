"""The visible slice is what napari displays, and outputs built from it line up with the source.

These tests use napari's real ``ViewerModel`` and layers (no Qt needed): napari slices
its layers itself, so each test can compare our slice with the plane napari shows.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Image

from napari_bigvol._napari.scope import displayed_values, scoped_data, visible_slice, whole_volume
from napari_bigvol.errors import OperationError


def displayed_by_napari(layer) -> np.ndarray:
    """The 2-D (or 3-D) array napari's own slicing produced for the layer."""
    return np.asarray(layer._slice.image.raw)


def as_displayed(scoped, viewer) -> np.ndarray:
    """Our slice in napari's display order (napari transposes to follow dims.order)."""
    offset = viewer.dims.ndim - len(scoped.index) + scoped.rgb
    shown = viewer.dims.order[-viewer.dims.ndisplay :]
    order = [axis - offset for axis in shown if axis >= offset]
    permutation = [scoped.axes.index(axis) for axis in order]
    if scoped.rgb:
        permutation.append(len(permutation))
    return np.transpose(np.asarray(scoped.data), permutation)


@pytest.fixture
def viewer() -> ViewerModel:
    return ViewerModel()


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(0).random((6, 7, 8)).astype(np.float32)


@pytest.mark.parametrize("z_world", [10.0, 11.4, 12.6, 19.9])
def test_scaled_translated_volume(viewer, volume, z_world):
    layer = viewer.add_image(
        volume, scale=(2.0, 0.5, 0.25), translate=(10.0, 1.0, 2.0), axis_labels=("z", "y", "x")
    )
    viewer.dims.set_point(0, z_world)
    scoped = visible_slice(layer, viewer)
    z_index = int(np.round((z_world - 10.0) / 2.0))
    assert scoped.index == (z_index, slice(None), slice(None))
    assert scoped.axes == (1, 2)
    np.testing.assert_array_equal(scoped.data, volume[z_index])
    np.testing.assert_array_equal(as_displayed(scoped, viewer), displayed_by_napari(layer))
    assert scoped.scale == (0.5, 0.25)
    assert scoped.translate == (1.0, 2.0)
    assert scoped.axis_labels == ("y", "x")
    assert scoped.is_slice


@pytest.mark.parametrize("lazy", [False, True])
def test_the_visible_slice_converts_to_numpy(viewer, volume, lazy):
    data = da.from_array(volume, chunks=(1, 7, 8)) if lazy else volume
    layer = viewer.add_image(data, scale=(2.0, 1.0, 1.0))
    viewer.dims.set_point(0, 6.0)
    scoped = visible_slice(layer, viewer)
    assert (scoped.shape, scoped.dtype, scoped.ndim) == ((7, 8), np.dtype(np.float32), 2)
    plane = np.asarray(scoped)
    assert type(plane) is np.ndarray
    np.testing.assert_array_equal(plane, volume[3])
    assert np.asarray(scoped, dtype=np.float64).dtype == np.float64
    assert scoped.scale == (1.0, 1.0)  # placement kept alongside
    if lazy:
        with pytest.raises(ValueError, match="cannot be viewed without computing a copy"):
            np.asarray(scoped, copy=False)
    else:
        assert np.shares_memory(np.asarray(scoped, copy=False), volume)


@pytest.mark.parametrize("order", [(2, 0, 1), (0, 2, 1), (1, 0, 2), (1, 2, 0)])
def test_transposed_dims_order(viewer, volume, order):
    layer = viewer.add_image(volume, scale=(1.0, 2.0, 3.0))
    viewer.dims.order = order
    fixed_axis = order[0]
    viewer.dims.set_point(fixed_axis, 4.0 * layer.scale[fixed_axis])
    scoped = visible_slice(layer, viewer)
    assert scoped.axes == tuple(sorted(order[1:]))
    assert scoped.index[fixed_axis] == 4
    np.testing.assert_array_equal(scoped.data, np.take(volume, 4, axis=fixed_axis))
    np.testing.assert_array_equal(as_displayed(scoped, viewer), displayed_by_napari(layer))


def test_outputs_placed_with_place_line_up_in_any_dims_order(viewer, volume):
    layer = viewer.add_image(volume, scale=(2.0, 0.5, 0.25), translate=(10.0, 1.0, 2.0))
    viewer.dims.order = (2, 0, 1)  # the z-y plane at some x
    viewer.dims.set_point(2, 2.0 + 0.25 * 5)
    scoped = visible_slice(layer, viewer)
    mask, kwargs = scoped.place(np.asarray(scoped.data) > 0.5)
    assert mask.shape == (6, 7, 1)
    output = viewer.add_labels(mask.astype(np.uint8), **kwargs)
    for pixel in [(0, 0, 0), (5, 6, 0), (3, 2, 0)]:
        source_pixel = (pixel[0], pixel[1], 5)
        np.testing.assert_allclose(output.data_to_world(pixel), layer.data_to_world(source_pixel))
    # napari displays the output at this position, equal to the source's plane > 0.5.
    np.testing.assert_array_equal(
        np.asarray(output._slice.image.raw).astype(bool), displayed_by_napari(layer) > 0.5
    )


def test_multiscale_uses_the_displayed_level(viewer):
    rng = np.random.default_rng(1)
    levels = [rng.random((8, 64, 64)), rng.random((4, 32, 32)), rng.random((2, 16, 16))]
    layer = viewer.add_image(levels, multiscale=True, scale=(3.0, 1.0, 1.0))
    layer.data_level = 1
    viewer.dims.set_point(0, 3.0 * 5)
    scoped = visible_slice(layer, viewer)
    assert scoped.level == 1
    # napari: level-0 index 5 -> 5 / 2 = 2.5, rounded half to even -> 2
    assert scoped.index == (2, slice(None), slice(None))
    np.testing.assert_array_equal(scoped.data, levels[1][2])
    assert scoped.scale == (2.0, 2.0)
    shown = displayed_by_napari(layer)  # napari shows a tile of the level
    np.testing.assert_array_equal(
        np.asarray(scoped.data)[: shown.shape[0], : shown.shape[1]], shown
    )
    volume = whole_volume(layer)
    assert volume.level == 0
    assert volume.data is levels[0]


def test_four_dimensional_layer(viewer):
    data = da.random.default_rng(2).random((3, 5, 9, 10), chunks=(1, 1, 9, 10))
    layer = viewer.add_image(data)
    viewer.dims.set_point(0, 2)
    viewer.dims.set_point(1, 3)
    scoped = visible_slice(layer, viewer)
    assert scoped.index[:2] == (2, 3)
    assert isinstance(scoped.data, da.Array)  # still lazy
    np.testing.assert_array_equal(scoped.data.compute(), data[2, 3].compute())
    np.testing.assert_array_equal(as_displayed(scoped, viewer), displayed_by_napari(layer))
    viewer.dims.ndisplay = 3
    in_3d = visible_slice(layer, viewer)
    assert in_3d.axes == (1, 2, 3)
    assert in_3d.data.shape == (5, 9, 10)
    assert in_3d.is_slice  # the time axis is fixed


def test_visible_slice_computes_nothing(viewer, block_loads):
    data = block_loads.wrap(da.zeros((20, 30, 40), chunks=(1, 30, 40)))
    layer = viewer.add_image(data, contrast_limits=(0, 1))
    loads_for_display = block_loads.count  # napari itself read the displayed plane
    visible_slice(layer, viewer)
    whole_volume(layer)
    assert block_loads.count == loads_for_display


def test_rgb_keeps_the_colour_axis(viewer, astronaut_rgb):
    stack = np.stack([astronaut_rgb, astronaut_rgb[::-1]])  # (2, 512, 512, 3)
    layer = viewer.add_image(stack, rgb=True)
    viewer.dims.set_point(0, 1)
    scoped = visible_slice(layer, viewer)
    assert scoped.rgb
    assert scoped.index == (1, slice(None), slice(None), slice(None))
    assert scoped.data.shape == (512, 512, 3)
    np.testing.assert_array_equal(scoped.data, astronaut_rgb[::-1])
    np.testing.assert_array_equal(as_displayed(scoped, viewer), displayed_by_napari(layer))
    mask, _ = scoped.place(scoped.data[..., 0] > 100)
    assert mask.shape == (1, 512, 512)
    masked, _ = scoped.place(scoped.data)
    assert masked.shape == (1, 512, 512, 3)


def test_two_dimensional_layer_in_a_three_dimensional_viewer(viewer, volume, ihc_rgb):
    viewer.add_image(volume)
    flat = viewer.add_image(ihc_rgb[..., 0], scale=(0.5, 0.5))
    viewer.dims.set_point(0, 3)
    scoped = visible_slice(flat, viewer)
    assert scoped.axes == (0, 1)
    np.testing.assert_array_equal(scoped.data, ihc_rgb[..., 0])
    whole = whole_volume(flat)
    assert whole.is_slice  # a 2-D layer with whole-volume scope is its slice
    result, kwargs = whole.place(whole.data)
    assert result is whole.data
    assert kwargs["scale"] == (0.5, 0.5)


def test_rotated_layer_gets_an_affine_that_lines_up(viewer, volume):
    angle = np.deg2rad(30)
    rotation = np.array(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    )
    layer = viewer.add_image(volume, rotate=rotation, scale=(2.0, 1.0, 1.0), translate=(1, 2, 3))
    viewer.dims.set_point(0, 1 + 2.0 * 3)
    scoped = visible_slice(layer, viewer)
    assert scoped.index[0] == 3
    assert scoped.affine is not None
    plane = viewer.add_image(np.asarray(scoped.data), **scoped.layer_kwargs())
    placed, kwargs = scoped.place(np.asarray(scoped.data))
    volume_layer = viewer.add_image(placed, **kwargs)
    for y, x in [(0, 0), (6, 7), (2, 5)]:
        expected = np.asarray(layer.data_to_world((3, y, x)))
        np.testing.assert_allclose(plane.data_to_world((y, x)), expected[1:], atol=1e-9)
        np.testing.assert_allclose(volume_layer.data_to_world((0, y, x)), expected, atol=1e-9)
    whole = whole_volume(layer)
    np.testing.assert_allclose(
        whole.affine[:3, :3],
        np.asarray(layer.affine.affine_matrix[:3, :3]) @ rotation @ np.diag([2.0, 1.0, 1.0]),
        atol=1e-12,
    )


def test_units_and_labels_come_along(viewer, volume):
    layer = viewer.add_image(volume, units=("mm", "um", "um"), axis_labels=("z", "y", "x"))
    scoped = visible_slice(layer, viewer)
    assert scoped.units == ("micrometer", "micrometer")
    assert scoped.layer_kwargs()["axis_labels"] == ("y", "x")
    assert whole_volume(layer).units == ("millimeter", "micrometer", "micrometer")


def test_world_units_are_converted_to_layer_units_as_napari_does(viewer):
    coarse = viewer.add_image(np.arange(160.0).reshape(10, 4, 4), units="mm")
    fine = np.arange(2000 * 16, dtype=np.float32).reshape(2000, 4, 4)
    layer = viewer.add_image(fine, units="um")
    assert tuple(str(u) for u in viewer.dims.units) == ("micrometer",) * 3  # the finest
    viewer.dims.set_point(0, 1500.0)  # 1500 µm: plane 1500 of the µm layer ...
    scoped = visible_slice(layer, viewer)
    assert scoped.index[0] == 1500
    np.testing.assert_array_equal(scoped.data, displayed_by_napari(layer))
    in_mm = visible_slice(coarse, viewer)  # ... and 1.5 mm, rounded half to even: plane 2
    assert in_mm.index[0] == 2
    np.testing.assert_array_equal(in_mm.data, displayed_by_napari(coarse))


def test_labels_layer_is_a_valid_source(viewer):
    labels = viewer.add_labels(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    viewer.dims.set_point(0, 1)
    np.testing.assert_array_equal(visible_slice(labels, viewer).data, labels.data[1])


def test_scope_dispatch_and_bad_input(viewer, volume):
    layer = viewer.add_image(volume, translate=(100, 0, 0))
    other = viewer.add_image(volume)
    viewer.dims.set_point(0, 2)
    assert scoped_data(other, viewer, "slice").index[0] == 2
    assert scoped_data(other, viewer, "volume").data is volume
    with pytest.raises(OperationError, match="no data at the current position"):
        visible_slice(layer, viewer)
    with pytest.raises(OperationError, match="no image layer selected"):
        scoped_data(None, viewer, "slice")
    with pytest.raises(OperationError, match="scope must be 'slice' or 'volume'"):
        scoped_data(layer, viewer, "everything")


def test_whole_volume_of_a_plain_layer_without_a_viewer(volume):
    layer = Image(volume, scale=(3, 2, 1), translate=(0, 5, 0))
    scoped = whole_volume(layer)
    assert scoped.data is volume
    assert scoped.layer_kwargs()["scale"] == (3.0, 2.0, 1.0)
    assert scoped.layer_kwargs()["translate"] == (0.0, 5.0, 0.0)
    assert not scoped.is_slice


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 0, 2), (2, 1, 0), (0, 2, 1)])
def test_displayed_values_are_napari_s_plane_in_our_axis_order(viewer, volume, order):
    layer = viewer.add_image(volume)
    viewer.dims.order = order
    viewer.dims.set_current_step(order[0], 3)
    plane = visible_slice(layer, viewer)
    np.testing.assert_array_equal(displayed_values(layer, plane), np.asarray(plane.data))


def test_displayed_values_of_rgb_keep_the_colour_axis(viewer, astronaut_rgb):
    layer = viewer.add_image(np.stack([astronaut_rgb, astronaut_rgb[::-1]]), rgb=True)
    viewer.dims.set_current_step(0, 1)
    plane = visible_slice(layer, viewer)
    np.testing.assert_array_equal(displayed_values(layer, plane), astronaut_rgb[::-1])


def test_displayed_values_of_a_pyramid_when_napari_holds_the_whole_plane(viewer, volume):
    pyramid = viewer.add_image([volume, volume[:, ::2, ::2]], multiscale=True)
    plane = visible_slice(pyramid, viewer)
    np.testing.assert_array_equal(displayed_values(pyramid, plane), np.asarray(plane.data))
    # napari reads only the tile in view of a big plane: that is not the plane
    pyramid.corner_pixels = np.array([[0, 0, 0], [0, 1, 1]])
    pyramid.refresh()
    assert displayed_values(pyramid, visible_slice(pyramid, viewer)) is None


def test_in_3d_the_visible_slice_is_the_level_napari_displays(viewer, volume):
    # napari shows a pyramid's coarsest level in 3-D (napari-bigvol's reader keeps it
    # under the 3-D budget); data_level still names the 2-D level until the next draw.
    levels = [volume, volume[::2, ::2, ::2]]
    pyramid = viewer.add_image(levels, multiscale=True)
    pyramid.data_level = 0  # as a 2-D canvas zoomed in leaves it
    viewer.dims.ndisplay = 3
    scoped = visible_slice(pyramid, viewer)
    assert scoped.level == 1
    assert scoped.data.shape == levels[1].shape
    # ...and its values are the level napari loaded for the canvas: nothing read again.
    shown = displayed_values(pyramid, scoped)
    np.testing.assert_array_equal(shown, levels[1])
    assert np.shares_memory(shown, pyramid._slice.image.raw)
    pyramid.locked_data_level = 0  # the user's choice: napari shows level 0 in 3-D
    assert visible_slice(pyramid, viewer).level == 0


def test_no_displayed_values_for_a_thick_slice(viewer, volume):
    layer = viewer.add_image(volume, projection_mode="mean")
    viewer.dims.thickness = (3, 0, 0)
    assert displayed_values(layer, visible_slice(layer, viewer)) is None
