"""npe2 writer: File > Save Layers to .zarr writes OME-Zarr from real napari layers."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from napari.layers import Image, Labels
from ome_zarr_models import open_ome_zarr

import napari_bigvol
from napari_bigvol._napari._writer import export_layer, write_zarr
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.export import describe_layer


def test_save_layers_writes_image_and_labels(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = np.random.default_rng(0).integers(0, 4000, (12, 300, 280), dtype=np.uint16)
    viewer.add_image(
        data,
        name="brain",
        scale=(3.0, 0.5, 0.5),
        units=("micrometer",) * 3,
        axis_labels=("z", "y", "x"),
        colormap="green",
        contrast_limits=(100, 3000),
    )
    viewer.add_labels((data > 2000).astype(np.uint8), name="mask", scale=(3.0, 0.5, 0.5))
    path = str(tmp_path / "saved.ome.zarr")
    written = viewer.layers.save(path, plugin="napari-bigvol")
    assert written == [path]
    group = zarr.open_group(path, mode="r")
    open_ome_zarr(group, version="0.4")
    attrs = dict(group.attrs)
    assert attrs["multiscales"][0]["axes"][0] == {
        "name": "z",
        "type": "space",
        "unit": "micrometer",
    }
    channel = attrs["omero"]["channels"][0]
    assert (channel["label"], channel["color"]) == ("brain", "00FF00")
    assert (channel["window"]["start"], channel["window"]["end"]) == (100.0, 3000.0)
    np.testing.assert_array_equal(group["0"][:], data)
    np.testing.assert_array_equal(group["labels/mask/0"][:], data > 2000)


def test_split_channels_are_saved_as_one_multichannel_image(tmp_path):
    red = Image(np.full((4, 32, 32), 1, np.uint8), name="cy3", colormap="magenta")
    green = Image(np.full((4, 32, 32), 2, np.uint8), name="gfp", colormap="green")
    path = str(tmp_path / "channels.zarr")
    write_zarr(path, [red.as_layer_data_tuple(), green.as_layer_data_tuple()])
    group = zarr.open_group(path, mode="r")
    channels = dict(group.attrs)["omero"]["channels"]
    assert [(c["label"], c["color"]) for c in channels] == [("cy3", "FF00FF"), ("gfp", "00FF00")]
    assert group["0"].shape == (2, 4, 32, 32)
    assert group["0"][1].max() == 2


def test_a_labels_layer_alone_and_a_multiscale_layer(tmp_path):
    labels = Labels(np.arange(64, dtype=np.int32).reshape(1, 8, 8) % 5, name="cells")
    path = str(tmp_path / "cells.zarr")
    write_zarr(path, [labels.as_layer_data_tuple()])
    group = zarr.open_group(path, mode="r")
    assert dict(group["labels"].attrs)["labels"] == ["cells"]
    np.testing.assert_array_equal(group["0"][:], labels.data)

    pyramid = [np.ones((600, 600), np.uint8), np.ones((300, 300), np.uint8)]
    layer = Image(pyramid, multiscale=True, name="pyr")
    export_layer(layer, tmp_path / "pyr.zarr")
    assert zarr.open_array(tmp_path / "pyr.zarr" / "0", mode="r").shape == (600, 600)


def test_writer_never_overwrites(tmp_path):
    path = tmp_path / "exists.zarr"
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    layer = Image(np.zeros((8, 8), np.uint8))
    with pytest.raises(OperationError, match="already exists"):
        write_zarr(str(path), [layer.as_layer_data_tuple()])
    assert (path / "keep.txt").read_text() == "mine"


def test_image_layers_of_different_shapes_are_refused(tmp_path):
    a = Image(np.zeros((8, 8), np.uint8), name="a")
    b = Image(np.zeros((9, 8), np.uint8), name="b")
    with pytest.raises(OperationError, match="save them one at a time"):
        write_zarr(str(tmp_path / "x.zarr"), [a.as_layer_data_tuple(), b.as_layer_data_tuple()])
    assert list(tmp_path.iterdir()) == []


def test_layers_are_described_for_the_export_without_napari_classes(tmp_path):
    image = Image(
        np.arange(4 * 16 * 16, dtype=np.uint16).reshape(4, 16, 16),
        name="brain",
        scale=(2.0, 0.5, 0.5),
        units=("mm", "mm", "mm"),
        colormap="magenta",
        contrast_limits=(10, 900),
    )
    data, description = describe_layer(image)
    assert data is image.data
    assert (description.name, description.is_labels) == ("brain", False)
    assert tuple(description.scale) == (2.0, 0.5, 0.5)
    assert description.channel_colors == ["FF00FF"]
    path = export_layer(image, tmp_path / "brain.ome.zarr")
    ((_, kwargs, kind),) = napari_bigvol.read(path)
    assert (kind, kwargs["name"], kwargs["scale"]) == ("image", "brain", (2.0, 0.5, 0.5))
    assert kwargs["units"] == ("millimeter",) * 3
    assert kwargs["contrast_limits"] == (10.0, 900.0)


def test_export_zarr_takes_arrays_or_layers_not_other_objects(tmp_path):
    with pytest.raises(OperationError, match="cannot export a dict"):
        napari_bigvol.export_zarr({"not": "an array"}, tmp_path / "x.zarr")
    layer = Labels(np.zeros((4, 8, 8), np.uint8), name="mask")
    assert napari_bigvol.export_zarr(layer, tmp_path / "m.zarr").endswith("m.zarr")
    ((_, kwargs, kind),) = napari_bigvol.read(tmp_path / "m.zarr")
    assert (kind, kwargs["name"]) == ("labels", "mask")
