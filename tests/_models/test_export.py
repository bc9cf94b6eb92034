"""The Export model without Qt: the path follows the layer, and overwrites ask every time."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from napari_bigvol._models.export import ExportModel, default_output, parse_chunks
from napari_bigvol.errors import OperationError


class Layer:
    """What the model reads of a napari layer: its name and the path napari read it from."""

    def __init__(self, name, source=None):
        self.name = name
        self.source = SimpleNamespace(path=source)


layer = Layer


def test_path_follows_the_layer_after_an_export(tmp_path):
    model = ExportModel(home=str(tmp_path))
    first, second = layer("first"), layer("second")
    model.set_layer(first)
    model.set_path(str(tmp_path / "mine.zarr"))
    (tmp_path / "mine.zarr").mkdir()  # the first export happened
    model.set_layer(second)
    assert model.path == str(tmp_path / "second.ome.zarr")
    assert model.plan(overwrite_ticked=True).overwrite is False  # nothing to replace
    model.set_layer(first)
    assert model.path == str(tmp_path / "mine.zarr")


def test_default_is_beside_a_writable_source_and_never_an_existing_path(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "brain.ome.zarr").mkdir()
    source = layer("brain", str(data / "brain.tif"))
    assert default_output(source, home=str(tmp_path / "home")) == str(data / "brain-2.ome.zarr")


def test_default_falls_back_home_when_the_source_folder_is_not_writable(tmp_path):
    remote = layer("scan", "https://example.org/data/scan.ome.zarr")
    assert default_output(remote, home=str(tmp_path)) == str(tmp_path / "scan.ome.zarr")


def test_existing_target_needs_the_tick_then_a_question_each_time(tmp_path):
    model = ExportModel(home=str(tmp_path))
    model.set_layer(layer("brain"))
    model.set_path(str(tmp_path / "out.zarr"))
    (tmp_path / "out.zarr").mkdir()
    with pytest.raises(OperationError, match="tick 'Overwrite existing'"):
        model.plan(overwrite_ticked=False)
    for _ in range(2):
        plan = model.plan(overwrite_ticked=True)
        assert plan.overwrite
        assert plan.question == f"{tmp_path / 'out.zarr'} already exists. Replace it with 'brain'?"


def test_paths_without_a_zarr_suffix_get_one(tmp_path):
    model = ExportModel(home=str(tmp_path))
    model.set_layer(layer("x"))
    model.set_path(str(tmp_path / "plain"))
    assert model.path == str(tmp_path / "plain.ome.zarr")


def test_chunks_text():
    assert parse_chunks("1, 256,256") == (1, 256, 256)
    with pytest.raises(OperationError, match="chunks must be integers"):
        parse_chunks("64,sixty,64")
