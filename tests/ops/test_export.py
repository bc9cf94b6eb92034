"""OME-Zarr export: exact round trips, valid NGFF, independent readers, one-pass pyramid."""

from __future__ import annotations

import os
import threading
from collections import Counter

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr_models import open_ome_zarr
from ome_zarr_models.v04.image import Image as ImageV04
from ome_zarr_models.v05.image import Image as ImageV05

import napari_bigvol
from napari_bigvol.errors import Cancelled, OperationError
from napari_bigvol.io._planes import stack_planes
from napari_bigvol.ops import export
from napari_bigvol.ops._pyramid import (
    downsample_mean,
    downsample_mode,
    level_factors,
    plan_work,
)
from napari_bigvol.ops.export import export_zarr

IMAGE_MODELS = {2: ImageV04, 3: ImageV05}


def ome_attrs(group: zarr.Group) -> dict:
    attrs = dict(group.attrs)
    return attrs.get("ome", attrs)


def random_volume(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 30, shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize(
    ("shape", "source_chunks", "chunks"),
    [
        ((33, 700, 530), (1, 700, 530), None),  # TIFF-like planes, odd sizes
        ((40, 600, 640), (16, 128, 128), (16, 64, 128)),  # zarr-like blocks, custom chunks
    ],
)
def test_round_trip_is_exact_and_valid(tmp_path, dtype, zarr_format, shape, source_chunks, chunks):
    source = random_volume(shape, dtype)
    target = tmp_path / "out.zarr"
    written = export_zarr(
        da.from_array(source, chunks=source_chunks),
        target,
        chunks=chunks,
        zarr_format=zarr_format,
        scale=(2.0, 0.5, 0.5),
        translate=(10.0, 0.0, -5.0),
        units=("micrometer", "micrometer", "micrometer"),
        name="scan",
    )
    assert written == str(target)
    group = zarr.open_group(target, mode="r")
    model = open_ome_zarr(group, version={2: "0.4", 3: "0.5"}[zarr_format])
    assert isinstance(model, IMAGE_MODELS[zarr_format])
    np.testing.assert_array_equal(group["0"][:], source)
    multiscale = ome_attrs(group)["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["z", "y", "x"]
    assert {a["unit"] for a in multiscale["axes"]} == {"micrometer"}
    level0 = multiscale["datasets"][0]["coordinateTransformations"]
    assert level0[0]["scale"] == [2.0, 0.5, 0.5]
    assert level0[1]["translation"] == [10.0, 0.0, -5.0]
    # Level 1 halves y and x only (z voxel is 4x the in-plane one) and is the rounded mean.
    level1 = group["1"][:]
    assert level1.shape == (shape[0], -(-shape[1] // 2), -(-shape[2] // 2))
    np.testing.assert_array_equal(level1, downsample_mean(source, (1, 2, 2)))
    window = ome_attrs(group)["omero"]["channels"][0]["window"]
    assert window["min"] == pytest.approx(float(source.min()))
    assert window["max"] == pytest.approx(float(source.max()))


def test_pyramid_stops_near_512_and_halves_z_when_isotropic(tmp_path):
    source = da.zeros((300, 2100, 1100), dtype=np.uint8, chunks=(1, 2100, 1100))
    export_zarr(source, tmp_path / "iso.zarr", scale=(1.0, 1.0, 1.0))
    group = zarr.open_group(tmp_path / "iso.zarr", mode="r")
    shapes = [group[str(level)].shape for level in range(len(list(group.array_keys())))]
    assert shapes == [(300, 2100, 1100), (150, 1050, 550), (75, 525, 275), (38, 263, 138)]
    scales = [
        d["coordinateTransformations"][0]["scale"]
        for d in ome_attrs(group)["multiscales"][0]["datasets"]
    ]
    assert scales[-1] == [8.0, 8.0, 8.0]


def test_level_factors_wait_for_near_isotropic_z():
    assert level_factors((200, 4096, 4096), (5.0, 1.0, 1.0), (0, 1, 2)) == [
        (1, 2, 2),
        (1, 2, 2),
        (2, 2, 2),
    ]
    assert level_factors((512, 512), (1.0, 1.0), (0, 1)) == []


@pytest.mark.parametrize("itemsize", [1, 2, 4])
def test_work_units_align_with_every_level(itemsize):
    shape, chunks, source_chunks = (500, 3000, 2900), (64, 64, 64), (1, 3000, 2900)
    steps = level_factors(shape, (1.0, 1.0, 1.0), (0, 1, 2))
    plan = plan_work(shape, itemsize, chunks, source_chunks, steps)
    for axis, unit in enumerate(plan.unit):
        assert unit == shape[axis] or unit % source_chunks[axis] == 0
        for factors, level_chunks in zip(plan.cumulative, plan.level_chunks, strict=True):
            if unit < shape[axis]:
                # Each unit maps to whole chunks of each level: no chunk has two writers.
                assert unit % factors[axis] == 0
                assert (unit // factors[axis]) % level_chunks[axis] == 0


def test_downsample_mean_rounds_half_up_in_the_input_dtype():
    block = np.array([[1, 2], [1, 2]], dtype=np.uint8)
    assert downsample_mean(block, (2, 2)).tolist() == [[2]]
    signed = np.array([[-3, -2]], dtype=np.int16)
    assert downsample_mean(signed, (1, 2)).tolist() == [[-2]]
    odd = np.arange(5, dtype=np.uint16).reshape(1, 5)
    assert downsample_mean(odd, (1, 2)).tolist() == [[1, 3, 4]]


def test_downsample_mode_never_invents_labels():
    labels = np.array(
        [[1, 1, 2, 4], [3, 1, 4, 2], [5, 6, 0, 0], [7, 8, 0, 9]],
        dtype=np.uint32,
    )
    result = downsample_mode(labels, (2, 2))
    # Majority wins; a tie goes to the group's first voxel (nearest neighbour).
    assert result.tolist() == [[1, 2], [5, 0]]
    assert result.dtype == np.uint32


def test_one_pass_reads_every_source_plane_once(tmp_path):
    loads: Counter[int] = Counter()
    lock = threading.Lock()
    planes = random_volume((70, 1200, 1100), np.uint16, seed=3)

    def load_plane(index: int) -> np.ndarray:
        with lock:
            loads[index] += 1
        return planes[index]

    source = stack_planes(load_plane, 70, (1200, 1100), np.uint16)
    export_zarr(source, tmp_path / "once.zarr", scale=(1.0, 1.0, 1.0))
    group = zarr.open_group(tmp_path / "once.zarr", mode="r")
    assert len(list(group.array_keys())) == 3  # the pyramid was written...
    assert loads == Counter(range(70))  # ...from a single read of each plane
    np.testing.assert_array_equal(
        group["2"][:], downsample_mean(downsample_mean(planes, (2, 2, 2)), (2, 2, 2))
    )


def write_slices(folder, planes: np.ndarray, **options) -> None:
    folder.mkdir()
    for index, plane in enumerate(planes):
        tifffile.imwrite(folder / f"slice_{index}.tif", plane, **options)


def test_one_pass_opens_each_single_strip_tiff_as_often_as_one_plane_read(tmp_path, open_counter):
    folder = tmp_path / "slices"
    planes = random_volume((40, 1100, 600), np.uint8, seed=4)
    write_slices(folder, planes, compression="zlib", rowsperstrip=1100)  # one strip
    ((source, _, _),) = napari_bigvol.read(str(folder))
    with open_counter.watch(folder) as opened:
        np.asarray(source[7])
    opens_per_plane = opened[str(folder / "slice_7.tif")]
    assert opens_per_plane >= 1
    with open_counter.watch(folder) as opened:
        export_zarr(source, tmp_path / "tiffs.zarr", scale=(1.0, 1.0, 1.0))
    assert len(list(zarr.open_group(tmp_path / "tiffs.zarr", mode="r").array_keys())) == 3
    assert opened == {str(folder / f"slice_{i}.tif"): opens_per_plane for i in range(40)}
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "tiffs.zarr" / "0")[:], planes)


def test_one_pass_reads_uncompressed_tiffs_by_rows(tmp_path, open_counter):
    # Uncompressed slices read any run of rows, so a work unit need not hold whole slices.
    # Here it is 64 planes x 128 rows (8 MiB): whole chunks of both levels (level 1 halves
    # each axis), against 64 whole slices (64 MiB) for compressed ones.
    folder = tmp_path / "slices"
    planes = random_volume((64, 1024, 512), np.uint16, seed=4)
    write_slices(folder, planes)
    layers = napari_bigvol.read(str(folder))
    assert layers[0][0].read_chunks == (1, 1, 512)
    with open_counter.watch(folder) as opened:
        export.export_layers(tmp_path / "rows.zarr", layers)
    # Eight units of 128 rows: each slice is opened once a unit, for its rows alone.
    assert opened == {str(folder / f"slice_{i}.tif"): 8 for i in range(64)}
    group = zarr.open_group(tmp_path / "rows.zarr", mode="r")
    np.testing.assert_array_equal(group["0"][:], planes)
    np.testing.assert_array_equal(group["1"][:], downsample_mean(planes, (2, 2, 2)))
    assert group["1"].chunks == (32, 64, 64)


def test_rgb_becomes_a_channel_axis(tmp_path, skimage_data):
    from skimage.io import imread

    rgb = imread(skimage_data / "astronaut.png")
    export_zarr(rgb, tmp_path / "rgb.zarr", rgb=True, name="astronaut")
    group = zarr.open_group(tmp_path / "rgb.zarr", mode="r")
    attrs = ome_attrs(group)
    assert [a["name"] for a in attrs["multiscales"][0]["axes"]] == ["c", "y", "x"]
    channels = attrs["omero"]["channels"]
    assert [c["label"] for c in channels] == ["red", "green", "blue"]
    assert [c["color"] for c in channels] == ["FF0000", "00FF00", "0000FF"]
    np.testing.assert_array_equal(np.moveaxis(group["0"][:], 0, -1), rgb)
    open_ome_zarr(group, version="0.4")


def test_multichannel_opens_in_napari_ome_zarr_with_names_and_scale(tmp_path):
    from napari_ome_zarr._reader import napari_get_reader

    source = random_volume((2, 20, 300, 260), np.uint16, seed=5)
    path = str(tmp_path / "two.ome.zarr")
    export_zarr(
        source,
        path,
        channel_axis=0,
        channel_names=["dapi", "gfp"],
        channel_colors=["blue", "#00ff00"],
        scale=(3.0, 0.25, 0.25),
        units="micrometer",
        pyramid=False,
    )
    ((levels, meta, layer_type),) = napari_get_reader(path)(path)
    assert layer_type == "image"
    assert meta["channel_axis"] == 0
    assert meta["name"] == ["dapi", "gfp"] or [n.split(": ")[-1] for n in meta["name"]] == [
        "dapi",
        "gfp",
    ]
    assert list(meta["scale"]) == [3.0, 0.25, 0.25]
    np.testing.assert_array_equal(np.asarray(levels[0]), source)
    channels = ome_attrs(zarr.open_group(path, mode="r"))["omero"]["channels"]
    assert [c["color"] for c in channels] == ["0000FF", "00FF00"]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_labels_alone_write_an_image_and_ngff_labels(tmp_path, zarr_format):
    from napari_ome_zarr._reader import napari_get_reader

    labels = np.zeros((30, 700, 600), dtype=np.uint16)
    labels[5:20, 100:400, 50:300] = 7
    labels[10:12, 0:5, 0:5] = 65000
    path = str(tmp_path / "mask.zarr")
    export_zarr(labels, path, is_labels=True, name="mask", zarr_format=zarr_format)
    group = zarr.open_group(path, mode="r")
    version = {2: "0.4", 3: "0.5"}[zarr_format]
    open_ome_zarr(group, version=version)
    label_image = open_ome_zarr(group["labels/mask"], version=version)
    assert type(label_image).__name__ == "ImageLabel"
    assert ome_attrs(group["labels"])["labels"] == ["mask"]
    for level in group["labels/mask"].array_keys():
        # Downsampled by mode: only labels that exist, never a mean of 0 and 7.
        assert set(np.unique(group["labels/mask"][level][:])) <= {0, 7, 65000}
    np.testing.assert_array_equal(group["labels/mask/0"][:], labels)
    layers = napari_get_reader(path)(path)
    assert [t for _, _, t in layers] == ["image", "labels"]
    np.testing.assert_array_equal(np.asarray(layers[1][0][0]), labels)
    # Our own reader gives back exactly the layer that was saved.
    ((data, kwargs, layer_type),) = napari_bigvol.read(path)
    assert (layer_type, kwargs["name"]) == ("labels", "mask")
    np.testing.assert_array_equal(np.asarray(data[0]), labels)


def test_labels_layer_round_trip_keeps_its_name(tmp_path):
    name = "marker_LPI (100) mask"
    labels = np.zeros((4, 32, 32), np.uint8)
    labels[1:3, 4:20, 4:20] = 3
    path = tmp_path / "marker.ome.zarr"
    export_zarr(labels, path, is_labels=True, name=name, scale=(2.0, 0.5, 0.5))
    ((data, kwargs, layer_type),) = napari_bigvol.read(path)
    assert (layer_type, kwargs["name"]) == ("labels", name)
    assert kwargs["scale"] == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(data), labels)


def test_labels_with_an_image_share_the_store(tmp_path):
    image = random_volume((10, 300, 300), np.uint8)
    mask = (image > 128).astype(np.uint8)
    export_zarr(image, tmp_path / "both.zarr", labels=[mask], scale=(2.0, 1.0, 1.0))
    group = zarr.open_group(tmp_path / "both.zarr", mode="r")
    np.testing.assert_array_equal(group["0"][:], image)
    np.testing.assert_array_equal(group["labels/labels/0"][:], mask)
    scale = ome_attrs(group["labels/labels"])["multiscales"][0]["datasets"][0]
    assert scale["coordinateTransformations"][0]["scale"] == [2.0, 1.0, 1.0]


def test_labels_must_be_integers_and_match_the_image(tmp_path):
    with pytest.raises(OperationError, match="labels must be integers"):
        export_zarr(np.zeros((4, 4), np.float32), tmp_path / "a.zarr", is_labels=True)
    with pytest.raises(OperationError, match="must match their image"):
        export_zarr(
            np.zeros((4, 8, 8), np.uint8),
            tmp_path / "b.zarr",
            labels=[np.zeros((4, 8, 9), np.uint8)],
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_reopens_as_multiscale_through_our_reader(tmp_path, zarr_format):
    source = random_volume((12, 1100, 900), np.uint16, seed=9)
    path = tmp_path / "ours.ome.zarr"
    export_zarr(
        source,
        path,
        scale=(4.0, 1.0, 1.0),
        units="micrometer",
        zarr_format=zarr_format,
        name="brain",
    )
    ((levels, kwargs, layer_type),) = napari_bigvol.read(str(path))
    assert layer_type == "image"
    assert kwargs["multiscale"] is True
    assert [level.shape for level in levels] == [(12, 1100, 900), (12, 550, 450), (12, 275, 225)]
    np.testing.assert_array_equal(np.asarray(levels[0]), source)
    assert list(kwargs["scale"]) == [4.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("compressor", "expected"), [("zstd", "zstd"), ("lz4", "lz4"), (None, None)]
)
def test_compressors(tmp_path, compressor, expected):
    source = random_volume((4, 64, 64), np.uint8)
    export_zarr(source, tmp_path / "c.zarr", compressor=compressor, pyramid=False)
    array = zarr.open_array(tmp_path / "c.zarr" / "0", mode="r")
    codec = array.metadata.compressor
    assert (codec.cname if codec else None) == expected
    np.testing.assert_array_equal(array[:], source)


def test_sharding_writes_one_shard_per_unit(tmp_path):
    # Whole-plane source chunks (a TIFF folder) make each work unit 32 whole planes:
    # 64 chunks of 32 x 64 x 64, which sharding packs into one file per unit.
    source = random_volume((64, 512, 512), np.uint8)
    units = []
    export_zarr(
        da.from_array(source, chunks=(1, 512, 512)),
        tmp_path / "s.zarr",
        zarr_format=3,
        sharding=True,
        chunks=(32, 64, 64),
        progress=lambda done, total: units.append((done, total)),
    )
    level = tmp_path / "s.zarr" / "0"
    array = zarr.open_array(level, mode="r")
    assert (array.chunks, array.shards) == ((32, 64, 64), (32, 512, 512))
    shard_files = sorted(p.relative_to(level).as_posix() for p in level.rglob("*") if p.is_file())
    assert shard_files == ["c/0/0/0", "c/1/0/0", "zarr.json"]
    done, total = units[-1]
    assert done == total
    np.testing.assert_array_equal(array[:], source)


def test_progress_reports_every_unit_and_cancel_leaves_nothing(tmp_path):
    source = da.from_array(random_volume((64, 256, 256), np.uint8), chunks=(8, 256, 256))
    reports = []
    export_zarr(
        source,
        tmp_path / "p.zarr",
        chunks=(8, 64, 64),
        progress=lambda d, t: reports.append((d, t)),
    )
    total = reports[-1][1]
    assert [d for d, _ in reports] == list(range(1, total + 1))

    with pytest.raises(Cancelled):
        export_zarr(
            source, tmp_path / "cancelled.zarr", chunks=(8, 64, 64), should_stop=lambda: True
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.zarr"]


def chunk_files(opened: Counter[str]) -> int:
    """How many chunk files were opened (a chunk is written once): all but metadata."""
    return sum(1 for path in opened if not os.path.basename(path).startswith("."))


def planes_of(volume: np.ndarray):
    """A lazy plane-per-chunk source (as a TIFF folder gives), read from ``volume``."""
    return stack_planes(lambda index: volume[index], len(volume), volume.shape[1:], volume.dtype)


def test_progress_moves_with_every_chunk_row_written(tmp_path, monkeypatch):
    # 8 units of 8 planes; each unit is 8 rows of 8 chunks, one row per piece.
    monkeypatch.setattr(export, "PIECE_BYTES", 0)
    volume = random_volume((64, 512, 512), np.uint16)
    reports = []
    export_zarr(
        planes_of(volume),
        tmp_path / "rows.zarr",
        chunks=(8, 64, 64),
        pyramid=False,
        progress=lambda done, total: reports.append((done, total)),
    )
    total = reports[-1][1]
    assert reports == [(done, total) for done in range(1, total + 1)]
    # The 64 plane reads and 64 rows written at least, not one step per unit (8).
    assert total >= 64 + 64
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "rows.zarr" / "0")[:], volume)


def test_a_cancel_stops_within_a_chunk_row_and_leaves_nothing(tmp_path, monkeypatch, open_counter):
    # 8 units of 8 planes; each unit is 32 rows of 4 chunks (128 chunks), a row a piece.
    monkeypatch.setattr(export, "PIECE_BYTES", 0)
    volume = random_volume((64, 1024, 256), np.uint16)
    out = tmp_path / "out"
    out.mkdir()
    asked_at: list[int] = []  # chunk files written when the cancel was asked for

    with open_counter.watch(out) as opened:

        def progress(done: int, total: int) -> None:
            # Ask at the first report once writing has begun, as a user would mid-export.
            if not asked_at and chunk_files(opened):
                asked_at.append(chunk_files(opened))

        with pytest.raises(Cancelled):
            export_zarr(
                planes_of(volume),
                out / "cancelled.zarr",
                chunks=(8, 32, 64),
                pyramid=False,
                progress=progress,
                should_stop=lambda: bool(asked_at),
            )
    # The report came within a few rows of the first write (the consumer thread may lag
    # the writers), and after it each kernel finished the row it was writing and the
    # one it may have begun before it saw the stop: 4 rows of 4 chunks per kernel at
    # most. Reports per unit and a stop between units let every running kernel finish
    # its unit of 128 chunks.
    rows = min(8, os.cpu_count() or 1) * 4
    assert asked_at[0] <= rows * 4
    assert chunk_files(opened) - asked_at[0] <= rows * 4
    assert list(out.iterdir()) == []  # neither the target nor its temporary sibling


def test_pieces_are_whole_rows_of_chunks_and_whole_shards():
    # A 2000-row unit at the array's edge, in rows of 8 x 64 x 1024 uint16 chunks (1 MiB):
    # 4 rows make a 4 MiB piece. Level 1 stands for a sharded level: one shard, one piece.
    pieces = export._UnitPieces(((8, 64, 64), (8, 2048, 1024)), ((1, 1, 1), (1, 1, 1)), 2)
    assert export.PIECE_BYTES == 4 << 20
    rows = pieces.of_level(0, (8, 2000, 1024))
    assert [(p[1].start, p[1].stop) for p in rows] == [
        (y, min(y + 256, 2000)) for y in range(0, 2000, 256)
    ]
    assert all(p[0] == slice(0, 8) and p[2] == slice(0, 1024) for p in rows)
    assert pieces.of_level(1, (8, 2000, 1024)) == [(slice(0, 8), slice(0, 2000), slice(0, 1024))]
    assert pieces.steps((8, 2000, 1024)) == len(rows) + 1


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"compressor": "gzip"}, "unknown compressor"),
        ({"zarr_format": 4}, "zarr_format must be 2 or 3"),
        ({"sharding": True}, "sharding needs zarr_format=3"),
        ({"chunks": (0, 4, 4)}, "positive"),
        ({"scale": (1.0, 2.0)}, "scale has 2 values"),
        ({"channel_axis": 0, "channel_names": ["a"]}, "1 channel names for 4 channels"),
        ({"nonsense": 1}, "unknown export keyword"),
    ],
)
def test_bad_options_are_refused_before_writing(tmp_path, keywords, message):
    with pytest.raises(OperationError, match=message):
        export_zarr(np.zeros((4, 8, 8), np.uint8), tmp_path / "x.zarr", **keywords)
    assert list(tmp_path.iterdir()) == []


def test_too_many_axes_is_a_clear_error(tmp_path):
    with pytest.raises(OperationError, match="5 non-channel axes"):
        export_zarr(np.zeros((2, 2, 2, 4, 4), np.uint8), tmp_path / "x.zarr", name="big")


@pytest.mark.slow
def test_runs_unchanged_on_a_multiprocess_cluster(tmp_path):
    from distributed import LocalCluster

    from napari_bigvol.ops import compute

    folder = tmp_path / "slices"
    folder.mkdir()
    planes = random_volume((20, 600, 560), np.uint16, seed=11)
    for index, plane in enumerate(planes):
        tifffile.imwrite(folder / f"z{index}.tif", plane)
    ((source, _, _),) = napari_bigvol.read(str(folder))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        compute.set_scheduler(cluster.scheduler_address)
        try:
            export_zarr(
                source, tmp_path / "cluster.zarr", scale=(1.0, 1.0, 1.0), chunks=(4, 64, 64)
            )
        finally:
            compute.set_scheduler(None)
            compute.close_clients()
    group = zarr.open_group(tmp_path / "cluster.zarr", mode="r")
    np.testing.assert_array_equal(group["0"][:], planes)
    np.testing.assert_array_equal(group["1"][:], downsample_mean(planes, (2, 2, 2)))
    open_ome_zarr(group, version="0.4")


def test_time_and_channels_make_a_valid_5d_image(tmp_path):
    from napari_ome_zarr._reader import napari_get_reader

    source = random_volume((3, 2, 10, 600, 80), np.uint8, seed=12)
    path = str(tmp_path / "tczyx.zarr")
    export_zarr(
        source,
        path,
        channel_axis=1,
        units=("second", "um", "um", "um"),
        scale=(5.0, 1.0, 0.5, 0.5),
    )
    group = zarr.open_group(path, mode="r")
    open_ome_zarr(group, version="0.4")
    axes = ome_attrs(group)["multiscales"][0]["axes"]
    assert [(a["name"], a["type"], a.get("unit")) for a in axes] == [
        ("t", "time", "second"),
        ("c", "channel", None),
        ("z", "space", "micrometer"),
        ("y", "space", "micrometer"),
        ("x", "space", "micrometer"),
    ]
    assert group["1"].shape == (3, 2, 10, 300, 40)  # only the plane is halved
    ((levels, meta, _),) = napari_get_reader(path)(path)
    assert meta["channel_axis"] == 1
    np.testing.assert_array_equal(np.asarray(levels[0]), source)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ngff_metadata_is_validated_as_it_is_written(zarr_format):
    import pydantic

    from napari_bigvol.io._ngff import NGFF_WRITERS, Axis, ImageDescription

    writer = NGFF_WRITERS[zarr_format]
    assert (writer.zarr_format, writer.version) == (zarr_format, {2: "0.4", 3: "0.5"}[zarr_format])
    axes = (Axis("z", "space"), Axis("y", "space"), Axis("x", "space"))
    wrong = ImageDescription("a", axes, (1.0, 1.0), (0.0, 0.0), ((1, 1),), "mean")
    with pytest.raises(pydantic.ValidationError):
        writer.image_attributes(wrong, [])
    space_after_time = ImageDescription(
        "a", (Axis("x", "space"), Axis("t", "time")), (1.0, 1.0), (0.0, 0.0), ((1, 1),), "mean"
    )
    with pytest.raises(pydantic.ValidationError):
        writer.image_attributes(space_after_time, [])
