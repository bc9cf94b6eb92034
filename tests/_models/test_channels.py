"""The Split channels model without Qt: default axis, refusals, the cap, slice placement."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_bigvol._models._layers import Scope
from napari_bigvol._models.channels import MAX_SPLIT_LAYERS, SplitChannelsModel, channel_axis
from napari_bigvol.errors import OperationError


@pytest.fixture
def viewer() -> ViewerModel:
    return ViewerModel()


def test_grey_volume_has_no_default_axis_and_is_refused(viewer):
    brain = viewer.add_image(np.zeros((189, 512, 48), np.uint16), name="brain")
    model = SplitChannelsModel(viewer)
    model.set_layer(brain)
    assert channel_axis(brain) is None
    assert model.axis is None
    for scope in Scope:
        model.scope = scope
        with pytest.raises(OperationError, match="has no channel axis"):
            model.plan()


@pytest.mark.parametrize(("axis", "count"), [(0, 189), (1, 512), (2, 48)])
def test_more_layers_than_the_cap_are_refused_with_the_count(viewer, axis, count):
    model = SplitChannelsModel(viewer)
    model.set_layer(viewer.add_image(np.zeros((189, 512, 48), np.uint16), name="brain"))
    model.axis = axis
    with pytest.raises(OperationError, match=f"would add {count} layers"):
        model.plan()


def test_spatial_axis_under_the_cap_asks_first(viewer):
    model = SplitChannelsModel(viewer)
    model.set_layer(viewer.add_image(np.zeros((MAX_SPLIT_LAYERS, 8, 8)), name="stack"))
    model.axis = 0
    plan = model.plan()
    assert plan.count == MAX_SPLIT_LAYERS
    assert f"Add {MAX_SPLIT_LAYERS} layers" in plan.question


def test_channel_axis_splits_without_a_question(viewer):
    model = SplitChannelsModel(viewer)
    model.set_layer(viewer.add_image(np.zeros((3, 5, 8, 8)), axis_labels=("c", "z", "y", "x")))
    assert model.axis == 0
    assert model.plan().question == ""


def test_slice_outputs_are_drawn_only_on_their_own_plane(viewer):
    """A (slice) output keeps the source's axes, one plane thick at the current z."""
    data = np.arange(3 * 6 * 4 * 5, dtype=np.uint16).reshape(3, 6, 4, 5)
    source = viewer.add_image(
        data, name="cells", axis_labels=("c", "z", "y", "x"), scale=(1, 2, 1, 1)
    )
    viewer.dims.set_point(1, 8.0)  # z index 4
    model = SplitChannelsModel(viewer)
    model.set_layer(source)
    outputs = model.outputs(model.plan())
    assert [o.name for o in outputs] == [
        "cells [0] (slice)",
        "cells [1] (slice)",
        "cells [2] (slice)",
    ]
    added = [viewer.add_image(o.data, name=o.name, **o.placement) for o in outputs]
    for channel, layer in enumerate(added):
        assert layer.data.shape == (1, 4, 5)
        np.testing.assert_array_equal(layer.data[0], data[channel, 4])
        np.testing.assert_array_equal(layer.translate, (8, 0, 0))
        assert not layer._slice.empty
    viewer.dims.set_point(1, 6.0)
    assert all(layer._slice.empty for layer in added)
