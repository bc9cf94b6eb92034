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
import hashlib
import math
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import numpy as np
import tifffile
from dask.base import tokenize

from napari_bigvol.errors import ReadError
from napari_bigvol.io._planes import stack_planes
from napari_bigvol.units import length_unit

TIFF_SUFFIXES = (".tif", ".tiff")

# What tifffile raises for files that are not TIFF, are truncated or hold garbage.
_BROKEN_FILE_ERRORS = (tifffile.TiffFileError, ValueError, OSError, struct.error, EOFError)
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


def _open_tiff(path: str) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(path)
    except FileNotFoundError:
        raise  # callers know whether the file is missing or has vanished
    except _BROKEN_FILE_ERRORS as exc:
        raise ReadError(path, f"not a readable TIFF file ({exc})") from exc


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
    end = max(
        (o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True)), default=0
    )
    if end > size:
        raise ReadError(
            path,
            f"the file is truncated: pixel data of page {page.index} ends at byte {end} "
            f"but the file has only {size} bytes",
        )


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


def _ome_metadata(image: dict[str, Any]) -> tuple[dict[str, float], str | None, tuple[str, ...]]:
    pixels = image.get("Pixels", {})
    spacing: dict[str, float] = {}
    units: set[str | None] = set()
    for axis in "XYZ":
        size = pixels.get(f"PhysicalSize{axis}")
        if size:
            spacing[axis] = float(size)
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
) -> tuple[dict[str, float], str | None] | None:
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
    spacing["Z"] = float(meta.get("spacing") or 1.0)
    return spacing, unit


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
    try:
        all_series = tif.series
        if series_index >= len(all_series):
            raise ReadError(path, f"the file holds no image series {series_index}")
        series = all_series[series_index]
        page = series.keyframe
        plane_shape, rgb, _ = _page_layout(page)
        shape, axes = _series_axes(series, rgb)
        levels = tuple(_series_axes(level, rgb)[0] for level in series.levels[1:])
        spacing, unit = _resolution_spacing(page)
        channel_names: tuple[str, ...] = ()
        ome_image = _ome_image(tif, series_index)
        imagej = _imagej_metadata(tif, page)
        if ome_image is not None:
            spacing, unit, channel_names = _ome_metadata(ome_image)
        elif imagej is not None:
            spacing, unit = imagej
        dtype = np.dtype(series.dtype)
    except ReadError:
        raise
    except _BROKEN_FILE_ERRORS as exc:
        raise ReadError(path, f"not a readable TIFF file ({exc})") from exc
    if math.prod(plane_shape) == 0 or len(plane_shape) < 2:
        raise ReadError(path, f"the TIFF holds no 2-D image (page shape {plane_shape})")
    plane_bytes = math.prod(plane_shape) * dtype.itemsize
    if plane_bytes > MAX_PLANE_BYTES:
        raise ReadError(
            path,
            f"one plane of shape {plane_shape} would take {plane_bytes / 2**30:.1f} GiB; "
            "napari-bigvol reads TIFFs plane by plane and refuses planes over "
            f"{MAX_PLANE_BYTES / 2**30:.0f} GiB (convert the file to zarr first)",
        )
    _check_page_data(page, path)
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
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
        opened = (_open_tiff(path), threading.Lock())
        with self._lock:
            entry = self._entries.setdefault(key, opened)
            if entry is not opened:  # another thread opened it first: keep theirs
                opened[0].close()
            while len(self._entries) > self.capacity:
                _, (old, old_lock) = self._entries.popitem(last=False)
                with old_lock:
                    old.close()
        return entry

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

    Examples
    --------
    >>> for name in ("a.tif", "b.tif"):
    ...     tifffile.imwrite(name, np.zeros((64, 32), np.uint16))
    >>> load = TiffPlanes(["a.tif", "b.tif"], 1, (64, 32), "uint16")
    >>> load(1).shape
    (64, 32)
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
    ) -> None:
        self.files = tuple(files)
        self.planes_per_file = planes_per_file
        self.plane_shape = tuple(plane_shape)
        self.dtype = np.dtype(dtype)
        self.series = series
        self.level = level

    def __call__(self, index: int) -> np.ndarray:
        """Return plane ``index`` of the stack as a numpy array."""
        file_index, page_index = divmod(index, self.planes_per_file)
        path = self.files[file_index]
        try:
            if self.planes_per_file == 1 and self.series == 0 and self.level == 0:
                # One page per file (a folder of slices): open, read, close.
                with _open_tiff(path) as tif:
                    return self._read(tif, path, 0)
            tif, lock = _HANDLES.get(path)
            with lock:
                return self._read(tif, path, page_index)
        except ReadError:  # already names the file and the problem
            raise
        except FileNotFoundError as exc:
            raise ReadError(path, "the file has disappeared since the stack was opened") from exc
        except _BROKEN_FILE_ERRORS as exc:
            raise ReadError(path, f"cannot read plane {page_index}: {exc}") from exc

    def _mismatch(self, path: str, shape: tuple[int, ...], dtype: np.dtype, planes: int) -> str:
        return (
            f"this slice holds {planes} plane(s) of shape {shape} and dtype {dtype}, but "
            f"{os.path.basename(self.files[0])} (the first file) holds {self.planes_per_file} "
            f"plane(s) of shape {self.plane_shape} and dtype {self.dtype}; every file of "
            "a stack must match"
        )

    def _read(self, tif: tifffile.TiffFile, path: str, page_index: int) -> np.ndarray:
        if self.planes_per_file == 1 and self.series == 0 and self.level == 0:
            # Fast path for a folder of slices: the first page, without parsing series
            # unless the file unexpectedly holds more pages.
            page = tif.pages.first
            shape, _, samples_first = _page_layout(page)
            dtype = np.dtype(page.dtype)
            planes = 1 if len(tif.pages) == 1 else _planes_in(tif.series[0], shape)
            if shape != self.plane_shape or dtype != self.dtype or planes != 1:
                raise ReadError(path, self._mismatch(path, shape, dtype, planes))
            _check_page_data(page, path)
            return self._finish(page.asarray(), samples_first)
        if self.series >= len(tif.series):
            raise ReadError(path, f"the file holds no image series {self.series}")
        series = tif.series[self.series].levels[self.level]
        keyframe = series.keyframe
        shape, _, samples_first = _page_layout(keyframe)
        dtype = np.dtype(series.dtype)
        planes = _planes_in(series, shape)
        if shape != self.plane_shape or dtype != self.dtype or planes != self.planes_per_file:
            raise ReadError(path, self._mismatch(path, shape, dtype, planes))
        page_shape = tuple(int(n) for n in keyframe.shape)
        if len(series) == planes:
            page = series[page_index]
            if page is None:  # OME-TIFF may leave planes out; they read as zeros
                return np.zeros(self.plane_shape, self.dtype)
            return self._finish(_read_page(page, path), samples_first)
        # Contiguous uncompressed data described by a single page (ImageJ > 4 GB, or
        # files written with truncate=True): plane k sits at a fixed offset.
        offset = series.dataoffset
        if offset is None:
            raise ReadError(path, "the pages of this series are not stored in a readable layout")
        count = math.prod(page_shape)
        start = offset + page_index * count * dtype.itemsize
        if start + count * dtype.itemsize > tif.filehandle.size:
            raise ReadError(path, f"the file is truncated: plane {page_index} lies past its end")
        raw = tif.filehandle.read_array(tif.byteorder + dtype.char, count, start)
        return self._finish(raw.reshape(page_shape), samples_first)

    def _finish(self, plane: np.ndarray, samples_first: bool) -> np.ndarray:
        if samples_first:
            plane = np.moveaxis(plane, 0, -1)
        # tifffile squeezes length-1 axes from a page; the stack wants the exact plane shape.
        return plane.reshape(self.plane_shape).astype(self.dtype, copy=False)


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
        files, planes, plane_shape, header.dtype, series=header.series, level=level
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
    channel_letter = "C" if "C" in letters else ("S" if "S" in letters and not rgb else None)
    channel_axis = letters.index(channel_letter) if channel_letter else None
    full = levels[0].array
    if channel_axis is not None and full.shape[channel_axis] == 1:
        channel_axis = None
    spacing = dict(spacing)
    assumed_z = "Z" in letters and "Z" not in spacing and "X" in spacing
    if assumed_z:
        spacing["Z"] = spacing["X"]
    layer_axes = [
        letter
        for index, letter in enumerate(letters)
        if index != channel_axis and not (rgb and index == len(letters) - 1)
    ]
    labels = [_AXIS_LABELS.get(letter, letter.lower()) for letter in layer_axes]
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": tuple(float(spacing.get(letter, 1.0)) for letter in layer_axes),
        "axis_labels": tuple(labels),
        "rgb": rgb,
        "multiscale": len(levels) > 1,
        "metadata": {
            "bigvol": {**source, "axes": letters, "assumed_z_spacing": assumed_z},
        },
    }
    if unit is not None:
        kwargs["units"] = tuple(unit if letter in _SPATIAL else "pixel" for letter in layer_axes)
    limits = _contrast_limits(levels[-1], channel_axis, rgb)
    if limits is not None:
        kwargs["contrast_limits"] = limits
    if channel_axis is not None:
        count = full.shape[channel_axis]
        names = list(channel_names) if len(channel_names) == count else []
        names = names or [f"c{index}" for index in range(count)]
        kwargs["channel_axis"] = channel_axis
        kwargs["name"] = [f"{name} {channel}" for channel in names]
        kwargs["metadata"]["bigvol"]["channel_names"] = tuple(names)
    arrays = [level.array for level in levels]
    return (arrays if len(arrays) > 1 else arrays[0]), kwargs, "image"


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
    ...                  resolution=(2.0, 2.0), metadata={"axes": "TZYX", "spacing": 2.0})
    >>> [(data, kwargs, kind)] = read_tiff_file("hyperstack.tif")
    >>> kwargs["axis_labels"], kwargs["scale"]
    (('t', 'z', 'y', 'x'), (1.0, 2.0, 0.5, 0.5))
    """
    with _open_existing(path) as tif:
        headers = [header_from(tif, path, index) for index in range(len(tif.series))]
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
