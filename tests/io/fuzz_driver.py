"""Fuzzing napari-bigvol's readers with mutated real files, each case in a capped subprocess.

Real files are written first (tifffile stacks, OME-TIFF, ImageJ hyperstacks, nibabel
``.nii``/``.nii.gz``, zarr v2/v3 arrays, OME-Zarr 0.4/0.5 images, a DICOM series written by
SimpleITK, an enhanced multi-frame DICOM file and pydicom's ``CT_small.dcm``), then each
case mutates one of them (byte flips, truncation, edited header fields, edited OME/ImageJ
descriptions and DICOM text values, broken or edited JSON, missing, empty or damaged
chunks or slices) and reads it the
way napari does: :func:`napari_bigvol.read`, then every plane of every level. A case
passes when it ends in a :class:`~napari_bigvol.BigVolError`, or in data of the original
shape and dtype (``same``), or, for a mutation that edits what the header says rather
than cutting the file, in data of another shape the edited header describes
(``changed``). Anything else is ``other`` and fails: another exception, a hang past the
time limit, a MemoryError under the address-space cap, a killed worker, non-finite or
zero scales, or a truncated file read as a smaller image.

Workers run batches of cases under ``RLIMIT_AS`` and a per-case timer; a worker that dies
or stalls is replaced and its case counted as ``other``.

Run it directly for a big campaign::

    PYTHONPATH=src python tests/io/fuzz_driver.py --cases 20000 --seed 1 --workers 2

``--only dcm`` keeps the originals whose name contains ``dcm``, for a campaign on one format.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import queue
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"
MEMORY_CAP = 2 * 2**30
CASE_SECONDS = 20.0
# Mutations that cut data away: reading them as an image of another shape is data loss.
_CUTTING = frozenset({"truncate", "delete"})
_INTERESTING_INTS = [0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 32767, 65535, 2**31 - 1, 2**32 - 1]
_INTERESTING_FLOATS = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e30, 1e-30, 2.5]
_JSON_VALUES: list[Any] = [0, -1, 1, 5, 2**31, 2**62, 1.5, "x", None, True, [], {}, "NaN"]
_TIFF_TAGS = (
    "ImageWidth", "ImageLength", "BitsPerSample", "Compression", "PhotometricInterpretation",
    "StripOffsets", "StripByteCounts", "SamplesPerPixel", "RowsPerStrip", "PlanarConfiguration",
    "SampleFormat", "TileWidth", "TileLength", "TileOffsets", "TileByteCounts", "Predictor",
)  # fmt: skip
_NIFTI_FIELDS = (
    "sizeof_hdr", "dim", "pixdim", "vox_offset", "datatype", "bitpix", "scl_slope", "scl_inter",
    "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "srow_x",
    "srow_y", "srow_z", "xyzt_units", "cal_min", "cal_max", "intent_code", "magic", "toffset",
)  # fmt: skip
_DESCRIPTION_EDITS = [
    ('SizeZ="3"', 'SizeZ="500000000"'),
    ('SizeX="40"', 'SizeX="4000000000"'),
    ('SizeC="2"', 'SizeC="0"'),
    ('SizeT="1"', 'SizeT="-1"'),
    ('PhysicalSizeX="0.5"', 'PhysicalSizeX="nan"'),
    ('PhysicalSizeX="0.5"', 'PhysicalSizeX="inf"'),
    ('PhysicalSizeY="0.5"', 'PhysicalSizeY="-1"'),
    ('PhysicalSizeZ="2.0"', 'PhysicalSizeZ="0"'),
    ('Type="uint16"', 'Type="bit"'),
    ("<Pixels ", "<Pixel "),
    ("</OME>", ""),
    ('PlaneCount="6"', 'PlaneCount="60000"'),
    ("images=6", "images=600000000"),
    ("slices=3", "slices=300000000"),
    ("frames=2", "frames=0"),
    ("spacing=2.0", "spacing=nan"),
    ("spacing=2.0", "spacing=-inf"),
    ("unit=micron", "unit=\\u00b5"),
    ('"shape": [', '"shape": [500000000, '),
    ('"shape": [', '"shape": [0, '),
    ('"shape"', '"shap"'),
]
# DICOM: integer header values (US/SS) and text values (DS/IS/CS/UI) worth editing.
_DICOM_INTEGERS = (
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "PlanarConfiguration",
)  # fmt: skip
_DICOM_TEXTS = (
    "NumberOfFrames", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices",
    "ImagePositionPatient", "ImageOrientationPatient", "RescaleSlope", "RescaleIntercept",
    "WindowCenter", "WindowWidth", "PhotometricInterpretation", "SeriesInstanceUID",
)  # fmt: skip
_DICOM_TEXT_VALUES = ["nan", "inf", "-1", "0", "1e308", "x", "1\\2", "", "99999999", "-0"]


# --- originals ------------------------------------------------------------------------------


def make_originals(folder: Path) -> list[dict[str, Any]]:
    """Write the real files every case starts from, with what a mutation may target."""
    import nibabel as nib
    import numpy as np
    import tifffile
    import zarr

    rng = np.random.default_rng(0)
    stack = rng.integers(0, 4000, (6, 32, 40), dtype=np.uint16)
    originals = []

    def tiff(name: str, data: Any, **kwargs: Any) -> None:
        path = folder / name
        tifffile.imwrite(path, data, **kwargs)
        originals.append({"path": str(path), "kind": "file", "fields": _tiff_fields(path)})

    def padded(name: str, data: Any, **kwargs: Any) -> None:
        """Rewrite a file with its description padded, so edits can change lengths."""
        tiff(name, data, **kwargs)
        path = folder / name
        with tifffile.TiffFile(path) as tif:
            description = tif.pages.first.description
        tifffile.imwrite(
            path, data, description=description + " " * 200, metadata=None,
            photometric="minisblack", compression=kwargs.get("compression"),
        )  # fmt: skip
        originals[-1] = {"path": str(path), "kind": "file", "fields": _tiff_fields(path)}

    tiff("zlib_stack.tif", stack, compression="zlib")
    tiff("plain.tif", stack.astype(np.float32), metadata=None)
    tiff("tiled_rgb.tif", rng.integers(0, 255, (2, 32, 32, 3), np.uint8), tile=(16, 16),
         compression="zlib", photometric="rgb")  # fmt: skip
    padded("stack.ome.tif", stack.reshape(3, 2, 32, 40), ome=True, photometric="minisblack",
           metadata={"axes": "ZCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
                     "PhysicalSizeZ": 2.0})  # fmt: skip
    padded("hyper.tif", stack.reshape(2, 3, 32, 40), imagej=True, resolution=(2.0, 2.0),
           metadata={"axes": "TZYX", "spacing": 2.0, "unit": "micron"})  # fmt: skip
    padded("shaped.tif", stack, compression="zlib")

    affine = np.array([[0.0, 0, 1.5, -20], [-1.2, 0, 0, 30], [0, 1.0, 0, -10], [0, 0, 0, 1]])
    volume = rng.integers(-500, 3000, (20, 16, 6), dtype=np.int16)
    for name, image in (
        ("t1.nii", nib.Nifti1Image(volume, affine)),
        ("t1.nii.gz", nib.Nifti1Image(volume, affine)),
        ("bold.nii.gz", nib.Nifti1Image(rng.random((12, 10, 4, 3), np.float32), np.eye(4))),
        ("n2.nii", nib.Nifti2Image(volume.astype(np.float32), affine)),
    ):
        image.header.set_xyzt_units("mm", "sec")
        if name == "bold.nii.gz":
            image.header.set_slope_inter(2.0, 1.0)
        nib.save(image, folder / name)
        fields = _nifti_fields(image.header)
        originals.append({"path": str(folder / name), "kind": "file", "fields": fields})

    for name, zarr_format, compressors in (
        ("v2.zarr", 2, "auto"),
        ("v3.zarr", 3, "auto"),
        ("v3_raw.zarr", 3, None),
    ):
        array = zarr.create_array(
            folder / name, shape=stack.shape, chunks=(2, 16, 16), dtype=stack.dtype,
            zarr_format=zarr_format, compressors=compressors,
        )  # fmt: skip
        array[:] = stack
        originals.append({"path": str(folder / name), "kind": "store"})
    _ome_zarr(folder / "image.ome.zarr", stack, "0.4")
    _ome_zarr(folder / "image5.ome.zarr", stack, "0.5")
    originals.append({"path": str(folder / "image.ome.zarr"), "kind": "store"})
    originals.append({"path": str(folder / "image5.ome.zarr"), "kind": "store"})
    originals.extend(_dicom_originals(folder))
    # Folders of slices, uncompressed and in zlib strips: whole-volume work reads their rows.
    for name, options in (("slices", {}), ("zlib_slices", {"compression": "zlib",
                                                           "rowsperstrip": 8})):  # fmt: skip
        slices = folder / name
        slices.mkdir()
        for index, plane in enumerate(stack):
            tifffile.imwrite(slices / f"s{index}.tif", plane, **options)
        fields = {path.name: _tiff_fields(path) for path in sorted(slices.iterdir())}
        originals.append({"path": str(slices), "kind": "series", "fields": fields, "tiff": True})
    for original in originals:
        if original["kind"] in ("store", "series"):
            root = Path(original["path"])
            original["files"] = sorted(
                str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
            )
    return originals


def _ome_zarr(path: Path, stack: Any, version: str) -> None:
    """An OME-Zarr image with two levels and a label image, written by ome-zarr-py."""
    import ome_zarr.format
    import ome_zarr.writer
    import zarr

    fmt = ome_zarr.format.FormatV04() if version == "0.4" else ome_zarr.format.FormatV05()
    group = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    ome_zarr.writer.write_image(
        stack, group, axes="zyx", fmt=fmt, scale_factors=[2],
        storage_options={"chunks": (2, 16, 16)},
    )  # fmt: skip
    ome_zarr.writer.write_labels(
        (stack > 2000).astype("uint8"), group, name="cells", axes="zyx", fmt=fmt,
        scale_factors=[],
    )  # fmt: skip


def _dicom_originals(folder: Path) -> list[dict[str, Any]]:
    """A 6-slice SimpleITK series, an enhanced multi-frame file and pydicom's CT_small.dcm."""
    from pydicom.data import get_testdata_file

    # The DICOM tests' own writers, loaded by path: test modules are not a package.
    spec = importlib.util.spec_from_file_location("test_dicom", Path(__file__).parent /
                                                  "test_dicom.py")  # fmt: skip
    assert spec is not None
    assert spec.loader is not None
    writers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writers)
    volume = writers.volume_values((6, 20, 24))
    series = folder / "series_dcm"
    writers.write_series(series, volume, direction=writers.OBLIQUE)
    enhanced = folder / "enhanced.dcm"
    writers.write_enhanced(enhanced, volume, writers.CORONAL, (0.5, 0.6, 2.0), (1.0, 2.0, 3.0))
    ct = folder / "CT_small.dcm"
    shutil.copyfile(get_testdata_file("CT_small.dcm"), ct)
    fields = {path.name: _dicom_fields(path) for path in sorted(series.iterdir())}
    return [
        {"path": str(series), "kind": "series", "fields": fields},
        *({"path": str(path), "kind": "file", "fields": _dicom_fields(path)}
          for path in (enhanced, ct)),
    ]  # fmt: skip


def _dicom_fields(path: Path) -> list[list[Any]]:
    """Offset, size and kind ("i" integer, "t" text) of DICOM values and element lengths.

    Nested sequence items (the enhanced file's functional groups) are walked too; pydicom
    keeps each element's file offset (``value_tell``) until its value is first used.
    """
    import pydicom

    fields: list[list[Any]] = []

    def walk(dataset: Any) -> None:
        for tag in list(dataset.keys()):
            raw = dataset.get_item(tag)
            if not hasattr(raw, "value_tell"):
                continue  # already parsed, offset unknown
            name = pydicom.datadict.keyword_for_tag(tag)
            if raw.VR == "SQ":
                fields.append([raw.value_tell - 4, 4, "i"])  # the sequence's length
                for item in dataset[tag].value:
                    walk(item)
            elif name in _DICOM_INTEGERS and raw.length == 2:
                fields.append([raw.value_tell, 2, "i"])
            elif name in _DICOM_TEXTS and raw.length:
                fields.append([raw.value_tell, raw.length, "t"])
            elif name == "PixelData":
                fields.append([raw.value_tell - 4, 4, "i"])  # a length a header claims

    dataset = pydicom.dcmread(path)
    walk(dataset)
    # pydicom parses the file meta group eagerly, so its offsets are gone: find the value.
    syntax = dataset.file_meta.TransferSyntaxUID.encode()
    fields.append([path.read_bytes().index(syntax), len(syntax), "t"])
    return fields


def _tiff_fields(path: Path) -> list[list[int]]:
    """Byte offset and size of interesting tag values and of each page's next-page pointer."""
    import tifffile

    fields = []
    with tifffile.TiffFile(path) as tif:
        pages = list(tif.pages)
        for page in pages[:3] + pages[-1:]:
            for name in _TIFF_TAGS:
                tag = page.tags.get(name)
                if tag is not None:
                    short = tifffile.DATATYPE(tag.dtype).name in ("SHORT", "SSHORT")
                    size = 2 if short else 4
                    fields.append([tag.valueoffset, size])
            tagno = len(page.tags)
            fields.append([page.offset + 2 + tagno * 12, 4])  # next-page pointer
        description = tif.pages.first.tags.get("ImageDescription")
        text = tif.pages.first.description
        edits = [index for index, (old, _) in enumerate(_DESCRIPTION_EDITS) if old in text]
        if description is not None and edits:
            fields.append([description.valueoffset, -description.count, edits])  # text
    return fields


def _nifti_fields(header: Any) -> list[list[int]]:
    """Offset, size and kind ("f" float, "i" integer, "b" bytes) of header fields."""
    fields = []
    dtype = header.structarr.dtype
    for name in _NIFTI_FIELDS:
        offset = dtype.fields[name][1]
        sub = dtype.fields[name][0]
        base = sub.base if sub.shape else sub
        count = sub.shape[0] if sub.shape else 1
        for index in range(count):
            fields.append([offset + index * base.itemsize, base.itemsize, base.kind])
    return fields


# --- cases ----------------------------------------------------------------------------------


def make_cases(originals: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` mutation specs, deterministic for ``seed``, spread over the originals."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        number = index % len(originals)
        original = originals[number]
        make = {"file": _file_case, "store": _store_case, "series": _series_case}[original["kind"]]
        cases.append({"id": index, "original": number, **make(original, rng)})
    return cases


def _file_case(original: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    size = os.path.getsize(original["path"])
    compressed = original["path"].endswith(".gz")
    roll = rng.random()
    if roll < 0.3:
        # Favour the start, where headers, IFDs and the first planes live.
        cut = rng.randrange(size) if rng.random() < 0.5 else rng.randrange(min(size, 4096))
        return {"mutation": "truncate", "at": cut}
    if roll < 0.55:
        limit = size if rng.random() < 0.5 else min(size, 1024)
        flips = [[rng.randrange(limit), rng.randrange(1, 256)] for _ in range(rng.randint(1, 8))]
        return {"mutation": "flip", "flips": flips, "inflated": False}
    described = [field for field in original["fields"] if field[1] < 0]
    # Descriptions hold the OME-XML, ImageJ and shape metadata: edit them a third of the time.
    field = described[0] if described and rng.random() < 0.3 else rng.choice(original["fields"])
    if field[1] < 0:
        old, new = _DESCRIPTION_EDITS[rng.choice(field[2])]
        return {"mutation": "describe", "at": field[0], "length": -field[1], "old": old,
                "new": new}  # fmt: skip
    kind = field[2] if len(field) == 3 else "i"  # TIFF tag values are integers
    if kind == "t":
        value_text = rng.choice(_DICOM_TEXT_VALUES)
        return {"mutation": "text", "at": field[0], "length": field[1], "value": value_text}
    value: Any = rng.choice(_INTERESTING_FLOATS if kind == "f" else _INTERESTING_INTS)
    if kind == "i" and rng.random() < 0.2:
        value = -rng.choice(_INTERESTING_INTS[1:5])
    return {"mutation": "set", "at": field[0], "size": field[1], "kind": kind,
            "value": repr(value), "inflated": compressed}  # fmt: skip


def _store_case(original: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    files = original["files"]
    metadata = [f for f in files if os.path.basename(f) in ("zarr.json", ".zarray", ".zattrs",
                                                             ".zgroup")]  # fmt: skip
    chunks = [f for f in files if f not in metadata]
    roll = rng.random()
    if roll < 0.4 and metadata:
        name = rng.choice(metadata)
        return {"mutation": "json_set", "file": name, "seed": rng.randrange(2**31),
                "value": rng.choice(_JSON_VALUES)}  # fmt: skip
    name = rng.choice(metadata if roll < 0.55 else chunks)
    size = os.path.getsize(os.path.join(original["path"], name))
    choice = rng.choice(["truncate", "flip", "delete", "empty"])
    if choice == "truncate":
        return {"mutation": "truncate", "file": name, "at": rng.randrange(max(size, 1))}
    if choice == "flip":
        flips = [[rng.randrange(max(size, 1)), rng.randrange(1, 256)] for _ in range(3)]
        return {"mutation": "flip", "file": name, "flips": flips, "inflated": False}
    return {"mutation": choice, "file": name}


def _series_case(original: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Mutate one slice file of a series; only an inner slice may go missing.

    Without its first or last slice a series is simply a shorter series, as a folder of
    TIFFs without its last file is; an inner slice missing is a gap the reader must refuse.
    """
    files = original["files"]
    if rng.random() < 0.1:
        # A folder of TIFF slices without one is a shorter stack, not a gap.
        mutation = "drop" if original.get("tiff") else "delete"
        return {"mutation": mutation, "file": rng.choice(files[1:-1])}
    name = rng.choice(files)
    one_file = {"path": os.path.join(original["path"], name), "fields": original["fields"][name]}
    return {**_file_case(one_file, rng), "file": name}


def apply(case: dict[str, Any], original: dict[str, Any], work: Path) -> Path:
    """Copy the original into ``work`` and mutate the copy; return the path to open."""
    source = Path(original["path"])
    target = work / source.name
    if original["kind"] in ("store", "series"):
        shutil.copytree(source, target)
        _mutate(target / case["file"], case)
    else:
        shutil.copyfile(source, target)
        _mutate(target, case)
    return target


def _mutate(path: Path, case: dict[str, Any]) -> None:
    mutation = case["mutation"]
    if mutation in ("delete", "drop"):
        path.unlink()
        return
    if mutation == "empty":
        path.write_bytes(b"")
        return
    raw = path.read_bytes()
    inflated = case.get("inflated") and path.name.endswith(".gz")
    data = bytearray(gzip.decompress(raw) if inflated else raw)
    if mutation == "truncate":
        data = data[: case["at"]]
    elif mutation == "flip":
        for offset, xor in case["flips"]:
            if offset < len(data):
                data[offset] ^= xor
    elif mutation == "set":
        data[case["at"] : case["at"] + case["size"]] = _packed(case)
    elif mutation == "describe":
        start, length = case["at"], case["length"]
        text = data[start : start + length].decode("latin-1")
        edited = text.replace(case["old"], case["new"], 1).rstrip(" \0")
        data[start : start + length] = edited.encode("latin-1")[:length].ljust(length, b" ")
    elif mutation == "text":
        start, length = case["at"], case["length"]
        data[start : start + length] = case["value"].encode()[:length].ljust(length, b" ")
    elif mutation == "json_set":
        data = bytearray(_edited_json(bytes(data), case))
    path.write_bytes(gzip.compress(bytes(data)) if inflated else bytes(data))


def _packed(case: dict[str, Any]) -> bytes:
    import numpy as np

    value = eval(case["value"], {"nan": float("nan"), "inf": float("inf")})  # our own repr()
    size, kind = case["size"], case["kind"]
    if kind == "f":
        return np.array(value, f"<f{size}").tobytes()
    if kind == "b":
        return int(value % 256).to_bytes(1, "little") * size
    return (int(value) % 2 ** (8 * size)).to_bytes(size, "little")


def _edited_json(raw: bytes, case: dict[str, Any]) -> bytes:
    """Set one value anywhere in the JSON document to an odd one; break it if unparsable."""
    try:
        document = json.loads(raw)
    except ValueError:
        return raw[: len(raw) // 2]
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            slots.append((node, key))
            if isinstance(value, dict | list):
                walk(value)

    if isinstance(document, dict | list):
        walk(document)
    rng = random.Random(case["seed"])
    if not slots or rng.random() < 0.1:
        return raw[: rng.randrange(max(len(raw), 1))]  # broken JSON
    node, key = rng.choice(slots)
    value = case["value"]
    if isinstance(node[key], list) and rng.random() < 0.5:
        value = [value] * len(node[key])  # keep the length, break the entries
    node[key] = value
    return json.dumps(document).encode()


# --- judging one case -----------------------------------------------------------------------


class _Hang(BaseException):
    """Raised by the per-case timer; a BaseException so reader code cannot swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Hang


def judge(path: Path, expected: tuple[tuple[int, ...], str], mutation: str) -> tuple[str, str]:
    """Open ``path`` and compute every plane; return (outcome, detail)."""
    import numpy as np

    import napari_bigvol
    from napari_bigvol.errors import BigVolError

    try:
        layers = napari_bigvol.read(str(path))
        shapes = []
        for data, kwargs, _ in layers:
            for name in ("scale", "translate"):
                values = np.asarray(kwargs.get(name, ()), dtype=float)
                if not np.all(np.isfinite(values)) or (name == "scale" and np.any(values == 0)):
                    return "other", f"{name} {kwargs.get(name)} cannot be shown by napari"
            for level in data if isinstance(data, list) else [data]:
                array = np.asarray(level)
                shapes.append((tuple(array.shape), array.dtype.str))
                if not _same_in_units(level, array):
                    return "other", "work units read other values than the planes"
    except BigVolError as error:
        if str(path) not in str(error) and os.path.basename(path) not in str(error):
            return "other", f"error does not name the file: {error}"
        return "error", type(error.__cause__).__name__ if error.__cause__ else "direct"
    except _Hang:
        raise
    except Exception as error:  # the very thing this fuzzer hunts
        return "other", f"{type(error).__module__}.{type(error).__name__}: {error}"[:300]
    if shapes and shapes[0] == (tuple(expected[0]), expected[1]):
        return "same", ""
    if mutation in _CUTTING:
        return "other", f"read as {shapes[:1]} instead of {expected} after {mutation}"
    return "changed", str(shapes[:1])


def _same_in_units(level: Any, planes: Any) -> bool:
    """Whether whole-volume work units (read by rows where they can be) hold ``planes``."""
    import numpy as np

    from napari_bigvol.io._planes import PlaneArray

    if not isinstance(level, PlaneArray) or level.ndim < 2:
        return True
    rows = min(level.read_chunks[1] * 2, level.shape[1])
    units = np.asarray(level.in_blocks((2, rows, *level.shape[2:])))
    return bool(np.array_equal(units, planes, equal_nan=units.dtype.kind in "fc"))


def worker() -> None:
    """Judge the cases given on stdin, one JSON line each on stdout, under a memory cap."""
    sys.path.insert(0, str(SRC))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    import logging
    import warnings

    import dask

    dask.config.set(scheduler="synchronous")  # no thread pool inside the cap
    logging.disable(logging.CRITICAL)  # tifffile logs every broken file it meets
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _on_alarm)
    job = json.loads(sys.stdin.read())
    originals, expected = job["originals"], job["expected"]
    for case in job["cases"]:
        print(json.dumps({"start": case["id"]}), flush=True)
        original = originals[case["original"]]
        with tempfile.TemporaryDirectory() as work:
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                path = apply(case, original, Path(work))
                outcome, detail = judge(path, expected[case["original"]], case["mutation"])
            except _Hang:
                outcome, detail = "other", f"hang: still running after {CASE_SECONDS} s"
            except MemoryError:
                outcome, detail = "other", "MemoryError under the address-space cap"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        print(json.dumps({"id": case["id"], "outcome": outcome, "detail": detail}), flush=True)


# --- running a campaign ---------------------------------------------------------------------


def _expected(originals: list[dict[str, Any]]) -> list[tuple[tuple[int, ...], str]]:
    """Shape and dtype of the first level of the first layer of every unmutated original."""
    import numpy as np

    import napari_bigvol

    found = []
    for original in originals:
        data = napari_bigvol.read(original["path"])[0][0]
        first = np.asarray(data[0] if isinstance(data, list) else data)
        found.append((tuple(first.shape), first.dtype.str))
    return found


def _run_worker(
    job: dict[str, Any], results: dict[int, dict[str, Any]], log: Any | None = None
) -> None:
    """Run the job's cases in worker processes, replacing any that dies or stalls.

    Each result also goes to ``log`` (a text file), so a long campaign stopped early still
    has its counts.
    """
    pending = list(job["cases"])
    while pending:
        process = subprocess.Popen(
            [sys.executable, __file__, "worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream: Any = process.stdout, lines: queue.Queue = lines) -> None:
            for line in stream:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        assert process.stdin is not None
        process.stdin.write(json.dumps({**job, "cases": pending}))
        process.stdin.close()
        current = None
        while True:
            try:
                line = lines.get(timeout=CASE_SECONDS + 30)  # the worker's own timer failed
            except queue.Empty:
                process.kill()
                line = None
                reason = "hang: the worker stopped answering and was killed"
            else:
                reason = None
            if line is None:
                process.wait()
                if current is not None:
                    reason = reason or f"worker died (exit code {process.returncode})"
                    results[current] = {"id": current, "outcome": "other", "detail": reason}
                    _log(log, results[current])
                break
            message = json.loads(line)
            if "start" in message:
                current = message["start"]
            else:
                results[message["id"]] = message
                _log(log, message)
                current = None
        pending = [case for case in pending if case["id"] not in results]


_LOG_LOCK = threading.Lock()


def _log(log: Any | None, result: dict[str, Any]) -> None:
    if log is not None:
        with _LOG_LOCK:
            log.write(json.dumps(result) + "\n")
            log.flush()


def campaign(
    count: int, seed: int, workers: int, log: Any | None = None, only: str = ""
) -> dict[str, Any]:
    """Write originals, run ``count`` cases on ``workers`` processes, return the summary."""
    sys.path.insert(0, str(SRC))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        originals = make_originals(Path(folder))
        originals = [o for o in originals if only in os.path.basename(o["path"])]
        expected = _expected(originals)
        cases = make_cases(originals, count, seed)
        job = {"originals": originals, "expected": expected}
        results: dict[int, dict[str, Any]] = {}
        threads = [
            threading.Thread(
                target=_run_worker,
                args=({**job, "cases": cases[index::workers]}, results, log),
            )
            for index in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    outcomes = Counter(result["outcome"] for result in results.values())
    by_mutation: Counter[str] = Counter()
    for case in cases:
        by_mutation[f"{case['mutation']}:{results[case['id']]['outcome']}"] += 1
    names = [os.path.basename(original["path"]) for original in originals]
    failures = [
        {**results[case["id"]], "case": case, "file": names[case["original"]]}
        for case in cases
        if results[case["id"]]["outcome"] == "other"
    ]
    return {
        "seed": seed,
        "tried": len(cases),
        "outcomes": dict(outcomes),
        "by_mutation": dict(sorted(by_mutation.items())),
        "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    """Command line: ``worker`` (internal) or a campaign printing its summary as JSON."""
    if sys.argv[1:] == ["worker"]:
        worker()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="", help="keep originals whose name contains this")
    parser.add_argument("--log", help="also write each case's result to this file as it ends")
    args = parser.parse_args()
    with open(args.log, "w") if args.log else open(os.devnull, "w") as log:
        summary = campaign(args.cases, args.seed, args.workers, log, args.only)
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
