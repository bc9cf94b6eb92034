"""The Split channels dock widget in a real viewer: lazy views, colours, scope, bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from skimage import io

from napari_bigvol._models._layers import Scope
from napari_bigvol._qt.channels_widget import COLOUR_AXIS, SplitChannelsWidget


def counting_volume(shape, reads):
    """A lazy (c, z, y, x) uint16 volume that records every block it loads."""

    def load(block_id=None):
        reads.append(block_id)
        c, z = block_id[0], block_id[1]
        return np.full((1, 1, *shape[2:]), 100 * c + z, np.uint16)

    return da.map_blocks(
        load, chunks=((1,) * shape[0], (1,) * shape[1], (shape[2],), (shape[3],)), dtype=np.uint16
    )


@pytest.mark.parametrize("image", ["astronaut.png", "ihc.png"])
def test_rgb_splits_into_red_green_blue_views(docked, skimage_data, image):
    viewer, widget = docked(SplitChannelsWidget)
    rgb = io.imread(skimage_data / image)
    source = viewer.add_image(rgb, name="rgb", rgb=True, scale=(0.5, 0.5))
    assert widget.axis == COLOUR_AXIS
    widget.split_button.click()
    assert [layer.name for layer in widget.added] == ["rgb [red]", "rgb [green]", "rgb [blue]"]
    for channel, layer in enumerate(widget.added):
        np.testing.assert_array_equal(layer.data, rgb[..., channel])
        assert np.shares_memory(layer.data, rgb)  # a view, not a copy
        assert layer.blending == "additive"
        assert layer.colormap.name == ("red", "green", "blue")[channel]
        np.testing.assert_array_equal(layer.scale, (0.5, 0.5))
    assert widget.layer is source
    assert widget.message.text() == "Added 'rgb [red]', 'rgb [green]', 'rgb [blue]'."


def test_rgb_stack_visible_slice_gives_planes(docked, skimage_data):
    viewer, widget = docked(SplitChannelsWidget)
    stack = io.imread(skimage_data / "multipage_rgb.tif")
    viewer.add_image(stack, name="pages", rgb=True)
    viewer.dims.set_current_step(0, 1)
    widget.split_button.click()
    assert [layer.name for layer in widget.added] == [
        "pages [red] (slice)",
        "pages [green] (slice)",
        "pages [blue] (slice)",
    ]
    for channel, layer in enumerate(widget.added):
        # One plane thick at page 1, so napari draws it on page 1 only.
        assert layer.data.shape == (1, *stack.shape[1:3])
        np.testing.assert_array_equal(layer.data[0], stack[1, ..., channel])
        np.testing.assert_array_equal(layer.translate, (1, 0, 0))
        assert not layer._slice.empty
    viewer.dims.set_current_step(0, 0)
    assert all(layer._slice.empty for layer in widget.added)


def test_whole_volume_split_of_a_dask_layer_reads_nothing(docked):
    viewer, widget = docked(SplitChannelsWidget)
    reads = []
    volume = counting_volume((3, 40, 32, 32), reads)
    viewer.add_image(
        volume,
        name="cells",
        axis_labels=("c", "z", "y", "x"),
        scale=(1.0, 2.0, 0.5, 0.5),
        translate=(0.0, 10.0, 0.0, 0.0),
        units=("pixel", "µm", "µm", "µm"),
        contrast_limits=(0, 300),
    )
    assert widget.axis == 0  # the axis labelled "c"
    widget.scope = Scope.VOLUME
    reads.clear()
    widget.split_button.click()
    shown = len(reads)  # napari draws the current plane of each new layer, nothing more
    assert shown <= 3
    for channel, layer in enumerate(widget.added):
        assert isinstance(layer.data, da.Array)
        assert layer.data.shape == (40, 32, 32)
        np.testing.assert_array_equal(layer.scale, (2.0, 0.5, 0.5))
        np.testing.assert_array_equal(layer.translate, (10.0, 0.0, 0.0))
        assert tuple(layer.axis_labels) == ("z", "y", "x")
        assert np.asarray(layer.data[7]).max() == 100 * channel + 7
    assert [layer.colormap.name for layer in widget.added] == ["red", "green", "blue"]


def test_visible_slice_of_a_channel_axis(docked):
    viewer, widget = docked(SplitChannelsWidget)
    reads = []
    volume = counting_volume((4, 20, 16, 16), reads)
    viewer.add_image(
        volume, name="cells", axis_labels=("c", "z", "y", "x"), contrast_limits=(0, 400)
    )
    viewer.dims.set_current_step(1, 13)
    widget.split_button.click()
    assert len(widget.added) == 4
    for channel, layer in enumerate(widget.added):
        assert layer.data.shape == (1, 16, 16)
        assert tuple(layer.axis_labels) == ("z", "y", "x")
        assert isinstance(layer.data, np.ndarray)
        assert (layer.data == 100 * channel + 13).all()
    assert widget.added[3].colormap.name == "magenta"


def test_reader_metadata_names_the_axis_and_channels(docked):
    viewer, widget = docked(SplitChannelsWidget)
    data = np.arange(2 * 5 * 6 * 7, dtype=np.uint16).reshape(5, 2, 6, 7)
    viewer.add_image(
        data,
        name="stack",
        metadata={"bigvol": {"channel_axis": 1, "channel_names": ["DAPI", "GFP"]}},
    )
    assert widget.axis == 1
    widget.scope = Scope.VOLUME
    widget.split_button.click()
    assert [layer.name for layer in widget.added] == ["stack [DAPI]", "stack [GFP]"]
    np.testing.assert_array_equal(widget.added[1].data, data[:, 1])
    assert np.shares_memory(widget.added[1].data, data)


def test_multiscale_split_keeps_every_level(docked):
    viewer, widget = docked(SplitChannelsWidget)
    base = np.random.default_rng(0).integers(0, 255, (3, 8, 128, 128)).astype(np.uint8)
    levels = [da.from_array(base), da.from_array(base[:, :, ::2, ::2])]
    viewer.add_image(levels, multiscale=True, name="pyramid", axis_labels=("c", "z", "y", "x"))
    widget.scope = Scope.VOLUME
    widget.split_button.click()
    for channel, layer in enumerate(widget.added):
        assert layer.multiscale
        for level, source in zip(layer.data, levels, strict=True):
            np.testing.assert_array_equal(np.asarray(level), np.asarray(source[channel]))


def test_channel_axis_of_size_one(docked):
    viewer, widget = docked(SplitChannelsWidget)
    viewer.add_image(
        np.zeros((1, 4, 8, 8), np.uint8), name="single", axis_labels=("c", "z", "y", "x")
    )
    widget.scope = Scope.VOLUME
    widget.split_button.click()
    assert widget.added == []
    assert "nothing to split" in widget.message.text()
    assert "holds 1 channel" in widget.message.text()
    assert len(viewer.layers) == 1


def test_displayed_axis_in_visible_slice(docked):
    viewer, widget = docked(SplitChannelsWidget)
    viewer.add_image(np.zeros((6, 8, 3), np.uint8), name="yxc", axis_labels=("y", "x", "c"))
    viewer.dims.order = (0, 2, 1)  # display (c, x); y is the slider
    widget.axis = 2
    widget.split_button.click()
    assert widget.message.text() == (
        "Axis 2 of layer 'yxc' is displayed, so its channels are not planes of the view. "
        "Choose another axis, or the whole volume."
    )


def test_no_layer(docked):
    _, widget = docked(SplitChannelsWidget)
    assert widget.note.text() == "No image layer selected: add or select one first."
    widget.split_button.click()
    assert widget.message.text() == ""  # the note says it already: not twice
    assert widget.note.isVisibleTo(widget)


def test_grey_volume_is_not_split_along_a_spatial_axis_by_default(docked):
    viewer, widget = docked(SplitChannelsWidget)
    viewer.add_image(np.zeros((189, 64, 48), np.uint16), name="brain")
    assert widget.axis is None
    assert widget.axis_combo.currentIndex() == -1
    assert "has no channel axis" in widget.note.text()
    for scope in Scope:
        widget.scope = scope
        widget.split_button.click()
        assert widget.added == []
        assert "choose the axis to split along" in widget.message.text()
    assert len(viewer.layers) == 1


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_spatial_split_is_capped(docked, axis):
    viewer, widget = docked(SplitChannelsWidget)
    viewer.add_image(np.zeros((189, 512, 48), np.uint16), name="brain")
    widget.axis = axis
    widget.split_button.click()
    assert widget.added == []
    assert "Split channels adds at most 16" in widget.message.text()
    assert len(viewer.layers) == 1


@pytest.mark.parametrize(("button", "added"), [("No", 0), ("Yes", 6)])
def test_split_along_a_short_spatial_axis_asks_with_the_count(
    docked, answer_dialog, button, added
):
    viewer, widget = docked(SplitChannelsWidget)
    viewer.add_image(np.zeros((6, 32, 48), np.uint16), name="stack")
    widget.scope = Scope.VOLUME
    widget.axis = 0
    asked = answer_dialog(button)
    widget.split_button.click()
    assert asked == [
        "Axis 'axis 0' of layer 'stack' is not a channel axis. Add 6 layers, one "
        "per position along it?"
    ]
    assert len(widget.added) == added
    assert len(viewer.layers) == 1 + added
