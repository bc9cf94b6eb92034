"""Lazy DICOM reader (pydicom): single files, series folders, multi-series folders, multi-frame.

What :func:`read` takes, and what comes back:

* **a folder** (or a glob, or a list of files): every DICOM file in it, with or without a
  ``.dcm`` extension (recognised by the ``DICM`` marker after the 128-byte preamble), grouped
  by SeriesInstanceUID into one image layer per series, named from SeriesNumber and
  SeriesDescription. Non-image objects among them (structured reports, RT structure sets,
  presentation states, a ``DICOMDIR`` index) are skipped and listed in
  ``metadata["bigvol"]["skipped"]``.
* **one file**: a single slice, or a multi-frame file. An enhanced multi-frame file (per-frame
  functional groups: PlanePositionSequence, PlaneOrientationSequence, PixelMeasuresSequence,
  PixelValueTransformationSequence) is a volume exactly as a folder of slices is. Files without
  patient geometry (secondary captures, ultrasound) open as a 2-D image, or a stack of frames,
  with the pixel spacing when the file gives one.

**Laziness.** Opening reads headers only (``pydicom.dcmread(..., stop_before_pixels=True,
specific_tags=...)``), plus the middle slice when the files carry no window. Every slice (or
frame) is one dask chunk decoded by :func:`pydicom.pixels.pixel_array` when napari shows it,
so each displayed plane of the acquisition decodes one file (one frame of a multi-frame file).

**Order and geometry.** Slices are ordered by their position along the slice normal
(ImagePositionPatient · (row direction x column direction)), never by file name or
InstanceNumber. The voxel-to-patient affine is built from ImageOrientationPatient,
PixelSpacing and the positions themselves (the step between first and last slice, not
SliceThickness), converted from DICOM's LPS to RAS by negating the first two world axes and
handed to the orientation code NIfTI files use (:mod:`napari_bigvol.io._orientation`): a
series and its NIfTI conversion (dcm2niix) overlay exactly, voxel by voxel. A
gantry-tilted CT keeps its shear in the layer's affine. The axis order, labels and
display conventions are those of the NIfTI reader (see :mod:`napari_bigvol.io.nifti`): the
acquisition plane of an axial series is one file per displayed plane; a sagittal or coronal
series shows the other planes too, but each of those reads a row from every file.

**Values.** RescaleSlope/RescaleIntercept (per slice, or per frame) are applied lazily with
:func:`pydicom.pixels.apply_modality_lut` as each plane is decoded, and the result is stored
as float32 (float64 for 32-bit stored values), so CT shows Hounsfield units: float32 keeps
integer Hounsfield units exact (any 16-bit value times a slope of 1) in half the memory of
the float64 pydicom returns. Slices
without a rescale (or with slope 1 and intercept 0) keep their stored dtype. The contrast
limits come from the middle slice's WindowCenter/WindowWidth when present, else from the
range of the middle slice.

**Refused, with a ReadError naming the file:** a gap, a duplicate position or uneven spacing
between slices, slices of mixed sizes or orientations, a compressed transfer syntax no
installed package decodes (the message names pylibjpeg or python-gdcm), a ``DICOMDIR``
opened on its own, non-image objects, and headers claiming more pixel data than their file
holds.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import dask.array as da
import numpy as np
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.misc import is_dicom
from pydicom.pixels import apply_modality_lut, get_decoder, pixel_array
from pydicom.pixels.utils import get_expected_length, get_nr_frames, pixel_dtype
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, MediaStorageDirectoryStorage

from napari_bigvol.errors import ReadError
from napari_bigvol.io import tiff
from napari_bigvol.io._orientation import Reorientation, layer_geometry
from napari_bigvol.io._paths import PathLike, expand_glob, is_glob, natural_sorted
from napari_bigvol.io._planes import stack_planes

__all__ = ["accepts", "read"]

SUFFIXES = (".dcm", ".dicom")
LayerData = tuple[Any, dict[str, Any], str]

# Header elements a layer needs; pydicom skips the values of every other element.
_HEADER_TAGS = [
    Tag(keyword)
    for keyword in (
        "SOPClassUID",
        "Modality",
        "SeriesInstanceUID",
        "SeriesNumber",
        "SeriesDescription",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "SliceThickness",
        "Rows",
        "Columns",
        "NumberOfFrames",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "PlanarConfiguration",
        "BitsAllocated",
        "BitsStored",
        "PixelRepresentation",
        "RescaleSlope",
        "RescaleIntercept",
        "RescaleType",
        "WindowCenter",
        "WindowWidth",
        "FrameTime",
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
    )
]
# What pydicom raises for files that are not DICOM, are truncated or hold garbage.
_BROKEN_FILE_ERRORS = (
    InvalidDicomError,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
    struct.error,
    BytesLengthException,
    MemoryError,  # a file meta element claiming gigabytes, under an address-space cap
)
# Decoding failures; NotImplementedError and RuntimeError come from pydicom's decoders.
_DECODE_ERRORS = (*_BROKEN_FILE_ERRORS, NotImplementedError, RuntimeError)
# Positions are written with a handful of decimals; below this two slices coincide.
_SAME_POSITION_MM = 1e-3
# A step between slices more than 10 % off the usual one is a missing slice or a mixed series.
_SPACING_TOLERANCE = 0.1
_ORIENTATION_TOLERANCE = 1e-4
# Geometry values beyond a kilometre (or not finite) are corruption, not a scanner's mm.
_LARGEST_MM = 1e6
# Names in a folder that are never DICOM, so a folder of TIFFs is left to the TIFF reader.
_OTHER_SUFFIXES = (*tiff.TIFF_SUFFIXES, ".png", ".jpg", ".jpeg", ".nii", ".gz", ".zarr")
# Extensionless files probed for the DICM marker before a folder is declared "not DICOM".
_PROBED_FILES = 3


def accepts(path: str) -> bool:
    """Whether ``path`` is a DICOM file, a folder holding DICOM files, or a glob of them.

    Cheap and never raises: a file is judged by its name (``.dcm``, ``.dicom``, ``DICOMDIR``)
    or else by its 132-byte preamble; a folder by one directory listing plus, when no name
    says DICOM, the preamble of at most three files.

    Parameters
    ----------
    path : str
        A file, folder or glob pattern.

    Returns
    -------
    bool
        True for DICOM files and for folders or globs holding them.

    Examples
    --------
    >>> accepts("/data/CT/IM_0001.dcm"), accepts("notes.txt")
    (True, False)
    """
    try:
        text = os.fspath(path)
        if is_glob(text):
            return os.path.basename(text).lower().endswith(SUFFIXES)
        if os.path.isdir(text):
            return _folder_holds_dicom(text)
        name = os.path.basename(text)
        if name.lower().endswith(SUFFIXES) or name.upper() == "DICOMDIR":
            return True
        return "." not in name and os.path.isfile(text) and is_dicom(text)
    except (OSError, ValueError, TypeError):
        return False


def _folder_holds_dicom(folder: str) -> bool:
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if not e.name.startswith(".") and e.is_file()]
    if any(name.lower().endswith(SUFFIXES) or name.upper() == "DICOMDIR" for name in names):
        return True
    # Names that say nothing (IM0001, 1.2.840...): peek at a few preambles. A folder of
    # TIFFs or PNGs alone costs no read at all.
    unknown = [name for name in names if not name.lower().endswith(_OTHER_SUFFIXES)]
    return any(is_dicom(os.path.join(folder, n)) for n in unknown[:_PROBED_FILES])


def read(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Open DICOM files, series folders or multi-frame files lazily as napari layer data.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        A DICOM file, a folder of DICOM files (any names), a glob pattern matching DICOM
        files, or a list of DICOM files.

    Returns
    -------
    list of tuple
        ``(data, kwargs, "image")`` per series, sorted by SeriesNumber. ``data`` is a dask
        array with one chunk per slice; ``kwargs`` holds name, scale, translate (and
        ``affine`` for oblique or tilted series), axis_labels, units, contrast_limits, rgb and
        metadata, ready for ``viewer.add_image(data, **kwargs)``.

    Raises
    ------
    ReadError
        For a missing path, a folder without DICOM images, a DICOMDIR, a non-image object, a
        compressed file no installed package decodes, or slices that are missing,
        duplicated or inconsistent. The message names the file.

    Examples
    --------
    >>> import pydicom.data
    >>> [(data, kwargs, kind)] = read(pydicom.data.get_testdata_file("CT_small.dcm"))
    >>> data.shape, data.dtype, kwargs["contrast_limits"]
    ((1, 128, 128), dtype('float32'), (-896.0, 1167.0))
    """
    if isinstance(path, str | os.PathLike):
        text = os.fspath(path)
        if is_glob(text):
            return _read_files(expand_glob(text), text, explicit=False)
        if os.path.isdir(text):
            return _read_files(_folder_files(text), text, explicit=False)
        if not os.path.exists(text):
            raise ReadError(text, "no such file or folder")
        return _read_files([text], text, explicit=True)
    paths = natural_sorted(os.fspath(p) for p in path)
    if not paths:
        raise ReadError("<empty list>", "no files were given")
    return _read_files(paths, paths[0], explicit=True)


def _folder_files(folder: str) -> list[str]:
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if not e.name.startswith(".") and e.is_file()]
    names = [n for n in names if not n.lower().endswith(_OTHER_SUFFIXES)]
    if not names:
        raise ReadError(folder, "the folder holds no DICOM files")
    return [os.path.join(folder, name) for name in natural_sorted(names)]


@dataclass(frozen=True)
class _Plane:
    """One slice: a single-frame file, or one frame of a multi-frame file, with its geometry."""

    path: str
    frame: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    spacing: tuple[float, float] | None
    rescale: tuple[float, float] | None
    window: tuple[float, float] | None


@dataclass(frozen=True)
class _Image:
    """Facts of one DICOM image file that every slice of a series must share."""

    path: str
    header: Dataset
    series_uid: str
    plane_shape: tuple[int, ...]
    dtype: np.dtype
    planes: tuple[_Plane, ...]

    @property
    def has_geometry(self) -> bool:
        return all(p.position is not None and p.orientation is not None for p in self.planes)

    def get(self, keyword: str, default: Any = None) -> Any:
        """Return the header's ``keyword`` value; one pydicom cannot convert names the file."""
        try:
            return _value(self.header, keyword, default)
        except _DECODE_ERRORS as exc:
            raise ReadError(self.path, f"not a readable DICOM file ({exc})") from exc


class _ElementValues:
    """Header values, each distinct encoded value converted by pydicom once per read.

    The files of a series repeat most header values byte for byte (orientation, pixel
    spacing, rescale, window, the image pixel description). pydicom converts (and
    validates) a value on every access, about 50 us each; converting every distinct
    encoding once instead of once per file makes opening a 500-file series about 1.3x
    faster (docs/performance/dicom.md).
    """

    def __init__(self) -> None:
        self._converted: dict[tuple[Any, ...], Any] = {}

    def get(self, dataset: Dataset, keyword: str, default: Any = None) -> Any:
        """Return ``dataset``'s value of ``keyword`` (``default`` when absent)."""
        tag = _tag(keyword)
        raw = dataset.get_item(tag)
        if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes):
            return _value(dataset, keyword, default)  # absent, deferred or converted
        key = (tag, raw.VR, raw.is_implicit_VR, raw.is_little_endian, raw.value)
        if key not in self._converted:
            self._converted[key] = dataset[tag].value
        return self._converted[key]


def _value(dataset: Dataset, keyword: str, default: Any = None) -> Any:
    """Return ``dataset``'s value of ``keyword``; refuse one that claims more than its file.

    _read_header defers (skips) a value whose element claims more bytes than the whole
    file; pydicom would read it on first use, allocating all it claims.
    """
    tag = _tag(keyword)
    raw = dataset.get_item(tag)
    if raw is None:
        return default
    if isinstance(raw, RawDataElement) and raw.value is None and raw.length:
        raise ValueError(f"{keyword} claims {raw.length} bytes, more than the file holds")
    return dataset[tag].value


@functools.cache
def _tag(keyword: str) -> BaseTag:
    return Tag(keyword)


def _read_header(path: str, *, explicit: bool) -> tuple[Dataset, int] | None:
    """Read the header elements a layer needs and where the pixel data start; no pixels.

    Returns None for a file found in a folder without the DICM marker. A file the user named
    is read even without the marker (old files lack the preamble), so that its own
    problem, not "not DICOM", is reported.
    """
    # A file named as DICOM is the user's data even in a folder: a damaged one is reported.
    explicit = explicit or path.lower().endswith(SUFFIXES)
    try:
        with open(path, "rb") as stream:
            # pydicom reads a value with one read() of the length its element claims, and
            # Python allocates that much first: a value claiming more than the whole file is
            # deferred instead (skipped), and _ElementValues refuses it when it is used.
            claims = {"defer_size": os.fstat(stream.fileno()).st_size}
            try:
                header = dcmread(
                    stream, stop_before_pixels=True, specific_tags=_HEADER_TAGS, **claims
                )
            except InvalidDicomError:
                if not explicit:
                    return None  # a stray file in the folder, not our business
                stream.seek(0)
                header = dcmread(
                    stream, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=True,
                    **claims,
                )  # fmt: skip
            # pydicom stops in front of the Pixel Data element.
            return header, stream.tell()
    except _DECODE_ERRORS as exc:  # pydicom converts the file meta group while reading
        raise ReadError(path, f"not a readable DICOM file ({exc})") from exc


def _read_files(files: list[str], source: str, *, explicit: bool) -> list[LayerData]:
    """Read every header, group images by series, and build one layer per series.

    ``explicit`` files were named by the user, so any of them that is not an image is an
    error; files found in a folder or by a glob are skipped when they are not images.
    """
    images: list[_Image] = []
    skipped: list[str] = []
    values = _ElementValues()
    for path in files:
        image = _file_image(path, values, explicit=explicit)
        if image is None:
            skipped.append(path)
        else:
            images.append(image)
    if not images:
        raise ReadError(source, "holds no DICOM images (only other files or non-image objects)")
    facts = {"source": source, "skipped": skipped} if skipped else {"source": source}
    try:
        return _series_layers(images, source, facts)
    except ReadError:
        raise
    except (*_DECODE_ERRORS, ArithmeticError) as exc:  # LinAlgError is a ValueError
        # Values first used here (names, numbers, geometry of the whole series).
        raise ReadError(source, f"the series headers are unusable ({exc})") from exc


def _series_layers(images: list[_Image], source: str, facts: dict[str, Any]) -> list[LayerData]:
    """One layer per series, sorted by SeriesNumber."""
    series: dict[str, list[_Image]] = {}
    for image in images:
        series.setdefault(image.series_uid, []).append(image)
    groups = sorted(series.values(), key=lambda group: _series_number(group[0]))
    return [
        _series_layer(group, _layer_name(group[0], source, several=len(groups) > 1), facts)
        for group in groups
    ]


def _file_image(path: str, values: _ElementValues, *, explicit: bool) -> _Image | None:
    """One file's image, or None for a file in a folder that holds no image.

    pydicom converts a header value when it is first used, so a corrupt one (an unknown
    VR, a wrong length) raises only then: any such error becomes a ReadError naming the file.
    """
    read_header = _read_header(path, explicit=explicit)
    if read_header is None:
        return None
    header, pixel_offset = read_header
    try:
        _require_image_description(path, header, values)
        problem = _not_an_image(header, values)
        if problem is None:
            return _image(path, header, pixel_offset, values)
    except ReadError:
        raise
    except _DECODE_ERRORS as exc:
        raise ReadError(path, f"not a readable DICOM file ({exc})") from exc
    if explicit:
        raise ReadError(path, problem)
    return None


def _require_image_description(path: str, header: Dataset, values: _ElementValues) -> None:
    """Refuse an image file whose header stops before its rows and columns: it is cut short.

    Without this check a truncated slice in a folder would be skipped as a non-image
    object, and the series would silently open one slice shorter.
    """
    if "Rows" in header and "Columns" in header:
        return
    meta = getattr(header, "file_meta", Dataset())
    # The file meta repeats the class: it survives a cut inside the dataset's own copy.
    classes = (values.get(header, "SOPClassUID"), values.get(meta, "MediaStorageSOPClassUID"))
    names = [c.name for c in classes if isinstance(c, UID) and c.name.endswith("Image Storage")]
    # Every DICOM object but a DICOMDIR names its class in its dataset: none means a cut.
    unnamed = classes[0] is None and classes[1] != MediaStorageDirectoryStorage
    if names or unnamed:
        name = names[0] if names else "DICOM"
        raise ReadError(
            path,
            f"the header of this {name} file ends before the image size (Rows, Columns): "
            "the file is truncated or corrupt",
        )


def _not_an_image(header: Dataset, values: _ElementValues) -> str | None:
    """Why a file holds nothing to display, or None for an image."""
    meta = getattr(header, "file_meta", Dataset())
    if values.get(meta, "MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
        return (
            "a DICOMDIR (an index of a DICOM disc), not an image: open the folder "
            "holding the series files instead"
        )
    if "Rows" not in header or "Columns" not in header:
        kind = values.get(header, "SOPClassUID")
        described = getattr(kind, "name", None) or values.get(header, "Modality") or "not given"
        return f"not an image: the object (SOP class {described}) holds no pixel data"
    return None


def _image(path: str, header: Dataset, pixel_offset: int, values: _ElementValues) -> _Image:
    """Check one image file's header and describe its slices (frames)."""
    transfer_syntax = values.get(getattr(header, "file_meta", Dataset()), "TransferSyntaxUID")
    if transfer_syntax is None:
        raise ReadError(path, "the file meta information has no transfer syntax")
    _check_decoder(path, transfer_syntax)
    pixels = _checked_pixels(path, transfer_syntax, header, values)
    _check_pixel_bytes(path, pixel_offset, transfer_syntax, pixels)
    per_frame = values.get(header, "PerFrameFunctionalGroupsSequence") or []
    shared = values.get(header, "SharedFunctionalGroupsSequence") or [None]
    planes = tuple(
        _frame_plane(
            path,
            header,
            frame,
            (per_frame[frame] if frame < len(per_frame) else None, shared[0]),
            values,
        )
        for frame in range(pixels.frames)
    )
    rows, columns, samples = pixels.rows, pixels.columns, pixels.samples
    plane_shape = (rows, columns, samples) if samples > 1 else (rows, columns)
    series_uid = str(values.get(header, "SeriesInstanceUID", ""))
    return _Image(path, header, series_uid, plane_shape, pixels.dtype, planes)


class _Pixels(NamedTuple):
    """What an image pixel description says: sizes, stored dtype and pixel data bytes."""

    rows: int
    columns: int
    samples: int
    frames: int
    dtype: np.dtype
    expected_bytes: int


def _checked_pixels(
    path: str, transfer_syntax: UID, header: Dataset, values: _ElementValues
) -> _Pixels:
    """Return the header's pixel description; refuse an incomplete or empty one."""
    try:
        description = (transfer_syntax, *(values.get(header, k) for k in _PIXEL_KEYWORDS))
        pixels = _pixel_facts(description)
    except (*_BROKEN_FILE_ERRORS, NotImplementedError) as exc:  # NotImplemented: 256 bits
        raise ReadError(path, f"the image pixel description is incomplete ({exc})") from exc
    if min(pixels.rows, pixels.columns, pixels.samples, pixels.frames) < 1:
        raise ReadError(
            path, f"the header describes an empty image ({pixels.rows} x {pixels.columns})"
        )
    return pixels


def _check_pixel_bytes(
    path: str, pixel_offset: int, transfer_syntax: UID, pixels: _Pixels
) -> None:
    """Refuse a header claiming more pixel data than its file holds, or huge planes."""
    rows, columns, samples, frames, dtype, expected = pixels
    if transfer_syntax.is_compressed or transfer_syntax.is_deflated:
        # Encapsulated frames are decoded one at a time; each needs at least an item header.
        claimed, limit = frames * 8, os.path.getsize(path)
        plane_bytes = rows * columns * samples * dtype.itemsize
        if plane_bytes > tiff.MAX_PLANE_BYTES:
            claimed, limit = plane_bytes, tiff.MAX_PLANE_BYTES
    else:
        # Native pixels follow their 8-byte element header (12 with an explicit OB/OW VR).
        claimed, limit = expected, os.path.getsize(path) - pixel_offset - 8
    if claimed > limit:
        raise ReadError(
            path,
            f"the header claims {frames} frame(s) of {rows} x {columns} x {samples} "
            f"{dtype.name} pixels, more than the file's {os.path.getsize(path)} bytes "
            "can hold: it is truncated or its header is corrupt",
        )


_PIXEL_KEYWORDS = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "NumberOfFrames",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "PhotometricInterpretation",
)


@functools.lru_cache(maxsize=64)
def _pixel_facts(description: tuple[Any, ...]) -> _Pixels:
    """Rows, columns, samples, frames, dtype and pixel bytes of an image pixel description.

    ``description`` is the transfer syntax and the values of :data:`_PIXEL_KEYWORDS`; the
    files of a series share one, so pydicom's helpers run once per series, not per file
    (they re-read every element through the dataset, a third of a file's open time).
    """
    transfer_syntax, *values = description
    pixels = Dataset()
    pixels.file_meta = FileMetaDataset()
    pixels.file_meta.TransferSyntaxUID = transfer_syntax
    for keyword, value in zip(_PIXEL_KEYWORDS, values, strict=True):
        if value is not None:
            setattr(pixels, keyword, value)
    pixels.SamplesPerPixel = pixels.get("SamplesPerPixel", 1)
    frames = get_nr_frames(pixels, warn=False)
    return _Pixels(
        int(pixels.Rows),
        int(pixels.Columns),
        int(pixels.SamplesPerPixel),
        int(frames),
        np.dtype(pixel_dtype(pixels)),
        get_expected_length(pixels),
    )


def _check_decoder(path: str, transfer_syntax: UID) -> None:
    available, missing = _decoder_status(transfer_syntax)
    if available is None:
        raise ReadError(
            path, f"pixel data in transfer syntax {transfer_syntax.name} cannot be decoded"
        )
    if not available:
        raise ReadError(
            path,
            f"the pixel data are compressed as {transfer_syntax.name} and no installed "
            f"package decodes it: install pylibjpeg and its plug-ins or python-gdcm "
            f"(pydicom says: {missing})",
        )


@functools.cache
def _decoder_status(transfer_syntax: UID) -> tuple[bool | None, str]:
    """Whether pydicom can decode ``transfer_syntax`` (None: no decoder exists), and why not."""
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return None, ""
    return decoder.is_available, "; ".join(decoder.missing_dependencies)


def _functional_group(items: tuple[Dataset | None, ...], keyword: str) -> Dataset | None:
    """First item of functional group ``keyword`` in the frame's own groups, else the shared."""
    for item in items:
        if item is not None and keyword in item and item[keyword].value:
            return item[keyword].value[0]
    return None


def _floats(values: Any, count: int) -> tuple[float, ...] | None:
    """``count`` numbers from a header value, or None when absent, unreadable or absurd."""
    if values is None:
        return None
    try:
        numbers = tuple(float(v) for v in (values if isinstance(values, Sequence) else [values]))
    except (TypeError, ValueError):
        return None
    usable = len(numbers) == count and all(abs(n) < _LARGEST_MM for n in numbers)
    return numbers if usable else None


def _direction_cosines(values: Any, path: str) -> tuple[float, ...] | None:
    """ImageOrientationPatient as two unit row and column directions, or None when absent.

    Slightly unnormalised cosines (few decimals written) are kept as they are; anything
    far from two perpendicular unit vectors is a corrupt header, not an orientation.
    """
    cosines = _floats(values, 6)
    if cosines is None:
        return None
    # Plain floats: numpy's allclose on six numbers costs 0.1 ms a file (a 500-file series).
    row, column = cosines[:3], cosines[3:]
    lengths_ok = abs(math.hypot(*row) - 1) <= 0.1 and abs(math.hypot(*column) - 1) <= 0.1
    if not lengths_ok or abs(sum(r * c for r, c in zip(row, column, strict=True))) > 0.1:
        raise ReadError(
            path,
            f"ImageOrientationPatient {list(cosines)} is not two perpendicular unit "
            "directions: the header is corrupt",
        )
    return cosines


def _frame_plane(
    path: str,
    header: Dataset,
    frame: int,
    groups: tuple[Dataset | None, Dataset | None],
    values: _ElementValues,
) -> _Plane:
    """Geometry, rescale and window of one frame, from functional groups or the top level.

    ``groups`` are the frame's own functional groups and the shared ones (None if absent).
    """
    sources = _frame_sources(groups, header, frame)
    try:
        rescale = _rescale(sources.rescale, values)
        window = _window(sources.window, values)
        position = sources.position and _floats(
            values.get(sources.position, "ImagePositionPatient"), 3
        )
        orientation = _direction_cosines(
            values.get(sources.orientation, "ImageOrientationPatient"), path
        )
        spacing = _pixel_spacing(values.get(sources.measures, "PixelSpacing"))
    except (ValueError, TypeError) as exc:
        raise ReadError(
            path, f"frame {frame} has an unreadable geometry or rescale ({exc})"
        ) from exc
    return _Plane(path, frame, position, orientation, spacing, rescale, window)  # type: ignore[arg-type]


class _FrameSources(NamedTuple):
    """The dataset each of a frame's values comes from (None: the frame has no position)."""

    position: Dataset | None
    orientation: Dataset
    measures: Dataset
    rescale: Dataset
    window: Dataset


def _frame_sources(
    groups: tuple[Dataset | None, Dataset | None], header: Dataset, frame: int
) -> _FrameSources:
    """Pick each value's dataset: the frame's functional group, the shared one, or the header."""
    return _FrameSources(
        # A classic multi-frame file's top-level position is its first frame's only.
        position=_functional_group(groups, "PlanePositionSequence")
        or (header if frame == 0 else None),
        orientation=_functional_group(groups, "PlaneOrientationSequence") or header,
        measures=_functional_group(groups, "PixelMeasuresSequence") or header,
        rescale=_functional_group(groups, "PixelValueTransformationSequence") or header,
        window=_functional_group(groups, "FrameVOILUTSequence") or header,
    )


def _pixel_spacing(values: Any) -> tuple[float, float] | None:
    """PixelSpacing (row, column) in mm; None when absent, non-finite or not positive."""
    spacing = _floats(values, 2)
    return spacing if spacing is not None and min(spacing) > 0 else None  # type: ignore[return-value]


def _rescale(item: Dataset, values: _ElementValues) -> tuple[float, float] | None:
    """Return ``item``'s RescaleSlope and RescaleIntercept; None if absent or the identity."""
    slope = values.get(item, "RescaleSlope")
    intercept = values.get(item, "RescaleIntercept")
    if slope is None or intercept is None:
        return None
    rescale = (float(slope), float(intercept))
    return None if rescale == (1.0, 0.0) else rescale


def _window(item: Dataset, values: _ElementValues) -> tuple[float, float] | None:
    """Return ``item``'s first WindowCenter and WindowWidth; None unless the width is positive."""
    centre = _first(values.get(item, "WindowCenter"))
    width = _first(values.get(item, "WindowWidth"))
    if centre is None or width is None or not float(width) > 0:
        return None
    return float(centre), float(width)


def _first(value: Any) -> Any:
    if value is None or isinstance(value, str | bytes):
        return value
    return value[0] if isinstance(value, Sequence) else value


def _series_number(image: _Image) -> tuple[int, str]:
    number = image.get("SeriesNumber")
    try:
        return (int(number) if number not in (None, "") else 0), image.series_uid
    except (TypeError, ValueError):
        return 0, image.series_uid


def _layer_name(image: _Image, source: str, *, several: bool) -> str:
    description = str(image.get("SeriesDescription") or "").strip()
    number = image.get("SeriesNumber")
    number_text = str(number) if number not in (None, "") else ""
    if description:
        return f"{number_text} {description}".strip()
    base = os.path.basename(os.path.normpath(source))
    for suffix in SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base} series {number_text}" if several and number_text else base


class _DicomPlanes:
    """Picklable loader: plane ``i`` is frame ``frames[i]`` of ``files[i]``, decoded by pydicom.

    Each plane is checked against the series' shape and dtype; rescaled planes go through
    :func:`pydicom.pixels.apply_modality_lut` and are stored as ``dtype``.
    """

    def __init__(
        self,
        planes: Sequence[_Plane],
        plane_shape: tuple[int, ...],
        stored_dtype: np.dtype,
        dtype: np.dtype,
    ) -> None:
        self.files = tuple(p.path for p in planes)
        self.frames = tuple(p.frame for p in planes)
        self.multiframe = any(p.frame for p in planes) or len(set(self.files)) < len(planes)
        self.rescales = tuple(p.rescale for p in planes)
        self.plane_shape = plane_shape
        self.stored_dtype = stored_dtype
        self.dtype = dtype

    def __call__(self, index: int) -> np.ndarray:
        """Return plane ``index`` decoded, rescaled and in the layer's dtype."""
        path = self.files[index]
        try:
            # A single-frame file is decoded whole; index= makes pydicom read one frame.
            frame = self.frames[index] if self.multiframe else None
            pixels = pixel_array(path, index=frame)
        except _DECODE_ERRORS as exc:
            raise ReadError(path, f"cannot decode the pixel data ({exc})") from exc
        if pixels.shape != self.plane_shape or pixels.dtype != self.stored_dtype:
            raise ReadError(
                path,
                f"this slice decodes to shape {pixels.shape} and dtype {pixels.dtype}, but "
                f"{os.path.basename(self.files[0])} has shape {self.plane_shape} and dtype "
                f"{self.stored_dtype}; every slice of a series must match",
            )
        rescale = self.rescales[index]
        if rescale is None:
            return pixels.astype(self.dtype, copy=False)
        modality = Dataset()
        modality.RescaleSlope, modality.RescaleIntercept = rescale
        return apply_modality_lut(pixels, modality).astype(self.dtype)


def _series_layer(images: list[_Image], name: str, facts: dict[str, Any]) -> LayerData:
    """One layer from the images of one series: a volume, or frames without geometry."""
    first = images[0]
    for image in images[1:]:
        if image.plane_shape != first.plane_shape or image.dtype != first.dtype:
            raise ReadError(
                image.path,
                f"mixed sizes in one series: this file holds {image.plane_shape} "
                f"{image.dtype} slices, {os.path.basename(first.path)} holds "
                f"{first.plane_shape} {first.dtype} slices",
            )
    planes = [plane for image in images for plane in image.planes]
    if all(image.has_geometry for image in images):
        return _volume_layer(first, planes, name, facts)
    if len(images) > 1:
        lacking = next(image for image in images if not image.has_geometry)
        raise ReadError(
            lacking.path,
            "has no ImagePositionPatient/ImageOrientationPatient, so the slices of its "
            "series cannot be ordered in space; open the files one by one",
        )
    return _frames_layer(first, name, facts)


def _layer_dtype(stored: np.dtype, planes: Sequence[_Plane]) -> np.dtype:
    """Return the stored dtype, or the smallest float holding every rescaled value."""
    if all(plane.rescale is None for plane in planes):
        return stored.newbyteorder("=")  # vispy and most numpy code want native order
    # float32 for (u)int8/16 (exact), float64 for 32-bit values.
    return np.promote_types(stored, np.float32)


def _volume_layer(
    first: _Image, planes: list[_Plane], name: str, facts: dict[str, Any]
) -> LayerData:
    """Build a layer for slices with patient geometry: ordered, checked and placed in RAS."""
    [thickness] = _floats(first.get("SliceThickness"), 1) or (1.0,)
    ordered, step = _ordered_planes(planes, thickness)
    affine = _ras_affine(ordered, step)
    dtype = _layer_dtype(first.dtype, ordered)
    loader, stack = _planes_array(ordered, first, dtype, [f"{p.path}:{p.frame}" for p in ordered])
    rows, columns = first.plane_shape[:2]
    # Source axes (i, j, k) = (column, row, slice), the affine's columns, as dcm2niix has them.
    reorientation, geometry = layer_geometry(affine, (columns, rows, len(ordered)))
    rgb = bool(first.plane_shape[2:])
    contrast_limits, limits_source = _contrast_limits(ordered, loader, dtype, rgb)
    kwargs = {
        "name": name,
        **geometry,
        "contrast_limits": contrast_limits,
        "rgb": rgb,
        "multiscale": False,
        "metadata": {
            "bigvol": {
                **facts,
                **_volume_facts(first, ordered, affine, step),
                "axes": _axes_facts(geometry["axis_labels"], reorientation),
                "rescaled": dtype != first.dtype,
                "contrast_limits_from": limits_source,
            }
        },
    }
    return _reoriented(stack, reorientation), kwargs, "image"


def _planes_array(
    planes: Sequence[_Plane], image: _Image, dtype: np.dtype, names: Sequence[str]
) -> tuple[_DicomPlanes, da.Array]:
    """Return the loader of ``planes`` and their lazy stack, one chunk per plane.

    ``names`` identify the planes in the dask key, with ``image``'s shape and file stamp.
    """
    loader = _DicomPlanes(planes, image.plane_shape, image.dtype, dtype)
    token = tiff.files_token(names, image.plane_shape, tiff.file_stamp(image.path))
    array = stack_planes(loader, len(planes), image.plane_shape, dtype, name=f"dicom-{token}")
    return loader, array


def _reoriented(stack: da.Array, reorientation: Reorientation) -> da.Array:
    """Transpose and flip the ``(slice, row, column)`` stack to napari's axes."""
    # napari axis a reads source axis spatial_axis[a], which is stack axis 2 - spatial_axis[a]
    # (the stack is (slice, row, column)); an axial series needs neither transpose nor flip.
    order = (*(2 - axis for axis in reorientation.spatial_axis), *range(3, stack.ndim))
    data = stack.transpose(order)
    if any(reorientation.spatial_flip):
        data = data[
            tuple(slice(None, None, -1 if f else None) for f in reorientation.spatial_flip)
        ]
    return data


def _volume_facts(
    first: _Image, ordered: list[_Plane], affine: np.ndarray, step: np.ndarray
) -> dict[str, Any]:
    """Facts about a series' files and geometry, for the layer metadata."""
    return {
        "format": "DICOM",
        "files": len({p.path for p in ordered}),
        "first_file": ordered[0].path,
        "series_uid": first.series_uid,
        "modality": str(first.get("Modality", "")),
        "transfer_syntax": str(first.header.file_meta.TransferSyntaxUID.name),
        "affine": affine.tolist(),
        "slice_step_lps_mm": [float(v) for v in step],
    }


def _axes_facts(labels: Sequence[str], reorientation: Reorientation) -> dict[str, Any]:
    """Which source axis (i, j, k) each napari axis reads, and whether it runs backwards."""
    return {
        label: {"source_axis": "ijk"[axis], "flipped": flip}
        for label, axis, flip in zip(
            labels, reorientation.spatial_axis, reorientation.spatial_flip, strict=True
        )
    }


def _ordered_planes(planes: list[_Plane], thickness: float) -> tuple[list[_Plane], np.ndarray]:
    """Sort slices along their normal; check orientation, pixel spacing and slice spacing.

    Returns the ordered slices and the LPS step (mm) from one slice to the next; a single
    slice steps ``thickness`` along its normal.
    """
    _require_one_grid(planes)
    orientation = np.array(planes[0].orientation)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([p.position for p in planes])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    ordered = [planes[i] for i in order]
    if len(ordered) == 1:
        return ordered, normal * (thickness if thickness > 0 else 1.0)
    usual = _require_even_spacing(ordered, np.diff(along[order]))
    step = (positions[order[-1]] - positions[order[0]]) / (len(ordered) - 1)
    _require_straight_line(ordered, positions[order], step, usual)
    return ordered, step


def _require_one_grid(planes: list[_Plane]) -> None:
    # Every slice of a volume has the first slice's orientation and pixel spacing.
    first = planes[0]
    orientation = np.array(first.orientation)
    for plane in planes[1:]:
        if not np.allclose(plane.orientation, orientation, atol=_ORIENTATION_TOLERANCE):
            raise ReadError(
                plane.path,
                f"mixed orientations in one series: ImageOrientationPatient "
                f"{list(plane.orientation)} differs from {list(first.orientation)} in "
                f"{os.path.basename(first.path)}",
            )
        if plane.spacing != first.spacing:
            raise ReadError(
                plane.path,
                f"mixed pixel spacings in one series: {plane.spacing} here, {first.spacing} "
                f"in {os.path.basename(first.path)}",
            )


def _require_even_spacing(ordered: list[_Plane], distances: np.ndarray) -> float:
    # No two slices at one place and no gap; returns the usual distance between slices.
    for index, distance in enumerate(distances):
        if distance < _SAME_POSITION_MM:
            a, b = ordered[index], ordered[index + 1]
            raise ReadError(
                b.path,
                f"a duplicate slice position: {_where(b)} and {_where(a)} lie at the same "
                f"place ({list(b.position)}); the folder may mix echoes, time points or "
                "acquisitions: put each in its own folder",
            )
    usual = float(np.median(distances))
    for index, distance in enumerate(distances):
        if abs(distance - usual) > _SPACING_TOLERANCE * usual:
            a, b = ordered[index], ordered[index + 1]
            missing = round(distance / usual) - 1
            what = (
                f"about {missing} slice(s) missing"
                if missing >= 1
                else "uneven slice spacing (a mixed series?)"
            )
            raise ReadError(
                b.path,
                f"a gap between slices: {distance:.4g} mm from {_where(a)} to {_where(b)} "
                f"where the others are {usual:.4g} mm apart: {what}",
            )
    return usual


def _require_straight_line(
    ordered: list[_Plane], positions: np.ndarray, step: np.ndarray, usual: float
) -> None:
    # Slice positions (in order) lie on the line through the first and last slice.
    expected = positions[0] + np.outer(np.arange(len(ordered)), step)
    off_line = np.linalg.norm(positions - expected, axis=1)
    worst = int(np.argmax(off_line))
    if off_line[worst] > _SPACING_TOLERANCE * usual:
        raise ReadError(
            ordered[worst].path,
            f"the slices do not line up: {_where(ordered[worst])} is {off_line[worst]:.3g} mm "
            "off the line through the first and last slice",
        )


def _where(plane: _Plane) -> str:
    name = os.path.basename(plane.path)
    return f"{name} frame {plane.frame + 1}" if plane.frame else name


def _ras_affine(ordered: list[_Plane], step: np.ndarray) -> np.ndarray:
    """Voxel (column, row, slice) to RAS+ millimetres, from DICOM's LPS geometry."""
    orientation = np.array(ordered[0].orientation)
    row_spacing, column_spacing = ordered[0].spacing or (1.0, 1.0)
    lps = np.eye(4)
    # ImageOrientationPatient: direction of increasing column index, then of row index.
    lps[:3, 0] = orientation[:3] * column_spacing
    lps[:3, 1] = orientation[3:] * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = ordered[0].position
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _contrast_limits(
    ordered: list[_Plane], loader: _DicomPlanes, dtype: np.dtype, rgb: bool
) -> tuple[Any, str]:
    """Return the middle slice's window, else its value range (one slice decoded)."""
    middle = (len(ordered) - 1) // 2
    window = ordered[middle].window
    if rgb or dtype == np.uint8:
        return (0.0, 255.0), "the uint8 range"
    if window is not None:
        centre, width = window
        return (centre - width / 2, centre + width / 2), "WindowCenter/WindowWidth"
    plane = loader(middle)
    low, high = float(plane.min()), float(plane.max())
    return (low, high if high > low else low + 1.0), f"range of slice {middle}"


def _frames_layer(image: _Image, name: str, facts: dict[str, Any]) -> LayerData:
    """Build a layer for a file without geometry: a 2-D image, or frames on a leading axis."""
    planes = list(image.planes)
    dtype = _layer_dtype(image.dtype, planes)
    loader, array = _planes_array(planes, image, dtype, [image.path])
    rgb = len(image.plane_shape) == 3
    axes = "YXS" if rgb else "YX"
    if len(planes) == 1:
        array = array[0]
    else:
        axes = ("T" if "FrameTime" in image.header else "Z") + axes
    spacing = planes[0].spacing
    return tiff.layer_data(
        [tiff.PlaneStack(array, loader, len(image.plane_shape))],
        axes,
        rgb=rgb,
        spacing={"Y": spacing[0], "X": spacing[1]} if spacing else {},
        unit="millimeter" if spacing else None,
        name=name,
        source={
            **facts,
            "format": "DICOM",
            "first_file": image.path,
            "series_uid": image.series_uid,
            "modality": str(image.get("Modality", "")),
            "note": "no patient geometry: pixel coordinates (and pixel spacing when given)",
        },
    )
