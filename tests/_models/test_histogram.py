"""The Histogram model without Qt: one-pass channels, the cache and de-duplication."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_bigvol._models.histogram import (
    HistogramModel,
    HistogramSettings,
    describe,
    histogram_channels,
    parse_percentiles,
    request_key,
)
from napari_bigvol._napari.scope import visible_slice, whole_volume
from napari_bigvol.errors import OperationError

SETTINGS = HistogramSettings(16, False, (50.0,))


def test_rgb_channels_are_read_in_one_pass(block_loads):
    import dask.array as da

    rgb = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3)).astype(np.uint8)
    lazy = block_loads.wrap(da.from_array(rgb, chunks=(1, 32, 32, 3)))
    names, stats = histogram_channels(lazy, True, SETTINGS)
    assert names == ("red", "green", "blue")
    assert block_loads.count == 4  # each block once, for all three channels
    for channel, result in enumerate(stats):
        assert result.maximum == rgb[..., channel].max()


def test_cache_per_layer_and_settings_until_forgotten():
    model, viewer = HistogramModel(), ViewerModel()
    layer = viewer.add_image(np.arange(24.0).reshape(2, 3, 4))
    names, stats = histogram_channels(layer.data, False, SETTINGS)
    from napari_bigvol._models.histogram import HistogramResult

    model.store(layer, SETTINGS, HistogramResult(names, stats, "whole"))
    assert model.cached(layer, SETTINGS).description == "whole"
    assert model.cached(layer, HistogramSettings(8, False, (50.0,))) is None
    model.forget(layer)
    assert model.cached(layer, SETTINGS) is None


def test_a_running_request_is_not_started_twice():
    model, viewer = HistogramModel(), ViewerModel()
    layer = viewer.add_image(np.zeros((2, 3, 4)))
    key = request_key(layer, SETTINGS, whole_volume(layer))
    assert model.start(key)
    assert not model.start(key)
    model.finish(key)
    assert model.start(key)


def test_describe_names_the_plane():
    viewer = ViewerModel()
    layer = viewer.add_image(np.zeros((5, 3, 4)), axis_labels=("z", "y", "x"))
    viewer.dims.set_current_step(0, 3)
    assert describe(layer, visible_slice(layer, viewer)) == "visible slice at z = 3, 12 values"
    assert describe(layer, whole_volume(layer)) == "whole volume, 60 values (exact)"


def test_bad_percentiles():
    with pytest.raises(OperationError, match="outside 0-100"):
        parse_percentiles("1, 150")
