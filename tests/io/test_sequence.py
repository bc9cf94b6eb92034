"""Stacks of 2-D images: folders, globs, dropped lists, PNG/JPEG, file grids, bad slices."""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import cloudpickle
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image

import napari_bigvol
from napari_bigvol.errors import ReadError
from napari_bigvol.io import sequence, tiff


def only_layer(path) -> tuple:
    layers = napari_bigvol.read(path)
    assert len(layers) == 1
    return layers[0]


def read_back(files: list[Path]) -> np.ndarray:
    return np.stack([tifffile.imread(f) for f in files])


def slice_files(folder: Path, count: int, prefix: str = "slice_") -> list[Path]:
    return [folder / f"{prefix}{index}.tif" for index in range(count)]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "int32"])
@pytest.mark.parametrize(("count", "shape"), [(12, (24, 32)), (3, (5, 70)), (1, (8, 8))])
def test_folder_matches_tifffile(write_slices, dtype, count, shape):
    folder, _ = write_slices(count, shape, dtype)
    files = slice_files(folder, count)

    data, kwargs, layer_type = only_layer(str(folder))

    assert layer_type == "image"
    expected = read_back(files)
    if count == 1:  # a folder with one file opens that file
        expected = expected[0]
    np.testing.assert_array_equal(np.asarray(data), expected)
    assert data.dtype == np.dtype(dtype)
    assert kwargs["name"] == (folder.name if count > 1 else "slice_0.tif")
    if count > 1:
        assert kwargs["axis_labels"] == ("z", "y", "x")
        assert data.chunks[0] == (1,) * count  # one file per displayed plane
        assert kwargs["metadata"]["bigvol"]["first_file"] == str(files[0])
    if dtype == "uint8":
        assert kwargs["contrast_limits"] == (0, 255)
    else:
        plane = expected[tiff.initial_plane_index(expected.shape)]
        assert kwargs["contrast_limits"] == (float(plane.min()), float(plane.max()))


def test_natural_order(write_slices):
    folder, stack = write_slices(15)  # slice_0 ... slice_14, not zero-padded

    data, _, _ = only_layer(str(folder))

    # Lexical order would put slice_10 right after slice_1.
    np.testing.assert_array_equal(np.asarray(data), stack)


def test_glob(write_slices):
    folder, stack = write_slices(12)
    (folder / "notes.txt").write_text("not an image")
    tifffile.imwrite(folder / "other_0.tif", np.zeros((24, 32), np.uint16))

    data, kwargs, _ = only_layer(str(folder / "slice_*.tif"))

    np.testing.assert_array_equal(np.asarray(data), stack)
    assert kwargs["name"] == "slice"  # the files' common stem, not the pattern


def test_list_of_dropped_files_is_naturally_sorted(write_slices):
    folder, stack = write_slices(12)
    dropped = [str(folder / f"slice_{i}.tif") for i in (10, 2, 7, 1)]

    data, kwargs, _ = only_layer(dropped)

    np.testing.assert_array_equal(np.asarray(data), stack[[1, 2, 7, 10]])
    assert kwargs["name"] == "slice"


def test_slice_resolution_tags_set_scale(write_slices):
    folder, _ = write_slices(4, resolution=(20, 20), resolutionunit="CENTIMETER")

    _, kwargs, _ = only_layer(str(folder))

    assert kwargs["scale"] == pytest.approx((0.5, 0.5, 0.5))
    assert kwargs["units"] == ("millimeter",) * 3


def test_rgb_tiff_slices(write_slices):
    folder, stack = write_slices(5, (9, 11, 3), "uint8", photometric="rgb")

    data, kwargs, _ = only_layer(str(folder))

    assert kwargs["rgb"] is True
    assert kwargs["axis_labels"] == ("z", "y", "x")
    np.testing.assert_array_equal(np.asarray(data), stack)


def test_folder_of_z_stacks_stacks_along_t(tmp_path, values):
    folder = tmp_path / "timepoints"
    folder.mkdir()
    stack = values(4 * 6, (10, 12), "uint16").reshape(4, 6, 10, 12)
    for t, volume in enumerate(stack):
        tifffile.imwrite(folder / f"t{t}.tif", volume, photometric="minisblack")

    data, kwargs, _ = only_layer(str(folder))

    assert kwargs["axis_labels"] == ("t", "z", "y", "x")
    assert data.chunks[:2] == ((1,) * 4, (1,) * 6)  # one page per displayed plane
    np.testing.assert_array_equal(np.asarray(data), stack)


@pytest.mark.parametrize(
    ("shape", "dtype", "factor"),
    [((20, 30), "uint8", 1), ((20, 30, 3), "uint8", 1), ((20, 30, 4), "uint8", 1),
     ((20, 30), "uint16", 500)],
    ids=["gray8", "rgb", "rgba", "gray16"],
)  # fmt: skip
def test_png_sequence(tmp_path, values, shape, dtype, factor):
    folder = tmp_path / "pngs"
    folder.mkdir()
    array = values(6, shape, dtype) * np.array(factor, dtype=dtype)
    for index, plane in enumerate(array):
        iio.imwrite(folder / f"im{index}.png", plane)

    data, kwargs, _ = only_layer(str(folder))

    expected = np.stack([iio.imread(folder / f"im{i}.png") for i in range(len(array))])
    np.testing.assert_array_equal(np.asarray(data), expected)
    np.testing.assert_array_equal(expected, array)  # lossless round trip
    assert kwargs["rgb"] is (array.ndim == 4)
    assert data.chunks[0] == (1,) * len(array)


def test_jpeg_sequence_matches_pillow(tmp_path, values):
    folder = tmp_path / "jpegs"
    folder.mkdir()
    for index, plane in enumerate(values(4, (16, 16, 3), "uint8")):
        iio.imwrite(folder / f"frame_{index}.jpg", plane)

    data, kwargs, _ = only_layer(str(folder / "frame_*.jpg"))

    expected = np.stack([np.asarray(Image.open(folder / f"frame_{i}.jpg")) for i in range(4)])
    np.testing.assert_array_equal(np.asarray(data), expected)
    assert kwargs["rgb"] is True


def test_palette_png_decodes_to_rgb(tmp_path, values):
    path = tmp_path / "palette.png"
    Image.fromarray(values(1, (12, 12, 3), "uint8")[0]).convert("P").save(path)

    data, kwargs, _ = only_layer(str(path))

    assert kwargs["rgb"] is True
    np.testing.assert_array_equal(np.asarray(data), np.asarray(Image.open(path).convert("RGB")))


@pytest.mark.parametrize("name", ["ihc.png", "astronaut.png"])
def test_skimage_rgb_png(skimage_data, name):
    path = skimage_data / name

    data, kwargs, _ = only_layer(str(path))

    assert kwargs["rgb"] is True
    assert data.shape == (512, 512, 3)
    np.testing.assert_array_equal(np.asarray(data), iio.imread(path))


def test_mixed_folder_opens_the_most_common_format(write_slices):
    folder, stack = write_slices(5)
    iio.imwrite(folder / "preview.png", np.zeros((4, 4), np.uint8))

    data, kwargs, _ = only_layer(str(folder))

    np.testing.assert_array_equal(np.asarray(data), stack)
    assert kwargs["metadata"]["bigvol"]["skipped"] == [str(folder / "preview.png")]


# --- light-sheet file grids --------------------------------------------------------------


def write_lightsheet(folder: Path, stacks: int, channels: dict[int, int], z: int = 4) -> dict:
    """Files named like the dask blog's light-sheet data, each a (z, y, x) stack."""
    folder.mkdir(exist_ok=True)
    volumes = {}
    for stack in range(stacks):
        for channel, wavelength in channels.items():
            volume = (
                np.arange(z * 80, dtype=np.uint16).reshape(z, 8, 10) + 1000 * channel + 100 * stack
            )
            name = (
                f"ex6-2_CamA_ch{channel}_CAM1_stack{stack:04d}_{wavelength}nm_"
                f"{stack * 43748:07d}msec_0001291795msecAbs_000x_000y_000z_0000t.tif"
            )
            tifffile.imwrite(folder / name, volume, photometric="minisblack")
            volumes[stack, channel] = volume
    return volumes


def test_channel_stack_grid_becomes_t_c_z_y_x(tmp_path):
    volumes = write_lightsheet(tmp_path / "raw", stacks=3, channels={0: 488, 1: 560})

    data, kwargs, _ = only_layer(str(tmp_path / "raw"))

    assert data.shape == (3, 2, 4, 8, 10)
    assert kwargs["channel_axis"] == 1
    assert kwargs["axis_labels"] == ("t", "z", "y", "x")
    assert kwargs["name"] == ["raw ch0 488nm", "raw ch1 560nm"]
    for (stack, channel), volume in volumes.items():
        np.testing.assert_array_equal(np.asarray(data[stack, channel]), volume)
    assert data.chunks[2] == (1,) * 4  # a displayed plane is one page of one file


def test_channels_only_grid(tmp_path):
    volumes = write_lightsheet(tmp_path / "raw", stacks=1, channels={1: 560, 2: 642, 3: 700})

    data, kwargs, _ = only_layer(str(tmp_path / "raw"))

    assert data.shape == (3, 4, 8, 10)
    assert kwargs["channel_axis"] == 0
    assert kwargs["axis_labels"] == ("z", "y", "x")
    np.testing.assert_array_equal(np.asarray(data[2]), volumes[0, 3])


def test_stacks_only_grid_is_time(tmp_path):
    volumes = write_lightsheet(tmp_path / "raw", stacks=12, channels={1: 560})

    data, kwargs, _ = only_layer(str(tmp_path / "raw"))

    assert data.shape == (12, 4, 8, 10)
    assert "channel_axis" not in kwargs
    assert kwargs["axis_labels"] == ("t", "z", "y", "x")
    np.testing.assert_array_equal(np.asarray(data[10]), volumes[10, 1])


def test_incomplete_grid_falls_back_to_a_plain_stack(tmp_path):
    write_lightsheet(tmp_path / "raw", stacks=3, channels={0: 488, 1: 560})
    missing = next((tmp_path / "raw").glob("*ch1*stack0002*"))
    missing.unlink()

    data, kwargs, _ = only_layer(str(tmp_path / "raw"))

    assert data.shape == (5, 4, 8, 10)
    assert "channel_axis" not in kwargs


def test_parse_grid_rejects_names_without_tokens():
    assert sequence.parse_grid(["a_1.tif", "a_2.tif"]) is None
    assert sequence.parse_grid(["x_ch1_a.tif", "x_ch1_b.tif"]) is None  # repeated pair
    assert sequence.parse_grid(["x_ch1.tif", "x_stack1.tif"]) is None  # different tokens


def test_grid_plane_opens_one_file(tmp_path, open_counter):
    write_lightsheet(tmp_path / "raw", stacks=3, channels={0: 488, 1: 560})
    data, _, _ = only_layer(str(tmp_path / "raw"))
    target = next((tmp_path / "raw").glob("*ch1*stack0002*"))

    with open_counter.watch(tmp_path) as opened:
        data[2, 1, 3].compute()

    assert opened == {str(target): 1}


# --- laziness and distribution --------------------------------------------------------


def test_opening_50_uint8_slices_opens_only_the_first(write_slices, open_counter):
    folder, _ = write_slices(50, (16, 16), "uint8")

    with open_counter.watch(folder) as opened:
        data, _, _ = only_layer(str(folder))

    assert opened == {str(folder / "slice_0.tif"): 1}
    assert data.shape == (50, 16, 16)


def test_opening_50_uint16_slices_adds_only_the_displayed_plane(write_slices, open_counter):
    folder, _ = write_slices(50, (16, 16), "uint16")

    with open_counter.watch(folder) as opened:
        only_layer(str(folder))

    # The header of the first file, and the plane napari shows first (24) for contrast.
    assert opened == {str(folder / "slice_0.tif"): 1, str(folder / "slice_24.tif"): 1}


@pytest.mark.parametrize("plane", [0, 13, 49])
def test_computing_plane_k_opens_exactly_file_k(write_slices, open_counter, plane):
    folder, stack = write_slices(50, (16, 16), "uint16")
    data, _, _ = only_layer(str(folder))

    with open_counter.watch(folder) as opened:
        result = data[plane].compute()

    assert opened == {str(folder / f"slice_{plane}.tif"): 1}
    np.testing.assert_array_equal(result, stack[plane])


def test_png_plane_k_opens_exactly_file_k(tmp_path, open_counter):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index in range(20):
        iio.imwrite(folder / f"p{index}.png", np.full((5, 5), index, np.uint8))

    with open_counter.watch(folder) as opened_at_open:
        data, _, _ = only_layer(str(folder))
    with open_counter.watch(folder) as opened:
        data[7].compute()

    assert opened_at_open == {str(folder / "p0.png"): 1}
    assert opened == {str(folder / "p7.png"): 1}


def test_stack_pickles_for_a_cluster(write_slices):
    folder, stack = write_slices(20)
    data, _, _ = only_layer(str(folder))

    restored = cloudpickle.loads(cloudpickle.dumps(data))

    np.testing.assert_array_equal(restored[11].compute(), stack[11])
    assert restored.name == data.name


def test_keys_are_deterministic_and_change_with_the_first_file(write_slices):
    folder, _ = write_slices(6)
    first, _, _ = only_layer(str(folder))
    again, _, _ = only_layer(str(folder))
    assert first.name == again.name

    os.utime(folder / "slice_0.tif", ns=(10**18, 10**18))
    touched, _, _ = only_layer(str(folder))
    assert touched.name != first.name


# --- bad input ---------------------------------------------------------------------------


def test_nonexistent_path(tmp_path):
    with pytest.raises(ReadError, match=r"missing\.tif: no such file or folder"):
        napari_bigvol.read(str(tmp_path / "missing.tif"))
    with pytest.raises(ReadError, match="no such file or folder"):
        sequence.read(str(tmp_path / "missing"))


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReadError, match=r"empty: the folder holds no image files"):
        sequence.read(str(tmp_path / "empty"))


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(ReadError, match=r"nothing_\*\.tif: the pattern matches no files"):
        napari_bigvol.read(str(tmp_path / "nothing_*.tif"))


def test_list_with_a_folder(write_slices):
    folder, _ = write_slices(3)
    with pytest.raises(ReadError, match="not a file"):
        sequence.read([str(folder / "slice_0.tif"), str(folder)])


@pytest.mark.parametrize(
    ("bad_plane", "problem"),
    [
        (np.zeros((24, 31), np.uint16), r"shape \(24, 31\) and dtype uint16"),
        (np.zeros((24, 32), np.float32), r"shape \(24, 32\) and dtype float32"),
        (np.zeros((2, 24, 32), np.uint16), r"holds 2 plane\(s\)"),
    ],
    ids=["shape", "dtype", "pages"],
)
def test_mismatched_slice_is_named_when_read(write_slices, bad_plane, problem):
    folder, stack = write_slices(12)
    bad = folder / "slice_9.tif"
    tifffile.imwrite(bad, bad_plane, photometric="minisblack")

    data, _, _ = only_layer(str(folder))  # opening checks only the first file (and plane 5)
    np.testing.assert_array_equal(data[8].compute(), stack[8])

    with pytest.raises(ReadError) as raised:
        data[9].compute()
    message = str(raised.value)
    assert message.startswith(f"{bad}: this slice ")
    assert re.search(problem, message)
    assert "slice_0.tif (the first file)" in message
    assert "shape (24, 32) and dtype uint16" in message


def test_mismatched_displayed_slice_fails_at_open(write_slices):
    folder, _ = write_slices(12)
    tifffile.imwrite(folder / "slice_5.tif", np.zeros((3, 3), np.uint16))

    with pytest.raises(ReadError, match=r"slice_5\.tif: this slice holds 1 plane\(s\) of shape"):
        napari_bigvol.read(str(folder))


def test_corrupt_slice_is_named_when_read(write_slices):
    folder, _ = write_slices(12)
    (folder / "slice_2.tif").write_bytes(b"\x00" * 64)
    data, _, _ = only_layer(str(folder))

    with pytest.raises(ReadError, match=r"slice_2\.tif: not a readable TIFF file"):
        data[2].compute()


def test_slice_deleted_after_open(write_slices):
    folder, _ = write_slices(6)
    data, _, _ = only_layer(str(folder))
    (folder / "slice_4.tif").unlink()

    with pytest.raises(
        ReadError, match=r"slice_4\.tif: the file has disappeared since the stack was opened"
    ):
        data[4].compute()


def test_mismatched_png_slice(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index in range(4):
        iio.imwrite(folder / f"p{index}.png", np.zeros((6, 6), np.uint8))
    iio.imwrite(folder / "p3.png", np.zeros((6, 6, 3), np.uint8))
    data, _, _ = only_layer(str(folder))

    with pytest.raises(ReadError, match=r"p3\.png: this slice has shape \(6, 6, 3\)"):
        data[3].compute()


def test_corrupt_png(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    with pytest.raises(ReadError, match=r"broken\.png: not a readable image"):
        napari_bigvol.read(str(path))


def test_png_header_claiming_a_huge_image_is_refused(tmp_path):
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)  # 10 gigapixels
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))

    with pytest.raises(ReadError, match=r"bomb\.png: not a readable image file .*exceeds limit"):
        napari_bigvol.read(str(path))


# --- accepts -----------------------------------------------------------------------------


def test_accepts(write_slices, tmp_path):
    folder, _ = write_slices(3)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    assert sequence.accepts(str(folder))
    assert sequence.accepts(str(folder / "slice_1.tif"))
    assert sequence.accepts(str(folder / "slice_*.tif"))
    assert sequence.accepts(str(folder / "slice_*"))
    assert sequence.accepts("/nowhere/scan.PNG")  # names only: no check that it exists
    assert not sequence.accepts(str(tmp_path / "text"))
    assert not sequence.accepts(str(tmp_path / "text" / "*"))
    assert not sequence.accepts("/nowhere/volume.nii.gz")
    assert not sequence.accepts("\x00bad")
