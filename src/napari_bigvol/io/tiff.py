"""TIFF specifics: header probes, per-plane loaders and the single-file reader.

A TIFF holds one or more *series* (tifffile's word for an n-D image made of pages).
Everything here reads through tifffile's page index, one page at a time, so a plane
shown in napari costs one page read and opening a file costs one header parse:

* :func:`probe_tiff` parses a file's header and metadata (axes, shape, dtype, voxel
  size, channel names) without touching pixel data.
* :class:`TiffPlanes` is the picklable per-plane loader behind every TIFF dask array,
  for one multi-page file as well as for a folder of slices. It checks every file it
  opens against the first file's header and raises a :class:`ReadError` naming the
  file when a slice does not match.
* :func:`read_tiff_file` opens a single file (multi-page, ImageJ hyperstack, OME-TIFF,
  pyramidal OME-TIFF) as napari layer data.

Voxel size comes from, in order of preference, OME ``PhysicalSize{X,Y,Z}``, ImageJ's
``spacing``/``unit`` plus the resolution tags, then the ``XResolution``/``YResolution``
tags with ``ResolutionUnit`` (inch or centimetre, converted to millimetres). The 72 and
96 dpi inch values that desktop software writes by default describe a screen, not a
specimen, and are ignored.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import math
import os
import re
import struct
import sys
import threading
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import numpy as np
import tifffile
from dask.base import tokenize

from napari_bigvol.errors import ReadError
from napari_bigvol.io._physical import usable_sizes
from napari_bigvol.io._planes import stack_planes
from napari_bigvol.units import length_unit

TIFF_SUFFIXES = (".tif", ".tiff")

# What tifffile raises for files that are not TIFF, are truncated or hold garbage. It checks
# tags lazily, so corrupt values surface as built-in errors; each of these was seen when
# fuzzing real files (tests/io/test_fuzz.py): IndexError and KeyError for missing tags or
# codecs, RuntimeError("incompatible keyframe"), AssertionError for inconsistent pages,
# ZeroDivisionError for a zero width, SyntaxError (xml.etree's ParseError) for broken
# OME-XML, NotImplementedError and ImportError for codecs that are not installed, and
# zlib.error for damaged deflate data.
_BROKEN_FILE_ERRORS = (
    tifffile.TiffFileError,
    zlib.error,
    ValueError,
    OSError,
    struct.error,
    EOFError,
    IndexError,
    KeyError,
    RuntimeError,
    AssertionError,
    ArithmeticError,
    TypeError,
    SyntaxError,
    ImportError,
)
# tifffile's message for a compression or predictor it cannot decode without a package.
_MISSING_PACKAGE = re.compile(r"requires the '([\w.-]+)' package")
_SCREEN_DPI = (72.0, 96.0)
# Planes are read whole; one this big is a sign of a corrupt header or of a file that
# needs converting to a chunked format first, not something to allocate.
MAX_PLANE_BYTES = 2**31
_MM_PER_RESOLUTION_UNIT = {2: 25.4, 3: 10.0}  # TIFF ResolutionUnit INCH, CENTIMETER
_RGB_PHOTOMETRICS = (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR)


@dataclass(frozen=True)
class TiffHeader:
    """What one TIFF's header says about its image; read without touching pixels.

    Attributes
    ----------
    path : str
        The file.
    series : int
        Index of the series described (0 unless a caller asks for another).
    shape : tuple of int
        Shape of the whole series as napari will see it: planes first, then the plane,
        with RGB samples moved last.
    axes : str
        One tifffile axis letter per entry of ``shape`` (``T``, ``Z``, ``C``, ``Y``,
        ``X``, ``S`` for RGB samples, ``I``/``Q`` for unnamed page axes).
    plane_shape : tuple of int
        Shape of one plane (one page, RGB samples last).
    dtype : numpy.dtype
        Pixel type.
    rgb : bool
        True if the samples axis is an RGB(A) colour axis.
    spacing : dict
        Physical size per axis letter (``"X"``, ``"Y"``, ``"Z"``) where known.
    unit : str or None
        pint unit name of ``spacing``, or None if the file gives sizes without unit.
    channel_names : tuple of str
        Channel names from OME metadata, empty if unknown.
    level_shapes : tuple of tuple of int
        Shapes of the pyramid levels after the first (pyramidal OME-TIFF), largest first.
    multifile : bool
        True if the series spans several files (a multi-file OME-TIFF dataset).
    row_block : int
        In runs of how many rows the first page's rows can be read alone (see
        :func:`_row_block`): 1 when its pixels are stored uncompressed in one run, the
        rows of a strip when they are compressed in strips, 0 when they cannot.
    """

    path: str
    series: int
    shape: tuple[int, ...]
    axes: str
    plane_shape: tuple[int, ...]
    dtype: np.dtype
    rgb: bool
    spacing: dict[str, float] = field(default_factory=dict)
    unit: str | None = None
    channel_names: tuple[str, ...] = ()
    level_shapes: tuple[tuple[int, ...], ...] = ()
    multifile: bool = False
    row_block: int = 0

    @property
    def planes(self) -> int:
        """Number of planes in the series."""
        return _planes_in_shape(self.shape, self.plane_shape)


@dataclass(frozen=True)
class PlaneStack:
    """A lazy array made of planes, with the loader that reads one plane directly.

    ``array`` flattens to ``(planes, *plane)`` in C order, so plane ``i`` of
    ``load_plane`` is the ``i``-th index over the array's leading axes. Readers use
    ``load_plane`` for the one plane they sample at open, which skips dask's graph
    machinery (and its first-call import of ``distributed``).

    Attributes
    ----------
    array : dask.array.Array
        The lazy image.
    load_plane : callable
        ``load_plane(i)`` returns plane ``i`` as a numpy array.
    plane_ndim : int
        Number of trailing axes one plane spans (2, or 3 with RGB samples).
    """

    array: da.Array
    load_plane: Callable[[int], np.ndarray]
    plane_ndim: int

    def reshaped(self, shape: tuple[int, ...]) -> PlaneStack:
        """Return the same planes with the leading axes split as in ``shape``."""
        return replace(self, array=self.array.reshape(shape))


def _reason(error: BaseException) -> str:
    """Say what went wrong, naming the package to install when a codec is missing."""
    match = _MISSING_PACKAGE.search(str(error))
    package = error.name if isinstance(error, ModuleNotFoundError) else None
    package = package or (match.group(1) if match else None)
    text = str(error).strip("'\"") or type(error).__name__
    if package:
        return f"{text}; install it with: pip install {package}"
    return text


@contextlib.contextmanager
def _tiff_errors_as_read_error(path: str) -> Iterator[None]:
    """Turn what tifffile raises for a broken file into a :class:`ReadError` naming it.

    A :class:`ReadError` raised inside already names the file and passes unchanged.
    """
    try:
        yield
    except ReadError:
        raise
    except _BROKEN_FILE_ERRORS as exc:
        raise ReadError(path, f"not a readable TIFF file ({_reason(exc)})") from exc


def _open_tiff(path: str) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(path)
    except FileNotFoundError:
        raise  # callers know whether the file is missing or has vanished
    except _BROKEN_FILE_ERRORS as exc:
        raise ReadError(path, f"not a readable TIFF file ({_reason(exc)})") from exc


def _open_existing(path: str) -> tifffile.TiffFile:
    try:
        return _open_tiff(path)
    except FileNotFoundError as exc:
        raise ReadError(path, "no such file or folder") from exc


def _page_layout(page: Any) -> tuple[tuple[int, ...], bool, bool]:
    """Plane shape (samples last), whether it is RGB, and whether samples come first."""
    shape = tuple(int(n) for n in page.shape)
    axes = page.axes
    samples_first = axes.startswith("S") and len(shape) == 3
    rgb = page.photometric in _RGB_PHOTOMETRICS and "S" in axes and page.samplesperpixel in (3, 4)
    if "S" in axes and len(shape) == len(axes) and shape[axes.index("S")] == 1:
        # One sample of a colour photometric: tifffile keeps the axis, its series drops it.
        shape = shape[: axes.index("S")] + shape[axes.index("S") + 1 :]
        samples_first = False
    if samples_first and rgb:
        shape = (*shape[1:], shape[0])
    return shape, rgb, samples_first and rgb


def _series_axes(series: Any, page_rgb: bool) -> tuple[tuple[int, ...], str]:
    """Series shape and axes with RGB samples moved last (napari's rgb layout)."""
    shape = tuple(int(n) for n in series.shape)
    axes = series.axes
    if page_rgb and "S" in axes and not axes.endswith("S"):
        at = axes.index("S")
        shape = (*shape[:at], *shape[at + 1 :], shape[at])
        axes = axes[:at] + axes[at + 1 :] + "S"
    return shape, axes


def _check_page_data(page: Any, path: str) -> None:
    """Refuse a page whose pixel data would lie past the end of its file."""
    size = page.parent.filehandle.size
    if len(page.dataoffsets) != len(page.databytecounts):
        raise ReadError(
            path,
            f"page {page.index} lists {len(page.dataoffsets)} data offsets but "
            f"{len(page.databytecounts)} byte counts: the file is corrupt",
        )
    try:
        needed = math.prod(page.chunked)  # strips or tiles the page's size and layout imply
    except (ArithmeticError, TypeError, ValueError, tifffile.TiffFileError):
        needed = 0  # tags too broken to say; decoding reports them as before
    if len(page.dataoffsets) < needed:
        # tifffile would fill the missing segments with zeros, allocating the whole plane
        # a corrupt ImageLength or ImageWidth claims.
        raise ReadError(
            path,
            f"page {page.index} claims a {' x '.join(map(str, page.shape))} image in "
            f"{needed} strips or tiles but lists {len(page.dataoffsets)}: the file is corrupt",
        )
    _check_uncompressed_bytes(page, path)
    end = max(
        (o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True)), default=0
    )
    if end > size:
        raise ReadError(
            path,
            f"the file is truncated: pixel data of page {page.index} ends at byte {end} "
            f"but the file has only {size} bytes",
        )


def _check_uncompressed_bytes(page: Any, path: str) -> None:
    """Refuse an uncompressed page whose segments hold fewer bytes than its size claims.

    tifffile reads such a page as one array of the claimed size: a corrupt ImageWidth
    made it allocate 1.6 GiB for a file of 30 kB (found by fuzzing).
    """
    keyframe = page.keyframe
    if keyframe.compression != 1:
        return
    row = -(-keyframe.imagewidth * keyframe.samplesperpixel * keyframe.bitspersample // 8)
    claimed = row * keyframe.imagelength * keyframe.imagedepth
    stored = sum(page.databytecounts)
    if stored < claimed:
        raise ReadError(
            path,
            f"page {page.index} claims a {' x '.join(map(str, page.shape))} image of "
            f"{claimed} bytes but stores {stored}: the file is corrupt",
        )


# Open files whose claims passed; parsing a large OME-XML again for every plane would cost.
_CLAIMS_CHECKED: weakref.WeakSet[tifffile.TiffFile] = weakref.WeakSet()


def _check_claimed_planes(tif: tifffile.TiffFile, path: str) -> None:
    """Refuse a file holding fewer planes than its header promises, before tifffile reads it.

    tifffile's series allocate per claimed plane, and quietly return fewer planes when
    pages are missing; this runs first.

    A plane is present if it has a page of its own, or, for uncompressed data stored in
    one run after the first page (ImageJ over 4 GB, tifffile's ``truncate=True``), if its
    bytes are in the file. A page chain that ends in a pointer past the end of the file
    is an interrupted copy even when no metadata say how many planes there were.
    """
    if tif in _CLAIMS_CHECKED:
        return  # a cached handle, or another series of the same file
    pages = len(tif.pages)  # walks the page chain: a few bytes per page, no pixel data
    if pages == 0:
        return  # tifffile's own "no pages" error follows
    first = tif.pages.first
    broken = _page_chain_broken(tif, pages)
    claim = _claimed_planes(tif, first, path)
    if claim is not None:
        planes, files, where = claim
        contiguous_end = first.dataoffsets[0] + planes * first.nbytes if first.dataoffsets else 0
        fits_contiguous = (
            first.compression == tifffile.COMPRESSION.NONE
            and first.is_contiguous
            and contiguous_end <= tif.filehandle.size
        )
        if planes > pages * files and (broken or not fits_contiguous):
            raise ReadError(
                path,
                f"the file is truncated or its header is corrupt: the {where} promises "
                f"{planes} planes but only {pages} are present",
            )
    if broken:
        raise ReadError(
            path,
            f"the file is truncated: only {pages} planes are present, and the last one "
            "points to more past the end of the file",
        )
    _CLAIMS_CHECKED.add(tif)


def _claimed_planes(tif: tifffile.TiffFile, first: Any, path: str) -> tuple[int, int, str] | None:
    """Planes the metadata promise, the files they are spread over, and which metadata."""
    if tif.is_ome and tif.ome_metadata:
        return _ome_claim(tif.ome_metadata, first, path)
    if tif.is_imagej and tif.imagej_metadata:
        meta = tif.imagej_metadata
        counts = [_count(meta.get(key, 1)) for key in ("frames", "slices", "channels")]
        if None in counts:
            return None  # tifffile ignores invalid ImageJ counts and reads the pages
        frames, slices, channels = counts
        # Channels stored as samples of one page (RGB, planar) are not planes.
        planes = frames * slices * (channels if first.samplesperpixel == 1 else 1)
        return (planes, 1, "ImageJ header") if planes > 1 else None
    if tif.is_shaped and tif.shaped_metadata:
        shape = tif.shaped_metadata[0].get("shape", ())
        counts = [_count(n) for n in shape]
        if not counts or None in counts:
            return None
        planes = math.prod(counts) // max(math.prod(first.shape), 1)
        return (planes, 1, "tifffile shape metadata") if planes > 1 else None
    return None


def _ome_claim(xml: str, first: Any, path: str) -> tuple[int, int, str]:
    """Planes the OME images claim (SizeZ x SizeT x SizeC / samples) and their file count.

    Raises
    ------
    ReadError
        If a size is not a positive integer or one plane would exceed
        :data:`MAX_PLANE_BYTES`.
    """
    images = tifffile.xml2dict(xml).get("OME", {}).get("Image", [])
    images = images if isinstance(images, list) else [images]
    samples = max(int(first.samplesperpixel), 1)
    itemsize = np.dtype(first.dtype).itemsize if first.dtype is not None else 1
    planes = 0
    files: set[str] = set()
    for image in images:
        pixels = image.get("Pixels", {}) if isinstance(image, dict) else {}
        pixels = pixels if isinstance(pixels, dict) else {}
        sizes = {axis: _count(pixels.get(f"Size{axis}", 1)) for axis in "XYZCT"}
        if any(not size for size in sizes.values()):
            given = ", ".join(f"Size{axis}={pixels.get('Size' + axis)!r}" for axis in sizes)
            raise ReadError(path, f"the OME-XML gives an invalid image size ({given})")
        x, y, z, c, t = sizes.values()
        plane_bytes = x * y * samples * itemsize
        if plane_bytes > MAX_PLANE_BYTES:
            raise ReadError(
                path,
                f"the OME-XML claims planes of {x} x {y} pixels ({plane_bytes / 2**30:.1f} GiB), "
                f"over the {MAX_PLANE_BYTES / 2**30:.0f} GiB napari-bigvol reads per plane: "
                "the header is corrupt, or the file needs converting to zarr first",
            )
        planes += z * t * max(c // samples, 1)
        tiff_data = pixels.get("TiffData", [])
        for entry in tiff_data if isinstance(tiff_data, list) else [tiff_data]:
            uuid = entry.get("UUID") if isinstance(entry, dict) else None
            if isinstance(uuid, dict) and uuid.get("FileName"):
                files.add(str(uuid["FileName"]))
    return planes, max(len(files), 1), "OME-XML"


def _count(value: Any) -> int | None:
    """Return a size or count from metadata as a non-negative int, or None if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0 or number != int(number):
        return None
    return int(number)


def _page_chain_broken(tif: tifffile.TiffFile, pages: int) -> bool:
    """Whether the last page found points to a next page that is not (wholly) in the file.

    tifffile stops at such a pointer and logs an error, leaving a shorter file that reads
    as if complete.
    """
    layout = tif.tiff
    handle = tif.filehandle
    try:
        offset = tif.pages[pages - 1].offset
        handle.seek(offset)
        (tags,) = struct.unpack(layout.tagnoformat, handle.read(layout.tagnosize))
        handle.seek(offset + layout.tagnosize + tags * layout.tagsize)
        (following,) = struct.unpack(layout.offsetformat, handle.read(layout.offsetsize))
        if following == 0:
            return False
        if following + layout.tagnosize > handle.size:
            return True
        handle.seek(following)
        (tags,) = struct.unpack(layout.tagnoformat, handle.read(layout.tagnosize))
    except (struct.error, OSError):
        return True  # the last page itself ends early
    return following + layout.tagnosize + tags * layout.tagsize > handle.size


def _planes_in_shape(shape: Sequence[int], plane_shape: Sequence[int]) -> int:
    return math.prod(shape) // max(math.prod(plane_shape), 1)


def _planes_in(series: Any, plane_shape: tuple[int, ...]) -> int:
    return _planes_in_shape(series.shape, plane_shape)


def _pixels_per_unit(page: Any) -> dict[str, float]:
    """X/YResolution tags as pixels per resolution unit; (1, 1) means "not set"."""
    found = {}
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.valueof(tag)
        if value and value[0] and value[1] and value[0] != value[1]:
            found[axis] = value[0] / value[1]
    return found


def _resolution_spacing(page: Any) -> tuple[dict[str, float], str | None]:
    """Pixel size from the X/YResolution tags; empty if absent or a screen default."""
    unit_code = int(page.tags.valueof("ResolutionUnit", 1))
    spacing = {
        axis: _MM_PER_RESOLUTION_UNIT.get(unit_code, 1.0) / pixels
        for axis, pixels in _pixels_per_unit(page).items()
        if not (unit_code == 2 and pixels in _SCREEN_DPI)
    }
    unit = "millimeter" if unit_code in _MM_PER_RESOLUTION_UNIT and spacing else None
    return spacing, unit


def _ome_image(tif: tifffile.TiffFile, series_index: int) -> dict[str, Any] | None:
    if not tif.is_ome or not tif.ome_metadata:
        return None
    images = tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image", [])
    images = images if isinstance(images, list) else [images]
    return images[series_index] if series_index < len(images) else None


def _ome_metadata(image: dict[str, Any]) -> tuple[dict[str, Any], str | None, tuple[str, ...]]:
    """Physical sizes as written (checked by the caller), their unit, and channel names."""
    pixels = image.get("Pixels", {})
    spacing: dict[str, Any] = {}
    units: set[str | None] = set()
    for axis in "XYZ":
        size = pixels.get(f"PhysicalSize{axis}")
        if size is not None:
            spacing[axis] = size
            # OME's default unit is the micrometre.
            units.add(length_unit(pixels.get(f"PhysicalSize{axis}Unit", "µm")))
    channels = pixels.get("Channel", [])
    channels = channels if isinstance(channels, list) else [channels]
    names = tuple(str(c.get("Name", "")) for c in channels if isinstance(c, dict))
    # One unit for all axes or none: mixed units would need per-axis conversion.
    unit = units.pop() if len(units) == 1 else None
    return spacing, unit, names if all(names) else ()


def _imagej_metadata(
    tif: tifffile.TiffFile, page: Any
) -> tuple[dict[str, Any], str | None] | None:
    meta = tif.imagej_metadata
    if not meta:
        return None
    # ImageJ keeps its unit in the description; the tags hold pixels per that unit.
    unit = length_unit(meta.get("unit"))
    if unit is None:
        # No unit (or "pixel"): uncalibrated, as ImageJ and Fiji show it. A resolution
        # without a unit is no voxel size, so it is not turned into a scale in pixels.
        return {}, None
    spacing = {axis: 1 / pixels for axis, pixels in _pixels_per_unit(page).items()}
    # ImageJ's voxel depth defaults to 1 unit when the file does not say.
    spacing["Z"] = meta.get("spacing", 1.0)
    return spacing, unit


def series_of(tif: tifffile.TiffFile, path: str) -> list[Any]:
    """Return tifffile's series of ``tif`` once its header's claims are checked.

    Raises
    ------
    ReadError
        If the file holds fewer planes than its header promises, or is corrupt.
    """
    with _tiff_errors_as_read_error(path):
        _check_claimed_planes(tif, path)
        return list(tif.series)


def header_from(tif: tifffile.TiffFile, path: str, series_index: int = 0) -> TiffHeader:
    """Describe series ``series_index`` of an open TIFF without reading pixel data.

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file.
    path : str
        Its path, for error messages.
    series_index : int, optional
        Which series; the first by default.

    Returns
    -------
    TiffHeader
        Shape, axes, dtype, RGB flag, voxel size and channel names.

    Raises
    ------
    ReadError
        If the file holds no image or the series does not exist.

    Examples
    --------
    >>> tifffile.imwrite("stack.tif", np.zeros((40, 64, 32), np.uint16))
    >>> with tifffile.TiffFile("stack.tif") as tif:
    ...     header_from(tif, "stack.tif").shape
    (40, 64, 32)
    """
    series = _nth_series(tif, path, series_index)
    with _tiff_errors_as_read_error(path):
        page = series.keyframe
        plane_shape, rgb, samples_first = _page_layout(page)
        shape, axes = _series_axes(series, rgb)
        levels = tuple(_series_axes(level, rgb)[0] for level in series.levels[1:])
        spacing, unit, channel_names = _physical_metadata(tif, page, series_index, path)
        dtype = np.dtype(series.dtype)
        _check_plane_layout(path, shape, plane_shape, dtype)
        _check_page_data(page, path)  # tifffile checks a page's strip layout lazily, here
        row_block = _row_block(page, samples_first)
    return TiffHeader(
        path=path,
        series=series_index,
        shape=shape,
        axes=axes,
        plane_shape=plane_shape,
        dtype=dtype,
        rgb=rgb,
        spacing=spacing,
        unit=unit,
        channel_names=channel_names,
        level_shapes=levels,
        multifile=bool(series.is_multifile),
        row_block=row_block,
    )


def _nth_series(tif: tifffile.TiffFile, path: str, series_index: int) -> Any:
    """Return series ``series_index`` of ``tif``, checked as :func:`series_of` checks.

    Raises
    ------
    ReadError
        If the file holds no such series.
    """
    all_series = series_of(tif, path)
    if series_index >= len(all_series):
        raise ReadError(path, f"the file holds no image series {series_index}")
    return all_series[series_index]


def _physical_metadata(
    tif: tifffile.TiffFile, page: Any, series_index: int, path: str
) -> tuple[dict[str, float], str | None, tuple[str, ...]]:
    """Voxel size, its unit and channel names, from the best metadata the file holds.

    OME ``PhysicalSize`` wins over ImageJ's ``spacing``/``unit``, which wins over the
    resolution tags; every source is parsed, so a corrupt one is reported whichever wins.
    """
    spacing, unit = _resolution_spacing(page)
    channel_names: tuple[str, ...] = ()
    ome_image = _ome_image(tif, series_index)
    imagej = _imagej_metadata(tif, page)
    source = "the resolution tags"
    if ome_image is not None:
        spacing, unit, channel_names = _ome_metadata(ome_image)
        source = "OME PhysicalSize"
    elif imagej is not None:
        spacing, unit = imagej
        source = "ImageJ"
    return usable_sizes(spacing, path, source), unit, channel_names


def _check_plane_layout(
    path: str, shape: tuple[int, ...], plane_shape: tuple[int, ...], dtype: np.dtype
) -> None:
    """Refuse a series without 2-D planes, not ending with its plane, or with huge planes.

    Raises
    ------
    ReadError
        Naming ``path`` and the shapes involved.
    """
    if math.prod(plane_shape) == 0 or len(plane_shape) < 2:
        raise ReadError(path, f"the TIFF holds no 2-D image (page shape {plane_shape})")
    if shape[len(shape) - len(plane_shape) :] != plane_shape:
        raise ReadError(
            path,
            f"the series shape {shape} does not end with its page shape {plane_shape}: "
            "the file is corrupt",
        )
    plane_bytes = math.prod(plane_shape) * dtype.itemsize
    if plane_bytes > MAX_PLANE_BYTES:
        raise ReadError(
            path,
            f"one plane of shape {plane_shape} would take {plane_bytes / 2**30:.1f} GiB; "
            "napari-bigvol reads TIFFs plane by plane and refuses planes over "
            f"{MAX_PLANE_BYTES / 2**30:.0f} GiB (convert the file to zarr first)",
        )


def probe_tiff(path: str, series_index: int = 0) -> TiffHeader:
    """Read the header of one TIFF: shape, axes, dtype, voxel size; no pixel data.

    Parameters
    ----------
    path : str
        A TIFF, OME-TIFF or ImageJ TIFF file.
    series_index : int, optional
        Which image series to describe.

    Returns
    -------
    TiffHeader
        The description.

    Raises
    ------
    ReadError
        If the file is missing, not a TIFF, or corrupt.

    Examples
    --------
    >>> tifffile.imwrite("slice_0001.tif", np.zeros((64, 32), np.uint16))
    >>> probe_tiff("slice_0001.tif").plane_shape
    (64, 32)
    """
    with _open_existing(path) as tif:
        return header_from(tif, path, series_index)


class _HandleCache:
    """A few open multi-page TIFFs per process, so paging through one file parses it once.

    Keys include the modification time and size, so a file rewritten on disk is
    reopened (and checked again) rather than read through a stale page index.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], tuple[Any, threading.Lock]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[Any, threading.Lock]:
        """Return the open file at ``path`` and its lock (hold it to read through the file)."""
        return self.get_stamped(path)[:2]

    def get_stamped(self, path: str) -> tuple[Any, threading.Lock, tuple[str, int, int]]:
        """Return the open file, its lock, and its (path, mtime in ns, size) when opened."""
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return (*entry, key)
        opened = (_open_tiff(path), threading.Lock())
        with self._lock:
            entry = self._entries.setdefault(key, opened)
            if entry is not opened:  # another thread opened it first: keep theirs
                opened[0].close()
            while len(self._entries) > self.capacity:
                _, (old, old_lock) = self._entries.popitem(last=False)
                with old_lock:
                    old.close()
        return (*entry, key)

    def clear(self) -> None:
        """Close every cached file."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for handle, lock in entries:
            with lock:
                handle.close()


_HANDLES = _HandleCache()
atexit.register(_HANDLES.clear)


def _check_like_keyframe(page: Any, keyframe: Any, path: str) -> None:
    """Refuse a later page whose own tags describe another plane than its series' first.

    Decoding it would allocate what its tags claim (``ImageWidth=2**31-1`` asks for
    256 GiB) or cast samples of another kind (1-bit) without a word.
    """
    if page is keyframe:
        return
    if isinstance(page, tifffile.TiffFrame) and page.parent is keyframe.parent:
        # A frame borrows its keyframe's tags; parse the page's own to see what it claims.
        page.parent.filehandle.seek(page.offset)
        page = tifffile.TiffPage(page.parent, index=page.index)
    shape, dtype = tuple(page.shape), page.dtype
    if shape == tuple(keyframe.shape) and dtype == keyframe.dtype:
        return
    raise ReadError(
        path,
        f"page {page.index} claims planes of shape {shape} and dtype {dtype}, but its series "
        f"starts with shape {tuple(keyframe.shape)} and dtype {keyframe.dtype}: "
        "the file is corrupt",
    )


def _read_page(page: Any, path: str) -> np.ndarray:
    """Decode one page, opening its file for the read if it lives in a sibling file."""
    _check_page_data(page, path)
    handle = page.parent.filehandle
    if not handle.closed:
        return page.asarray()
    # Pages of a multi-file OME-TIFF belong to other files, which tifffile closes after
    # parsing the series.
    handle.open()
    try:
        return page.asarray()
    finally:
        handle.close()


def _read_contiguous(
    tif: tifffile.TiffFile, series: Any, page_index: int, path: str
) -> np.ndarray:
    """Read plane ``page_index`` of uncompressed data stored in one run after one page.

    ImageJ files over 4 GB, and files written with ``truncate=True``, describe all their
    planes by a single page: plane k sits at a fixed offset.
    """
    offset = series.dataoffset
    if offset is None:
        raise ReadError(path, "the pages of this series are not stored in a readable layout")
    page_shape = tuple(int(n) for n in series.keyframe.shape)
    dtype = np.dtype(series.dtype)
    count = math.prod(page_shape)
    start = offset + page_index * count * dtype.itemsize
    if start + count * dtype.itemsize > tif.filehandle.size:
        raise ReadError(path, f"the file is truncated: plane {page_index} lies past its end")
    raw = tif.filehandle.read_array(tif.byteorder + dtype.char, count, start)
    return raw.reshape(page_shape)


_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


def _rows_at(page: Any, samples_first: bool) -> tuple[int, bool] | None:
    """Where a page's pixels start, and whether their bytes need swapping, if rows read alone.

    That takes pixels stored uncompressed, in one run (strips or full-width tiles in
    order), without predictor or bit order to undo, and samples interleaved, so that rows
    ``a:b`` of the plane are one run of bytes. None for any other page.
    """
    if samples_first or page.dtype is None or not page.is_final:
        return None
    swap = page.parent.byteorder != _NATIVE_ORDER and page.dtype.itemsize > 1
    return int(page.dataoffsets[0]), swap


def _row_block(page: Any, samples_first: bool) -> int:
    """In runs of how many rows a page's rows can be read without the rest of the page.

    1 for pixels in one uncompressed run (:func:`_rows_at`); the rows of a strip for
    pixels in several strips (compressed, or with a predictor), each decoded alone; 0 for
    tiles, planar or subsampled samples, and a page in one compressed strip.
    """
    if _rows_at(page, samples_first) is not None:
        return 1
    strips = len(page.dataoffsets) > 1 and not page.is_tiled and page.imagedepth == 1
    if samples_first or page.dtype is None or page.is_subsampled or not strips:
        return 0
    return int(page.rowsperstrip)


@dataclass(frozen=True)
class _RowLayout:
    """Where a slice's rows are: from ``offset`` in one run, or (offset None) in strips."""

    offset: int | None
    swap: bool = False


@dataclass(frozen=True)
class _OpenFile:
    """A TIFF open for a read: cached facts about it are keyed by its identity.

    ``fd`` is the descriptor its pixels are read from; ``tif`` a weak reference to the
    parsed file, for a multi-page file kept open (weak: a cache keeps its keys, and must
    not keep a closed file's parsed pages). Neither is part of the identity.
    """

    path: str
    mtime_ns: int
    size: int
    fd: int = field(compare=False, hash=False)
    tif: Any = field(default=None, compare=False, hash=False)


@contextlib.contextmanager
def _parsed(opened: _OpenFile) -> Iterator[tifffile.TiffFile]:
    """Parse the TIFF open as ``opened`` through its descriptor (left open), from byte 0."""
    with open(opened.fd, "rb", closefd=False) as handle:
        handle.seek(0)  # tifffile starts where the handle is: a parse before moved it
        with tifffile.TiffFile(handle, name=opened.path) as tif:
            yield tif


# Bounded: a build reads the rows of each slice in turn, a few hundred slices at a time.
@functools.lru_cache(maxsize=4096)
def _slice_rows_at(opened: _OpenFile, loader: TiffPlanes) -> _RowLayout | None:
    """Where the rows of a slice file of ``loader`` are, checked as a plane read checks it.

    None when they cannot be read alone (the file is stored otherwise than the first).

    The header is parsed from the descriptor the rows are then read from, so the layout
    and the pixels come from the same file, and once per file (while its size and
    modification time stay the same), not once per run of rows.
    """
    with _parsed(opened) as tif:
        if len(tif.pages) != 1:
            return None  # a plane read says what is wrong with it, or reads it
        page, samples_first = loader.only_page(tif, opened.path)
        run = _rows_at(page, samples_first)
        if run is not None:
            return _RowLayout(*run)
        return _RowLayout(None) if _row_block(page, samples_first) else None


def _page_run(page: Any, plane_bytes: int) -> int | None:
    """Where a page's (or frame's) uncompressed pixels start, if its segments are one run."""
    offsets, counts = page.dataoffsets, page.databytecounts
    consecutive = all(o + c == n for o, c, n in zip(offsets, counts, offsets[1:], strict=False))
    if not offsets or not consecutive or sum(counts) < plane_bytes:
        return None
    return int(offsets[0])


def _decode_strip_rows(handle: Any, page: Any, rows: slice, out: np.ndarray) -> None:
    """Decode the strips of ``page`` that rows ``rows`` lie in, into ``out``."""
    per_strip = int(page.keyframe.rowsperstrip)
    decode = page.keyframe.decode
    for strip in range(rows.start // per_strip, -(-rows.stop // per_strip)):
        handle.seek(page.dataoffsets[strip])
        data = handle.read(page.databytecounts[strip]) or None
        segment, _, _ = decode(data, strip, jpegtables=page.keyframe.jpegtables)
        top = strip * per_strip
        if segment is None:  # an empty strip reads as zeros, as tifffile reads it
            segment = np.zeros((per_strip, *out.shape[1:]), out.dtype)
        segment = segment.reshape(-1, *out.shape[1:])
        first, last = max(rows.start, top), min(rows.stop, top + len(segment))
        out[first - rows.start : last - rows.start] = segment[first - top : last - top]


class TiffPlanes:
    """Picklable loader of plane ``i`` from a list of TIFFs with equal page layout.

    Plane ``i`` is page ``i % planes_per_file`` of series ``series`` (pyramid level
    ``level``) of file ``i // planes_per_file``. Every file is checked against the first
    file's header when it is read: a different plane shape, dtype or plane count raises
    a :class:`ReadError` naming the file.

    Parameters
    ----------
    files : sequence of str
        The files, in stack order.
    planes_per_file : int
        Planes in each file's series (1 for a folder of single-page slices).
    plane_shape : tuple of int
        Expected plane shape, RGB samples last.
    dtype : numpy dtype
        Expected pixel type.
    series : int, optional
        Series index inside each file.
    level : int, optional
        Pyramid level of that series.
    row_block : int, optional
        In runs of how many rows the files' rows can be read alone
        (:attr:`TiffHeader.row_block` of the first file; 0: they cannot). With one page
        per file, :meth:`read_rows` then reads just the rows asked for.

    Examples
    --------
    >>> for name in ("a.tif", "b.tif"):
    ...     tifffile.imwrite(name, np.arange(64 * 32, dtype=np.uint16).reshape(64, 32))
    >>> load = TiffPlanes(["a.tif", "b.tif"], 1, (64, 32), "uint16", row_block=1)
    >>> load(1).shape
    (64, 32)
    >>> rows = np.empty((2, 32), np.uint16)
    >>> load.read_rows(1, slice(10, 12), rows)
    >>> int(rows[0, 0])
    320
    """

    def __init__(
        self,
        files: Sequence[str],
        planes_per_file: int,
        plane_shape: Sequence[int],
        dtype: np.dtype | str,
        *,
        series: int = 0,
        level: int = 0,
        row_block: int = 0,
    ) -> None:
        self.files = tuple(files)
        self.planes_per_file = planes_per_file
        self.plane_shape = tuple(plane_shape)
        self.dtype = np.dtype(dtype)
        self.series = series
        self.level = level
        #: In runs of how many rows :meth:`read_rows` reads only those rows (0: it reads
        #: the whole plane).
        self.row_block = row_block if level == 0 else 0
        # Equal loaders (a copy unpickled on a cluster worker, one per task) share the
        # parsed slice headers of :func:`_slice_rows_at`.
        self._identity = (files_token(self.files), planes_per_file, self.plane_shape)
        self._identity += (self.dtype.str, series, level)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TiffPlanes) and other._identity == self._identity

    def __hash__(self) -> int:
        return hash(self._identity)

    def __call__(self, index: int) -> np.ndarray:
        """Return plane ``index`` of the stack as a numpy array."""
        file_index, page_index = divmod(index, self.planes_per_file)
        path = self.files[file_index]
        try:
            if self._one_page_per_file:
                # One page per file (a folder of slices): open, read, close.
                with _open_tiff(path) as tif:
                    return self._read_only_page(tif, path)
            tif, lock = _HANDLES.get(path)
            with lock:
                return self._read_series_page(tif, path, page_index)
        except ReadError:  # already names the file and the problem
            raise
        except FileNotFoundError as exc:
            raise ReadError(path, "the file has disappeared since the stack was opened") from exc
        except _BROKEN_FILE_ERRORS as exc:
            raise ReadError(path, f"cannot read plane {page_index}: {_reason(exc)}") from exc

    def read_rows(self, index: int, rows: slice, out: np.ndarray) -> None:
        """Fill ``out`` with rows ``rows`` (of the plane's first axis) of plane ``index``.

        Rows stored uncompressed in one run are read from the file straight into ``out``
        (a slice file's header is parsed at its first read only; a multi-page file stays
        open); rows in compressed strips are read by decoding the strips they lie in.
        Without :attr:`row_block`, or for a page stored otherwise (in one compressed
        strip among pages in several), the plane is read whole, then cut.

        Raises
        ------
        ReadError
            As for a plane read, naming the file.
        """
        file_index, page_index = divmod(index, self.planes_per_file)
        path = self.files[file_index]
        if not self.row_block:
            out[...] = self(index)[rows]
            return
        try:
            if self._one_page_per_file:
                _read_slice_rows(self, path, index, rows, out)
            else:
                _read_multipage_rows(self, path, page_index, rows, out)
        except ReadError:
            raise
        except FileNotFoundError as exc:
            raise ReadError(path, "the file has disappeared since the stack was opened") from exc
        except _BROKEN_FILE_ERRORS as exc:
            raise ReadError(path, f"cannot read plane {page_index}: {_reason(exc)}") from exc

    @property
    def _one_page_per_file(self) -> bool:
        """Whether every file is one plane (a folder of slices), read without series."""
        return self.planes_per_file == 1 and self.series == 0 and self.level == 0

    def _require_match(
        self, path: str, shape: tuple[int, ...], dtype: np.dtype, planes: int
    ) -> None:
        """Refuse a file whose planes differ from the first file's."""
        if shape == self.plane_shape and dtype == self.dtype and planes == self.planes_per_file:
            return
        raise ReadError(
            path,
            f"this slice holds {planes} plane(s) of shape {shape} and dtype {dtype}, but "
            f"{os.path.basename(self.files[0])} (the first file) holds {self.planes_per_file} "
            f"plane(s) of shape {self.plane_shape} and dtype {self.dtype}; every file of "
            "a stack must match",
        )

    def only_page(self, tif: tifffile.TiffFile, path: str) -> tuple[Any, bool]:
        """Return a slice file's page, checked against the stack, and if samples come first.

        Series are parsed only if the file holds more than one page.

        Raises
        ------
        ReadError
            If the file's planes differ from the first file's, or its pixel data lie
            past its end.
        """
        page = tif.pages.first
        shape, _, samples_first = _page_layout(page)
        planes = 1
        if len(tif.pages) != 1:
            _check_claimed_planes(tif, path)
            planes = _planes_in(tif.series[0], shape)
        self._require_match(path, shape, np.dtype(page.dtype), planes)
        _check_page_data(page, path)
        return page, samples_first

    def _read_only_page(self, tif: tifffile.TiffFile, path: str) -> np.ndarray:
        """Read a slice file's page."""
        page, samples_first = self.only_page(tif, path)
        return self.finish(page.asarray(), samples_first)

    def _checked_series(self, tif: tifffile.TiffFile, path: str) -> tuple[Any, Any, bool]:
        """Return the series (at this level) of ``tif``, its keyframe, and if samples come first.

        Raises
        ------
        ReadError
            If the file holds fewer planes than it claims, not the series, or planes that
            differ from the first file's.
        """
        _check_claimed_planes(tif, path)
        if self.series >= len(tif.series):
            raise ReadError(path, f"the file holds no image series {self.series}")
        series = tif.series[self.series].levels[self.level]
        keyframe = series.keyframe
        shape, _, samples_first = _page_layout(keyframe)
        planes = _planes_in(series, shape)
        self._require_match(path, shape, np.dtype(series.dtype), planes)
        return series, keyframe, samples_first

    def _read_series_page(self, tif: tifffile.TiffFile, path: str, page_index: int) -> np.ndarray:
        """Read page ``page_index`` of this loader's series and pyramid level."""
        series, keyframe, samples_first = self._checked_series(tif, path)
        if len(series) != self.planes_per_file:
            return self.finish(_read_contiguous(tif, series, page_index, path), samples_first)
        page = series[page_index]
        if page is None:  # OME-TIFF may leave planes out; they read as zeros
            return np.zeros(self.plane_shape, self.dtype)
        _check_like_keyframe(page, keyframe, path)
        return self.finish(_read_page(page, path), samples_first)

    def finish(self, plane: np.ndarray, samples_first: bool) -> np.ndarray:
        """Return a decoded page as a plane of the stack: samples last, exact shape, dtype."""
        if samples_first:
            plane = np.moveaxis(plane, 0, -1)
        # tifffile squeezes length-1 axes from a page; the stack wants the exact plane shape.
        return plane.reshape(self.plane_shape).astype(self.dtype, copy=False)


def _read_slice_rows(
    loader: TiffPlanes, path: str, index: int, rows: slice, out: np.ndarray
) -> None:
    """:meth:`TiffPlanes.read_rows` of a slice file, through a descriptor of its own."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        stat = os.fstat(descriptor)
        opened = _OpenFile(path, stat.st_mtime_ns, stat.st_size, descriptor)
        layout = _slice_rows_at(opened, loader)
        if layout is None:
            out[...] = loader(index)[rows]
        elif layout.offset is None:
            with _parsed(opened) as tif:
                page, _ = loader.only_page(tif, opened.path)
                _decode_strip_rows(tif.filehandle, page, rows, out)
        else:
            _pread_rows(opened, layout, rows, out)
    finally:
        os.close(descriptor)


def _read_multipage_rows(
    loader: TiffPlanes, path: str, page_index: int, rows: slice, out: np.ndarray
) -> None:
    """:meth:`TiffPlanes.read_rows` of page ``page_index`` of a multi-page file.

    Where the page's pixels are is found and checked once per page (kept by the file's
    identity); each run of rows is then one ``pread`` through the file's shared open
    handle, under its lock: one open file for the whole build. Checking the page again
    for every run of rows made a 4 GB build of 2,000 pages 1.3-1.7x slower than
    whole-page reads (12.3-14.6 s against 7.2-10.9 s).
    """
    tif, lock, (_, mtime_ns, size) = _HANDLES.get_stamped(path)
    with lock:
        opened = _OpenFile(path, mtime_ns, size, tif.filehandle.fileno(), weakref.ref(tif))
        layout = _page_rows_at(opened, loader, page_index)
        if layout is None:
            _read_page_rows(loader, tif, path, page_index, rows, out)
        else:
            _pread_rows(opened, layout, rows, out)


@functools.lru_cache(maxsize=4096)
def _page_rows_at(opened: _OpenFile, loader: TiffPlanes, page_index: int) -> _RowLayout | None:
    """Where page ``page_index`` of an open multi-page file keeps its pixels in one run.

    The caller holds the file's lock. None for any other page (compressed, a gap, in
    another file): it is read through tifffile.
    """
    tif = opened.tif()  # alive: the caller holds it
    series, keyframe, samples_first = loader._checked_series(tif, opened.path)
    run = _rows_at(keyframe, samples_first)
    plane_bytes = math.prod(loader.plane_shape) * loader.dtype.itemsize
    if run is None:
        return None
    if len(series) != loader.planes_per_file:  # planes in one run after a single page
        start = series.dataoffset + page_index * plane_bytes
        if start + plane_bytes > opened.size:
            raise ReadError(opened.path, "the file is truncated: a plane lies past its end")
        return _RowLayout(start, run[1])
    page = series[page_index]
    if page is None or page.parent is not tif:
        return None
    _check_like_keyframe(page, keyframe, opened.path)
    _check_page_data(page, opened.path)
    start = _page_run(page, plane_bytes)
    return None if start is None else _RowLayout(start, run[1])


def _read_page_rows(
    loader: TiffPlanes,
    tif: tifffile.TiffFile,
    path: str,
    page_index: int,
    rows: slice,
    out: np.ndarray,
) -> None:
    """Rows of a page not stored in one run: its strips decoded, or the page read whole."""
    series, keyframe, samples_first = loader._checked_series(tif, path)
    if len(series) != loader.planes_per_file:  # planes in one run, rows not alone: whole
        plane = _read_contiguous(tif, series, page_index, path)
        out[...] = loader.finish(plane, samples_first)[rows]
        return
    page = series[page_index]
    if page is None:  # OME-TIFF may leave planes out; they read as zeros
        out[...] = 0
        return
    _check_like_keyframe(page, keyframe, path)
    _check_page_data(page, path)
    if page.parent is tif and _row_block(keyframe, samples_first) > 1:
        _decode_strip_rows(tif.filehandle, page, rows, out)
    else:  # uncompressed strips apart, or a page of another file of a multi-file set
        out[...] = loader.finish(_read_page(page, path), samples_first)[rows]


def _pread_rows(opened: _OpenFile, layout: _RowLayout, rows: slice, out: np.ndarray) -> None:
    """Read rows ``rows`` of an uncompressed slice at ``layout`` into ``out``."""
    offset, swap = layout.offset, layout.swap
    row_bytes = out[0].nbytes if len(out) else 0
    target = out if out.flags.c_contiguous else np.empty_like(out)
    wanted = target.nbytes
    # The header was checked against this size (_check_page_data): only a file cut
    # since then reads short.
    start = offset + rows.start * row_bytes
    if wanted and os.preadv(opened.fd, [memoryview(target).cast("B")], start) != wanted:
        raise ReadError(opened.path, "the file was truncated while it was read")
    if swap:
        target.byteswap(inplace=True)
    if target is not out:
        out[...] = target


def tiff_stack(
    files: Sequence[str],
    header: TiffHeader,
    *,
    level: int = 0,
    stamp: tuple[Any, ...] = (),
) -> PlaneStack:
    """Lazy dask array of ``files`` stacked along new leading axes, one task per plane.

    Parameters
    ----------
    files : sequence of str
        Files that all match ``header`` (checked when each plane is read).
    header : TiffHeader
        Header of the first file.
    level : int, optional
        Pyramid level to read.
    stamp : tuple, optional
        Extra values (such as the first file's mtime and size) that make the dask key
        change when the files change.

    Returns
    -------
    PlaneStack
        Its array has shape ``(len(files), *series_shape)`` for several files and
        ``series_shape`` for one.

    Examples
    --------
    >>> files = ["slice_0001.tif", "slice_0002.tif"]
    >>> for name in files:
    ...     tifffile.imwrite(name, np.zeros((64, 32), np.uint16))
    >>> header = probe_tiff(files[0])
    >>> tiff_stack(files, header).array.shape
    (2, 64, 32)
    """
    shape = header.shape if level == 0 else header.level_shapes[level - 1]
    # A pyramid level keeps the plane's rank; its size is the tail of the level's shape.
    plane_shape = shape[len(shape) - len(header.plane_shape) :] if level else header.plane_shape
    planes = _planes_in_shape(shape, plane_shape)
    loader = TiffPlanes(
        files,
        planes,
        plane_shape,
        header.dtype,
        series=header.series,
        level=level,
        row_block=header.row_block,
    )
    name = "bigvol-tiff-" + files_token(
        files, planes, plane_shape, header.dtype.str, header.series, level, stamp
    )
    stack = stack_planes(loader, len(files) * planes, plane_shape, header.dtype, name=name)
    full_shape = shape if len(files) == 1 else (len(files), *shape)
    planes_stack = PlaneStack(stack, loader, len(plane_shape))
    return planes_stack.reshaped(full_shape) if stack.shape != full_shape else planes_stack


def files_token(files: Sequence[str], *extra: Any) -> str:
    """Deterministic token for a file list plus small extra values.

    Hashing the joined names is four times faster than ``dask.base.tokenize`` on a
    tuple of 2,000 paths, which matters for open time.

    Examples
    --------
    >>> files_token(["a.tif", "b.tif"], 1) == files_token(["a.tif", "b.tif"], 1)
    True
    """
    names = hashlib.md5("\0".join(files).encode(), usedforsecurity=False).hexdigest()
    return tokenize(names, *extra)


def file_stamp(path: str) -> tuple[int, int]:
    """``(mtime_ns, size)`` of ``path``, used to make dask keys change with the file.

    Examples
    --------
    >>> len(file_stamp(__file__))
    2
    """
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


# tifffile axis letters to napari axis labels; I and Q (unnamed page axes) mean z when
# the file has no Z axis of its own.
_AXIS_LABELS = {"T": "t", "Z": "z", "C": "c", "Y": "y", "X": "x", "S": "c", "E": "lambda"}
_SPATIAL = frozenset("XYZ")


def _axis_letters(axes: str) -> str:
    if "Z" not in axes:
        for unnamed in "IQ":
            if unnamed in axes:
                return axes.replace(unnamed, "Z", 1)
    return axes


def initial_plane_index(shape: Sequence[int], displayed: int = 2) -> tuple[int, ...]:
    """Index of the plane napari shows first: the middle of every non-displayed axis.

    napari 0.9 starts each slider at ``(n - 1) // 2`` (checked with
    ``ViewerModel().add_image(...)``; ``dims.current_step`` is ``(4, 2, 2)`` for shape
    ``(10, 6, 6)``), so that is the plane sampled for contrast limits.

    Parameters
    ----------
    shape : sequence of int
        Shape of the layer data (without an RGB axis).
    displayed : int, optional
        Number of trailing displayed axes.

    Returns
    -------
    tuple of int
        One index per leading axis.

    Examples
    --------
    >>> initial_plane_index((10, 5, 6, 6))
    (4, 2)
    """
    return tuple((n - 1) // 2 for n in shape[: len(shape) - displayed])


def _value_range(plane: np.ndarray) -> tuple[float, float]:
    finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low, low + 1.0)


def _contrast_limits(smallest: PlaneStack, channel_axis: int | None, rgb: bool) -> Any:
    """Limits from the dtype (bool, uint8) or from the plane napari displays first."""
    dtype = np.dtype(smallest.array.dtype)
    if rgb:
        return None  # napari takes RGB limits from the dtype without reading
    if dtype == np.bool_:
        return (0, 1)
    if dtype == np.uint8:
        return (0, 255)
    shape = smallest.array.shape
    leading = len(shape) - smallest.plane_ndim
    middle = initial_plane_index(shape[:leading], displayed=0)
    channels = [None] if channel_axis is None else range(shape[channel_axis])
    limits = []
    for channel in channels:
        index = list(middle)
        if channel is not None and channel_axis < leading:
            index[channel_axis] = channel
        plane = smallest.load_plane(int(np.ravel_multi_index(index, shape[:leading])))
        if channel is not None and channel_axis >= leading:  # channels inside the plane
            plane = np.take(plane, channel, axis=channel_axis - leading)
        limits.append(_value_range(plane))
    return limits[0] if channel_axis is None else limits


def layer_data(
    levels: list[PlaneStack],
    axes: str,
    *,
    rgb: bool,
    spacing: dict[str, float],
    unit: str | None,
    channel_names: Sequence[str] = (),
    name: str,
    source: dict[str, Any],
) -> tuple[Any, dict[str, Any], str]:
    """Build napari image layer data from lazy arrays and tifffile-style axis letters.

    Shared by the single-file TIFF reader and the image-sequence reader, so both give
    the same kwargs: ``axis_labels`` from the axis letters, ``scale`` and ``units`` from
    the voxel size (z spacing assumed equal to x when only the in-plane size is known;
    recorded in ``metadata["bigvol"]["assumed_z_spacing"]``), ``channel_axis`` and
    channel names for a ``C`` axis, ``rgb`` for an RGB samples axis, and contrast
    limits from the dtype or the plane napari shows first.

    Parameters
    ----------
    levels : list of PlaneStack
        The image, or its pyramid levels largest first. The smallest level's loader
        reads the one plane sampled for contrast limits.
    axes : str
        One letter per axis of ``levels[0]`` (``T``, ``C``, ``Z``, ``Y``, ``X``, ``S``,
        ``I``/``Q`` for unnamed axes).
    rgb : bool
        Whether the last axis holds RGB(A) samples.
    spacing : dict
        Physical size per axis letter, for example ``{"X": 0.5, "Y": 0.5, "Z": 2.0}``.
    unit : str or None
        pint unit of ``spacing``.
    channel_names : sequence of str, optional
        One name per channel, if known.
    name : str
        Layer name (channel layers get the channel name appended).
    source : dict
        Facts about the source stored under ``metadata["bigvol"]``.

    Returns
    -------
    tuple
        ``(data, kwargs, "image")``.

    Examples
    --------
    >>> import dask.array as da
    >>> zeros = da.zeros((4, 8, 8), dtype="uint8")
    >>> stack = PlaneStack(zeros, lambda i: zeros[i].compute(), plane_ndim=2)
    >>> data, kwargs, kind = layer_data(
    ...     [stack], "ZYX", rgb=False,
    ...     spacing={"X": 0.5, "Y": 0.5, "Z": 2.0}, unit="micrometer", name="stack",
    ...     source={})
    >>> kwargs["scale"], kwargs["axis_labels"]
    ((2.0, 0.5, 0.5), ('z', 'y', 'x'))
    """
    letters = _axis_letters(axes)
    channel_axis = _channel_axis(letters, rgb, levels[0].array.shape)
    layer_axes = _layer_axes(letters, channel_axis, rgb)
    spacing, assumed_z = _spacing_with_z(spacing, letters)
    kwargs: dict[str, Any] = {
        "name": name,
        **_axes_kwargs(layer_axes, spacing, unit),
        "rgb": rgb,
        "multiscale": len(levels) > 1,
        "metadata": {"bigvol": {**source, "axes": letters, "assumed_z_spacing": assumed_z}},
    }
    limits = _contrast_limits(levels[-1], channel_axis, rgb)
    if limits is not None:
        kwargs["contrast_limits"] = limits
    if channel_axis is not None:
        count = levels[0].array.shape[channel_axis]
        _split_channels(kwargs, channel_axis, _channel_names(channel_names, count))
    arrays = [level.array for level in levels]
    return (arrays if len(arrays) > 1 else arrays[0]), kwargs, "image"


def _channel_axis(letters: str, rgb: bool, shape: Sequence[int]) -> int | None:
    """Index of the axis napari splits into channel layers, or None.

    A ``C`` axis, else a samples axis that is not RGB; a channel axis of length 1 is no
    channel axis.

    Examples
    --------
    >>> _channel_axis("CYX", False, (2, 8, 8)), _channel_axis("YXS", True, (8, 8, 3))
    (0, None)
    """
    letter = "C" if "C" in letters else ("S" if "S" in letters and not rgb else None)
    axis = letters.index(letter) if letter else None
    return None if axis is None or shape[axis] == 1 else axis


def _layer_axes(letters: str, channel_axis: int | None, rgb: bool) -> list[str]:
    """Axis letters of each channel layer: no channel axis, no trailing RGB axis.

    Examples
    --------
    >>> _layer_axes("CZYX", 0, False), _layer_axes("YXS", None, True)
    (['Z', 'Y', 'X'], ['Y', 'X'])
    """
    return [
        letter
        for index, letter in enumerate(letters)
        if index != channel_axis and not (rgb and index == len(letters) - 1)
    ]


def _axes_kwargs(
    layer_axes: Sequence[str], spacing: dict[str, float], unit: str | None
) -> dict[str, Any]:
    """``scale``, ``axis_labels`` and (when the unit is known) ``units`` of the layer axes.

    Examples
    --------
    >>> _axes_kwargs(["Z", "Y", "X"], {"X": 0.5, "Y": 0.5, "Z": 2.0}, "micrometer")["scale"]
    (2.0, 0.5, 0.5)
    """
    kwargs: dict[str, Any] = {
        "scale": tuple(float(spacing.get(letter, 1.0)) for letter in layer_axes),
        "axis_labels": tuple(_AXIS_LABELS.get(letter, letter.lower()) for letter in layer_axes),
    }
    if unit is not None:
        kwargs["units"] = tuple(unit if letter in _SPATIAL else "pixel" for letter in layer_axes)
    return kwargs


def _spacing_with_z(spacing: dict[str, float], letters: str) -> tuple[dict[str, float], bool]:
    """Copy ``spacing``, with z spacing equal to x when only in-plane sizes are known.

    Returns the spacing and whether z was assumed.

    Examples
    --------
    >>> _spacing_with_z({"X": 0.5, "Y": 0.5}, "ZYX")
    ({'X': 0.5, 'Y': 0.5, 'Z': 0.5}, True)
    """
    spacing = dict(spacing)
    assumed_z = "Z" in letters and "Z" not in spacing and "X" in spacing
    if assumed_z:
        spacing["Z"] = spacing["X"]
    return spacing, assumed_z


def _channel_names(given: Sequence[str], count: int) -> list[str]:
    """Return the given names if there is one per channel, else ``c0``, ``c1``, ...

    Examples
    --------
    >>> _channel_names(["DAPI"], 2)
    ['c0', 'c1']
    """
    names = list(given) if len(given) == count else []
    return names or [f"c{index}" for index in range(count)]


def _split_channels(kwargs: dict[str, Any], channel_axis: int, names: Sequence[str]) -> None:
    """Make ``kwargs`` split ``channel_axis`` into layers named after ``names``."""
    kwargs["channel_axis"] = channel_axis
    kwargs["name"] = [f"{kwargs['name']} {channel}" for channel in names]
    kwargs["metadata"]["bigvol"]["channel_names"] = tuple(names)


def read_tiff_file(path: str) -> list[tuple[Any, dict[str, Any], str]]:
    """Open one TIFF file (multi-page, ImageJ hyperstack, OME-TIFF) lazily.

    Each series becomes an image layer. Axes, voxel size, units and channel names come
    from the file's metadata; a channel axis becomes napari's ``channel_axis`` and
    pyramidal OME-TIFF series become multiscale layers. Opening reads the header and
    the plane napari displays first (for the contrast limits), nothing else.

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    list of tuple
        ``(data, kwargs, "image")`` per series.

    Raises
    ------
    ReadError
        If the file is not a readable TIFF.

    Examples
    --------
    >>> tifffile.imwrite("hyperstack.tif", np.zeros((3, 4, 16, 16), np.uint8), imagej=True,
    ...                  resolution=(2.0, 2.0),
    ...                  metadata={"axes": "TZYX", "spacing": 2.0, "unit": "um"})
    >>> [(data, kwargs, kind)] = read_tiff_file("hyperstack.tif")
    >>> kwargs["axis_labels"], kwargs["scale"]
    (('t', 'z', 'y', 'x'), (1.0, 2.0, 0.5, 0.5))
    """
    with _open_existing(path) as tif:
        headers = [header_from(tif, path, index) for index in range(len(series_of(tif, path)))]
    if not headers:
        raise ReadError(path, "the file holds no image")
    stamp = file_stamp(path)
    base = os.path.basename(path)
    layers = []
    for header in headers:
        levels = [
            tiff_stack([path], header, level=level, stamp=stamp)
            for level in range(1 + len(header.level_shapes))
        ]
        name = base if len(headers) == 1 else f"{base} [{header.series}]"
        layers.append(
            layer_data(
                levels,
                header.axes,
                rgb=header.rgb,
                spacing=header.spacing,
                unit=header.unit,
                channel_names=header.channel_names,
                name=name,
                source={"path": path, "series": header.series},
            )
        )
    return layers
