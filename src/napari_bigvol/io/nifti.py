"""Lazy NIfTI-1 / NIfTI-2 reader (``.nii``, ``.nii.gz``) with scanner-millimetre world coordinates.

Opening parses the header alone. Voxels are then read one napari plane at a time through
a nibabel :class:`~nibabel.arrayproxy.ArrayProxy` on one file handle per layer (never
``get_fdata()``); ``scl_slope``/``scl_inter`` are applied to each plane as it is read
(float32 output, float64 where the stored type needs it; the stored type when unscaled).
A ``.nii.gz`` is read through indexed_gzip, whose seek points (1 MiB of voxels apart, or
one plane if larger) are built on the first pass and reused, so a random plane costs at
most about 1 MiB of decompression beyond itself, not the whole file up to it; while planes
are scrolled (either way) the next 2 MiB of planes come in one read. Contrast limits come from
``cal_min``/``cal_max`` when set, else from the middle plane (the one napari shows first).
RGB24/RGBA32 voxels become an ``rgb`` layer with a trailing uint8 colour axis.

Orientation convention
----------------------
World coordinates are the scanner millimetres of the image affine (sform if set, else
qform) in nibabel's RAS+ frame, the frame of FSLeyes, freeview, nilearn, SPM and MNI
coordinates (shared with the DICOM reader through :mod:`napari_bigvol.io._orientation`):

* napari world ``z`` = +S (superior) mm, ``y`` = +A (anterior) mm, ``x`` = +R (the
  patient's right) mm, so a world point ``(z, y, x)`` is the RAS point ``(x, y, z)`` of
  ``nibabel.affines.apply_affine(img.affine, ijk)``, and the status bar reads ``[S A R]``.
  Axis labels ``("I→S", "P→A", "L→R")`` say which way each axis runs, with ``"t"`` first
  for 4-D series (then ``"u"``, ``"v"``, ``"w"`` for the rare 5-7-D files; non-spatial
  axes of length 1 are dropped).
* The voxel array is reoriented lazily, by axis permutation and flips only (numpy views,
  no resampling, chosen with :func:`nibabel.orientations.io_orientation`), so its axes
  are (S, A, R) whatever the voxel order on disk (RAS, LAS, LPI, PSL, ...).
* napari's default camera draws y down and x right, which would show this grid upside
  down; the plugin's napari glue turns the camera instead (``camera.orientation``; see
  :func:`napari_bigvol.set_display_convention`), so an axial plane shows anterior at the
  top and the patient's left on the screen's right (the radiological convention of
  clinical viewers and freeview), and coronal and sagittal planes show superior at the top.
* ``scale`` holds the voxel sizes along the reoriented axes and ``translate`` the RAS
  position of reoriented voxel (0, 0, 0), so the layer's data-to-world map reproduces
  ``nibabel.affines.apply_affine(img.affine, ijk)`` exactly.
* Oblique affines (a rotation that is not a pure permutation and flip) keep their
  residual rotation exactly: the data are reoriented to the closest axes, ``scale`` still
  holds the voxel sizes, and a napari ``affine`` carries the residual rotation (direction
  cosines) and the translation; ``translate`` is then zero for the spatial axes. World
  coordinates stay exact and 3-D rendering shows the tilt; in 2-D napari draws each plane
  without its out-of-plane rotation and warns "Non-orthogonal slicing ... not fully
  supported" (a UserWarning).
* Units come from ``xyzt_units`` ("mm" when unknown, as the NIfTI standard assumes);
  the time axis uses ``pixdim[4]`` as scale, ``toffset`` as translate and the header's
  time unit ("pixel" when the header does not say).

``metadata["bigvol"]`` records the source path, the original affine and its axis codes,
the axis mapping used, where the contrast limits came from, and a summary of the header.

Files stored slice by slice along another axis (a sagittal acquisition saved as PSL, say)
show the same anatomy, but an axial plane is then scattered through the file: a ``.nii``
still reads just that plane's bytes (in strided runs), a ``.nii.gz`` decompresses across
the whole file for it.
"""

from __future__ import annotations

import gzip
import os
import threading
import weakref
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from dask.base import tokenize
from indexed_gzip import IndexedGzipFile
from nibabel.arrayproxy import ArrayProxy
from nibabel.nifti1 import Nifti1Header
from nibabel.nifti2 import Nifti2Header
from nibabel.orientations import aff2axcodes
from nibabel.spatialimages import HeaderDataError, HeaderTypeError
from nibabel.volumeutils import shape_zoom_affine
from nibabel.wrapstruct import WrapStructError

from napari_bigvol.errors import ReadError
from napari_bigvol.io._orientation import (
    SPATIAL_AXIS_LABELS,
    LeadingAxis,
    reorient,
    world_placement,
)
from napari_bigvol.io._paths import PathLike, expand_glob, is_glob, require_exists
from napari_bigvol.io._physical import usable_sizes
from napari_bigvol.io._planes import stack_planes
from napari_bigvol.units import canonical_unit

__all__ = ["accepts", "read"]

SUFFIXES = (".nii", ".nii.gz")
# Deflate cannot compress better than about 1032:1, so a .nii.gz whose header claims more
# voxel bytes than this many times its own size is lying.
_MAX_GZIP_RATIO = 1032
_EXTRA_AXIS_LABELS = ("t", "u", "v", "w")
_HEADER_CLASSES = {348: Nifti1Header, 540: Nifti2Header}
# What nibabel and numpy raise for header values that parse but describe no image (each
# seen when fuzzing, tests/io/test_fuzz.py): LinAlgError for a NaN or huge affine,
# ValueError for a quaternion whose w² is negative or a NaN vox_offset, KeyError for an
# unknown unit or datatype code, ArithmeticError (overflow) for absurd sizes.
_HEADER_VALUE_ERRORS = (np.linalg.LinAlgError, ValueError, KeyError, ArithmeticError)
# NIfTI intent codes 3000-3099 are reserved for CIFTI-2 matrices (grayordinates, not voxels).
_CIFTI_INTENT_CODES = range(3000, 3100)
# indexed_gzip seek-point spacing: each point keeps a 32 KiB window, so 1 MiB costs at
# most 3 % of the decompressed size in memory, and only for the parts that were visited.
_GZIP_MIN_SPACING = 1 << 20
_GZIP_MAX_SPACING = 64 << 20
# Bytes of consecutive planes read at once while scrolling through a .nii.gz.
_GZIP_READAHEAD = 2 << 20
_GZIP_SMALL_BUFFER = 128 << 10
_GZIP_LARGE_BUFFER = 4 << 20


def accepts(path: str) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``, any case). Never raises.

    Parameters
    ----------
    path : str
        A file name, path or glob pattern; only the name is looked at.

    Returns
    -------
    bool
        True for names ending in ``.nii`` or ``.nii.gz``.

    Examples
    --------
    >>> accepts("/data/T1w.NII.GZ"), accepts("/data/T1w.nii"), accepts("/data/T1w.mgz")
    (True, True, False)
    """
    try:
        return os.fspath(path).lower().endswith(SUFFIXES)
    except TypeError:
        return False


def read(path: PathLike | Sequence[PathLike]) -> list[tuple[Any, dict[str, Any], str]]:
    """Open NIfTI files lazily as napari image layer data, one layer per file.

    Opening reads the header and one plane (the middle one, which napari shows first)
    when contrast limits must be sampled; every displayed plane then reads one plane.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        A ``.nii``/``.nii.gz`` file, a glob pattern matching such files, or a list of them.

    Returns
    -------
    list of tuple
        ``(data, kwargs, "image")`` per file. ``data`` is a dask array in napari axis order
        ``(z, y, x)`` or ``(t, z, y, x)``; ``kwargs`` holds name, scale, translate (and
        ``affine`` for oblique files), axis_labels, units, contrast_limits, rgb and
        metadata, ready for ``viewer.add_image(data, **kwargs)``.

    Raises
    ------
    ReadError
        For a missing, unreadable, truncated or corrupt file, or a header that claims
        an impossible size; the message names the file and the problem.

    Examples
    --------
    >>> import napari_bigvol.io.nifti as nifti
    >>> from napari_bigvol.sample import brain_volume, write_nifti
    >>> _ = write_nifti(brain_volume((16, 24, 20)), "T1w.nii.gz", (2.0, 1.0, 1.0))
    >>> [(data, kwargs, kind)] = nifti.read("T1w.nii.gz")
    >>> data.shape, kwargs["axis_labels"], kwargs["units"]
    ((16, 24, 20), ('I→S', 'P→A', 'L→R'), ('millimeter', 'millimeter', 'millimeter'))
    >>> from napari.layers import Image
    >>> Image(data, **kwargs).ndim  # as viewer.add_image(data, **kwargs) builds it
    3
    """
    if isinstance(path, str | os.PathLike):
        text = os.fspath(path)
        paths = expand_glob(text) if is_glob(text) else [text]
    else:
        paths = [os.fspath(p) for p in path]
    return [_read_checked(p) for p in paths]


def _read_checked(path: str) -> tuple[Any, dict[str, Any], str]:
    """:func:`_read_file`, with header values nibabel parses but cannot use named as such."""
    try:
        data, kwargs, kind = _read_file(path)
    except ReadError:
        raise
    except _HEADER_VALUE_ERRORS as error:
        raise ReadError(
            path,
            f"the NIfTI header holds values that cannot describe an image "
            f"({type(error).__name__}: {error})",
        ) from error
    labels = kwargs["axis_labels"]
    for key, positions in (("scale", False), ("translate", True)):
        given = dict(zip(labels, kwargs[key], strict=True))
        usable = usable_sizes(given, path, f"NIfTI {key}", positions=positions)
        kwargs[key] = tuple(usable.get(label, 0.0 if positions else 1.0) for label in labels)
    return data, kwargs, kind


class _PlaneLoader:
    """Reads napari plane ``i`` of a NIfTI file; small, picklable and thread-safe.

    The file is opened on first use and kept open (one handle per loader, so a
    ``.nii.gz`` keeps its indexed_gzip seek points between planes); the handle is dropped
    on pickling and re-opened lazily after unpickling, e.g. on a dask.distributed worker.

    A ``.nii.gz`` stored plane after plane along napari z also reads ahead: when planes
    are requested one after another (scrolling, either way), the next ``readahead``
    planes in that direction come in one read and are kept until the next read.
    """

    def __init__(
        self,
        path: str,
        layout: _Layout,
        disk_dtype: np.dtype,
        offset: int,
        scaling: tuple[float, float] | None,
    ) -> None:
        self.path = path
        self.disk_dtype = disk_dtype
        self.offset = offset
        self.scaling = scaling
        self.layout = layout
        self.dtype = _output_dtype(disk_dtype, scaling)
        rows, columns = layout.disk_shape[:2]
        self.plane_bytes = rows * columns * disk_dtype.itemsize
        self.compressed = path.lower().endswith(".gz")
        # Disk axis 2 (the slowest spatial one) is napari z: its planes are contiguous.
        contiguous = layout.spatial_axis[0] == 2
        self.readahead = (
            max(1, _GZIP_READAHEAD // self.plane_bytes) if self.compressed and contiguous else 1
        )
        self._forget_handle()

    def _forget_handle(self) -> None:
        self._lock = threading.RLock()
        self._proxy: ArrayProxy | None = None
        self._previous: tuple[tuple[Any, ...], int] | None = None  # (volume, disk z)
        self._slab: dict[int, np.ndarray] = {}  # disk z -> plane, for self._slab_volume
        self._slab_volume: tuple[Any, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for transient in ("_lock", "_proxy", "_previous", "_slab", "_slab_volume"):
            del state[transient]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._forget_handle()

    def _array_proxy(self) -> ArrayProxy:
        # Opened here, under our lock, so concurrent first reads cannot open it twice;
        # the proxy's own lock then serialises each seek+read on the shared handle.
        with self._lock:
            if self._proxy is None:
                handle = self._open()
                weakref.finalize(self, handle.close)
                spec = (self.layout.disk_shape, self.disk_dtype, self.offset, 1.0, 0.0)
                self._proxy = ArrayProxy(handle, spec, mmap=False, order="F")
            return self._proxy

    def _open(self) -> Any:
        if not self.compressed:
            return open(self.path, "rb")  # closed by the finalizer in _array_proxy
        # What nibabel's keep_file_open gives (an IndexedGzipFile holding its handle and
        # seek points), tuned: nibabel's seek points 4 MiB apart and 4 MiB read buffer
        # make every random plane decompress up to 8 MiB (docs/performance/nifti.md).
        spacing = min(max(_GZIP_MIN_SPACING, self.plane_bytes), _GZIP_MAX_SPACING)
        # Plane and slab reads bypass a small buffer; scattered planes (another storage
        # order) read short strided runs, which a large buffer serves.
        buffer = _GZIP_SMALL_BUFFER if self.readahead > 1 else _GZIP_LARGE_BUFFER
        return IndexedGzipFile(self.path, drop_handles=False, spacing=spacing, buffer_size=buffer)

    def __call__(self, index: int) -> np.ndarray:
        """Return napari plane ``index`` (counted over the leading axes) as ``(y, x)``."""
        slicer, transpose, flips = self.layout.plane_read(index)
        try:
            raw = self._disk_plane(slicer)
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            raise ReadError(
                self.path, f"cannot read plane {index}, the file is truncated or corrupt ({exc})"
            ) from exc
        plane = raw.T if transpose else raw
        plane = plane[flips]
        if self.disk_dtype.names:  # RGB24 / RGBA32: one uint8 channel per field
            return np.stack([plane[channel] for channel in self.disk_dtype.names], axis=-1)
        if self.scaling is None:
            # vispy and most numpy code want native byte order (anatomical.nii is >i2).
            return plane.astype(self.dtype, copy=False)
        slope, inter = self.scaling
        scaled = plane.astype(self.dtype)
        scaled *= self.dtype.type(slope)
        scaled += self.dtype.type(inter)
        return scaled

    def _disk_plane(self, slicer: tuple[Any, ...]) -> np.ndarray:
        """Read the disk plane ``slicer`` selects, reading ahead while planes are scrolled."""
        if self.readahead == 1:
            return self._array_proxy()[slicer]
        z, volume = slicer[2], slicer[3:]
        with self._lock:
            previous, self._previous = self._previous, (volume, z)
            if volume == self._slab_volume and z in self._slab:
                return self._slab[z].copy()  # callers may write; the slab stays intact
            step = z - previous[1] if previous is not None and previous[0] == volume else 0
            if step == 1:
                start, stop = z, min(z + self.readahead, self.layout.disk_shape[2])
            elif step == -1:
                start, stop = max(z - self.readahead + 1, 0), z + 1
            else:  # a jump: read just this plane
                start, stop = z, z + 1
            slab = self._array_proxy()[(*slicer[:2], slice(start, stop), *volume)]
            self._slab_volume = volume
            self._slab = {start + i: slab[:, :, i] for i in range(stop - start)}
            return self._slab[z].copy()


class _Layout:
    """How the on-disk voxel axes map to napari's ``(*leading, z, y, x)`` axes.

    Parameters
    ----------
    spatial_axis : tuple of int
        Disk axis (0, 1 or 2) that becomes napari z, y and x respectively.
    spatial_flip : tuple of bool
        Whether napari z, y and x run against their disk axis.
    disk_shape : tuple of int
        The on-disk shape (at least 3 axes); axes from 3 on are non-spatial.
    """

    def __init__(
        self,
        spatial_axis: tuple[int, int, int],
        spatial_flip: tuple[bool, bool, bool],
        disk_shape: tuple[int, ...],
    ) -> None:
        self.spatial_axis = spatial_axis
        self.spatial_flip = spatial_flip
        self.disk_shape = disk_shape
        # Non-spatial disk axes kept as leading napari axes; singletons are dropped.
        self.leading_axes = tuple(a for a in range(3, len(disk_shape)) if disk_shape[a] > 1)

    @property
    def leading_shape(self) -> tuple[int, ...]:
        return tuple(self.disk_shape[a] for a in self.leading_axes)

    @property
    def leading_labels(self) -> tuple[str, ...]:
        """Axis labels napari shows for the leading (non-spatial) axes: t, then u, v, w."""
        return tuple(_EXTRA_AXIS_LABELS[axis - 3] for axis in self.leading_axes)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        z, y, x = (self.disk_shape[a] for a in self.spatial_axis)
        return z, y, x

    @property
    def napari_shape(self) -> tuple[int, ...]:
        return (*self.leading_shape, *self.spatial_shape)

    @property
    def plane_count(self) -> int:
        return int(np.prod(self.napari_shape[:-2]))

    def plane_read(self, index: int) -> tuple[tuple[Any, ...], bool, tuple[slice, slice]]:
        """Disk slicer for napari plane ``index``, whether to transpose, and the flips."""
        *leading, z = np.unravel_index(index, self.napari_shape[:-2])
        slicer: list[Any] = [0] * len(self.disk_shape)
        for axis, position in zip(self.leading_axes, leading, strict=True):
            slicer[axis] = int(position)
        z_axis, y_axis, x_axis = self.spatial_axis
        nz = self.disk_shape[z_axis]
        slicer[z_axis] = int(nz - 1 - z if self.spatial_flip[0] else z)
        slicer[y_axis] = slice(None)
        slicer[x_axis] = slice(None)
        # The read plane keeps the disk order of its two axes; napari wants (y, x).
        transpose = y_axis > x_axis
        flips = tuple(slice(None, None, -1 if flip else None) for flip in self.spatial_flip[1:])
        return tuple(slicer), transpose, flips  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """Summary for metadata: which disk axis and direction each napari axis uses."""
        spatial = {
            label: {"disk_axis": axis, "flipped": flip}
            for label, axis, flip in zip(
                SPATIAL_AXIS_LABELS, self.spatial_axis, self.spatial_flip, strict=True
            )
        }
        leading = {
            _EXTRA_AXIS_LABELS[axis - 3]: {"disk_axis": axis, "flipped": False}
            for axis in self.leading_axes
        }
        return {**leading, **spatial}


def _output_dtype(disk_dtype: np.dtype, scaling: tuple[float, float] | None) -> np.dtype:
    """Native-order disk dtype, or the smallest float holding every scaled value."""
    if disk_dtype.names:
        return np.dtype(np.uint8)  # RGB24 / RGBA32 channels
    native = disk_dtype.newbyteorder("=")
    if native.kind == "f" and native.itemsize > 8:
        return np.dtype(np.float64)  # napari cannot show long doubles
    if scaling is None:
        return native
    # float32 for (u)int8/16 and float32; float64 where float32 would lose precision.
    return np.promote_types(native, np.float32)


def _read_file(path: str) -> tuple[Any, dict[str, Any], str]:
    """Open one NIfTI file lazily: check its header, reorient, stack planes, describe."""
    header = _read_header(path)
    disk_shape, disk_dtype, offset, scaling, affine = _header_facts(path, header)
    _check_size(path, disk_shape, disk_dtype, offset)
    usable_affine, affine_note = _usable_affine(affine, header, disk_shape)
    reorientation = reorient(usable_affine, disk_shape)
    layout = _Layout(reorientation.spatial_axis, reorientation.spatial_flip, disk_shape)
    loader = _PlaneLoader(path, layout, disk_dtype, offset, scaling)
    data = _lazy_volume(path, loader, layout)
    contrast_limits, limits_source = _contrast_limits(header, loader, layout)
    kwargs = {
        "name": _layer_name(path),
        **world_placement(reorientation.affine, _leading_axes(header, layout)),
        "axis_labels": (*layout.leading_labels, *SPATIAL_AXIS_LABELS),
        "units": _units(header, layout),
        "contrast_limits": contrast_limits,
        # An x axis 3 or 4 voxels wide must not be mistaken for colour channels.
        "rgb": bool(disk_dtype.names),
        "multiscale": False,
        "metadata": {
            "bigvol": {
                **_file_facts(path, header, affine, affine_note),
                "axes": layout.describe(),
                "contrast_limits_from": limits_source,
                "header": _header_summary(header, disk_shape, offset, scaling),
            }
        },
    }
    return data, kwargs, "image"


def _lazy_volume(path: str, loader: _PlaneLoader, layout: _Layout) -> Any:
    """Dask array of the reoriented volume, one chunk per napari plane, keyed by the file."""
    colour_shape = (len(loader.disk_dtype.names),) if loader.disk_dtype.names else ()
    stat = os.stat(path)
    token = tokenize(path, stat.st_mtime_ns, stat.st_size, layout.describe())
    planes = stack_planes(
        loader,
        layout.plane_count,
        (*layout.spatial_shape[1:], *colour_shape),
        loader.dtype,
        name=f"nifti-{token}",
    )
    return planes.reshape((*layout.napari_shape, *colour_shape))


def _file_facts(
    path: str, header: Any, affine: np.ndarray, affine_note: str | None
) -> dict[str, Any]:
    """Format, compression and the stored affine (with its axis codes), for metadata."""
    return {
        "source": path,
        "format": "NIfTI-2" if isinstance(header, Nifti2Header) else "NIfTI-1",
        "compressed": path.lower().endswith(".gz"),
        "affine": affine.tolist(),
        "axcodes": list(aff2axcodes(affine)),
        "affine_note": affine_note,
    }


def _read_header(path: str) -> Nifti1Header:
    """Parse the NIfTI-1 or NIfTI-2 header (and extensions) alone: no image, no voxels."""
    require_exists(path)  # before opening: a FIFO named .nii would block forever
    if os.path.isdir(path):
        raise ReadError(path, "is a folder, not a NIfTI file")
    # gzip.open rather than nib.load: nibabel's indexed_gzip opener fills a 4 MiB buffer
    # just to read the header, ~100 ms per .nii.gz.
    open_stream = gzip.open if path.lower().endswith(".gz") else open
    header: Nifti1Header | None = None
    try:
        with open_stream(path, "rb") as stream:
            header_class = _HEADER_CLASSES.get(_sizeof_hdr(stream.read(4)))
            if header_class is not None:
                stream.seek(0)
                header = header_class.from_fileobj(stream, check=True)
    except gzip.BadGzipFile as exc:
        raise ReadError(path, f"not a gzip file ({exc})") from exc
    except (HeaderDataError, HeaderTypeError) as exc:
        raise ReadError(path, f"the NIfTI header is invalid: {exc}") from exc
    except (WrapStructError, OSError, EOFError, ValueError, zlib.error) as exc:
        # WrapStructError: the file ends inside the header.
        raise ReadError(path, f"the NIfTI header cannot be read: {exc}") from exc
    if header is None:
        raise ReadError(path, "not a NIfTI file (its header size field is neither 348 nor 540)")
    magic = bytes(header["magic"].item()).rstrip(b"\x00")
    if magic not in (b"n+1", b"n+2"):
        raise ReadError(
            path,
            f"not a single-file NIfTI (magic {magic!r}); .hdr/.img pairs are not supported",
        )
    if int(header["intent_code"]) in _CIFTI_INTENT_CODES:
        intent = header.get_intent()[0]
        raise ReadError(path, f"a CIFTI-2 file ({intent}), not an image volume")
    return header


def _sizeof_hdr(prefix: bytes) -> int | None:
    """Return the header size field if it is 348 (NIfTI-1) or 540 (NIfTI-2), either endian."""
    for byteorder in ("little", "big"):
        size = int.from_bytes(prefix, byteorder) if len(prefix) == 4 else None
        if size in _HEADER_CLASSES:
            return size
    return None


def _header_facts(
    path: str, header: Nifti1Header
) -> tuple[tuple[int, ...], np.dtype, int, tuple[float, float] | None, np.ndarray]:
    """Shape (at least 3-D), dtype, data offset, scaling and affine, checked."""
    try:
        disk_shape = tuple(int(n) for n in header.get_data_shape())
        slope, inter = header.get_slope_inter()
        affine = header.get_best_affine()
    except HeaderDataError as exc:
        raise ReadError(path, f"the NIfTI header is invalid: {exc}") from exc
    disk_shape = disk_shape + (1,) * (3 - len(disk_shape))
    if min(disk_shape) < 1:
        raise ReadError(path, f"the header describes an empty volume of shape {disk_shape}")
    disk_dtype = np.dtype(header.get_data_dtype())
    rgb = disk_dtype.names is not None and all(
        disk_dtype[name] == np.uint8 for name in disk_dtype.names
    )
    if disk_dtype.kind not in "uif" and not rgb:
        raise ReadError(
            path, f"voxels of type {header.get_value_label('datatype')} cannot be displayed"
        )
    # nibabel reads a slope of 1 and intercept of 0 as unscaled too.
    # The NIfTI standard does not scale RGB voxels.
    no_scaling = rgb or slope is None or (slope, inter) == (1.0, 0.0)
    scaling = None if no_scaling else (float(slope), float(inter))
    offset = int(header.get_data_offset())
    if offset == 0:  # unset (old writers): the data follow the header and its extensions
        offset = header.single_vox_offset + int(header.extensions.get_sizeondisk())
    return disk_shape, disk_dtype, offset, scaling, affine


def _check_size(path: str, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> None:
    """Refuse headers whose claimed voxel data cannot be in the file, before any allocation."""
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize  # object: no int64 overflow
    file_size = os.path.getsize(path)
    claim = (
        f"the header claims {' x '.join(map(str, shape))} {dtype.name} voxels "
        f"({_human_bytes(nbytes)}) from byte {offset}"
    )
    if path.lower().endswith(".gz"):
        if offset + nbytes > _MAX_GZIP_RATIO * file_size:
            raise ReadError(
                path,
                f"{claim}, more than a {_human_bytes(file_size)} gzip file can hold: "
                "the header is corrupt",
            )
    elif offset + nbytes > file_size:
        raise ReadError(
            path,
            f"{claim}, but the file has only {file_size} bytes: it is truncated "
            "or its header is corrupt",
        )


def _human_bytes(count: int) -> str:
    """Format a byte count for a message, e.g. ``'49.1 TiB'``."""
    if count < 1024:
        return f"{count} bytes"
    size = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):  # noqa: B007 - used after the loop
        size /= 1024
        if size < 1024:
            break
    return f"{size:.3g} {unit}"


def _usable_affine(
    affine: np.ndarray, header: Nifti1Header, disk_shape: tuple[int, ...]
) -> tuple[np.ndarray, str | None]:
    """Return the image affine, or nibabel's fallback grid if the affine is degenerate."""
    if np.all(np.isfinite(affine)) and np.linalg.matrix_rank(affine[:3, :3]) == 3:
        return affine, None
    # What nibabel uses when a header has neither qform nor sform: voxel sizes, x flipped
    # (LAS, Analyze's convention), centred on the volume.
    zooms = [float(z) if z > 0 else 1.0 for z in header.get_zooms()[:3]]
    fallback = shape_zoom_affine(disk_shape[:3], zooms, x_flip=True)
    return fallback, "the affine is degenerate; used voxel sizes on a centred LAS grid"


def _leading_axes(header: Any, layout: _Layout) -> list[LeadingAxis]:
    """Return the non-spatial axes napari keeps: time step and offset from the header."""
    zooms = header.get_zooms()
    return [
        LeadingAxis(
            _EXTRA_AXIS_LABELS[axis - 3],
            scale=float(zooms[axis]) if zooms[axis] > 0 else 1.0,
            translate=float(header["toffset"]) if axis == 3 else 0.0,
        )
        for axis in layout.leading_axes
    ]


def _units(header: Any, layout: _Layout) -> tuple[str, ...]:
    space, time = header.get_xyzt_units()
    time_unit = canonical_unit(time) or "pixel"
    leading = [time_unit if axis == 3 else "pixel" for axis in layout.leading_axes]
    return (*leading, *[canonical_unit(space) or "millimeter"] * 3)


def _contrast_limits(
    header: Any, loader: _PlaneLoader, layout: _Layout
) -> tuple[tuple[float, float], str]:
    """Header cal_min/cal_max when set, else the range of the plane napari shows first.

    RGB voxels take the uint8 range.
    """
    if loader.disk_dtype.names:
        return (0.0, 255.0), "the uint8 range of RGB voxels"
    cal_min, cal_max = float(header["cal_min"]), float(header["cal_max"])
    if np.isfinite(cal_min) and np.isfinite(cal_max) and cal_max > cal_min:
        return (cal_min, cal_max), "header cal_min/cal_max"
    # napari opens at the middle step of every slider; that plane is read anyway.
    middle = tuple((n - 1) // 2 for n in layout.napari_shape[:-2])
    plane = loader(int(np.ravel_multi_index(middle, layout.napari_shape[:-2])))
    values = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
    where = ", ".join(
        f"{label}={i}"
        for label, i in zip(
            (*layout.leading_labels, SPATIAL_AXIS_LABELS[0]),
            middle,
            strict=True,
        )
    )
    source = f"range of the middle plane ({where})"
    if values.size == 0:
        return (0.0, 1.0), source
    low, high = float(values.min()), float(values.max())
    return (low, high if high > low else low + 1.0), source


def _layer_name(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _header_summary(
    header: Any, disk_shape: tuple[int, ...], offset: int, scaling: tuple[float, float] | None
) -> dict[str, Any]:
    """Plain-Python facts from the header, for metadata and a layer-info panel."""
    space, time = header.get_xyzt_units()
    return {
        "shape": list(disk_shape),
        "datatype": str(header.get_value_label("datatype")),
        "zooms": [float(z) for z in header.get_zooms()],
        "xyzt_units": [space, time],
        "scl_slope": None if scaling is None else scaling[0],
        "scl_inter": None if scaling is None else scaling[1],
        "cal_min": float(header["cal_min"]),
        "cal_max": float(header["cal_max"]),
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
        "intent": str(header.get_intent()[0]),
        "descrip": header["descrip"].item().decode("latin-1").rstrip("\x00"),
        "toffset": float(header["toffset"]),
        "vox_offset": offset,
    }
