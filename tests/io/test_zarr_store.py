"""The zarr / OME-Zarr reader, against direct zarr reads of stores written in tmp_path."""

from __future__ import annotations

import itertools
import json
import os
import warnings
from pathlib import Path
from typing import Any

import cloudpickle
import dask.array as da
import numcodecs
import numpy as np
import pytest
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr_models import open_ome_zarr
from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, TransposeCodec, ZstdCodec

import napari_bigvol
from napari_bigvol.errors import ReadError
from napari_bigvol.io import _ngff, reader_for, zarr_store
from napari_bigvol.io._zarr_chunks import ChunkedLevel

METADATA_NAMES = {"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"}
FORMATS = {2: FormatV04(), 3: FormatV05()}
UM = {"z": "micrometer", "y": "micrometer", "x": "micrometer"}


# --- writing stores -----------------------------------------------------------------------


def _ome_writer():
    """``ome_zarr.writer``, whose import itself warns that its ``Scaler`` default is deprecated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Call to deprecated class Scaler", DeprecationWarning)
        from ome_zarr import writer
    return writer


def _volume(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -5000), min(info.max, 5000), shape, dtype=dtype)


def _plain_array(path: Path, data: np.ndarray, chunks, zarr_format: int, **options) -> Path:
    array = zarr.create_array(
        path, shape=data.shape, dtype=data.dtype, chunks=chunks, zarr_format=zarr_format, **options
    )
    array[...] = data
    return path


def _ome_image(
    path: Path,
    data: np.ndarray,
    zarr_format: int,
    *,
    axes=("z", "y", "x"),
    scale=None,
    chunks=None,
    levels: int = 3,
    **metadata,
) -> Path:
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    scale = scale or dict.fromkeys(axes, 1.0)
    _ome_writer().write_image(
        data,
        group,
        scale_factors=[2**i for i in range(1, levels)],
        axes=list(axes),
        fmt=FORMATS[zarr_format],
        scale=scale,
        axes_units={a: u for a, u in UM.items() if a in axes},
        storage_options={"chunks": chunks or data.shape},
        **metadata,
    )
    return path


def _channel_image(path: Path, data: np.ndarray, zarr_format: int, zyx=(1.0, 1.0, 1.0), **options):
    """An OME-Zarr image with axes (c, z, y, x) and the given voxel size."""
    scale = dict(zip(("c", "z", "y", "x"), (1.0, *zyx), strict=True))
    return _ome_image(path, data, zarr_format, axes=tuple(scale), scale=scale, **options)


def _add_labels(path: Path, labels: np.ndarray, zarr_format: int, scale: dict) -> None:
    group = zarr.open_group(path, mode="a")
    _ome_writer().write_labels(
        labels,
        group,
        name="cells",
        axes=["z", "y", "x"],
        fmt=FORMATS[zarr_format],
        scale=scale,
        scale_factors=[2, 4],
        scaler=None,
    )
    if zarr_format == 3:
        # ome-zarr 0.18 leaves "version" out of the 0.5 labels group, which NGFF 0.5
        # requires (ome_zarr_models rejects it); write that group as the spec says.
        group["labels"].attrs["ome"] = {"version": "0.5", "labels": ["cells"]}


def _chunk_files(array: zarr.Array, store: Path, plane: int) -> set[str]:
    """Files zarr holds plane ``plane`` (axis 0) of ``array`` in: its chunks, or shards."""
    grid = array.shards or array.chunks
    ranges = [range(plane // grid[0], plane // grid[0] + 1)]
    ranges += [
        range(-(-size // step)) for size, step in zip(array.shape[1:], grid[1:], strict=True)
    ]
    return {
        os.path.abspath(os.path.join(store, array.path, array.metadata.encode_chunk_key(index)))
        for index in itertools.product(*ranges)
    }


def _whole_chunks(data: da.Array, array: zarr.Array) -> bool:
    """Whether every dask block of ``data`` holds whole chunks of ``array`` (no rechunking)."""
    return all(
        all(block % chunk == 0 for block in blocks[:-1])
        for blocks, chunk in zip(data.chunks, array.chunks, strict=True)
    )


def _centre_chunk(reference: np.ndarray, chunks) -> np.ndarray:
    start = [(size // 2) // c * c for size, c in zip(reference.shape, chunks, strict=True)]
    return reference[tuple(slice(s, s + c) for s, c in zip(start, chunks, strict=True))]


def _only_metadata(opened) -> bool:
    return all(os.path.basename(p) in METADATA_NAMES for p in opened)


# --- accepts ------------------------------------------------------------------------------


def test_accepts_stores_and_nodes_inside_them(tmp_path):
    image = _ome_image(tmp_path / "image.ome.zarr", _volume((4, 16, 16), "uint16"), 2)
    unnamed = _plain_array(tmp_path / "no_suffix", _volume((4, 8), "uint8"), (4, 8), 3)
    v2_group = tmp_path / "group_v2"
    zarr.open_group(v2_group, mode="w", zarr_format=2)
    for path in (str(image), f"{image}/", str(image / "s0"), str(unnamed), str(v2_group)):
        assert zarr_store.accepts(path), path
    # A missing *.zarr path is taken so read() can say what is wrong with it.
    assert zarr_store.accepts(str(tmp_path / "missing.zarr"))


@pytest.mark.parametrize("path", ["", "scan.nii.gz", "slices", "notes.txt", b"a.zarr", None, 3])
def test_accepts_nothing_else_and_never_raises(tmp_path, path):
    (tmp_path / "slices").mkdir()
    (tmp_path / "slices" / "a.tif").write_bytes(b"")
    target = os.path.join(tmp_path, path) if isinstance(path, str) and path else path
    assert zarr_store.accepts(target) is False


def test_dispatcher_routes_stores_here(tmp_path):
    store = _plain_array(tmp_path / "a.zarr", _volume((2, 8, 8), "uint8"), (1, 8, 8), 2)
    assert reader_for(str(store)) is napari_bigvol.read
    assert napari_bigvol.read(str(store))[0][1]["name"] == "a"


# --- plain arrays -------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "bool"])
@pytest.mark.parametrize("chunks", [(1, 16, 16), (4, 32, 32), (3, 7, 5)])
def test_plain_array_matches_zarr(tmp_path, zarr_format, dtype, chunks):
    reference = _volume((10, 32, 24), dtype)
    store = _plain_array(tmp_path / "vol.zarr", reference, chunks, zarr_format)

    ((data, kwargs, layer_type),) = zarr_store.read(store)

    assert layer_type == "image"
    assert isinstance(data, da.Array)
    direct = zarr.open_array(store, mode="r")
    assert _whole_chunks(data, direct)
    np.testing.assert_array_equal(data.compute(), direct[...])
    assert data.dtype == direct.dtype
    assert kwargs["name"] == "vol"
    assert kwargs["multiscale"] is False
    assert kwargs["rgb"] is False
    assert kwargs["metadata"]["bigvol"]["zarr_format"] == zarr_format
    if dtype == "uint8":
        assert kwargs["contrast_limits"] == (0, 255)
    elif dtype == "bool":
        assert kwargs["contrast_limits"] == (0, 1)
    else:
        sample = _centre_chunk(reference, chunks)
        assert kwargs["contrast_limits"] == (float(sample.min()), float(sample.max()))


def test_plain_array_handles_are_read_only(tmp_path):
    # Sharded: read through zarr, whose array handles sit in the graph.
    store = _plain_array(
        tmp_path / "vol.zarr", _volume((2, 8, 8), "uint16"), (1, 8, 8), 3, shards=(2, 8, 8)
    )
    ((data, _, _),) = zarr_store.read(store)
    # The graph holds the zarr array inside the reader that names the store in errors.
    handles = [
        getattr(v, "array", v)
        for v in dict(data.__dask_graph__()).values()
        if isinstance(getattr(v, "array", v), zarr.Array)
    ]
    assert handles
    for handle in handles:
        assert handle.read_only
        with pytest.raises(ValueError, match=r"read-only|read only"):
            handle[0] = 0
    assert np.all(zarr.open_array(store, mode="r")[...] == zarr.open_array(store)[...])


def test_chunk_files_read_directly_have_no_write_access(tmp_path):
    store = _plain_array(tmp_path / "vol.zarr", _volume((2, 8, 8), "uint16"), (1, 8, 8), 3)
    ((data, _, _),) = zarr_store.read(store)
    sources = [v for v in dict(data.__dask_graph__()).values() if isinstance(v, ChunkedLevel)]
    assert sources
    assert not any(hasattr(source, "__setitem__") for source in sources)


def test_dimension_names_become_axis_labels(tmp_path):
    v3 = _plain_array(
        tmp_path / "v3.zarr",
        _volume((2, 8, 8), "uint8"),
        (1, 8, 8),
        3,
        dimension_names=("z", "y", "x"),
    )
    v2 = _plain_array(tmp_path / "v2.zarr", _volume((2, 8, 8), "uint8"), (1, 8, 8), 2)
    zarr.open_array(v2, mode="a").attrs["_ARRAY_DIMENSIONS"] = ["t", "row", "col"]
    assert zarr_store.read(v3)[0][1]["axis_labels"] == ("z", "y", "x")
    assert zarr_store.read(v2)[0][1]["axis_labels"] == ("t", "row", "col")


def test_plain_arrays_without_names_get_spatial_axis_labels(tmp_path):
    # Not napari's "-3", "-2", "-1".
    v2 = _plain_array(tmp_path / "v2.zarr", _volume((2, 8, 8), "uint8"), (1, 8, 8), 2)
    four = _plain_array(tmp_path / "t.zarr", _volume((2, 2, 8, 8), "uint8"), (1, 1, 8, 8), 3)
    assert zarr_store.read(v2)[0][1]["axis_labels"] == ("z", "y", "x")
    assert zarr_store.read(four)[0][1]["axis_labels"] == ("t", "z", "y", "x")


def test_ome_zarr_py_images_are_named_after_their_store(tmp_path):
    # ome-zarr-py names every image "image"; two of them open side by side.
    from ome_zarr.writer import write_image

    for name in ("left", "right"):
        group = zarr.open_group(tmp_path / f"{name}.ome.zarr", mode="w")
        write_image(_volume((4, 16, 16), "uint8"), group, axes="zyx")
        assert _ngff.ome_attributes(group.attrs)["multiscales"][0]["name"] == "image"
    names = [zarr_store.read(tmp_path / f"{n}.ome.zarr")[0][1]["name"] for n in ("left", "right")]
    assert names == ["left", "right"]


def test_rgb_array_is_an_rgb_layer(tmp_path):
    store = _plain_array(
        tmp_path / "rgb.zarr", _volume((5, 16, 16, 3), "uint8"), (1, 16, 16, 3), 3
    )
    ((data, kwargs, _),) = zarr_store.read(store)
    assert kwargs["rgb"] is True
    assert data.shape == (5, 16, 16, 3)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_sharded_or_nested_chunks(tmp_path, zarr_format):
    reference = _volume((8, 32, 32), "uint16")
    options = (
        {"shards": (4, 32, 32)}
        if zarr_format == 3
        else {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
    )
    store = _plain_array(tmp_path / "s.zarr", reference, (1, 16, 16), zarr_format, **options)
    ((data, _, _),) = zarr_store.read(store)
    np.testing.assert_array_equal(data[5].compute(), reference[5])


# --- laziness -----------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("chunks", [(1, 16, 16), (4, 32, 32)])
def test_opening_reads_metadata_only_and_a_plane_reads_its_chunks(
    tmp_path, open_counter, zarr_format, chunks
):
    reference = _volume((12, 64, 48), "uint8")
    store = _plain_array(tmp_path / "vol.zarr", reference, chunks, zarr_format)

    with open_counter.watch(tmp_path) as opened:
        ((data, _, _),) = zarr_store.read(store)
    assert opened, "the audit hook saw no metadata read"
    assert _only_metadata(opened), sorted(opened)

    with open_counter.watch(tmp_path) as opened:
        plane = data[7].compute()
    np.testing.assert_array_equal(plane, reference[7])
    assert set(opened) == _chunk_files(zarr.open_array(store, mode="r"), store, 7)


def test_contrast_for_a_plain_array_reads_only_its_centre_chunk(tmp_path, open_counter):
    reference = _volume((12, 64, 48), "uint16")
    store = _plain_array(tmp_path / "vol.zarr", reference, (1, 32, 32), 3)
    with open_counter.watch(tmp_path) as opened:
        zarr_store.read(store)
    chunks = {p for p in opened if os.path.basename(p) not in METADATA_NAMES}
    # Plane 6, rows 32-63, columns 0-31 and 32-47 hold the centre voxel (6, 32, 24).
    assert chunks == {os.path.abspath(store / "c" / "6" / "1" / "0")}


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_opening_never_reads_level_zero(tmp_path, open_counter, zarr_format):
    reference = _volume((16, 64, 64), "uint16")
    store = _ome_image(tmp_path / "img.ome.zarr", reference, zarr_format, chunks=(1, 16, 16))

    with open_counter.watch(tmp_path) as opened:
        ((levels, kwargs, _),) = zarr_store.read(store)
    pixel_files = {p for p in opened if os.path.basename(p) not in METADATA_NAMES}
    smallest = zarr.open_group(store, mode="r")["s2"]
    assert pixel_files  # the contrast limits came from the smallest level...
    assert all(p.startswith(os.path.abspath(store / "s2")) for p in pixel_files)  # ...alone
    assert kwargs["contrast_limits"] == (float(smallest[...].min()), float(smallest[...].max()))

    with open_counter.watch(tmp_path) as opened:
        plane = levels[0][9].compute()
    np.testing.assert_array_equal(plane, reference[9])
    full = zarr.open_group(store, mode="r")["s0"]
    assert set(opened) == _chunk_files(full, store, 9)


def test_a_smallest_level_of_many_chunks_is_sampled_at_its_centre(tmp_path, open_counter):
    reference = _volume((80, 32, 32), "uint16")
    store = _ome_image(tmp_path / "deep.ome.zarr", reference, 3, chunks=(1, 32, 32), levels=2)
    smallest = zarr.open_group(store, mode="r")["s1"]  # 80 planes, one chunk each
    assert smallest.nchunks > zarr_store.CONTRAST_SAMPLE_CHUNKS
    with open_counter.watch(tmp_path) as opened:
        ((_, kwargs, _),) = zarr_store.read(store)
    pixel_files = {p for p in opened if os.path.basename(p) not in METADATA_NAMES}
    assert pixel_files == _chunk_files(smallest, store, 40)
    centre = smallest[40]
    assert kwargs["contrast_limits"] == (float(centre.min()), float(centre.max()))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_with_omero_windows_opens_from_metadata_alone(tmp_path, open_counter, zarr_format):
    data = _volume((2, 4, 32, 32), "uint16")
    store = _channel_image(
        tmp_path / "img.ome.zarr",
        data,
        zarr_format,
        chunks=(1, 1, 16, 16),
        omero=_omero(["a", "b"], ["FF0000", "00FF00"], [(0, 100), (5, 50)]),
    )
    with open_counter.watch(tmp_path) as opened:
        zarr_store.read(store)
    assert opened
    assert _only_metadata(opened), sorted(opened)


# --- OME-Zarr images ----------------------------------------------------------------------


def _omero(labels, colours, windows) -> dict:
    return {
        "channels": [
            {
                "label": label,
                "color": colour,
                "window": {"min": 0, "max": 65535, "start": start, "end": end},
                "active": True,
            }
            for label, colour, (start, end) in zip(labels, colours, windows, strict=True)
        ],
        "rdefs": {"model": "color"},
    }


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("dtype", ["uint16", "float32"])
@pytest.mark.parametrize("chunks", [(2, 16, 16), (5, 32, 13)])
def test_ome_multiscale_matches_zarr(tmp_path, zarr_format, dtype, chunks):
    reference = _volume((10, 64, 64), dtype)
    scale = {"z": 2.5, "y": 0.5, "x": 0.25}
    store = _ome_image(
        tmp_path / "brain.ome.zarr", reference, zarr_format, scale=scale, chunks=chunks
    )
    open_ome_zarr(zarr.open_group(store, mode="r"))  # an independent validator accepts it

    ((levels, kwargs, layer_type),) = zarr_store.read(store)

    group = zarr.open_group(store, mode="r")
    assert layer_type == "image"
    assert kwargs["multiscale"] is True
    assert [level.shape for level in levels] == [group[p].shape for p in ("s0", "s1", "s2")]
    for level, path in zip(levels, ("s0", "s1", "s2"), strict=True):
        assert _whole_chunks(level, group[path])
        np.testing.assert_array_equal(level.compute(), group[path][...])
    np.testing.assert_array_equal(levels[0].compute(), reference)
    assert kwargs["scale"] == (2.5, 0.5, 0.25)
    assert kwargs["translate"] == (0.0, 0.0, 0.0)
    assert kwargs["axis_labels"] == ("z", "y", "x")
    assert kwargs["units"] == ("micrometer", "micrometer", "micrometer")
    assert kwargs["name"] == "brain"  # ome-zarr names every image "image": the store's name
    assert kwargs["metadata"]["bigvol"]["ngff_version"] == {2: "0.4", 3: "0.5"}[zarr_format]
    smallest = group["s2"][...]
    assert kwargs["contrast_limits"] == (float(smallest.min()), float(smallest.max()))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_channels_take_names_colours_and_windows_from_omero(tmp_path, zarr_format):
    reference = _volume((3, 4, 32, 32), "uint16")
    omero = _omero(
        ["DAPI", "GFP", "mCherry"], ["0000FF", "00FF00", "FF8000"], [(0, 500), (10, 900), (3, 4)]
    )
    omero["channels"][2]["active"] = False
    store = _channel_image(
        tmp_path / "cells.ome.zarr",
        reference,
        zarr_format,
        zyx=(2.0, 0.5, 0.5),
        chunks=(1, 2, 16, 16),
        omero=omero,
    )
    open_ome_zarr(zarr.open_group(store, mode="r"))

    ((levels, kwargs, _),) = zarr_store.read(store)

    assert kwargs["channel_axis"] == 0
    assert kwargs["name"] == ["DAPI", "GFP", "mCherry"]
    assert kwargs["colormap"] == ["blue", "green", "#ff8000"]
    assert kwargs["contrast_limits"] == [(0, 500), (10, 900), (3, 4)]
    assert kwargs["visible"] == [True, True, False]
    assert kwargs["blending"] == "additive"
    # Per-axis keywords describe each channel's layer, so they skip the channel axis.
    assert kwargs["scale"] == (2.0, 0.5, 0.5)
    assert kwargs["axis_labels"] == ("z", "y", "x")
    assert kwargs["metadata"]["bigvol"]["channel_names"] == ["DAPI", "GFP", "mCherry"]
    np.testing.assert_array_equal(levels[0].compute(), reference)


def test_channels_without_omero_get_per_channel_limits(tmp_path):
    reference = _volume((2, 4, 32, 32), "float32")
    reference[1] += 1000
    store = _channel_image(
        tmp_path / "two.ome.zarr",
        reference,
        3,
    )
    ((_, kwargs, _),) = zarr_store.read(store)
    smallest = zarr.open_group(store, mode="r")["s2"][...]
    assert kwargs["contrast_limits"] == [
        (float(smallest[c].min()), float(smallest[c].max())) for c in range(2)
    ]
    assert kwargs["name"] == ["two [0]", "two [1]"]
    assert "colormap" not in kwargs  # napari picks its own channel colours


def _hand_written_ome(path: Path, zarr_format: int) -> tuple[Path, np.ndarray]:
    """An NGFF image with a top-level transformation, which ome-zarr's writer never emits."""
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    full = _volume((4, 32, 32), "uint16")
    half = full[:, ::2, ::2]
    for name, data in (("0", full), ("1", half)):
        # NGFF 0.5 asks zarr v3 arrays to carry their axis names.
        names = {"dimension_names": ("z", "y", "x")} if zarr_format == 3 else {}
        array = group.create_array(
            name, shape=data.shape, dtype=data.dtype, chunks=(1, 16, 16), **names
        )
        array[...] = data
    axes = [
        {"name": "z", "type": "space", "unit": "millimeter"},
        {"name": "y", "type": "space", "unit": "millimeter"},
        {"name": "x", "type": "space", "unit": "millimeter"},
    ]
    multiscale = {
        "name": "mri",
        "axes": axes,
        "datasets": [
            {
                "path": "0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 0.1, 0.1]},
                    {"type": "translation", "translation": [5.0, 0.0, 0.0]},
                ],
            },
            {
                "path": "1",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 0.2, 0.2]},
                    {"type": "translation", "translation": [5.0, 0.05, 0.05]},
                ],
            },
        ],
        "coordinateTransformations": [{"type": "scale", "scale": [2.0, 2.0, 2.0]}],
    }
    if zarr_format == 2:
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    return path, full


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_dataset_and_multiscale_transformations_combine(tmp_path, zarr_format):
    store, full = _hand_written_ome(tmp_path / "mri.zarr", zarr_format)
    open_ome_zarr(zarr.open_group(store, mode="r"))

    ((levels, kwargs, _),) = zarr_store.read(store)

    # world = 2 * (scale * index + translation)
    np.testing.assert_allclose(kwargs["scale"], (2.0, 0.2, 0.2))
    np.testing.assert_allclose(kwargs["translate"], (10.0, 0.0, 0.0))
    assert kwargs["units"] == ("millimeter", "millimeter", "millimeter")
    assert kwargs["name"] == "mri"
    np.testing.assert_array_equal(levels[0].compute(), full)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_an_array_inside_an_image_keeps_its_level_transform(tmp_path, zarr_format):
    store, full = _hand_written_ome(tmp_path / "mri.zarr", zarr_format)
    ((data, kwargs, _),) = zarr_store.read(store / "1")
    np.testing.assert_array_equal(data.compute(), full[:, ::2, ::2])
    np.testing.assert_allclose(kwargs["scale"], (2.0, 0.4, 0.4))
    np.testing.assert_allclose(kwargs["translate"], (10.0, 0.1, 0.1))
    assert kwargs["name"] == "mri/1"
    assert kwargs["multiscale"] is False


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_labels_open_as_labels_layers_with_the_image_transform(tmp_path, zarr_format):
    reference = _volume((8, 64, 64), "uint16")
    scale = {"z": 2.0, "y": 0.5, "x": 0.5}
    store = _ome_image(tmp_path / "seg.ome.zarr", reference, zarr_format, scale=scale)
    cells = (reference > 2500).astype(np.uint32) + (reference > 4000)
    _add_labels(store, cells, zarr_format, scale)
    open_ome_zarr(zarr.open_group(store, mode="r"))

    image, labels = zarr_store.read(store)

    data, kwargs, layer_type = labels
    assert layer_type == "labels"
    assert kwargs["name"] == "cells"
    assert kwargs["multiscale"] is True
    assert kwargs["scale"] == image[1]["scale"] == (2.0, 0.5, 0.5)
    assert kwargs["translate"] == image[1]["translate"]
    assert kwargs["axis_labels"] == ("z", "y", "x")
    np.testing.assert_array_equal(data[0].compute(), cells)
    # Opening the labels group, or one label image, gives the same layer on its own.
    for path in (store / "labels", store / "labels" / "cells"):
        ((alone, alone_kwargs, alone_type),) = zarr_store.read(path)
        assert alone_type == "labels"
        assert alone_kwargs["scale"] == kwargs["scale"]
        np.testing.assert_array_equal(alone[1].compute(), data[1].compute())


def test_a_broken_label_warns_and_the_image_still_opens(tmp_path):
    store = _ome_image(tmp_path / "seg.ome.zarr", _volume((4, 32, 32), "uint16"), 2)
    _add_labels(store, np.zeros((4, 32, 32), np.uint8), 2, {"z": 1.0, "y": 1.0, "x": 1.0})
    (store / "labels" / ".zattrs").write_text(json.dumps({"labels": ["cells", "nuclei"]}))
    with pytest.warns(UserWarning, match=r"nuclei: is missing.*skipped"):
        layers = zarr_store.read(store)
    assert [t for _, _, t in layers] == ["image", "labels"]


# --- plain groups -------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_group_of_shrinking_arrays_is_multiscale(tmp_path, zarr_format):
    group = zarr.open_group(tmp_path / "pyr.zarr", mode="w", zarr_format=zarr_format)
    full = _volume((16, 64, 64), "uint16")
    pyramid = {"s0": full, "s1": full[::2, ::2, ::2], "s2": full[::2, ::4, ::4]}
    for name, data in reversed(pyramid.items()):
        group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=(4, 16, 16))[...] = (
            data
        )

    ((levels, kwargs, _),) = zarr_store.read(tmp_path / "pyr.zarr")

    assert kwargs["multiscale"] is True
    assert kwargs["name"] == "pyr"
    for level, data in zip(levels, pyramid.values(), strict=True):
        np.testing.assert_array_equal(level.compute(), data)
    assert kwargs["contrast_limits"] == (float(pyramid["s2"].min()), float(pyramid["s2"].max()))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_group_of_unrelated_arrays_gives_one_layer_each(tmp_path, zarr_format):
    group = zarr.open_group(tmp_path / "mixed.zarr", mode="w", zarr_format=zarr_format)
    arrays = {
        "raw": _volume((4, 32, 32), "uint16"),
        "mask": _volume((4, 32, 32), "uint8"),  # same shape: not a pyramid level
        "wide": _volume((4, 16, 48), "uint16"),  # wider: not a pyramid level either
    }
    for name, data in arrays.items():
        group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=(1, 16, 16))[...] = (
            data
        )
    group.create_array("times", shape=(4,), dtype="float64")  # 1-D: not an image
    group.create_group("notes")
    (tmp_path / "mixed.zarr" / "stray").mkdir()  # attributes alone make no zarr node
    (tmp_path / "mixed.zarr" / "stray" / ".zattrs").write_text("{}")

    layers = zarr_store.read(tmp_path / "mixed.zarr")

    assert [kwargs["name"] for _, kwargs, _ in layers] == ["mask", "raw", "wide"]
    for data, kwargs, _ in layers:
        assert kwargs["multiscale"] is False
        np.testing.assert_array_equal(data.compute(), arrays[kwargs["name"]])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_consolidated_metadata_as_xarray_writes_it(tmp_path, zarr_format):
    group = zarr.open_group(tmp_path / "ds.zarr", mode="w", zarr_format=zarr_format)
    temperature = _volume((3, 16, 24), "float32")
    names = {"dimension_names": ("time", "lat", "lon")} if zarr_format == 3 else {}
    array = group.create_array(
        "temperature", shape=temperature.shape, dtype="float32", chunks=(1, 16, 24), **names
    )
    array[...] = temperature
    if zarr_format == 2:
        array.attrs["_ARRAY_DIMENSIONS"] = ["time", "lat", "lon"]
    group.create_array("time", shape=(3,), dtype="int64")[...] = [0, 1, 2]
    zarr.consolidate_metadata(tmp_path / "ds.zarr")

    ((data, kwargs, _),) = zarr_store.read(tmp_path / "ds.zarr")

    assert kwargs["name"] == "temperature"
    assert kwargs["axis_labels"] == ("time", "lat", "lon")
    np.testing.assert_array_equal(data.compute(), temperature)


def test_group_of_ome_images_opens_each(tmp_path):
    root = zarr.open_group(tmp_path / "series.zarr", mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    for index in range(2):
        _ome_image(tmp_path / "series.zarr" / str(index), _volume((4, 32, 32), "uint16", index), 2)
    layers = zarr_store.read(tmp_path / "series.zarr")
    assert len(layers) == 2
    for index, (levels, kwargs, _) in enumerate(layers):
        assert kwargs["multiscale"] is True
        np.testing.assert_array_equal(levels[0].compute(), _volume((4, 32, 32), "uint16", index))


# --- bad input ----------------------------------------------------------------------------


def _corrupt(tmp_path: Path, case: str) -> tuple[Path, str]:
    """Break a store; return the path its error must name and the words it must contain."""
    if case == "missing":
        return tmp_path / "nowhere.zarr", "no such file or folder"
    if case == "a file":
        (tmp_path / "flat.zarr").write_bytes(b"PK\x03\x04")
        return tmp_path / "flat.zarr", "is a file"
    if case == "empty folder":
        (tmp_path / "empty.zarr").mkdir()
        return tmp_path / "empty.zarr", "no zarr metadata"
    if case == "attributes only":
        (tmp_path / "attrs.zarr").mkdir()
        (tmp_path / "attrs.zarr" / ".zattrs").write_text("{}")
        return tmp_path / "attrs.zarr", "no zarr metadata"
    store = _ome_image(
        tmp_path / "img.zarr", _volume((4, 32, 32), "uint16"), 2, chunks=(1, 16, 16)
    )
    attrs_file = store / ".zattrs"
    attrs = json.loads(attrs_file.read_text())
    datasets = attrs["multiscales"][0]["datasets"]
    if case == "invalid .zarray":
        (store / "s0" / ".zarray").write_text('{"shape": [4, 32,')
        return store / "s0", ".zarray is not valid JSON"
    if case == "invalid .zattrs":
        attrs_file.write_text("{multiscales")
        return store, ".zattrs is not valid JSON"
    if case == ".zarray without dtype":
        meta = json.loads((store / "s0" / ".zarray").read_text())
        del meta["dtype"]
        (store / "s0" / ".zarray").write_text(json.dumps(meta))
        return store / "s0", "'dtype' is missing"
    if case == "missing dataset":
        datasets[1]["path"] = "gone"
        attrs_file.write_text(json.dumps(attrs))
        return store / "gone", "is missing, though the OME-Zarr multiscales metadata lists it"
    if case == "dataset is a group":
        datasets[1]["path"] = "labels"
        zarr.open_group(store, mode="a").create_group("labels")
        attrs_file.write_text(json.dumps(attrs))
        return store / "labels", "must be an array"
    if case == "wrong axis count":
        attrs["multiscales"][0]["axes"].pop()
        attrs_file.write_text(json.dumps(attrs))
        return store, "lists 2 axes but the data have 3"
    if case == "bad scale":
        datasets[0]["coordinateTransformations"][0]["scale"] = [1.0, "x", 1.0]
        attrs_file.write_text(json.dumps(attrs))
        return store, "is not a list of 3 finite numbers"
    if case == "unknown transformation":
        datasets[0]["coordinateTransformations"].append({"type": "rotation", "rotation": []})
        attrs_file.write_text(json.dumps(attrs))
        return store, "unsupported OME-Zarr coordinate transformation"
    if case == "levels grow":
        datasets.reverse()
        attrs_file.write_text(json.dumps(attrs))
        return store, "is not a downsampled version"
    if case == "no datasets":
        attrs["multiscales"][0]["datasets"] = []
        attrs_file.write_text(json.dumps(attrs))
        return store, "lists no datasets"
    if case == "empty group":
        zarr.open_group(tmp_path / "hollow.zarr", mode="w", zarr_format=3)
        return tmp_path / "hollow.zarr", "holds no image array"
    if case == "only subgroups":
        outer = zarr.open_group(tmp_path / "outer.zarr", mode="w", zarr_format=2)
        outer.create_group("run1").create_array("raw", shape=(4, 4), dtype="u1")
        return tmp_path / "outer.zarr", "open one of its groups instead: run1"
    if case == "plate":
        zarr.open_group(tmp_path / "plate.zarr", mode="w", zarr_format=2).attrs["plate"] = {}
        return tmp_path / "plate.zarr", "is an OME-Zarr plate"
    if case == "1-D array":
        _plain_array(tmp_path / "line.zarr", np.arange(10), (5,), 3)
        return tmp_path / "line.zarr", "napari shows numeric arrays of two or more dimensions"
    raise AssertionError(case)


BAD_CASES = [
    "missing",
    "a file",
    "empty folder",
    "attributes only",
    "invalid .zarray",
    "invalid .zattrs",
    ".zarray without dtype",
    "missing dataset",
    "dataset is a group",
    "wrong axis count",
    "bad scale",
    "unknown transformation",
    "levels grow",
    "no datasets",
    "empty group",
    "only subgroups",
    "plate",
    "1-D array",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gives_a_read_error_naming_path_and_problem(tmp_path, case):
    named, problem = _corrupt(tmp_path, case)
    # Errors about one dataset name it; the others name the store itself.
    target = tmp_path / "img.zarr" if named.parent.name == "img.zarr" else named
    with pytest.raises(ReadError) as excinfo:
        napari_bigvol.read(str(target))
    message = str(excinfo.value)
    assert message.startswith(f"{named}: "), message
    assert problem in message, message


@pytest.mark.parametrize(("dtype", "limits"), [("uint16", (0, 65535)), ("float32", (0, 1))])
def test_a_header_claiming_huge_chunks_is_not_sampled(tmp_path, open_counter, dtype, limits):
    store = _plain_array(tmp_path / "huge.zarr", _volume((4, 64, 64), dtype), (4, 64, 64), 2)
    meta = json.loads((store / ".zarray").read_text())
    meta["chunks"] = [10**6, 10**6, 10**6]  # 2e18 values: decoding one would allocate it
    (store / ".zarray").write_text(json.dumps(meta))
    with open_counter.watch(tmp_path) as opened:
        ((data, kwargs, _),) = zarr_store.read(store)
    assert _only_metadata(opened), sorted(opened)
    assert kwargs["contrast_limits"] == limits
    assert data.shape == (4, 64, 64)


# --- scheduling on a cluster --------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_arrays_survive_a_cloudpickle_round_trip(tmp_path, zarr_format, monkeypatch):
    image = _ome_image(tmp_path / "img.ome.zarr", _volume((6, 32, 32), "uint16"), zarr_format)
    plain = _plain_array(
        tmp_path / "vol.zarr", _volume((6, 32, 32), "float32"), (2, 16, 16), zarr_format
    )
    arrays = [*zarr_store.read(image)[0][0], zarr_store.read(plain)[0][0]]
    # A worker starts elsewhere; the graph must not depend on the working directory.
    monkeypatch.chdir(tmp_path.parent)
    for array in arrays:
        clone = cloudpickle.loads(cloudpickle.dumps(array))
        assert clone.name == array.name
        np.testing.assert_array_equal(clone.compute(), array.compute())


@pytest.mark.slow
def test_levels_compute_on_a_distributed_cluster(tmp_path):
    from distributed import Client, LocalCluster

    reference = _volume((2, 6, 32, 32), "uint16")
    store = _channel_image(tmp_path / "img.ome.zarr", reference, 3, chunks=(1, 2, 16, 16))
    ((levels, _, _),) = zarr_store.read(store)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        results = client.gather(client.compute(levels))
    group = zarr.open_group(store, mode="r")
    for result, path in zip(results, ("s0", "s1", "s2"), strict=True):
        np.testing.assert_array_equal(result, group[path][...])


def test_a_rewritten_store_gets_a_new_dask_name(tmp_path):
    store = _plain_array(tmp_path / "vol.zarr", _volume((2, 8, 8), "uint16"), (1, 8, 8), 3)
    first = zarr_store.read(store)[0][0]
    assert zarr_store.read(store)[0][0].name == first.name  # stable while unchanged
    _plain_array(store, _volume((2, 8, 8), "uint16", seed=1), (1, 8, 8), 3, overwrite=True)
    stat = (store / "zarr.json").stat()
    os.utime(store / "zarr.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = zarr_store.read(store)[0][0]
    # napari's dask cache is keyed by name: a new name means no stale chunks are shown.
    assert second.name != first.name
    np.testing.assert_array_equal(second.compute(), _volume((2, 8, 8), "uint16", seed=1))


# --- a real napari viewer -----------------------------------------------------------------


def test_viewer_open_gives_multiscale_layers_with_the_right_scale(
    make_napari_viewer, tmp_path, open_counter, qtbot
):
    reference = _volume((2, 16, 64, 64), "uint16")
    store = _channel_image(
        tmp_path / "cells.ome.zarr",
        reference,
        2,
        zyx=(3.0, 0.5, 0.5),
        chunks=(1, 1, 32, 32),
        omero=_omero(["DAPI", "GFP"], ["0000FF", "00FF00"], [(0, 3000), (100, 4000)]),
    )
    _add_labels(store, (reference[0] > 4000).astype(np.uint8), 2, {"z": 3.0, "y": 0.5, "x": 0.5})
    viewer = make_napari_viewer()

    with open_counter.watch(tmp_path) as opened:
        layers = viewer.open(str(store), plugin="napari-bigvol")
        qtbot.wait(200)  # let the canvas draw its first frame

    assert [layer.name for layer in layers] == ["DAPI", "GFP", "cells"]
    dapi, gfp, cells = layers
    for layer in layers:
        assert layer.multiscale
        np.testing.assert_allclose(layer.scale, (3.0, 0.5, 0.5))
        assert layer.axis_labels == ("z", "y", "x")
        # The labels were written without units; they take the image's.
        assert [str(unit) for unit in layer.units] == ["micrometer"] * 3
    assert tuple(dapi.contrast_limits) == (0, 3000)
    assert gfp.blending == "additive"
    assert type(cells).__name__ == "Labels"
    np.testing.assert_array_equal(np.asarray(dapi.data[0][5]), reference[0, 5])
    # napari never read the volume for contrast: the only level-0 chunks read belong to
    # the plane on screen.
    z = viewer.dims.current_step[0]
    level0 = {
        p
        for p in opened
        if f"{os.sep}s0{os.sep}" in p
        and "labels" not in p
        and os.path.basename(p) not in METADATA_NAMES
    }
    shown = zarr.open_group(store, mode="r")["s0"]
    allowed = {
        os.path.abspath(os.path.join(store, "s0", shown.metadata.encode_chunk_key((c, z, y, x))))
        for c in range(2)
        for y in range(2)
        for x in range(2)
    }
    assert level0 <= allowed, sorted(level0 - allowed)


# --- metadata details ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "colormap", "window"),
    [
        ({"color": "FF0000", "window": {"start": 1, "end": 9}}, "red", (1.0, 9.0)),
        ({"color": "#12ab34"}, "#12ab34", None),
        ({"color": "000000"}, "gray", None),  # black would show nothing
        ({"color": "not a colour", "window": {"start": 5, "end": 5}}, None, (5.0, 6.0)),
        ({"window": {"start": 9, "end": 1}}, None, None),  # reversed: ignored
        ({"window": {"start": "a", "end": 1}}, None, None),
    ],
)
def test_omero_colours_and_windows(channel, colormap, window):
    (display,) = _ngff.channel_displays({"omero": {"channels": [channel]}}, 1)
    assert display.colormap == colormap
    assert display.window == window


def test_greyscale_model_shows_channels_in_grey():
    omero = {"channels": [{"color": "FF0000"}], "rdefs": {"model": "greyscale"}}
    assert _ngff.channel_displays({"omero": omero}, 2)[0].colormap == "gray"
    # A channel omero does not describe is left to napari.
    assert _ngff.channel_displays({"omero": omero}, 2)[1] == _ngff.ChannelDisplay(
        None, None, None, True
    )


@pytest.mark.parametrize(
    ("axes", "names"),
    [
        (None, ("z", "y", "x")),  # NGFF 0.1/0.2: no axes, trailing (t, c, z, y, x)
        (["z", "y", "x"], ("z", "y", "x")),  # NGFF 0.3: bare names
    ],
)
def test_older_ngff_axes(tmp_path, axes, names):
    group = zarr.open_group(tmp_path / "old.zarr", mode="w", zarr_format=2)
    group.create_array("0", shape=(2, 8, 8), dtype="uint8", chunks=(1, 8, 8))[...] = 7
    multiscale = {"version": "0.3", "datasets": [{"path": "0"}]}
    if axes is not None:
        multiscale["axes"] = axes
    group.attrs["multiscales"] = [multiscale]
    ((data, kwargs, _),) = zarr_store.read(tmp_path / "old.zarr")
    assert kwargs["axis_labels"] == names
    assert kwargs["scale"] == (1.0, 1.0, 1.0)
    assert int(data[1, 2, 3].compute()) == 7


def test_labels_with_a_single_channel_axis_drop_it(tmp_path):
    group = zarr.open_group(tmp_path / "lab.zarr", mode="w", zarr_format=3)
    cells = _volume((1, 4, 16, 16), "uint16") % 5
    array = group.create_array(
        "0", shape=cells.shape, dtype=cells.dtype, chunks=(1, 1, 16, 16),
        dimension_names=("c", "z", "y", "x"),
    )  # fmt: skip
    array[...] = cells
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"
    ]
    transforms = [{"type": "scale", "scale": [1.0, 2.0, 1.0, 1.0]}]
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {"axes": axes, "datasets": [{"path": "0", "coordinateTransformations": transforms}]}
        ],
        "image-label": {"version": "0.5"},
    }
    open_ome_zarr(zarr.open_group(tmp_path / "lab.zarr", mode="r"))
    ((data, kwargs, layer_type),) = zarr_store.read(tmp_path / "lab.zarr")
    assert layer_type == "labels"
    assert data.shape == (4, 16, 16)
    assert kwargs["scale"] == (2.0, 1.0, 1.0)
    assert kwargs["axis_labels"] == ("z", "y", "x")
    np.testing.assert_array_equal(data.compute(), cells[0])


# --- damaged stores: every failure a ReadError naming the store (issue 8) -----------------


def _damaged_chunk(tmp_path: Path, zarr_format: int, plane: int, chunk_bytes: bytes) -> Path:
    """A zstd-compressed (4, 8, 8) array, one chunk per plane, with plane ``plane`` damaged."""
    store = _plain_array(
        tmp_path / "vol.zarr", _volume((4, 8, 8), "uint16"), (1, 8, 8), zarr_format,
        compressors="auto",
    )  # fmt: skip
    chunk = store / (f"c/{plane}/0/0" if zarr_format == 3 else f"{plane}.0.0")
    assert chunk.is_file()
    chunk.write_bytes(chunk_bytes)
    return store


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("chunk_bytes", [b"", b"\x28\xb5\x2f\xfd garbage"], ids=["empty", "bad"])
@pytest.mark.parametrize("plane", [2, 0], ids=["contrast_sample_at_open", "plane_read"])
def test_damaged_chunk_is_a_read_error_naming_the_store(tmp_path, zarr_format, chunk_bytes, plane):
    """empty_chunk.zarr raised RuntimeError: Zstd decompression error, unwrapped."""
    store = _damaged_chunk(tmp_path, zarr_format, plane, chunk_bytes)

    # Open samples the centre chunk (plane 2) for contrast limits; other planes are read
    # by dask when napari shows them.
    with pytest.raises(ReadError, match=r"vol\.zarr.*a chunk file is damaged") as caught:
        _open_then_read(store, plane)
    assert caught.value.__cause__ is not None


def _open_then_read(store: Path, plane: int) -> None:
    [(data, _, _)] = zarr_store.read(store)
    assert plane != 2, "the damaged contrast sample must fail at open"
    np.testing.assert_array_equal(np.asarray(data[1]), _volume((4, 8, 8), "uint16")[1])
    np.asarray(data[plane])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zero_chunks_in_metadata_is_a_read_error(tmp_path, zarr_format):
    """chunks0.zarr raised ZeroDivisionError."""
    store = _plain_array(tmp_path / "c.zarr", _volume((4, 8, 8), "uint16"), (1, 8, 8), zarr_format)
    name = "zarr.json" if zarr_format == 3 else ".zarray"
    meta = json.loads((store / name).read_text())
    if zarr_format == 3:
        meta["chunk_grid"]["configuration"]["chunk_shape"] = [0, 8, 8]
    else:
        meta["chunks"] = [0, 8, 8]
    (store / name).write_text(json.dumps(meta))

    with pytest.raises(ReadError, match=r"c\.zarr: invalid zarr metadata"):
        zarr_store.read(store)


def test_huge_shape_in_metadata_is_refused_before_dask_lists_its_chunks(tmp_path):
    store = _plain_array(tmp_path / "h.zarr", _volume((4, 8, 8), "uint16"), (1, 8, 8), 3)
    meta = json.loads((store / "zarr.json").read_text())
    meta["shape"] = [2**62, 8, 8]
    (store / "zarr.json").write_text(json.dumps(meta))

    with pytest.raises(ReadError, match=r"h\.zarr: invalid zarr metadata: shape"):
        zarr_store.read(store)


def test_attributes_that_are_not_an_object_are_a_read_error(tmp_path):
    store = _plain_array(tmp_path / "a.zarr", _volume((4, 8, 8), "uint16"), (1, 8, 8), 3)
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"] = []
    (store / "zarr.json").write_text(json.dumps(meta))

    with pytest.raises(ReadError, match=r"a\.zarr: invalid zarr metadata: the attributes"):
        zarr_store.read(store)


@pytest.mark.parametrize("where", ["dataset", "multiscale"])
def test_coordinate_transformations_that_are_not_a_list_are_a_read_error(tmp_path, where):
    """ct_int.ome.zarr (coordinateTransformations: 5) raised TypeError."""
    store = _ome_image(tmp_path / "ct_int.ome.zarr", _volume((4, 8, 8), "uint16"), 2)
    attrs = json.loads((store / ".zattrs").read_text())
    multiscale = attrs["multiscales"][0]
    owner = multiscale["datasets"][0] if where == "dataset" else multiscale
    owner["coordinateTransformations"] = 5
    (store / ".zattrs").write_text(json.dumps(attrs))

    with pytest.raises(ReadError, match=r"ct_int\.ome\.zarr: .*coordinateTransformations are"):
        zarr_store.read(store)


# --- chunk files read directly (issue 9) --------------------------------------------------

V2_SLASH = {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
#: Layouts read straight from their chunk files (napari_bigvol.io._zarr_chunks).
DIRECT_LAYOUTS = {
    "v2-slash-zstd": {"zarr_format": 2, **V2_SLASH},
    "v2-dot-blosc": {"zarr_format": 2, "compressors": numcodecs.Blosc(cname="lz4")},
    "v2-slash-raw": {"zarr_format": 2, "compressors": None, **V2_SLASH},
    "v3-zstd": {"zarr_format": 3},
    "v3-blosc-bitshuffle": {
        "zarr_format": 3,
        "compressors": BloscCodec(cname="zstd", shuffle="bitshuffle"),
    },
    "v3-gzip-v2-keys": {
        "zarr_format": 3,
        "compressors": GzipCodec(),
        "chunk_key_encoding": {"name": "v2", "separator": "."},
    },
    "v3-raw": {"zarr_format": 3, "compressors": None},
}
#: Layouts left to zarr.
ZARR_LAYOUTS = {
    "v2-F-order": {"zarr_format": 2, "order": "F"},
    "v2-delta-filter": {"zarr_format": 2, "filters": [numcodecs.Delta(dtype="<u2")]},
    "v3-sharded": {"zarr_format": 3, "shards": (16, 32, 32)},
    "v3-transposed": {"zarr_format": 3, "filters": [TransposeCodec(order=(2, 1, 0))]},
    "v3-checksummed": {"zarr_format": 3, "compressors": [ZstdCodec(), Crc32cCodec()]},
}
#: An XY, an XZ and a YZ plane of a (21, 45, 38) volume.
PLANES = {
    "xy": (7, slice(None), slice(None)),
    "xz": (slice(None), 20, slice(None)),
    "yz": (slice(None), slice(None), 30),
}


def _sources(data: da.Array) -> list[Any]:
    return [getattr(v, "array", v) for v in dict(data.__dask_graph__()).values()]


def _partly_written(path: Path, dtype: str, fill_value, **options) -> zarr.Array:
    """A (21, 45, 38) array in (8, 16, 16) chunks, edge chunks cut, some never written."""
    shape = (21, 45, 38)
    array = zarr.create_array(
        path, shape=shape, chunks=(8, 16, 16), dtype=dtype, fill_value=fill_value, **options
    )
    array[:12, 5:40, :] = _volume(shape, dtype)[:12, 5:40, :]  # chunks of z >= 16 stay empty
    return array


@pytest.mark.parametrize("layout", DIRECT_LAYOUTS)
@pytest.mark.parametrize(
    ("dtype", "fill_value"),
    [("uint8", 0), ("uint16", 7), ("int32", -3), ("float32", 2.5), ("int16", None)],
)
def test_plain_layouts_read_directly_agree_with_zarr(tmp_path, layout, dtype, fill_value):
    array = _partly_written(tmp_path / "vol.zarr", dtype, fill_value, **DIRECT_LAYOUTS[layout])
    ((data, _, _),) = zarr_store.read(tmp_path / "vol.zarr")
    assert any(isinstance(source, ChunkedLevel) for source in _sources(data))
    assert data.dtype == array.dtype
    np.testing.assert_array_equal(data.compute(), array[...])
    for name, plane in PLANES.items():
        np.testing.assert_array_equal(data[plane].compute(), array[plane], err_msg=name)


@pytest.mark.parametrize("layout", ZARR_LAYOUTS)
def test_other_layouts_still_read_through_zarr(tmp_path, layout):
    array = _partly_written(tmp_path / "vol.zarr", "uint16", 7, **ZARR_LAYOUTS[layout])
    ((data, _, _),) = zarr_store.read(tmp_path / "vol.zarr")
    assert not any(isinstance(source, ChunkedLevel) for source in _sources(data))
    assert any(isinstance(source, zarr.Array) for source in _sources(data))
    np.testing.assert_array_equal(data.compute(), array[...])
    np.testing.assert_array_equal(data[PLANES["yz"]].compute(), array[PLANES["yz"]])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_py_images_and_labels_read_directly(tmp_path, zarr_format):
    reference = _volume((13, 50, 37), "uint16")
    store = _ome_image(tmp_path / "img.ome.zarr", reference, zarr_format, chunks=(4, 16, 16))
    _add_labels(store, (reference % 5).astype("uint32"), zarr_format, dict.fromkeys("zyx", 1.0))
    (levels, _, _), (labels, _, kind) = zarr_store.read(store)
    assert kind == "labels"
    group = zarr.open_group(store, mode="r")
    arrays = [group[p] for p in ("s0", "s1", "s2")] + [group[f"labels/cells/s{p}"] for p in "012"]
    everywhere = [(3, slice(None), slice(None)), (slice(None), 5, slice(None)), (..., 4)]
    for data, array in zip([*levels, *labels], arrays, strict=True):
        assert any(isinstance(source, ChunkedLevel) for source in _sources(data)), array.path
        np.testing.assert_array_equal(data.compute(), array[...], err_msg=array.path)
        for plane in everywhere:
            np.testing.assert_array_equal(data[plane].compute(), array[plane], err_msg=str(plane))


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("plane", PLANES)
def test_a_plane_along_any_axis_opens_only_its_chunks_once(
    tmp_path, open_counter, zarr_format, plane
):
    reference = _volume((21, 45, 38), "uint16")
    store = _plain_array(tmp_path / "vol.zarr", reference, (8, 16, 16), zarr_format)
    ((data, _, _),) = zarr_store.read(store)
    selection = PLANES[plane]
    with open_counter.watch(tmp_path) as opened:
        values = data[selection].compute()
    np.testing.assert_array_equal(values, reference[selection])
    array = zarr.open_array(store, mode="r")
    crossed = [
        [key // chunk] if isinstance(key, int) else range(-(-size // chunk))
        for key, size, chunk in zip(selection, array.shape, array.chunks, strict=True)
    ]
    expected = {
        os.path.abspath(store / array.metadata.encode_chunk_key(index))
        for index in itertools.product(*crossed)
    }
    assert set(opened) == expected
    assert set(opened.values()) == {1}


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_damaged_chunk_read_directly_names_its_file(tmp_path, zarr_format):
    store = _damaged_chunk(tmp_path, zarr_format, 0, b"\x28\xb5\x2f\xfd garbage")
    [(data, _, _)] = zarr_store.read(store)
    with pytest.raises(ReadError, match="a chunk file is damaged") as caught:
        np.asarray(data[0])
    chunk = store / ("c/0/0/0" if zarr_format == 3 else "0.0.0")
    assert caught.value.path == os.path.normpath(chunk)
    assert caught.value.__cause__ is not None
