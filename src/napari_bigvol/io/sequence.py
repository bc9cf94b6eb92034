"""Reader for TIFF files and for stacks of 2-D images: folders, globs, dropped lists.

What the dispatcher hands :func:`read`, and what comes back:

* **one TIFF file** (multi-page, ImageJ hyperstack, OME-TIFF): its series, with axes,
  voxel size and channel names from its metadata (:func:`.tiff.read_tiff_file`);
* **one PNG or JPEG**: a 2-D (or RGB) image layer;
* **a folder, a glob such as** ``"/data/Axial_*.tiff"`` **or a list of files**: one
  volume, files in natural order (``slice_2`` before ``slice_10``), stacked along a new
  leading axis (``z`` for 2-D files, ``t`` for files that are z-stacks themselves).

Opening a stack reads the first file's header only (shape, dtype, resolution tags)
plus, for dtypes wider than 8 bits, the one plane napari displays first, to set the
contrast limits. Every other file is assumed to match and is checked when its plane is
read: a mismatched slice raises a :class:`ReadError` naming that file and the expected
and actual shape and dtype. Each displayed plane reads one file (one page of it).

**Light-sheet file grids.** When every file name carries ``ch<i>`` and/or ``stack<j>``
tokens (separated by ``_``, ``-``, ``.`` or a space; the naming of the dask blog's
light-sheet data, ``ex6-2_CamA_ch1_CAM1_stack0000_560nm_..._0000t.tif``) and the names
form a complete grid with more than one value of at least one token, the files are
assembled into a ``(t, c, *file_axes)`` array: ``stack`` becomes the time axis and
``ch`` the channel axis (split into one layer per channel, named after the channel and
its ``<n>nm`` wavelength token when the names carry one). Axes with a single value are
dropped. Incomplete grids (a missing file) fall back to one plain natural-order stack,
so a partial acquisition still opens.

PNG and JPEG files are probed with Pillow, which parses only the header; each plane is
decoded when napari shows it. A folder mixing formats opens its most common format;
the skipped files are listed in ``metadata["bigvol"]["skipped"]``. A folder holding a
multi-file OME-TIFF dataset (whose first file's OME metadata names the other files) opens
as that one dataset, not as a stack of its files.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from napari_bigvol.errors import ReadError
from napari_bigvol.io import tiff
from napari_bigvol.io._paths import expand_glob, is_glob, list_folder, natural_sorted
from napari_bigvol.io._planes import stack_planes

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = tiff.TIFF_SUFFIXES + PIL_SUFFIXES

_GRID_TOKEN = re.compile(r"(?:^|[_\-. ])(ch|stack)(\d+)(?=[_\-. ]|$)", re.IGNORECASE)
_WAVELENGTH = re.compile(r"(?:^|[_\-. ])(\d+)nm(?=[_\-. ]|$)", re.IGNORECASE)
# DecompressionBombError: a header claiming more pixels than Pillow agrees to allocate.
_PIL_ERRORS = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
    struct.error,
)
# Pillow modes napari cannot show as they are, converted on decode.
_PIL_CONVERT = {"P": "RGB", "PA": "RGBA", "LA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB"}
_PIL_DTYPES = {
    "1": np.bool_,
    "L": np.uint8,
    "RGB": np.uint8,
    "RGBA": np.uint8,
    "I;16": np.uint16,
    "I;16L": np.uint16,
    "I;16B": np.uint16,
    "I": np.int32,
    "F": np.float32,
}
_PIL_SAMPLES = {"RGB": 3, "RGBA": 4}
LayerData = tuple[Any, dict[str, Any], str]

__all__ = ["IMAGE_SUFFIXES", "accepts", "read"]


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def accepts(path: str) -> bool:
    """Whether this reader takes ``path``: an image file, a folder or glob of them.

    Cheap and never raises: it looks at the name, and for a folder or a glob at one
    directory listing, stopping at the first image file.

    Parameters
    ----------
    path : str
        A file, folder or glob pattern.

    Returns
    -------
    bool
        True for ``.tif``/``.tiff``/``.png``/``.jpg``/``.jpeg`` files, folders holding
        such files (or nothing at all), and globs matching them.

    Examples
    --------
    >>> accepts("slice_0001.tif"), accepts("notes.txt")
    (True, False)
    """
    try:
        if is_glob(path):
            matches = itertools.islice(glob.iglob(os.path.expanduser(path)), 10_000)
            return _is_image_name(path) or any(_is_image_name(m) for m in matches)
        if os.path.isdir(path):
            with os.scandir(path) as entries:
                visible = [e.name for e in entries if not e.name.startswith(".")]
            # An empty folder is taken too, so the user gets read()'s clear "no image files"
            # error instead of napari's generic "refused the file".
            return not visible or any(_is_image_name(name) for name in visible)
        return _is_image_name(path)
    except PermissionError:
        # A folder we may not list: take it, so read() says so instead of napari's
        # generic "no reader".
        return os.path.isdir(path)
    except (OSError, ValueError):
        return False


def read(path_or_paths: str | Sequence[str]) -> list[LayerData]:
    """Open a TIFF/PNG/JPEG file, a folder or glob of slices, or a list of files lazily.

    Parameters
    ----------
    path_or_paths : str or sequence of str
        One file, folder or glob pattern, or the files dropped together.

    Returns
    -------
    list of tuple
        ``(data, kwargs, "image")`` tuples whose data are dask arrays.

    Raises
    ------
    ReadError
        For a missing path, an empty folder, a glob matching nothing, a file that is
        not a readable image, or slices that disagree in shape or dtype. The message
        names the file.

    Examples
    --------
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((15, 48, 48)), "axial")
    >>> layers = read("axial/Synthesized_FLASH25_Axial_*.tiff")
    >>> data, kwargs, kind = layers[0]
    >>> data.shape, kwargs["axis_labels"]
    ((15, 48, 48), ('z', 'y', 'x'))
    """
    if isinstance(path_or_paths, str | os.PathLike):
        text = os.fspath(path_or_paths)
        if is_glob(text):
            files = expand_glob(text)
            name = _common_name(files)  # "brain" for brain_*.tif, not the pattern
        elif os.path.isdir(text):
            files = list_folder(text, IMAGE_SUFFIXES)
            name = os.path.basename(os.path.normpath(text))
        elif os.path.isfile(text):
            files, name = [text], os.path.basename(text)
        else:
            raise ReadError(text, "no such file or folder")
        source = {"source": text}
    else:
        files = natural_sorted(os.fspath(p) for p in path_or_paths)
        if not files:
            raise ReadError("<empty list>", "no files were given")
        for file in files:
            if not os.path.isfile(file):
                raise ReadError(file, "not a file; drop either one folder or image files")
        name = _common_name(files)
        source = {"source": files[0] if len(files) == 1 else files}
    files, skipped = _one_format(files)
    if skipped:
        source["skipped"] = skipped
    if len(files) == 1 and files[0].lower().endswith(tiff.TIFF_SUFFIXES):
        return tiff.read_tiff_file(files[0])
    return _read_stack(files, name, source)


def _common_name(files: Sequence[str]) -> str:
    """Name dropped files by their shared name prefix, or else by their folder."""
    names = [os.path.basename(f) for f in files]
    if len(names) == 1:
        return names[0]
    # Character-wise on purpose: these are file names, not paths.
    prefix = os.path.commonprefix(names).rstrip("_-. 0123456789")  # noqa: RUF071
    return prefix or os.path.basename(os.path.dirname(os.path.abspath(files[0])))


def _format_of(path: str) -> str:
    return "tiff" if path.lower().endswith(tiff.TIFF_SUFFIXES) else "pil"


def _one_format(files: list[str]) -> tuple[list[str], list[str]]:
    """Keep the most common format family; a stack cannot mix TIFF and PNG decoders."""
    counts = Counter(_format_of(f) for f in files)
    if len(counts) == 1:
        return files, []
    family = counts.most_common(1)[0][0]
    return [f for f in files if _format_of(f) == family], [
        f for f in files if _format_of(f) != family
    ]


@dataclass(frozen=True)
class FileGrid:
    """Files arranged on a (stack, channel) grid parsed from their names.

    Attributes
    ----------
    files : tuple of str
        The files, stack-major then channel.
    shape : tuple of int
        Grid shape, for the axes in ``axes``.
    axes : str
        ``"TC"``, ``"T"`` or ``"C"``: the grid axes with more than one value.
    channel_names : tuple of str
        ``ch<i>`` names (with wavelength, when the names carry one), if ``C`` is an axis.
    """

    files: tuple[str, ...]
    shape: tuple[int, ...]
    axes: str
    channel_names: tuple[str, ...]


def parse_grid(files: Sequence[str]) -> FileGrid | None:
    """Arrange files named ``..._ch<i>_..._stack<j>_...`` into a (t, c) grid.

    Parameters
    ----------
    files : sequence of str
        Candidate files.

    Returns
    -------
    FileGrid or None
        The grid, or None if some name lacks the tokens the others have, if a
        (stack, channel) pair is missing or repeated, or if every token has one value.

    Examples
    --------
    >>> names = [f"cam_ch{c}_stack{s:04d}_{c * 100}nm.tif" for s in range(3) for c in (1, 2)]
    >>> grid = parse_grid(names)
    >>> grid.axes, grid.shape, grid.channel_names
    ('TC', (3, 2), ('ch1 100nm', 'ch2 200nm'))
    """
    if not files or not _GRID_TOKEN.search(os.path.basename(files[0])):
        return None  # the common case, decided without parsing every name
    keys = []
    for path in files:
        tokens = {k.lower(): int(v) for k, v in _GRID_TOKEN.findall(os.path.basename(path))}
        keys.append((tokens.get("stack"), tokens.get("ch")))
    if not keys or any(
        (s is None, c is None) != (keys[0][0] is None, keys[0][1] is None) for s, c in keys
    ):
        return None
    stacks = sorted({s for s, _ in keys if s is not None}) or [None]
    channels = sorted({c for _, c in keys if c is not None}) or [None]
    by_key = dict(zip(keys, files, strict=True))
    if len(by_key) != len(files) or len(files) != len(stacks) * len(channels):
        return None  # repeated or missing (stack, channel) pairs
    if len(stacks) == 1 and len(channels) == 1:
        return None
    ordered = tuple(by_key[(s, c)] for s in stacks for c in channels)
    axes = ("T" if len(stacks) > 1 else "") + ("C" if len(channels) > 1 else "")
    shape = tuple(n for n in (len(stacks), len(channels)) if n > 1)
    names: tuple[str, ...] = ()
    if len(channels) > 1:
        names = tuple(_channel_name(c, [by_key[(s, c)] for s in stacks]) for c in channels)
    return FileGrid(ordered, shape, axes, names)


def _channel_name(channel: int, files: Sequence[str]) -> str:
    wavelengths = {tuple(_WAVELENGTH.findall(os.path.basename(f))) for f in files}
    if len(wavelengths) == 1 and len(wavelength := wavelengths.pop()) == 1:
        return f"ch{channel} {wavelength[0]}nm"
    return f"ch{channel}"


@dataclass(frozen=True)
class _PilLayout:
    shape: tuple[int, ...]
    dtype: np.dtype
    convert: str | None


def _pil_layout(image: Image.Image, path: str) -> _PilLayout:
    convert = _PIL_CONVERT.get(image.mode)
    if image.mode == "P" and "transparency" in image.info:
        convert = "RGBA"
    mode = convert or image.mode
    if mode not in _PIL_DTYPES:
        raise ReadError(path, f"unsupported image mode {image.mode!r}")
    width, height = image.size
    samples = _PIL_SAMPLES.get(mode)
    shape = (height, width, samples) if samples else (height, width)
    return _PilLayout(shape, np.dtype(_PIL_DTYPES[mode]), convert)


def _open_pil(path: str) -> Image.Image:
    try:
        return Image.open(path)
    except _PIL_ERRORS as exc:
        raise ReadError(path, f"not a readable image file ({exc})") from exc


def _pil_spacing(image: Image.Image) -> tuple[dict[str, float], str | None]:
    """Pixel size from the PNG pHYs / JPEG density, ignoring screen defaults."""
    dpi = image.info.get("dpi")
    if not dpi or not all(dpi) or any(round(float(v)) in (72, 96) for v in dpi):
        return {}, None
    return {"X": 25.4 / float(dpi[0]), "Y": 25.4 / float(dpi[1])}, "millimeter"


class PilPlanes:
    """Picklable loader of plane ``i`` = file ``i`` decoded by Pillow (PNG, JPEG).

    Each file is checked against the first one: another size, mode or bit depth raises
    a :class:`ReadError` naming the file.

    Parameters
    ----------
    files : sequence of str
        The files, in stack order.
    plane_shape : tuple of int
        Expected shape, ``(y, x)`` or ``(y, x, 3|4)``.
    dtype : numpy dtype
        Expected pixel type.

    Examples
    --------
    >>> from PIL import Image
    >>> for name in ("a.png", "b.png"):
    ...     Image.new("RGB", (64, 48)).save(name)
    >>> load = PilPlanes(["a.png", "b.png"], (48, 64, 3), "uint8")
    >>> load(1).shape
    (48, 64, 3)
    """

    def __init__(
        self, files: Sequence[str], plane_shape: Sequence[int], dtype: np.dtype | str
    ) -> None:
        self.files = tuple(files)
        self.plane_shape = tuple(plane_shape)
        self.dtype = np.dtype(dtype)

    def __call__(self, index: int) -> np.ndarray:
        """Return plane ``index`` (file ``index`` decoded) as a numpy array."""
        path = self.files[index]
        with _open_pil(path) as image:
            layout = _pil_layout(image, path)
            if layout.shape != self.plane_shape or layout.dtype != self.dtype:
                raise ReadError(
                    path,
                    f"this slice has shape {layout.shape} and dtype {layout.dtype}, but "
                    f"{os.path.basename(self.files[0])} (the first file) has shape "
                    f"{self.plane_shape} and dtype {self.dtype}; every file of a stack "
                    "must match",
                )
            try:
                decoded = image.convert(layout.convert) if layout.convert else image
                plane = np.asarray(decoded)
            except _PIL_ERRORS as exc:
                raise ReadError(path, f"cannot decode the image ({exc})") from exc
        return plane.astype(self.dtype, copy=False).reshape(self.plane_shape)


def _leading_axis(file_axes: str) -> str:
    """Axis letter for the file index: z for 2-D slices, t for files that are z-stacks."""
    has_z = any(letter in file_axes for letter in "ZIQ")
    if not has_z:
        return "Z"
    return "T" if "T" not in file_axes else "Q"


@dataclass(frozen=True)
class _Slices:
    """Files stacked plane by plane, with what the first file says about them all.

    Attributes
    ----------
    stack : PlaneStack
        The planes of every file, ``(files, *file_shape)`` (``file_shape`` for one file).
    file_axes : str
        Axis letters of one file.
    file_shape : tuple of int
        Shape of one file.
    rgb : bool
        Whether the last axis holds RGB(A) samples.
    spacing : dict
        Physical size per axis letter.
    unit : str or None
        pint unit of ``spacing``.
    """

    stack: tiff.PlaneStack
    file_axes: str
    file_shape: tuple[int, ...]
    rgb: bool
    spacing: dict[str, float]
    unit: str | None


def _read_stack(files: list[str], name: str, source: dict[str, Any]) -> list[LayerData]:
    """Stack ``files`` (on their name grid, if any) into one lazy image layer."""
    grid = parse_grid(files) if len(files) > 1 else None
    ordered = list(grid.files) if grid else files
    first = ordered[0]
    if _format_of(first) == "tiff":
        header = tiff.probe_tiff(first)
        if header.multifile:
            # A multi-file OME-TIFF (Micro-Manager and others): the first file's
            # metadata already spans the other files, so it alone is the dataset.
            return tiff.read_tiff_file(first)
        slices = _tiff_slices(ordered, header)
    else:
        slices = _pil_slices(ordered)
    stack, axes = _arranged(slices, grid, len(ordered))
    layer = tiff.layer_data(
        [stack],
        axes,
        rgb=slices.rgb,
        spacing=slices.spacing,
        unit=slices.unit,
        channel_names=grid.channel_names if grid else (),
        name=name,
        source={**source, "files": len(ordered), "first_file": first},
    )
    return [layer]


def _tiff_slices(files: list[str], header: tiff.TiffHeader) -> _Slices:
    """Stack TIFF files that match ``header``, the first file's."""
    stack = tiff.tiff_stack(files, header, stamp=tiff.file_stamp(files[0]))
    return _Slices(stack, header.axes, header.shape, header.rgb, header.spacing, header.unit)


def _pil_slices(files: list[str]) -> _Slices:
    """Stack PNG or JPEG files that match the first one, decoded by Pillow."""
    first = files[0]
    with _open_pil(first) as image:
        layout = _pil_layout(image, first)
        spacing, unit = _pil_spacing(image)
    loader = PilPlanes(files, layout.shape, layout.dtype)
    token = tiff.files_token(files, layout.shape, layout.dtype.str, tiff.file_stamp(first))
    array = stack_planes(
        loader, len(files), layout.shape, layout.dtype, name=f"bigvol-image-{token}"
    )
    stack = tiff.PlaneStack(array, loader, len(layout.shape))
    if len(files) == 1:
        stack = stack.reshaped(layout.shape)
    rgb = len(layout.shape) == 3
    return _Slices(stack, "YXS" if rgb else "YX", layout.shape, rgb, spacing, unit)


def _arranged(slices: _Slices, grid: FileGrid | None, count: int) -> tuple[tiff.PlaneStack, str]:
    """Give the file index its axes: the name grid's, a new z (or t) axis, or none for one file."""
    if grid:
        return slices.stack.reshaped(
            (*grid.shape, *slices.file_shape)
        ), grid.axes + slices.file_axes
    if count == 1:
        return slices.stack, slices.file_axes
    return slices.stack, _leading_axis(slices.file_axes) + slices.file_axes
