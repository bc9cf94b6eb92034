"""The Threshold mask model without Qt: per-layer memory, wording, outputs and placement."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_bigvol._models.broadcast import ThresholdBroadcast
from napari_bigvol._models.threshold import ThresholdModel
from napari_bigvol._napari.scope import visible_slice, whole_volume
from napari_bigvol.errors import OperationError


@pytest.fixture
def viewer() -> ViewerModel:
    return ViewerModel()


@pytest.fixture
def model() -> ThresholdModel:
    return ThresholdModel(ThresholdBroadcast())


def ramp(shape=(4, 10, 10), dtype=np.uint16):
    return np.arange(np.prod(shape), dtype=dtype).reshape(shape) % 200


def test_threshold_and_mode_are_remembered_per_layer(viewer, model):
    first = viewer.add_image(ramp(), name="first")
    second = viewer.add_image(ramp() * 2, name="second")
    model.set_layer(first)
    assert model.threshold == 99.5  # between two integers, mid-range
    model.set_threshold(42)
    model.set_mode("below")
    model.set_layer(second)
    assert (model.threshold, model.mode) == (199.5, "below")
    model.set_layer(first)
    assert (model.threshold, model.mode) == (42.0, "below")


def test_only_the_chosen_layer_publishes_its_threshold(viewer, model):
    first, second = viewer.add_image(ramp()), viewer.add_image(ramp())
    model.set_layer(first)
    model.set_layer(second)
    assert model.broadcast.get(first) is None
    assert model.broadcast.get(second) == model.threshold
    model.release()
    assert model.broadcast.get(second) is None


def test_otsu_keeps_the_mode_and_says_so(viewer, model):
    model.set_layer(viewer.add_image(ramp(), name="mri"))
    model.set_mode("below")
    assert model.otsu_found(61.0) == "Otsu threshold of 'mri': 61 (keep below; mode unchanged)."
    assert (model.threshold, model.mode) == (61.0, "below")


def test_pixel_data_are_counted_in_voxels_not_scale_units(viewer, model):
    layer = viewer.add_image(ramp(), name="px")
    model.set_layer(layer)
    plane = visible_slice(layer, viewer)
    stats = model.slice_statistics(plane, np.asarray(plane.data))
    text = model.statistics_text(stats)
    assert text.endswith(" voxels")
    assert "scale unit" not in text


def test_physical_units_give_a_volume(viewer, model):
    layer = viewer.add_image(ramp(), scale=(2, 1, 1), units=("mm", "mm", "mm"))
    model.set_layer(layer)
    plane = visible_slice(layer, viewer)
    assert model.statistics_text(model.slice_statistics(plane, np.asarray(plane.data))).endswith(
        "mm²"
    )


def test_range_warning(viewer, model):
    model.set_layer(viewer.add_image(ramp(), name="r"))
    model.set_threshold(500)
    assert model.range_warning().endswith("the mask will probably be empty.")
    model.set_mode("below")
    assert model.range_warning().endswith("the mask will probably be everything.")


def test_slice_outputs_keep_the_source_axes_one_plane_thick(viewer, model):
    data = ramp((5, 6, 7))
    layer = viewer.add_image(data, name="v", scale=(3, 1, 1))
    viewer.dims.set_point(0, 6.0)  # z index 2
    model.set_layer(layer)
    model.set_threshold(100)
    outputs = model.outputs(
        visible_slice(layer, viewer), whole=False, mask=True, masked_image=True
    )
    assert [o.name for o in outputs] == ["v > 100 mask (slice)", "v masked > 100 (slice)"]
    for output in outputs:
        assert output.data.shape == (1, 6, 7)
        assert output.placement["translate"] == (6.0, 0.0, 0.0)
    np.testing.assert_array_equal(outputs[0].data[0], data[2] > 100)


def test_whole_outputs_are_lazy_and_need_an_output(viewer, model):
    layer = viewer.add_image(ramp(), name="v")
    model.set_layer(layer)
    (mask,) = model.outputs(whole_volume(layer), whole=True, mask=True, masked_image=False)
    assert mask.data.shape == layer.data.shape
    assert hasattr(mask.data, "dask")
    with pytest.raises(OperationError, match="Choose an output"):
        model.outputs(whole_volume(layer), whole=True, mask=False, masked_image=False)


def test_rgb_is_refused(viewer, model):
    layer = viewer.add_image(np.zeros((8, 8, 3), np.uint8), rgb=True, name="photo")
    model.set_layer(layer)
    with pytest.raises(OperationError, match="is RGB"):
        model.outputs(whole_volume(layer), whole=True, mask=True, masked_image=False)
