"""Single-file TIFF reading: multi-page, ImageJ hyperstacks, OME-TIFF, RGB, bad files."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import tifffile
from napari.components import ViewerModel

import napari_bigvol
from napari_bigvol.errors import ReadError, ReadWarning
from napari_bigvol.io import tiff


def only_layer(path: Path | str) -> tuple:
    layers = napari_bigvol.read(str(path))
    assert len(layers) == 1
    return layers[0]


def napari_initial_range(data: np.ndarray) -> tuple[float, float]:
    """min/max of the plane napari displays first, computed from the full numpy array."""
    plane = np.asarray(data)[tiff.initial_plane_index(data.shape)]
    return float(plane.min()), float(plane.max())


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
@pytest.mark.parametrize("shape", [(7, 20, 30), (1, 16, 16), (40, 9, 5)])
def test_multipage_matches_tifffile(tmp_path, dtype, shape):
    path = tmp_path / "stack.tif"
    expected = (np.arange(np.prod(shape)).reshape(shape) % 251).astype(dtype)
    tifffile.imwrite(path, expected, photometric="minisblack")

    data, kwargs, layer_type = only_layer(path)

    assert layer_type == "image"
    np.testing.assert_array_equal(np.asarray(data), tifffile.imread(path))
    assert data.dtype == np.dtype(dtype)
    # One dask chunk per page: a displayed plane reads one page.
    assert all(size == 1 for size in data.chunks[0]) or shape[0] == 1
    assert kwargs["axis_labels"][-2:] == ("y", "x")
    assert not kwargs["rgb"]
    if dtype == "uint8":
        assert kwargs["contrast_limits"] == (0, 255)
    else:
        low, high = napari_initial_range(tifffile.imread(path))
        assert kwargs["contrast_limits"] == (low, high if high > low else low + 1)


def test_imagej_hyperstack_axes_spacing_and_channels(tmp_path):
    path = tmp_path / "hyper.tif"
    expected = np.random.default_rng(0).integers(0, 4000, (3, 5, 2, 16, 20), dtype=np.uint16)
    tifffile.imwrite(
        path,
        expected,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "TZCYX", "spacing": 1.5, "unit": "um"},
    )

    data, kwargs, _ = only_layer(path)

    np.testing.assert_array_equal(np.asarray(data), expected)
    assert kwargs["channel_axis"] == 2
    assert kwargs["axis_labels"] == ("t", "z", "y", "x")
    assert kwargs["scale"] == pytest.approx((1.0, 1.5, 0.25, 0.25))
    assert kwargs["units"] == ("pixel", "micrometer", "micrometer", "micrometer")
    assert kwargs["name"] == ["hyper.tif c0", "hyper.tif c1"]
    middle = expected[1, 2, :, :, :]
    assert kwargs["contrast_limits"] == [
        (float(middle[c].min()), float(middle[c].max())) for c in range(2)
    ]


def test_imagej_stack_without_spacing_uses_imagej_default(tmp_path):
    path = tmp_path / "nospacing.tif"
    tifffile.imwrite(
        path, np.zeros((4, 8, 8), np.uint16), imagej=True, resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "unit": "micron"},
    )  # fmt: skip

    _, kwargs, _ = only_layer(path)

    assert kwargs["scale"] == pytest.approx((1.0, 0.5, 0.5))
    assert kwargs["metadata"]["bigvol"]["assumed_z_spacing"] is False


def test_imagej_resolution_without_a_unit_is_uncalibrated(tmp_path):
    # As in ImageJ/Fiji: without a unit there is no calibration, so no scale of 0.5 "pixel".
    path = tmp_path / "nounit.tif"
    tifffile.imwrite(
        path, np.zeros((4, 8, 8), np.uint16), imagej=True, resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "spacing": 3.0},
    )  # fmt: skip

    _, kwargs, _ = only_layer(path)

    assert kwargs["scale"] == (1.0, 1.0, 1.0)
    assert "units" not in kwargs


def test_imagej_contiguous_single_page_layout(tmp_path):
    """ImageJ files over 4 GB (and truncate=True files) describe all planes by one page."""
    path = tmp_path / "contiguous.tif"
    expected = np.arange(9 * 12 * 10, dtype=np.float32).reshape(9, 12, 10)
    tifffile.imwrite(path, expected, imagej=True, truncate=True, metadata={"axes": "ZYX"})
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 1  # the layout under test

    data, kwargs, _ = only_layer(path)

    np.testing.assert_array_equal(np.asarray(data[5]), expected[5])
    np.testing.assert_array_equal(np.asarray(data), expected)
    assert kwargs["axis_labels"] == ("z", "y", "x")


def test_ome_tiff_physical_size_units_and_channel_names(tmp_path):
    path = tmp_path / "cells.ome.tif"
    expected = np.random.default_rng(1).integers(0, 900, (6, 3, 12, 14), dtype=np.uint16)
    tifffile.imwrite(
        path,
        expected,
        ome=True,
        metadata={
            "axes": "ZCYX",
            "PhysicalSizeX": 0.2,
            "PhysicalSizeY": 0.2,
            "PhysicalSizeZ": 0.8,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeYUnit": "nm",
            "PhysicalSizeZUnit": "nm",
            "Channel": {"Name": ["DAPI", "GFP", "RFP"]},
        },
    )

    data, kwargs, _ = only_layer(path)

    np.testing.assert_array_equal(np.asarray(data), tifffile.imread(path))
    assert kwargs["channel_axis"] == 1
    assert kwargs["name"] == [f"cells.ome.tif {c}" for c in ("DAPI", "GFP", "RFP")]
    assert kwargs["scale"] == pytest.approx((0.8, 0.2, 0.2))
    assert kwargs["units"] == ("nanometer",) * 3
    assert kwargs["metadata"]["bigvol"]["channel_names"] == ("DAPI", "GFP", "RFP")


def test_pyramidal_ome_tiff_is_multiscale(tmp_path):
    path = tmp_path / "pyramid.ome.tif"
    base = np.random.default_rng(2).integers(0, 60000, (4, 64, 48), dtype=np.uint16)
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(base, subifds=2, metadata={"axes": "ZYX"})
        writer.write(base[:, ::2, ::2], subfiletype=1)
        writer.write(base[:, ::4, ::4], subfiletype=1)

    levels, kwargs, _ = only_layer(path)

    assert kwargs["multiscale"] is True
    assert [level.shape for level in levels] == [(4, 64, 48), (4, 32, 24), (4, 16, 12)]
    with tifffile.TiffFile(path) as tif:
        for index, level in enumerate(levels):
            np.testing.assert_array_equal(np.asarray(level), tif.series[0].levels[index].asarray())
    # Contrast comes from the smallest level's displayed plane.
    assert kwargs["contrast_limits"] == napari_initial_range(base[:, ::4, ::4])


@pytest.mark.parametrize("samples", [3, 4])
def test_rgb_tiff_opens_as_rgb(tmp_path, samples):
    path = tmp_path / "colour.tif"
    expected = np.random.default_rng(3).integers(0, 255, (5, 10, 12, samples), dtype=np.uint8)
    extra = {"extrasamples": ["unassalpha"]} if samples == 4 else {}
    tifffile.imwrite(path, expected, photometric="rgb", **extra)

    data, kwargs, _ = only_layer(path)

    assert kwargs["rgb"] is True
    assert data.shape == (5, 10, 12, samples)
    assert kwargs["axis_labels"] == ("z", "y", "x")
    assert "contrast_limits" not in kwargs  # napari takes RGB limits from the dtype
    np.testing.assert_array_equal(np.asarray(data), expected)


def test_skimage_multipage_rgb_planar_float(skimage_data):
    """multipage_rgb.tif stores float64 RGB planes with samples first (planar)."""
    path = skimage_data / "multipage_rgb.tif"

    data, kwargs, _ = only_layer(path)

    expected = np.moveaxis(tifffile.imread(path), 1, -1)
    assert kwargs["rgb"] is True
    assert data.shape == expected.shape == (2, 10, 10, 3)
    np.testing.assert_array_equal(np.asarray(data), expected)
    np.testing.assert_array_equal(np.asarray(data[1]), expected[1])


def test_skimage_multipage_ignores_screen_dpi(skimage_data):
    """multipage.tif says 72 dpi: a screen default, not a pixel size."""
    path = skimage_data / "multipage.tif"

    data, kwargs, _ = only_layer(path)

    np.testing.assert_array_equal(np.asarray(data), tifffile.imread(path))
    assert kwargs["scale"] == (1.0, 1.0, 1.0)
    assert "units" not in kwargs
    assert kwargs["contrast_limits"] == (0, 255)


@pytest.mark.parametrize(
    ("resolution", "unit", "pixel_mm"),
    [
        ((10, 10), "CENTIMETER", (1.0, 1.0)),
        ((300, 300), "INCH", (25.4 / 300, 25.4 / 300)),
        ((50, 25), "CENTIMETER", (0.2, 0.4)),
    ],
)
def test_resolution_tags_give_millimetre_scale(tmp_path, resolution, unit, pixel_mm):
    path = tmp_path / "res.tif"
    tifffile.imwrite(
        path, np.zeros((6, 8, 8), np.uint16), photometric="minisblack",
        resolution=resolution, resolutionunit=unit,
    )  # fmt: skip

    _, kwargs, _ = only_layer(path)

    x_mm, y_mm = pixel_mm
    # Plain TIFF tags carry no z spacing: z is assumed isotropic with x, and says so.
    assert kwargs["scale"] == pytest.approx((x_mm, y_mm, x_mm))
    assert kwargs["units"] == ("millimeter",) * 3
    assert kwargs["metadata"]["bigvol"]["assumed_z_spacing"] is True


def test_initial_plane_is_the_one_napari_shows_first():
    """The contrast sample assumes napari starts every slider at (n - 1) // 2."""
    for shape in [(10, 6, 6), (7, 4, 6, 6), (2, 3, 5, 6, 6)]:
        viewer = ViewerModel()
        viewer.add_image(np.zeros(shape, np.uint16), contrast_limits=(0, 1))
        assert viewer.dims.current_step[:-2] == tiff.initial_plane_index(shape)


def test_single_file_pages_open_the_file_once(tmp_path, open_counter):
    path = tmp_path / "pages.tif"
    expected = np.arange(30 * 8 * 8, dtype=np.uint16).reshape(30, 8, 8)
    tifffile.imwrite(path, expected, photometric="minisblack")

    with open_counter.watch(tmp_path) as opened:
        data, _, _ = only_layer(path)
        for index in (3, 17, 29):
            np.testing.assert_array_equal(np.asarray(data[index]), expected[index])

    # The header probe, then one cached handle for every page read (sample and three).
    assert opened == {str(path): 2}


def test_dask_keys_are_deterministic_and_follow_the_file(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 4), np.uint16), photometric="minisblack")
    first, _, _ = only_layer(path)
    again, _, _ = only_layer(path)
    assert first.name == again.name

    tifffile.imwrite(path, np.ones((3, 4, 4), np.uint16), photometric="minisblack")
    os.utime(path, ns=(1, 1))  # a rewrite must change the key even within one clock tick
    rewritten, _, _ = only_layer(path)
    assert rewritten.name != first.name
    np.testing.assert_array_equal(np.asarray(rewritten[1]), np.ones((4, 4)))


# --- bad input -------------------------------------------------------------------------


def test_not_a_tiff(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_bytes(b"this is not a tiff at all" * 4)
    with pytest.raises(ReadError, match=r"fake\.tif: not a readable TIFF"):
        napari_bigvol.read(str(path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tif"
    path.write_bytes(b"")
    with pytest.raises(ReadError, match=r"empty\.tif: not a readable TIFF"):
        napari_bigvol.read(str(path))


def test_truncated_header_page_is_refused_without_reading(tmp_path):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, np.ones((5, 40, 40), np.uint16), photometric="minisblack")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[:300])

    with pytest.raises(ReadError, match=r"cut\.tif: the file is truncated"):
        napari_bigvol.read(str(cut))


def test_truncated_in_the_middle_fails_when_the_missing_plane_is_read(tmp_path):
    full = tmp_path / "full.tif"
    stack = np.arange(9 * 40 * 40, dtype=np.uint16).reshape(9, 40, 40)
    tifffile.imwrite(full, stack, photometric="minisblack")
    cut = tmp_path / "cut.tif"
    # Keep the header, the first three planes and part of the fourth.
    with tifffile.TiffFile(full) as tif:
        keep = tif.pages.first.dataoffsets[0] + 3 * stack[0].nbytes + 100
    cut.write_bytes(full.read_bytes()[:keep])

    with pytest.raises(ReadError, match=r"cut\.tif: .*truncated"):
        # The middle plane (4) is the contrast sample, so opening already fails.
        napari_bigvol.read(str(cut))


def test_claimed_huge_plane_is_refused_before_allocation(tmp_path):
    path = tmp_path / "huge.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.uint16))
    # Make the header claim a 60000 x 60000 uint16 plane (6.7 GiB); the file stays tiny.
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages.first.tags
        for name in ("ImageWidth", "ImageLength"):
            tag = tags[name]
            assert tag.dtype == tifffile.DATATYPE.LONG  # 4 bytes to overwrite
            raw[tag.valueoffset : tag.valueoffset + 4] = struct.pack("<I", 60000)
    path.write_bytes(bytes(raw))

    with pytest.raises(ReadError, match=r"huge\.tif: one plane of shape \(60000, 60000\)"):
        napari_bigvol.read(str(path))


@pytest.mark.parametrize("pages", [1, 3])
def test_uncompressed_page_claiming_more_bytes_than_it_stores_is_refused(tmp_path, pages):
    # Under the plane-size limit (1.6 GiB), but the one strip holds 512 bytes: tifffile
    # would allocate the claimed plane before finding the data missing (found by fuzzing).
    path = tmp_path / "wide.tif"
    tifffile.imwrite(
        path, np.zeros((pages, 16, 16), np.uint16).squeeze(), photometric="minisblack"
    )
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags["ImageWidth"]
        assert tag.dtype == tifffile.DATATYPE.LONG
        raw[tag.valueoffset : tag.valueoffset + 4] = struct.pack("<I", 50_000_000)
    path.write_bytes(bytes(raw))
    with pytest.raises(ReadError, match=r"wide\.tif: .*claims a .* image of \d+ bytes but stores"):
        np.asarray(napari_bigvol.read(str(path))[0][0])


def test_single_file_stack_pickles_for_a_cluster(tmp_path):
    path = tmp_path / "hyper.tif"
    expected = np.arange(2 * 5 * 6 * 7, dtype=np.uint16).reshape(2, 5, 6, 7)
    tifffile.imwrite(path, expected, imagej=True, metadata={"axes": "TZYX"})
    data, _, _ = only_layer(path)
    np.asarray(data[0, 0])  # a handle is now cached in this process; it must not travel

    restored = cloudpickle.loads(cloudpickle.dumps(data))

    np.testing.assert_array_equal(restored[1, 3].compute(), expected[1, 3])


def write_multifile_ome(folder: Path, planes: int) -> np.ndarray:
    """A multi-file OME-TIFF as Micro-Manager writes it: one plane per file, and every
    file's OME-XML describes the whole z-stack, naming the file of each plane."""
    folder.mkdir()
    uuids = [f"urn:uuid:{index:08d}-0000-4000-8000-000000000000" for index in range(planes)]
    tiff_data = "".join(
        f'<TiffData FirstZ="{z}" IFD="0" PlaneCount="1">'
        f'<UUID FileName="plane{z}.ome.tif">{uuids[z]}</UUID></TiffData>'
        for z in range(planes)
    )
    stack = np.arange(planes * 6 * 8, dtype=np.uint16).reshape(planes, 6, 8)
    for z in range(planes):
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" UUID="{uuids[z]}">'
            '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
            f'SizeX="8" SizeY="6" SizeZ="{planes}" SizeC="1" SizeT="1" PhysicalSizeX="0.5" '
            'PhysicalSizeY="0.5" PhysicalSizeZ="2"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
            f"{tiff_data}</Pixels></Image></OME>"
        )
        tifffile.imwrite(folder / f"plane{z}.ome.tif", stack[z], description=xml, metadata=None)
    return stack


@pytest.mark.parametrize("open_as", ["folder", "second_file"])
def test_multifile_ome_tiff_opens_as_one_dataset(tmp_path, open_as):
    stack = write_multifile_ome(tmp_path / "mm", planes=4)
    path = tmp_path / "mm" if open_as == "folder" else tmp_path / "mm" / "plane1.ome.tif"

    data, kwargs, _ = only_layer(path)

    # Not a (4, 4, 6, 8) stack of files that each claim the whole dataset.
    assert data.shape == (4, 6, 8)
    np.testing.assert_array_equal(np.asarray(data), stack)
    assert kwargs["scale"] == pytest.approx((2.0, 0.5, 0.5))
    assert kwargs["units"] == ("micrometer",) * 3


# --- truncated multi-page files and header bombs (issue 8) ------------------------------


def _write_stack(path: Path, kind: str) -> np.ndarray:
    stack = np.arange(8 * 24 * 32, dtype=np.uint16).reshape(8, 24, 32)
    if kind == "zlib":
        tifffile.imwrite(path, stack, compression="zlib")
    elif kind == "ome":
        tifffile.imwrite(path, stack, ome=True, metadata={"axes": "ZYX"})
    elif kind == "imagej":
        tifffile.imwrite(path, stack.reshape(2, 4, 24, 32), imagej=True,
                         metadata={"axes": "TZYX"})  # fmt: skip
    else:
        tifffile.imwrite(path, stack, metadata=None, photometric="minisblack")
    return stack


@pytest.mark.parametrize("kind", ["zlib", "ome", "imagej", "plain"])
def test_truncated_multipage_file_never_opens_as_a_smaller_image(tmp_path, kind):
    """An interrupted copy opened as its first plane, with only tifffile's logger saying so."""
    full = tmp_path / "full.tif"
    stack = _write_stack(full, kind)
    raw = full.read_bytes()
    cut = tmp_path / "cut.tif"
    smaller, unnamed = [], []
    for end in range(64, len(raw), max(len(raw) // 150, 1)):
        cut.write_bytes(raw[:end])
        try:
            layers = napari_bigvol.read(str(cut))
            shapes = [np.asarray(data).shape for data, _, _ in layers]
        except ReadError as error:
            if "cut.tif" not in str(error):
                unnamed.append(str(error))
            continue
        if shapes != [stack.shape if kind != "imagej" else (2, 4, 24, 32)]:
            smaller.append((end, shapes))
    assert not smaller
    assert not unnamed


@pytest.mark.parametrize("kind", ["zlib", "ome", "imagej"])
def test_truncated_stack_names_promised_and_present_planes(tmp_path, kind):
    full = tmp_path / "full.tif"
    _write_stack(full, kind)
    with tifffile.TiffFile(full) as tif:
        third_page = tif.pages[3].offset
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[:third_page])  # pages 0-2; the fourth is cut off

    # tifffile writes the OME-XML after the pixels, so a cut OME-TIFF no longer says 8.
    promise = "" if kind == "ome" else "promises 8 planes but "
    with pytest.raises(ReadError, match=rf"cut\.tif: the file is truncated.*{promise}only 3 "):
        napari_bigvol.read(str(cut))


def test_truncated_plain_stack_says_how_many_planes_are_present(tmp_path):
    full = tmp_path / "full.tif"
    _write_stack(full, "plain")
    with tifffile.TiffFile(full) as tif:
        fifth_page = tif.pages[5].offset
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[:fifth_page])

    with pytest.raises(ReadError, match=r"cut\.tif: the file is truncated: only 5 planes"):
        napari_bigvol.read(str(cut))


def _ome_xml(**changes: str) -> str:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
        'SizeX="32" SizeY="24" SizeZ="8" SizeC="1" SizeT="1" PhysicalSizeX="0.5" '
        'PhysicalSizeY="0.5" PhysicalSizeZ="2.0"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        '<TiffData IFD="0" PlaneCount="8"/></Pixels></Image></OME>'
    )
    for name, value in changes.items():
        xml = re.sub(rf'{name}="[^"]*"', f'{name}="{value}"', xml)
    return xml


def _bomb_process(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a child limited to 1 GiB of address space, as a header bomb test."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
    return subprocess.run(
        [sys.executable, "-c", limit + code], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SizeZ": "500000000"}, r"the OME-XML promises 500000000 planes but only 8 are present"),
        ({"SizeX": "4000000000"}, r"the OME-XML claims planes of 4000000000 x 24 pixels"),
        ({"SizeT": "0"}, r"the OME-XML gives an invalid image size"),
    ],
)
def test_ome_size_bomb_is_refused_before_any_allocation(tmp_path, changes, message):
    """A 23 KB OME-TIFF claiming SizeZ=500000000 drove read() to 16 GB before failing."""
    path = tmp_path / "bomb.ome.tif"
    stack = np.zeros((8, 24, 32), np.uint16)
    tifffile.imwrite(path, stack, description=_ome_xml(**changes), metadata=None)

    result = _bomb_process(
        "import napari_bigvol\n"
        f"try:\n    napari_bigvol.read({str(path)!r})\n"
        "except napari_bigvol.ReadError as error:\n    print(error)\n"
    )

    assert result.returncode == 0, result.stderr
    assert re.search(message, result.stdout), result.stdout
    assert "bomb.ome.tif" in result.stdout


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("ImageJ=1.11a\nimages=500000000\nslices=500000000\n",
         r"the ImageJ header promises 500000000 planes but only 8 are present"),
        ('{"shape": [500000000, 24, 32]}',
         r"the tifffile shape metadata promises 500000000 planes but only 8 are present"),
    ],
)  # fmt: skip
def test_imagej_and_shape_metadata_bombs_are_refused(tmp_path, description, message):
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((8, 24, 32), np.uint16), description=description,
                     metadata=None)  # fmt: skip

    with pytest.raises(ReadError, match=message):
        napari_bigvol.read(str(path))


def _set_tag(path: Path, page: int, name: str, value: int) -> None:
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[page].tags[name]
        size = 2 if tag.dtype == tifffile.DATATYPE.SHORT else 4
        raw[tag.valueoffset : tag.valueoffset + size] = value.to_bytes(size, "little")
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("tag", "value", "message"),
    [
        ("ImageWidth", 2**31 - 1, r"not a readable TIFF file \(incompatible keyframe\)"),
        ("BitsPerSample", 1, r"page 3 claims planes of shape \(24, 32\) and dtype bool"),
    ],
)
def test_later_page_claiming_another_plane_is_refused_not_allocated_or_cast(
    tmp_path, tag, value, message
):
    """ImageWidth=2**31-1 on page 3 asked for 256 GiB; 1-bit samples were cast to uint16."""
    path = tmp_path / "later.tif"
    stack = np.arange(8 * 24 * 32, dtype=np.uint16).reshape(8, 24, 32)
    tifffile.imwrite(path, stack, metadata=None, photometric="minisblack")
    _set_tag(path, 3, tag, value)

    # tifffile refuses some of these itself when it builds the series, others only show
    # when page 3 is decoded; either way a ReadError, nothing allocated, nothing cast.
    with pytest.raises(ReadError, match=r"later\.tif: " + message):
        _read_planes(path, check={2: stack[2]})


@pytest.mark.parametrize("page", [0, 1])
def test_tiled_page_claiming_more_rows_than_its_tiles_is_refused_not_allocated(tmp_path, page):
    """A flipped ImageLength (10,289,184 rows in 4 tiles) made tifffile allocate 942 MiB."""
    path = tmp_path / "tiled.tif"
    rgb = np.arange(2 * 32 * 32 * 3, dtype=np.uint32).reshape(2, 32, 32, 3).astype(np.uint8)
    tifffile.imwrite(path, rgb, tile=(16, 16), compression="zlib", photometric="rgb")
    _set_tag(path, page, "ImageLength", 10_289_184)

    # Page 0 against its own tiles; page 1 against its series' first page as well.
    with pytest.raises(ReadError, match=rf"tiled\.tif: page {page} claims .*10289184"):
        _read_planes(path, check={})


def test_zero_rows_per_strip_still_reads_its_pixels(tmp_path):
    """RowsPerStrip=0 made the strip-count check raise tifffile's own TiffFileError (fuzz).

    The strips themselves are intact and tifffile decodes them, so the plane is read.
    """
    path = tmp_path / "strips.tif"
    plane = np.arange(24 * 32, dtype=np.uint16).reshape(24, 32)
    tifffile.imwrite(path, plane, rowsperstrip=8)
    _set_tag(path, 0, "RowsPerStrip", 0)

    data, _, _ = only_layer(path)
    np.testing.assert_array_equal(np.asarray(data), plane)


def _read_planes(path: Path, check: dict[int, np.ndarray]) -> None:
    """Open ``path``, compare the planes in ``check``, then read every plane."""
    data, _, _ = only_layer(path)
    for index, expected in check.items():
        np.testing.assert_array_equal(np.asarray(data[index]), expected)
    np.asarray(data)


def test_zero_width_is_a_read_error(tmp_path):
    """width0.tif raised ZeroDivisionError."""
    path = tmp_path / "width0.tif"
    tifffile.imwrite(path, np.ones((3, 8, 8), np.uint16), metadata=None,
                     photometric="minisblack")  # fmt: skip
    _set_tag(path, 0, "ImageWidth", 0)

    with pytest.raises(ReadError, match=r"width0\.tif: ") as caught:
        np.asarray(only_layer(path)[0])
    assert caught.value.__cause__ is not None or "no 2-D image" in str(caught.value)


def test_broken_ome_xml_is_a_read_error_with_its_cause(tmp_path):
    path = tmp_path / "broken.ome.tif"
    xml = _ome_xml().replace('SamplesPerPixel="1"/>', 'SamplesPerPixel="1">')  # unclosed
    tifffile.imwrite(path, np.ones((8, 24, 32), np.uint16), description=xml, metadata=None)

    with pytest.raises(ReadError, match=r"broken\.ome\.tif: not a readable TIFF") as caught:
        napari_bigvol.read(str(path))
    assert isinstance(caught.value.__cause__, SyntaxError)  # xml.etree's ParseError


def test_missing_codec_names_the_package_to_install(tmp_path):
    path = tmp_path / "lzw.tif"
    tifffile.imwrite(path, np.ones((2, 8, 8), np.uint16), metadata=None,
                     photometric="minisblack")  # fmt: skip
    _set_tag(path, 0, "Compression", 5)  # LZW: tifffile needs imagecodecs for it
    _set_tag(path, 1, "Compression", 5)
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("imagecodecs is installed, so every codec is available")

    with pytest.raises(ReadError, match=r"lzw\.tif: .*pip install imagecodecs") as caught:
        np.asarray(only_layer(path)[0])
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("changes", "expected_scale"),
    [
        ({"PhysicalSizeX": "nan"}, (2.0, 0.5, 1.0)),
        ({"PhysicalSizeX": "inf"}, (2.0, 0.5, 1.0)),
        ({"PhysicalSizeY": "-1"}, (2.0, 1.0, 0.5)),
        ({"PhysicalSizeZ": "0"}, (0.5, 0.5, 0.5)),  # z taken equal to x, as documented
    ],
)
def test_non_finite_or_non_positive_physical_size_is_unknown_with_a_warning(
    tmp_path, changes, expected_scale
):
    path = tmp_path / "sizes.ome.tif"
    tifffile.imwrite(path, np.ones((8, 24, 32), np.uint16), description=_ome_xml(**changes),
                     metadata=None)  # fmt: skip

    with pytest.warns(ReadWarning, match=r"sizes\.ome\.tif: the voxel size is not a positive"):
        _, kwargs, _ = only_layer(path)

    assert kwargs["scale"] == pytest.approx(expected_scale)


def test_imagej_nan_spacing_is_unknown_with_a_warning(tmp_path):
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, np.ones((4, 8, 8), np.uint16), imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "spacing": float("nan"), "unit": "um"})  # fmt: skip

    with pytest.warns(ReadWarning, match=r"ImageJ Z=nan"):
        _, kwargs, _ = only_layer(path)

    assert all(np.isfinite(kwargs["scale"]))


# --- rows of slices, for work units smaller than a slice -------------------------------


def write_slice_folder(folder: Path, planes: np.ndarray, **options) -> list[str]:
    folder.mkdir()
    files = []
    for index, plane in enumerate(planes):
        files.append(str(folder / f"s{index:02d}.tif"))
        tifffile.imwrite(files[-1], plane, **options)
    return files


def slice_loader(files: list[str]) -> tiff.TiffPlanes:
    """The loader a folder of slices gets, from its first file's header."""
    return tiff.tiff_stack(files, tiff.probe_tiff(files[0])).load_plane


def rows_of(loader: tiff.TiffPlanes, index: int, rows: slice) -> np.ndarray:
    out = np.empty((rows.stop - rows.start, *loader.plane_shape[1:]), loader.dtype)
    loader.read_rows(index, rows, out)
    return out


@pytest.mark.parametrize(
    ("dtype", "options"),
    [
        ("uint16", {}),
        ("uint16", {"byteorder": ">"}),
        ("float32", {"byteorder": ">"}),
        ("uint8", {"photometric": "rgb"}),
        ("int16", {"tile": (16, 48)}),  # full-width tiles in order: still one run
    ],
)
def test_uncompressed_slices_read_rows_alone(tmp_path, dtype, options):
    shape = (3, 48, 48, 3) if options.get("photometric") == "rgb" else (3, 48, 48)
    planes = np.random.default_rng(1).integers(0, 120, shape).astype(dtype)
    loader = slice_loader(write_slice_folder(tmp_path / "slices", planes, **options))
    assert loader.row_block == 1
    for rows in (slice(0, 48), slice(5, 6), slice(17, 48), slice(30, 30)):
        np.testing.assert_array_equal(rows_of(loader, 1, rows), planes[1][rows])
    every_other = np.zeros((24, 96, *planes.shape[3:]), dtype)[:, ::2]  # not one run of memory
    loader.read_rows(2, slice(20, 44), every_other)
    np.testing.assert_array_equal(every_other, planes[2][20:44])


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "zlib", "rowsperstrip": 8},
        {"compression": "zlib", "predictor": True, "rowsperstrip": 8},
        {"compression": "zlib", "photometric": "rgb", "rowsperstrip": 8},
        {"rowsperstrip": 8, "description": "x" * 3000},  # strips apart: not one run
    ],
)
def test_slices_in_strips_read_the_strips_of_their_rows(tmp_path, options):
    shape = (2, 48, 32, 3) if options.get("photometric") == "rgb" else (2, 48, 32)
    planes = np.random.default_rng(5).integers(0, 255, shape).astype(np.uint8)
    files = write_slice_folder(tmp_path / "slices", planes, **options)
    loader = slice_loader(files)
    with tifffile.TiffFile(files[0]) as tif:
        apart = not tif.pages.first.is_contiguous
    assert loader.row_block == (8 if apart or "compression" in options else 1)
    for rows in (slice(0, 48), slice(8, 16), slice(5, 27), slice(47, 48)):
        np.testing.assert_array_equal(rows_of(loader, 1, rows), planes[1][rows])


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "zlib", "rowsperstrip": 48},  # one compressed strip
        {"photometric": "rgb", "planarconfig": "separate"},
        {"tile": (16, 16)},  # tiles narrower than the plane
    ],
)
def test_other_slices_read_whole_planes_for_their_rows(tmp_path, options):
    shape = (2, 48, 32, 3) if "planarconfig" in options else (2, 48, 32)
    planes = np.random.default_rng(2).integers(0, 255, shape).astype(np.uint8)
    # tifffile takes the samples first for planar configuration "separate".
    stored = np.moveaxis(planes, -1, 1) if "planarconfig" in options else planes
    loader = slice_loader(write_slice_folder(tmp_path / "slices", stored, **options))
    assert loader.row_block == 0
    np.testing.assert_array_equal(rows_of(loader, 1, slice(10, 20)), planes[1][10:20])


def test_row_reads_parse_each_slice_header_once_and_follow_rewrites(tmp_path, open_counter):
    planes = np.arange(4 * 64 * 16, dtype=np.uint16).reshape(4, 64, 16)
    files = write_slice_folder(tmp_path / "slices", planes)
    loader = slice_loader(files)
    tiff._slice_rows_at.cache_clear()
    with open_counter.watch(tmp_path) as opened:
        for top in range(0, 64, 8):
            np.testing.assert_array_equal(
                rows_of(loader, 2, slice(top, top + 8)), planes[2][top : top + 8]
            )
    assert opened == {files[2]: 8}  # one open a run of rows...
    assert tiff._slice_rows_at.cache_info().misses == 1  # ...and one header parse
    # A copy unpickled on a cluster worker (one per task) parses no header again.
    copy = cloudpickle.loads(cloudpickle.dumps(loader))
    np.testing.assert_array_equal(rows_of(copy, 2, slice(0, 8)), planes[2][:8])
    assert tiff._slice_rows_at.cache_info().misses == 1

    # Rewritten with a longer header (another pixel offset) and other pixels.
    tifffile.imwrite(files[2], planes[2] + 1, description="x" * 5000)
    np.testing.assert_array_equal(rows_of(loader, 2, slice(8, 16)), planes[2][8:16] + 1)


@pytest.mark.parametrize("rows_per_strip", [32, 8])  # read whole, or strip by strip
def test_a_compressed_slice_among_uncompressed_ones_reads_its_rows(tmp_path, rows_per_strip):
    planes = np.random.default_rng(3).integers(0, 255, (3, 32, 24)).astype(np.uint8)
    files = write_slice_folder(tmp_path / "slices", planes)
    tifffile.imwrite(files[1], planes[1], compression="zlib", rowsperstrip=rows_per_strip)
    loader = slice_loader(files)
    assert loader.row_block == 1  # the first file's layout
    np.testing.assert_array_equal(rows_of(loader, 1, slice(4, 9)), planes[1][4:9])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", r"s01\.tif: the file is truncated"),
        ("reshape", r"s01\.tif: this slice holds 1 plane\(s\) of shape \(16, 24\)"),
        ("delete", r"s01\.tif: the file has disappeared"),
        ("garbage", r"s01\.tif: cannot read plane"),
    ],
)
def test_row_reads_of_a_damaged_slice_name_the_file(tmp_path, damage, message):
    planes = np.ones((3, 32, 24), np.uint16)
    files = write_slice_folder(tmp_path / "slices", planes)
    loader = slice_loader(files)
    path = Path(files[1])
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "reshape":
        tifffile.imwrite(path, np.ones((16, 24), np.uint16))
    elif damage == "delete":
        path.unlink()
    else:
        path.write_bytes(b"II*\0" + b"\xff" * 200)
    with pytest.raises(ReadError, match=message):
        rows_of(loader, 1, slice(0, 8))


def multipage_loader(path: Path) -> tiff.TiffPlanes:
    """The loader a single multi-page file gets, from its header."""
    return tiff.tiff_stack([str(path)], tiff.probe_tiff(str(path))).load_plane


@pytest.mark.parametrize(
    ("options", "row_block"),
    [
        ({"photometric": "minisblack"}, 1),
        ({"photometric": "minisblack", "byteorder": ">"}, 1),
        ({"imagej": True}, 1),
        ({"imagej": True, "truncate": True}, 1),  # one page describes every plane
        ({"ome": True, "photometric": "minisblack"}, 1),
        ({"photometric": "minisblack", "compression": "zlib", "rowsperstrip": 8}, 8),
        ({"photometric": "minisblack", "tile": (16, 16)}, 0),
    ],
)
def test_pages_of_a_multipage_file_read_their_rows(tmp_path, open_counter, options, row_block):
    planes = np.random.default_rng(6).integers(0, 4000, (5, 48, 32)).astype(np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, planes, **options)
    loader = multipage_loader(path)
    assert loader.row_block == row_block
    tiff._page_rows_at.cache_clear()
    with open_counter.watch(tmp_path) as opened:
        for index in (0, 3, 4):
            for rows in (slice(0, 48), slice(8, 16), slice(5, 27), slice(47, 48)):
                np.testing.assert_array_equal(rows_of(loader, index, rows), planes[index][rows])
    # One open file for every read (its shared handle; at most one open, as the handle
    # may still be open from the loader's first plane), and each page checked once.
    assert sum(opened.values()) <= 1
    assert tiff._page_rows_at.cache_info().currsize <= 3


def test_work_units_of_a_multipage_file_hold_its_planes(tmp_path):
    planes = np.random.default_rng(7).integers(0, 4000, (9, 64, 24)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", planes, photometric="minisblack")
    ((stack, _, _),) = napari_bigvol.read(str(tmp_path / "stack.tif"))
    assert stack.read_chunks == (1, 1, 24)
    np.testing.assert_array_equal(stack.in_blocks((4, 16, 24)).compute(), planes)


def test_a_multipage_file_cut_after_opening_names_itself_when_its_rows_are_read(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.ones((4, 64, 64), np.uint16), imagej=True, truncate=True)
    loader = multipage_loader(path)
    np.testing.assert_array_equal(rows_of(loader, 1, slice(0, 8)), np.ones((8, 64)))
    path.write_bytes(path.read_bytes()[:-5000])  # the last plane is partly gone
    with pytest.raises(ReadError, match=r"cut\.tif: the file is truncated"):
        rows_of(loader, 3, slice(40, 64))
