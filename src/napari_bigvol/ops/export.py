"""Export a volume (or napari layers) to OME-Zarr with a pyramid, streamed and safely.

The export reads the source once. The source is cut into work units, blocks whose edges
line up with the chunks of every pyramid level (see :mod:`._pyramid`). Each unit is read,
written as level 0, halved in memory and written to level 1, and so on, all in the same
task. Units run in parallel through :func:`~napari_bigvol.ops.compute.stream_blocks`, on
local threads or a configured ``dask.distributed`` cluster, so memory stays at about one
unit per worker.

Nothing is written at the target path until the export has succeeded. The store is built
in a hidden sibling folder (``.NAME.partial-HOST-PID-RANDOM``). Its image metadata is
written last, and the folder is renamed into place at the end. An existing target is
replaced only with ``overwrite=True``: it is moved aside first, and deleted only once the
new store is in place.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import dask.array as da
import numcodecs
import numpy as np
import platformdirs
import zarr
from zarr.codecs import BloscCodec

from napari_bigvol.errors import BigVolError, Cancelled, OperationError
from napari_bigvol.io import _ngff as ngff
from napari_bigvol.io._paths import GLOB_CHARS
from napari_bigvol.io._planes import PlaneArray
from napari_bigvol.io._store_swap import (
    OLD,
    PARTIAL,
    owned_by_dead_process,
    recover_interrupted_swap,
    remove,
    sibling,
)
from napari_bigvol.io._zarr_chunks import write_region
from napari_bigvol.ops._pyramid import (
    WORK_UNIT_BUDGET,
    WorkPlan,
    downsample_mean,
    downsample_mode,
    level_factors,
    plan_work,
)
from napari_bigvol.ops.compute import (
    ProgressCallback,
    StopCheck,
    as_dask_array,
    block_checkpoint,
    stream_blocks,
)
from napari_bigvol.units import ngff_unit

T = TypeVar("T")
COMPRESSORS = ("zstd", "lz4", None)
ZARR_FORMATS = (2, 3)
# 64-voxel cubes: an XY and an XZ plane cost the same (64 planes' worth of chunks),
# instead of whole-plane chunks, where XY is cheap and XZ reads the whole volume.
# docs/performance/export.md has the measurements behind this choice.
DEFAULT_CHUNK_3D = 64
DEFAULT_CHUNK_2D = 512
# A work unit is written in pieces of whole chunk rows of at least this size; between
# pieces the progress moves and a cancel can stop the unit (see _UnitPieces).
PIECE_BYTES = 4 << 20
_RGB_NAMES = ("red", "green", "blue", "alpha")
_RGB_COLORS = ("FF0000", "00FF00", "0000FF", "FFFFFF")
# napari's own defaults when it splits channels: magenta/green for two, else CMYRGB.
_TWO_CHANNEL_COLORS = ("FF00FF", "00FF00")
_CHANNEL_COLORS = ("00FFFF", "FF00FF", "FFFF00", "FF0000", "00FF00", "0000FF")
# Spellings napari accepts beyond its pure-colour colormap names.
_NAMED_COLORS = {**ngff.COLORMAP_HEX, "grey": "FFFFFF", "white": "FFFFFF", "gray_r": "FFFFFF"}

__all__ = [
    "COMPRESSORS",
    "ExportOptions",
    "LayerDescription",
    "Volume",
    "available_path",
    "check_export_target",
    "default_export_path",
    "describe_layer",
    "describe_layer_data",
    "export_layers",
    "export_zarr",
    "layer_axis_count",
    "recover_interrupted_swap",
    "safe_file_name",
    "volume",
]


@dataclass(frozen=True)
class ExportOptions:
    """How to write the store.

    Attributes
    ----------
    chunks : tuple of int or None
        Level-0 chunk shape of the spatial axes (``z, y, x`` or ``y, x``); time and
        channel axes are chunked by 1. None picks 64-voxel cubes (512 x 512 tiles in 2D).
        Deeper levels may get shallower chunks so that one pass can write them.
    compressor : str or None
        ``"zstd"`` (Blosc zstd, level 3, bit shuffle: small files, still fast), ``"lz4"``
        (Blosc lz4, byte shuffle: fastest) or None (raw chunks).
    pyramid : bool
        Write downsampled levels until the smallest fits in about 512 pixels.
    zarr_format : int
        2 (NGFF 0.4, read by the most tools) or 3 (NGFF 0.5).
    sharding : bool
        zarr v3 only: pack the chunks of each work unit into one shard file per level.
    unit_bytes : int
        How large a work unit may grow for full pyramid alignment (see
        :func:`~napari_bigvol.ops._pyramid.plan_work`); 0 keeps units at their minimum,
        for the least memory.
    """

    chunks: tuple[int, ...] | None = None
    compressor: str | None = "zstd"
    pyramid: bool = True
    zarr_format: int = 2
    sharding: bool = False
    unit_bytes: int = WORK_UNIT_BUDGET

    def __post_init__(self) -> None:
        compressor = None if self.compressor in (None, "none", "None", "") else self.compressor
        object.__setattr__(self, "compressor", compressor)
        if compressor not in COMPRESSORS:
            raise OperationError(
                f"unknown compressor {self.compressor!r}; choose zstd, lz4 or none"
            )
        if self.zarr_format not in ZARR_FORMATS:
            raise OperationError(f"zarr_format must be 2 or 3, not {self.zarr_format!r}")
        if self.sharding and self.zarr_format != 3:
            raise OperationError("sharding needs zarr_format=3 (zarr v2 has no shards)")
        if self.chunks is not None:
            chunks = tuple(int(c) for c in self.chunks)
            if not chunks or min(chunks) < 1:
                raise OperationError(f"chunk sizes must be positive integers, not {self.chunks}")
            object.__setattr__(self, "chunks", chunks)


@dataclass(frozen=True)
class Volume:
    """A source normalised for OME-Zarr: NGFF axis order and everything the metadata needs.

    Attributes
    ----------
    data : dask.array.Array
        Level 0, axes ordered time, channel, space (z, y, x).
    axes : tuple of Axis
        Name, type and unit of every axis.
    scale, translate : tuple of float
        Voxel size and origin per axis (1 and 0 on the channel axis).
    name : str
        Image (or label) name.
    channel_names, channel_colors : tuple of str
        One per channel (a single entry when there is no channel axis).
    contrast_limits : tuple or None
        Display window ``(start, end)`` per channel, or None to use the data range.
    is_labels : bool
        Integer labels: downsampled by mode and stored as an NGFF label image.
    slicing_is_free : bool
        The data are in memory, so a work unit need not align with its chunks.
    """

    data: da.Array
    axes: tuple[ngff.Axis, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    name: str
    channel_names: tuple[str, ...]
    channel_colors: tuple[str, ...]
    contrast_limits: tuple[tuple[float, float], ...] | None
    is_labels: bool
    slicing_is_free: bool = False

    @property
    def channel_axis(self) -> int | None:
        """Index of the channel axis, or None."""
        kinds = [axis.type for axis in self.axes]
        return kinds.index("channel") if "channel" in kinds else None

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Indices of the space axes."""
        return tuple(i for i, axis in enumerate(self.axes) if axis.type == "space")


@dataclass(frozen=True)
class LayerDescription:
    """What an export needs to know about the data besides the pixels.

    Plain values only (no napari objects): ``napari_bigvol._napari._writer`` builds one
    from a napari layer, :func:`.describe_layer_data` from napari layer data (what the
    readers return and napari hands a writer), and a script may build one itself. Every
    field is optional; None means "not known", and a default is used.

    Attributes
    ----------
    name : str or None
        Image (or labels) name; ``"image"`` if None.
    scale, translate : sequence of float or None
        Voxel size and origin, one per axis, or one per non-channel axis.
    units, axis_labels : sequence of str or None
        Per axis, as for ``scale``; a single unit string applies to every axis.
    is_labels : bool
        Integer labels: downsampled by mode and stored as NGFF labels.
    rgb : bool
        The last axis holds red, green, blue (and alpha) samples.
    multiscale : bool or None
        The data are a list of pyramid levels, largest first; only level 0 is read.
    channel_axis : int or None
        Index of a channel axis.
    channel_names, channel_colors : sequence or None
        One per channel (colours as names, ``#RRGGBB`` or RGB(A) values).
    contrast_limits : sequence or None
        ``(start, end)``, or one pair per channel.
    sources : tuple of str
        Files or folders the data are read from: the export refuses to write over them.

    Examples
    --------
    >>> vol = volume(np.zeros((4, 8, 8), np.uint8),
    ...              LayerDescription(name="mask", scale=(2, 1, 1), is_labels=True))
    >>> vol.name, vol.scale, vol.is_labels
    ('mask', (2.0, 1.0, 1.0), True)
    """

    name: str | None = None
    scale: Sequence[float] | None = None
    translate: Sequence[float] | None = None
    units: Sequence[Any] | str | None = None
    axis_labels: Sequence[str] | None = None
    is_labels: bool = False
    rgb: bool = False
    multiscale: bool | None = None
    channel_axis: int | None = None
    channel_names: Sequence[str] | None = None
    channel_colors: Sequence[Any] | None = None
    contrast_limits: Any = None
    sources: tuple[str, ...] = ()

    def keywords(self) -> dict[str, Any]:
        """Return the fields :func:`volume` reads, as keywords (``sources`` left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}


_DESCRIPTION_KEYWORDS = frozenset(LayerDescription().keywords())


def _hex_color(color: Any) -> str | None:
    """``RRGGBB`` for a colour name, ``#hex`` string, RGB(A) sequence or napari colormap."""
    if color is None:
        return None
    if isinstance(color, dict):
        return _hex_color(color.get("colors")) or _hex_color(color.get("name"))
    if hasattr(color, "colors"):  # a napari Colormap: its brightest (last) colour
        return _hex_color(color.colors)
    if isinstance(color, str):
        match = ngff.HEX_COLOUR.match(color.strip())
        if match is not None:
            return match.group(1).upper()
        return _NAMED_COLORS.get(color.strip().lower())
    values = np.asarray(color, dtype=float)
    if values.ndim == 2 and len(values):
        values = values[-1]
    if values.ndim != 1 or values.size < 3:
        return None
    if values.max() <= 1.0:
        values = values * 255
    return "".join(f"{round(v):02X}" for v in np.clip(values[:3], 0, 255))


def _level_zero(data: Any, multiscale: bool | None = None) -> Any:
    # napari's MultiScaleData is not a list; trust the flag when there is one.
    if multiscale or (
        multiscale is None
        and isinstance(data, list | tuple)
        and data
        and hasattr(data[0], "shape")
    ):
        return data[0]
    return data


def layer_axis_count(data: Any, kwargs: dict[str, Any]) -> int:
    """Return how many axes a layer's ``scale`` covers: all but channel and RGB axes.

    Parameters
    ----------
    data : array or list of arrays
        Layer data, as a reader returns them (a list for a multiscale layer).
    kwargs : dict
        The layer's keyword arguments (``multiscale``, ``channel_axis``, ``rgb``).

    Examples
    --------
    >>> layer_axis_count(np.zeros((3, 4, 5, 3)), {"rgb": True})
    3
    """
    ndim = len(_level_zero(data, kwargs.get("multiscale")).shape)
    return ndim - (kwargs.get("channel_axis") is not None) - bool(kwargs.get("rgb"))


def _as_dask(data: Any) -> tuple[da.Array, bool]:
    # (array, in_memory): in-memory data are sliced for free and never sent to a cluster.
    if not (hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__")):
        raise OperationError(
            f"cannot export a {type(data).__name__}: export_zarr takes an array (numpy, dask, "
            "zarr), a list of pyramid levels or a napari layer"
        )
    if isinstance(data, da.Array):
        return data, False
    if isinstance(data, np.ndarray):
        return as_dask_array(data)
    chunks = getattr(data, "chunks", None)  # zarr, h5py: keep their storage chunks
    if not (isinstance(chunks, tuple) and all(isinstance(c, int) for c in chunks)):
        chunks = "auto"
    return da.from_array(data, chunks=chunks), False


def _per_axis(values: Any, count: int, full: int, drop: int | None, what: str) -> list | None:
    # napari passes one value per layer axis; with a channel axis that may or may not
    # include it. Accept both and return one value per non-channel axis.
    if values is None:
        return None
    if isinstance(values, str | int | float):
        return [values] * count
    values = list(values)
    if len(values) == count:
        return values
    if drop is not None and len(values) == full:
        return [v for i, v in enumerate(values) if i != drop]
    raise OperationError(
        f"{what} has {len(values)} values but the data have {count} non-channel axes"
    )


def _default_names(count: int, first_is_time: bool) -> list[str]:
    spatial = ["z", "y", "x"][-(count - first_is_time) :]
    return (["t"] if first_is_time else []) + spatial


def _axis_names(labels: list | None, count: int) -> tuple[list[str], bool]:
    def is_default(label: str) -> bool:
        return label.lstrip("-").isdigit()

    if labels and not any(is_default(str(label)) for label in labels):
        names = [str(label) for label in labels]
        first_is_time = count == 4 or names[0].lower() in ("t", "time")
        if len(set(names)) == count and "c" not in names:
            return names, first_is_time
    first_is_time = count == 4
    return _default_names(count, first_is_time), first_is_time


def volume(source: Any, description: LayerDescription | None = None, **keywords: Any) -> Volume:
    """Normalise an array and its description into a :class:`Volume`.

    Parameters
    ----------
    source : numpy array, dask array, zarr array or list of arrays
        The data; a list (or ``multiscale=True``) gives its level 0.
    description : LayerDescription, optional
        Name, geometry, units and display of the data.
    **keywords
        Any :class:`.LayerDescription` field but ``sources``; given ones override the
        description.

    Returns
    -------
    Volume
        The data with axes in NGFF order (time, channel, space).

    Raises
    ------
    OperationError
        If the source is not an array, the data cannot be described as 2 or 3 spatial
        axes with optional time and channel axes, labels are not integers, or lists do
        not match the axis count.

    Examples
    --------
    >>> vol = volume(np.zeros((4, 5, 6, 3), np.uint8), rgb=True, scale=(2, 1, 1))
    >>> [axis.name for axis in vol.axes], vol.data.shape, vol.channel_names
    (['c', 'z', 'y', 'x'], (3, 4, 5, 6), ('red', 'green', 'blue'))
    """
    unknown = set(keywords) - _DESCRIPTION_KEYWORDS
    if unknown:
        raise OperationError(f"unknown export keyword(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in keywords.items() if v is not None}
    keywords = {**(description or LayerDescription()).keywords(), **given}
    data, free = _as_dask(_level_zero(source, keywords.get("multiscale")))
    name = str(keywords.get("name") or "image")
    is_labels = bool(keywords.get("is_labels"))
    rgb = bool(keywords.get("rgb"))
    channel_axis = _channel_axis(data, keywords.get("channel_axis"), rgb, is_labels, name)
    geometry = _geometry(data, channel_axis, keywords, name)
    data = data.transpose(geometry.order) if geometry.order != list(range(data.ndim)) else data
    n_channels = 1 if channel_axis is None else data.shape[geometry.channel_position]
    channel_names, channel_colors = _channel_descriptions(keywords, name, n_channels, rgb)
    contrast = _contrast_limits(keywords.get("contrast_limits"), n_channels, data.dtype, rgb)
    return Volume(
        data=data,
        axes=tuple(geometry.axes),
        scale=tuple(float(s) for s in geometry.scale),
        translate=tuple(float(t) for t in geometry.translate),
        name=name,
        channel_names=channel_names,
        channel_colors=channel_colors,
        contrast_limits=contrast,
        is_labels=is_labels,
        slicing_is_free=free,
    )


def _channel_axis(
    data: da.Array, channel_axis: int | None, rgb: bool, is_labels: bool, name: str
) -> int | None:
    if rgb:
        if data.shape[-1] not in (3, 4):
            raise OperationError(f"{name}: an RGB layer needs 3 or 4 colours on its last axis")
        channel_axis = data.ndim - 1
    if channel_axis is not None:
        channel_axis = int(channel_axis) % data.ndim
    if is_labels and (channel_axis is not None or data.dtype.kind not in "uib"):
        raise OperationError(
            f"{name}: labels must be integers without a channel axis, not {data.dtype}"
            + (" with channels" if channel_axis is not None else "")
        )
    return channel_axis


@dataclass(frozen=True)
class _Geometry:
    """NGFF axes, scale and translation, and the transpose that puts the data in NGFF order."""

    axes: list[ngff.Axis]
    scale: list[float]
    translate: list[float]
    order: list[int]
    channel_position: int


def _geometry(
    data: da.Array, channel_axis: int | None, keywords: dict[str, Any], name: str
) -> _Geometry:
    others = [axis for axis in range(data.ndim) if axis != channel_axis]
    count = len(others)
    if not 2 <= count <= 4:
        raise OperationError(
            f"{name}: OME-Zarr holds 2 or 3 spatial axes plus optional time and channel; "
            f"these data have {count} non-channel axes (shape {data.shape})"
        )

    def per_axis(key: str) -> list | None:
        return _per_axis(keywords.get(key), count, data.ndim, channel_axis, key)

    scale = per_axis("scale") or [1.0] * count
    translate = per_axis("translate") or [0.0] * count
    units = per_axis("units") or [None] * count
    names, first_is_time = _axis_names(per_axis("axis_labels"), count)
    axes = [
        ngff.Axis(n, kind, ngff_unit(unit, kind))
        for i, (n, unit) in enumerate(zip(names, units, strict=True))
        for kind in ["time" if (i == 0 and first_is_time) else "space"]
    ]
    time_part = others[:1] if first_is_time else []
    space_part = others[1:] if first_is_time else others
    order = time_part + ([channel_axis] if channel_axis is not None else []) + space_part
    if channel_axis is not None:
        for values, value in ((axes, ngff.Axis("c", "channel")), (scale, 1.0), (translate, 0.0)):
            values.insert(len(time_part), value)
    return _Geometry(axes, scale, translate, order, len(time_part))


def _default_channels(name: str, n_channels: int, rgb: bool) -> tuple[list[str], list[str]]:
    # Names and colours napari itself would give the channels.
    if rgb:
        return list(_RGB_NAMES[:n_channels]), list(_RGB_COLORS[:n_channels])
    names = [name] if n_channels == 1 else [f"{name} [{i}]" for i in range(n_channels)]
    palette = ("FFFFFF",) if n_channels == 1 else _TWO_CHANNEL_COLORS if n_channels == 2 else None
    colors = [
        (palette or _CHANNEL_COLORS)[i % len(palette or _CHANNEL_COLORS)]
        for i in range(n_channels)
    ]
    return names, colors


def _channel_descriptions(
    keywords: dict[str, Any], name: str, n_channels: int, rgb: bool
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names, colors = _default_channels(name, n_channels, rgb)
    given_names = keywords.get("channel_names")
    if given_names is not None:
        if len(given_names) != n_channels:
            raise OperationError(
                f"{name}: {len(given_names)} channel names for {n_channels} channels"
            )
        names = [str(n) for n in given_names]
    given_colors = keywords.get("channel_colors")
    if given_colors is not None and not rgb:
        if len(given_colors) != n_channels:
            raise OperationError(
                f"{name}: {len(given_colors)} channel colours for {n_channels} channels"
            )
        colors = [
            _hex_color(c) or default for c, default in zip(given_colors, colors, strict=True)
        ]
    return tuple(names), tuple(colors)


def _contrast_limits(
    limits: Any, n_channels: int, dtype: np.dtype, rgb: bool
) -> tuple[tuple[float, float], ...] | None:
    if limits is None:
        if rgb and dtype == np.uint8:
            return ((0.0, 255.0),) * n_channels
        return None
    values = np.asarray(limits, dtype=float)
    if values.shape == (2,):
        return ((float(values[0]), float(values[1])),) * n_channels
    if values.shape == (n_channels, 2):
        return tuple((float(a), float(b)) for a, b in values)
    raise OperationError(f"contrast limits {limits!r} do not match {n_channels} channel(s)")


def _default_chunks(volume: Volume, requested: tuple[int, ...] | None) -> tuple[int, ...]:
    spatial = volume.spatial_axes
    if requested is not None:
        if len(requested) == len(spatial):
            per_space = dict(zip(spatial, requested, strict=True))
            return tuple(per_space.get(a, 1) for a in range(volume.data.ndim))
        if len(requested) == volume.data.ndim:
            return requested
        raise OperationError(
            f"{volume.name}: chunks {requested} should have {len(spatial)} values "
            f"(one per spatial axis) or {volume.data.ndim}"
        )
    edge = DEFAULT_CHUNK_3D if len(spatial) == 3 else DEFAULT_CHUNK_2D
    return tuple(edge if a in spatial else 1 for a in range(volume.data.ndim))


def _source_chunks(volume: Volume) -> tuple[int, ...]:
    if volume.slicing_is_free:
        return (1,) * volume.data.ndim
    if isinstance(volume.data, PlaneArray):
        # Uncompressed TIFF slices read any run of rows: units need not hold whole planes.
        return volume.data.read_chunks
    # Irregular chunks cannot all align with a unit; aligning with the largest keeps
    # re-reads to the few chunks that straddle a unit edge.
    return tuple(max(sizes) for sizes in volume.data.chunks)


def _compressor(name: str | None, zarr_format: int) -> Any:
    if name is None:
        return None
    if zarr_format == 2:
        shuffle = numcodecs.Blosc.BITSHUFFLE if name == "zstd" else numcodecs.Blosc.SHUFFLE
        return numcodecs.Blosc(cname=name, clevel=3 if name == "zstd" else 5, shuffle=shuffle)
    shuffle = "bitshuffle" if name == "zstd" else "shuffle"
    return BloscCodec(cname=name, clevel=3 if name == "zstd" else 5, shuffle=shuffle)


@dataclass(frozen=True)
class _UnitPieces:
    """How a work unit is cut into pieces to write, level by level.

    A piece is a slab of whole rows of the level's write blocks (its chunks, or its
    shards: a shard written in parts would be rewritten for every part) along the
    outermost axis the unit spans more than one block of, and at least
    :data:`PIECE_BYTES` large. The kernel passes a
    :func:`~napari_bigvol.ops.compute.block_checkpoint` after each piece, so the count
    of pieces is the unit's count of progress steps.

    Examples
    --------
    >>> pieces = _UnitPieces(write_blocks=((64, 64, 64),), cumulative=((1, 1, 1),), itemsize=2)
    >>> len(pieces.of_level(0, (64, 2048, 1024))), pieces.of_level(0, (64, 2048, 1024))[1]
    (32, (slice(0, 64, None), slice(64, 128, None), slice(0, 1024, None)))
    >>> pieces.steps((64, 64, 64))
    1
    """

    write_blocks: tuple[tuple[int, ...], ...]
    cumulative: tuple[tuple[int, ...], ...]
    itemsize: int

    def of_level(self, level: int, shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
        """Regions of a unit of ``shape`` at ``level``, relative to its corner."""
        blocks = self.write_blocks[level]
        axis = next((a for a, (n, b) in enumerate(zip(shape, blocks, strict=True)) if n > b), 0)
        row_bytes = self.itemsize * math.prod(shape) // max(1, shape[axis]) * blocks[axis]
        depth = blocks[axis] * max(1, -(-PIECE_BYTES // max(1, row_bytes)))
        whole = [slice(0, n) for n in shape]
        return [
            (*whole[:axis], slice(first, min(first + depth, shape[axis])), *whole[axis + 1 :])
            for first in range(0, max(1, shape[axis]), depth)
        ]

    def steps(self, unit_shape: tuple[int, ...]) -> int:
        """How many pieces a unit of ``unit_shape`` (at level 0) is written in."""
        count = 0
        for level, factors in enumerate(self.cumulative):
            # Each halving rounds up (downsample_mean), so a level has ceil(n / factor).
            shape = tuple(-(-n // f) for n, f in zip(unit_shape, factors, strict=True))
            count += len(self.of_level(level, shape))
        return count


class _UnitWriter:
    """Block kernel: write one work unit to every level; returns per-channel min and max.

    A plain class (not a closure) so it pickles for a ``dask.distributed`` cluster; it
    holds only paths and shapes and opens the arrays where it runs. It writes piece by
    piece (see :class:`_UnitPieces`), passing a checkpoint after each.
    """

    def __init__(self, level_paths: list[str], job: _Job) -> None:
        self.level_paths = level_paths
        self.plan = job.plan
        self.pieces = job.pieces
        self.is_labels = job.volume.is_labels
        self.channel_axis = job.volume.channel_axis
        self.n_channels = len(job.volume.channel_names)

    def __call__(self, block: np.ndarray, index: tuple[int, ...]) -> np.ndarray:
        downsample = downsample_mode if self.is_labels else downsample_mean
        offset = [i * u for i, u in zip(index, self.plan.unit, strict=True)]
        data = block
        for level, path in enumerate(self.level_paths):
            if level:
                data = downsample(data, self.plan.steps[level - 1])
            start = [o // f for o, f in zip(offset, self.plan.cumulative[level], strict=True)]
            self._write_level(path, level, start, data)
        first = 0 if self.channel_axis is None else offset[self.channel_axis]
        return _channel_range(block, self.channel_axis, first, self.n_channels)

    def _write_level(self, path: str, level: int, start: list[int], data: np.ndarray) -> None:
        for piece in self.pieces.of_level(level, data.shape):
            region = tuple(
                slice(s + p.start, s + p.stop) for s, p in zip(start, piece, strict=True)
            )
            write_region(path, region, data[piece])
            block_checkpoint()  # progress, and where a cancel stops a local run


def _channel_range(
    block: np.ndarray, channel_axis: int | None, first_channel: int, n_channels: int
) -> np.ndarray:
    """``(n_channels, 2)`` min and max of ``block``; channels it lacks stay at +-inf."""
    ranges = np.tile([np.inf, -np.inf], (n_channels, 1))
    planes = [block] if channel_axis is None else np.moveaxis(block, channel_axis, 0)
    for channel, values in enumerate(planes, start=first_channel):
        # Views, so no copy of the block; fmin/fmax skip NaN without an all-NaN warning.
        if values.dtype.kind == "f":
            ranges[channel] = np.fmin.reduce(values, axis=None), np.fmax.reduce(values, axis=None)
        else:
            ranges[channel] = values.min(), values.max()
    return ranges


def _merge_ranges(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([np.fmin(a[:, 0], b[:, 0]), np.fmax(a[:, 1], b[:, 1])], axis=1)


@dataclass(frozen=True)
class _Job:
    """One multiscale image (or label image) to write inside the store."""

    volume: Volume
    group_path: str
    plan: WorkPlan
    sharded: bool = False

    @property
    def pieces(self) -> _UnitPieces:
        blocks = (
            [_shard_shape(self.plan, level) for level in range(len(self.plan.level_chunks))]
            if self.sharded
            else self.plan.level_chunks
        )
        return _UnitPieces(tuple(blocks), self.plan.cumulative, self.volume.data.dtype.itemsize)

    def unit_steps(self, index: tuple[int, ...]) -> int:
        """Progress steps of the work unit at block ``index``: the pieces it is written in.

        A plane stack's unit also counts its planes, each read a step (see
        :meth:`~napari_bigvol.io._planes.PlaneArray.in_blocks`).
        """
        shape = self.volume.data.shape
        unit = tuple(
            min(u, n - i * u) for n, u, i in zip(shape, self.plan.unit, index, strict=True)
        )
        reads = unit[0] if isinstance(self.volume.data, PlaneArray) else 0
        return reads + self.pieces.steps(unit)

    @property
    def step_count(self) -> int:
        counts = (
            math.ceil(n / u) for n, u in zip(self.volume.data.shape, self.plan.unit, strict=True)
        )
        return sum(self.unit_steps(index) for index in np.ndindex(*counts))


def _plan(volume: Volume, options: ExportOptions) -> WorkPlan:
    shape = volume.data.shape
    steps = level_factors(shape, volume.scale, volume.spatial_axes) if options.pyramid else []
    return plan_work(
        shape,
        volume.data.dtype.itemsize,
        _default_chunks(volume, options.chunks),
        _source_chunks(volume),
        steps,
        budget=options.unit_bytes,
    )


def _create_arrays(root: str, group: zarr.Group, job: _Job, options: ExportOptions) -> list[str]:
    paths = []
    compressor = _compressor(options.compressor, options.zarr_format)
    names = [axis.name for axis in job.volume.axes]
    for level, (shape, chunks) in enumerate(
        zip(job.plan.level_shapes, job.plan.level_chunks, strict=True)
    ):
        extra: dict[str, Any] = {"compressors": compressor}
        if options.zarr_format == 2:
            extra["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        else:
            extra["dimension_names"] = names
            if options.sharding:
                extra["shards"] = _shard_shape(job.plan, level)
        array = group.create_array(
            str(level),
            shape=shape,
            chunks=chunks,
            dtype=job.volume.data.dtype,
            fill_value=0,
            **extra,
        )
        paths.append(os.path.join(root, job.group_path, array.basename))
    return paths


def _shard_shape(plan: WorkPlan, level: int) -> tuple[int, ...]:
    # One shard per work unit and level: a unit is the only writer of its shard.
    return tuple(
        c * math.ceil(math.ceil(u / f) / c)
        for u, f, c in zip(
            plan.unit, plan.cumulative[level], plan.level_chunks[level], strict=True
        )
    )


def _description(job: _Job, image_of_labels: bool = False) -> ngff.ImageDescription:
    vol = job.volume
    return ngff.ImageDescription(
        name=vol.name,
        axes=vol.axes,
        scale=vol.scale,
        translate=vol.translate,
        cumulative=tuple(tuple(f) for f in job.plan.cumulative),
        method="mode" if vol.is_labels else "mean",
        image_of_labels=image_of_labels,
    )


def _channel_windows(vol: Volume, ranges: np.ndarray) -> list[ngff.ChannelWindow]:
    windows = []
    for i, (low, high) in enumerate(ranges):
        # A channel that is all NaN has no range: show it as 0..0.
        low, high = (float(low), float(high)) if np.isfinite([low, high]).all() else (0.0, 0.0)
        start, end = vol.contrast_limits[i] if vol.contrast_limits else (low, high)
        windows.append(
            ngff.ChannelWindow(
                vol.channel_names[i], vol.channel_colors[i], min(low, start), max(high, end),
                start, end,
            )
        )  # fmt: skip
    return windows


def _write_metadata(
    writer: ngff.NgffWriter,
    groups: list[zarr.Group],
    jobs: list[_Job],
    names: list[str],
    ranges: np.ndarray,
) -> None:
    # Metadata last: until here, the temporary store is not a valid image.
    root, *label_groups = groups
    for group, job in zip(label_groups, jobs[1:], strict=True):
        group.attrs.update(writer.label_image_attributes(_description(job)))
    if names:
        root["labels"].attrs.update(writer.labels_attributes(names))
    # A Labels layer alone: the root image is a copy of the labels for other viewers.
    image = _description(jobs[0], image_of_labels=jobs[0].volume.is_labels)
    root.attrs.update(writer.image_attributes(image, _channel_windows(jobs[0].volume, ranges)))
    writer.validate(root)  # the whole store, arrays included, before it is renamed in


def safe_file_name(name: str, default: str = "image") -> str:
    """Return ``name`` with every character but letters, digits, ``-``, ``_``, ``.`` as ``_``.

    Examples
    --------
    >>> safe_file_name("mask [z=120] / cells"), safe_file_name("..")
    ('mask__z_120____cells', 'image')
    """
    text = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return text.strip("._") or default


def default_export_path(
    name: str, sources: Sequence[str | os.PathLike] = (), *, fallback_folder: str | None = None
) -> str:
    """Return a free path to export a layer to, beside its source when that is writable.

    The store is named after the source (``scan.nii.gz`` gives ``scan.ome.zarr``), or after
    ``name`` when the source is a glob pattern, and numbered (``scan-2.ome.zarr``) when the
    name is taken, so it never lands over or inside the source or any existing store.
    Only a layer without a local source, or whose folder is read-only, goes to
    ``fallback_folder`` (default: the user's documents folder, or home if there is none).

    Parameters
    ----------
    name : str
        The layer name.
    sources : sequence of str or os.PathLike, optional
        Where the layer was read from (``metadata["bigvol"]["source"]``, ``layer.source.path``);
        URLs are ignored.
    fallback_folder : str, optional
        Where to go without a writable source folder.

    Returns
    -------
    str
        An absolute path ending in ``.ome.zarr`` that does not exist yet.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> scan = os.path.join(folder, "scan.nii.gz")
    >>> open(scan, "w").close()
    >>> default_export_path("scan", [scan]) == os.path.join(folder, "scan.ome.zarr")
    True
    """
    local = [os.fspath(s) for s in sources if "://" not in os.fspath(s)]
    if local:
        source = os.path.abspath(os.path.expanduser(local[0])).rstrip(os.sep)
        folder, base = os.path.split(source)
        stem = name if GLOB_CHARS.search(base) else _split_suffix(base)[0]
        if os.path.isdir(folder) and _writable(folder):
            return available_path(os.path.join(folder, f"{safe_file_name(stem)}.ome.zarr"))
    folder = fallback_folder or platformdirs.user_documents_dir()
    if not os.path.isdir(folder):
        folder = os.path.expanduser("~")
    return available_path(os.path.join(folder, f"{safe_file_name(name)}.ome.zarr"))


def _label_name(name: str, taken: set[str]) -> str:
    base = safe_file_name(name, "labels")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def _check_labels_fit(image: Volume, labels: Volume) -> None:
    image_shape = [
        n for n, a in zip(image.data.shape, image.axes, strict=True) if a.type != "channel"
    ]
    if list(labels.data.shape) != image_shape:
        raise OperationError(
            f"labels {labels.name!r} have shape {labels.data.shape} but image {image.name!r} "
            f"has {tuple(image_shape)} without channels; OME-Zarr labels must match their image"
        )


def _stream(
    jobs: list[_Job],
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    paths: list[list[str]],
) -> list[np.ndarray]:
    store_progress = _StoreProgress(progress, jobs)
    ranges = []
    for job, level_paths in zip(jobs, paths, strict=True):
        store_progress.next_image()
        ranges.append(_write_image(job, level_paths, store_progress, should_stop))
    return ranges


class _StoreProgress:
    """Progress over all images of a store (the image, then each label image).

    The run of an image counts its reads and the pieces it writes (see
    :class:`_UnitPieces`); images still to come count their pieces, as their reads are
    only known once they run.
    """

    def __init__(self, progress: ProgressCallback | None, jobs: list[_Job]) -> None:
        self.progress = progress
        self.to_come = [job.step_count for job in jobs]
        self.before = 0  # steps of the images written
        self.current = 0  # steps of the image being written

    def next_image(self) -> None:
        self.before += self.current
        self.current = self.to_come.pop(0)

    def __call__(self, done: int, total: int) -> None:
        self.current = total
        if self.progress is not None:
            self.progress(self.before + done, self.before + total + sum(self.to_come))


def _write_image(
    job: _Job, level_paths: list[str], report: ProgressCallback, should_stop: StopCheck | None
) -> np.ndarray:
    """Write one image's work units; return the ``(channels, 2)`` min and max."""
    merged: np.ndarray | None = None
    data = job.volume.data
    units = (
        data.in_blocks(job.plan.unit, after_plane=block_checkpoint)
        if isinstance(data, PlaneArray)
        else data.rechunk(job.plan.unit)
    )
    blocks = stream_blocks(
        units,
        _UnitWriter(level_paths, job),
        progress=report,
        should_stop=should_stop,
        local=job.volume.slicing_is_free,
        steps=job.unit_steps,
    )
    for _, result in blocks:
        merged = result if merged is None else _merge_ranges(merged, result)
    return merged


def check_export_target(
    target: str | os.PathLike,
    sources: Sequence[str | os.PathLike] = (),
    *,
    overwrite: bool = False,
) -> str:
    """Refuse a target that would lose data; return it as an absolute path.

    The one check behind the CLI, the File > Save writer and the Export widget. Paths are
    compared resolved (symbolic links followed, and by file identity where they exist), so
    ``alias/scan.zarr`` is recognised as ``data/scan.zarr`` when ``alias`` links to ``data``.

    Parameters
    ----------
    target : str or os.PathLike
        The store to write; ``~`` is expanded.
    sources : sequence of str or os.PathLike, optional
        The files or folders the data are read from. The target must be none of them, not
        inside one, and not contain one.
    overwrite : bool, optional
        Whether an existing target may be replaced.

    Returns
    -------
    str
        The absolute target path (links not resolved: the store is written where asked).

    Raises
    ------
    OperationError
        If the target is or holds or sits inside a source, exists without ``overwrite``,
        or its folder is missing or not writable.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_export_target(os.path.join(folder, "out.zarr")) == os.path.join(folder, "out.zarr")
    True
    >>> check_export_target(folder + "/src.zarr/out.zarr", [folder + "/src.zarr"])
    Traceback (most recent call last):
    ...
    napari_bigvol.errors.OperationError: ...: refusing to write over or inside the source ...
    """
    target = os.fspath(target)
    if "://" in target:
        raise OperationError(
            f"{target}: exporting to a remote store is not supported yet; export to a local "
            "folder, then upload it (for example with fsspec or the aws/gsutil tools)"
        )
    target = os.path.abspath(os.path.expanduser(target))
    for source in sources:
        if _overlaps(target, os.fspath(source)):
            raise OperationError(
                f"{target}: refusing to write over or inside the source {source}; "
                "choose another path"
            )
    if os.path.lexists(target) and not overwrite:
        raise OperationError(f"{target}: already exists; choose another path or allow overwriting")
    _check_parent_folder(target)
    return target


def _check_parent_folder(target: str) -> None:
    # The folder must exist (else name what blocks it) and be writable.
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        existing = parent
        while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
            existing = os.path.dirname(existing)
        if os.path.lexists(existing) and not os.path.isdir(existing):
            raise OperationError(f"{target}: {existing} is a file, not a folder")
        raise OperationError(f"{target}: the folder {parent} does not exist")
    if not _writable(parent):
        raise OperationError(f"{target}: permission denied, cannot write in {parent}")


def _writable(folder: str) -> bool:
    # Effective ids: what this process may do, also after a setuid or seteuid.
    effective = os.access in os.supports_effective_ids
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=effective)


def _overlaps(target: str, source: str) -> bool:
    # Equal, or one inside the other, once links are resolved; then by (device, inode)
    # along both paths' existing ancestors, which also catches bind mounts.
    if "://" in source:
        return False
    real_target = os.path.realpath(target)
    real_source = os.path.realpath(os.path.expanduser(source))
    if os.path.commonpath([real_target, real_source]) in (real_target, real_source):
        return True
    target_chain = _identities(real_target)
    source_chain = _identities(real_source)
    return bool(target_chain and source_chain) and (
        source_chain[0] in target_chain or target_chain[0] in source_chain
    )


def _identities(path: str) -> list[tuple[int, int]]:
    # (device, inode) of path and of each ancestor, nearest first; empty if path is missing.
    chain = []
    while True:
        try:
            status = os.stat(path)
        except OSError:
            if not chain:
                return []
        else:
            chain.append((status.st_dev, status.st_ino))
        parent = os.path.dirname(path)
        if parent == path:
            return chain
        path = parent


def _remove_stale_partials(target: str) -> None:
    # Leftovers of a killed export of the same target on this host, whose process is gone.
    folder, name = os.path.split(target)
    for entry in os.listdir(folder):
        if owned_by_dead_process(entry, f".{name}{PARTIAL}") is not None:
            shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)


_TAKEN = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)


def _move_into_place(temporary: str, target: str, overwrite: bool) -> None:
    aside = None
    if os.path.lexists(target):
        if not overwrite:
            _keep_beside(temporary, target)
        aside = temporary.replace(PARTIAL, OLD)  # same host, pid and token: see _store_swap
        os.rename(target, aside)
    try:
        os.rename(temporary, target)
    except OSError as error:
        if error.errno not in _TAKEN:
            if aside is not None:
                os.rename(aside, target)
            raise
        if aside is not None:
            remove(aside)  # its replacement was consented to; the race winner took its place
        _keep_beside(temporary, target)
    if aside is not None:
        remove(aside)


def _keep_beside(temporary: str, target: str) -> None:
    # Another export (or program) took the target while this one ran: keep this finished
    # store under a free visible name beside it instead of deleting it.
    for _attempt in range(100):
        kept = available_path(target)
        try:
            os.rename(temporary, kept)
        except OSError as error:
            if error.errno in _TAKEN:
                continue
            raise
        raise _StoreKept(f"{target}: appeared while exporting; the export is kept at {kept}")
    raise _StoreKept(f"{target}: appeared while exporting; the export is kept at {temporary}")


class _StoreKept(OperationError):
    """The target was taken; the finished store was kept elsewhere and must stay."""


def available_path(path: str | os.PathLike) -> str:
    """Return ``path``, or the first free ``NAME-2.SUFFIX``, ``NAME-3.SUFFIX``, ... beside it.

    The suffix kept is the store suffix (``.ome.zarr``, ``.zarr``) or the file's.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> os.mkdir(os.path.join(folder, "scan.ome.zarr"))
    >>> os.path.basename(available_path(os.path.join(folder, "scan.ome.zarr")))
    'scan-2.ome.zarr'
    """
    path = os.path.abspath(os.fspath(path))
    stem, suffix = _split_suffix(path)
    candidate, number = path, 1
    while os.path.lexists(candidate):
        number += 1
        candidate = f"{stem}-{number}{suffix}"
    return candidate


_STORE_SUFFIXES = (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".nii.gz")


def _split_suffix(path: str) -> tuple[str, str]:
    lowered = path.lower()
    for suffix in _STORE_SUFFIXES:
        if lowered.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)], path[-len(suffix) :]
    return os.path.splitext(path)


def _metadata_paths(metadata: dict[str, Any] | None) -> list[str]:
    # The readers record their input as metadata["bigvol"]["source"]: a path or a list.
    value = (metadata or {}).get("bigvol", {}).get("source")
    values = value if isinstance(value, list | tuple) else [value]
    return [os.fspath(v) for v in values if isinstance(v, str | os.PathLike)]


def _write_store(
    target: str | os.PathLike,
    image: Volume,
    labels: Sequence[Volume],
    options: ExportOptions,
    overwrite: bool,
    sources: Sequence[str],
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
) -> str:
    target = check_export_target(target, sources, overwrite=overwrite)
    if recover_interrupted_swap(target) and os.path.lexists(target) and not overwrite:
        # A crash had cut an earlier overwrite short; repaired, the target exists again.
        check_export_target(target, sources, overwrite=overwrite)
    _remove_stale_partials(target)
    temporary = sibling(target, PARTIAL)
    try:
        _build_store(temporary, image, labels, options, progress, should_stop)
        _move_into_place(temporary, target, overwrite)
    except BaseException as error:
        # Nothing half-written is left behind, whatever stopped the export; a finished
        # store kept because the target was taken stays.
        if not isinstance(error, _StoreKept):
            shutil.rmtree(temporary, ignore_errors=True)
        reported = _export_error(target, error)
        if reported is error:
            raise
        raise reported from error
    return target


def _build_store(
    temporary: str,
    image: Volume,
    labels: Sequence[Volume],
    options: ExportOptions,
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
) -> None:
    """Write the whole store at ``temporary``: the arrays, then the image metadata."""
    groups, jobs, names = _layout(temporary, image, labels, options)
    paths = [
        _create_arrays(temporary, group, job, options)
        for group, job in zip(groups, jobs, strict=True)
    ]
    ranges = _stream(jobs, progress, should_stop, paths)
    _write_metadata(ngff.NGFF_WRITERS[options.zarr_format], groups, jobs, names, ranges[0])


def _export_error(target: str, error: BaseException) -> BaseException:
    # Our own errors, cancelling and Ctrl-C pass through; anything else (a full disk, a
    # source read failing mid-way, a codec error) is reported with the target named.
    if isinstance(error, BigVolError | Cancelled) or not isinstance(error, Exception):
        return error
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
        return OperationError(f"{target}: export failed: {reason} ({error.filename or target})")
    return OperationError(f"{target}: export failed: {type(error).__name__}: {error}")


def _layout(
    temporary: str, image: Volume, labels: Sequence[Volume], options: ExportOptions
) -> tuple[list[zarr.Group], list[_Job], list[str]]:
    # The store's groups: the image at the root, each label image under labels/.
    root = zarr.open_group(temporary, mode="w-", zarr_format=options.zarr_format)
    jobs = [_Job(image, "", _plan(image, options), options.sharding)]
    names: list[str] = []
    taken: set[str] = set()
    for vol in labels:
        _check_labels_fit(image, vol)
        names.append(_label_name(vol.name, taken))
        jobs.append(_Job(vol, f"labels/{names[-1]}", _plan(vol, options), options.sharding))
    label_root = root.create_group("labels") if labels else None
    groups = [root] + [label_root.create_group(name) for name in names]
    return groups, jobs, names


def export_zarr(
    source: Any,
    path: str | os.PathLike,
    *,
    description: LayerDescription | None = None,
    overwrite: bool = False,
    chunks: Sequence[int] | None = None,
    compressor: str | None = "zstd",
    pyramid: bool = True,
    zarr_format: int = 2,
    sharding: bool = False,
    labels: Sequence[Any] = (),
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    **source_keywords: Any,
) -> str:
    """Write ``source`` to an OME-Zarr store at ``path`` with a pyramid, streamed and safely.

    Parameters
    ----------
    source : numpy array, dask array, zarr array, list of arrays or napari layer
        The data; a list of pyramid levels exports its level 0. A napari layer is
        described by :func:`.describe_layer` (:func:`napari_bigvol.export_layer` says so
        explicitly). Labels (``is_labels=True``) are written as labels (mode pyramid) with
        an image of their values at the root and an NGFF label image under ``labels/``.
    path : str or os.PathLike
        The store to create, usually ending in ``.zarr`` or ``.ome.zarr``.
    description : LayerDescription, optional
        Name, geometry, units, display and source paths of the data.
    overwrite : bool, optional
        Replace an existing ``path``. Without it, an existing path raises and is left
        alone. Even with it, the old store is only removed once the new one is complete.
    chunks : sequence of int, optional
        Level-0 chunks of the spatial axes; default 64-voxel cubes (512 x 512 in 2D).
    compressor : {"zstd", "lz4", None}, optional
        Blosc zstd level 3 with bit shuffle (default), Blosc lz4, or no compression.
    pyramid : bool, optional
        Write downsampled levels (mean for images, mode for labels) down to about 512
        pixels per axis.
    zarr_format : {2, 3}, optional
        2 writes NGFF 0.4 (the widest support), 3 writes NGFF 0.5.
    sharding : bool, optional
        zarr v3 only: one shard file per work unit and level instead of one file per chunk.
    labels : sequence, optional
        Integer arrays (taking this image's geometry), ``(array, LayerDescription)``
        pairs or Labels layers, stored as NGFF labels of this image.
    progress : callable, optional
        ``progress(done, total)`` as the store is written, with every ``done`` from 1 to
        ``total`` in order; a step is a piece of a few MiB (whole chunk rows) of one level.
        On a ``dask.distributed`` cluster it moves by whole work units.
    should_stop : callable, optional
        Polled while the export runs; True cancels (raises :class:`Cancelled`). Local
        threads stop after the piece they are writing.
    **source_keywords
        Any :class:`.LayerDescription` field but ``sources`` (``scale``, ``translate``,
        ``axis_labels``, ``units``, ``name``, ``channel_axis``, ``channel_names``,
        ``channel_colors``, ``contrast_limits``, ``rgb``, ``is_labels``); they override
        ``description``.

    Returns
    -------
    str
        The absolute path written.

    Raises
    ------
    OperationError
        If ``path`` exists without ``overwrite``, cannot be written (permission, disk
        full), is the source itself, or the source fails while being read. Nothing is
        left at ``path`` in that case, and an existing store there is untouched.
    Cancelled
        If ``should_stop`` returned True; the partial store is removed.

    Examples
    --------
    >>> import dask.array as da
    >>> volume = da.random.randint(0, 4000, (30, 128, 128), chunks=(1, 128, 128))
    >>> export_zarr(volume, "scan.ome.zarr", scale=(2.0, 0.5, 0.5),
    ...             units="micrometer")
    '/.../scan.ome.zarr'
    >>> from napari.layers import Labels
    >>> mask = Labels(np.zeros((4, 16, 16), np.uint8), name="mask")
    >>> export_zarr(mask, "mask.zarr", zarr_format=3)
    '/.../mask.zarr'
    """
    chunks = tuple(chunks) if chunks is not None else None
    options = ExportOptions(chunks, compressor, pyramid, zarr_format, sharding)
    if description is None and _is_layer_data_source(source):
        source, description = describe_layer(source)
    image = volume(source, description, **source_keywords)
    label_volumes, label_descriptions = _label_volumes(labels, image)
    sources = [p for d in [description, *label_descriptions] if d for p in d.sources]
    return _write_store(
        path, image, label_volumes, options, overwrite, sources, progress, should_stop
    )


def _label_volumes(
    labels: Sequence[Any], image: Volume
) -> tuple[list[Volume], list[LayerDescription | None]]:
    """Return the ``labels`` given to :func:`export_zarr` as volumes, and their descriptions."""
    label_items = [
        item if isinstance(item, tuple) else describe_layer(item) if _is_layer_data_source(item)
        else (item, None)
        for item in labels
    ]  # fmt: skip
    label_volumes = [
        volume(data, label_description or _labels_like(image))
        for data, label_description in label_items
    ]
    if image.is_labels and not label_volumes:
        # Labels alone: an image of the label values plus the same data as NGFF labels.
        label_volumes = [image]
    return label_volumes, [label_description for _, label_description in label_items]


def _labels_like(image: Volume) -> LayerDescription:
    # Arrays given as labels take the image's geometry.
    spatial = [i for i, a in enumerate(image.axes) if a.type != "channel"]
    return LayerDescription(
        is_labels=True,
        scale=[image.scale[i] for i in spatial],
        translate=[image.translate[i] for i in spatial],
        axis_labels=[image.axes[i].name for i in spatial],
        units=[image.axes[i].unit for i in spatial],
        name="labels",
    )


def _is_layer_data_source(source: Any) -> bool:
    return callable(getattr(source, "as_layer_data_tuple", None))


def describe_layer(layer: Any) -> tuple[Any, LayerDescription]:
    """Return a napari layer's data and its description, from plain layer data.

    napari serialises a layer into plain values with its public
    ``as_layer_data_tuple()``; the description is built from
    those (:func:`.describe_layer_data`), plus the file napari recorded it was opened from
    (``layer.source.path``), which the export then refuses to overwrite. No napari class
    is imported or inspected here.

    Parameters
    ----------
    layer : napari.layers.Image or napari.layers.Labels
        The layer.

    Returns
    -------
    tuple
        ``(data, description)``: the layer's data as it is (lazy stays lazy; a multiscale
        layer gives its list of levels) and a :class:`.LayerDescription`.

    Examples
    --------
    >>> from napari.layers import Labels
    >>> data, description = describe_layer(Labels(np.zeros((4, 8, 8), np.uint8), name="m"))
    >>> description.name, description.is_labels
    ('m', True)
    """
    data, meta, layer_type = layer.as_layer_data_tuple()
    description = describe_layer_data(meta, layer_type)
    path = getattr(getattr(layer, "source", None), "path", None)
    if path:
        description = replace(description, sources=(os.fspath(path), *description.sources))
    return data, description


def describe_layer_data(meta: dict[str, Any], layer_type: str) -> LayerDescription:
    """Describe napari layer data (the readers' output, a writer's input) for the export.

    Parameters
    ----------
    meta : dict
        The keyword arguments of a ``(data, meta, layer_type)`` tuple.
    layer_type : str
        ``"image"`` or ``"labels"``.

    Returns
    -------
    LayerDescription
        With the source paths the readers record in ``metadata["bigvol"]["source"]``.

    Examples
    --------
    >>> describe_layer_data({"name": "cells", "scale": (2, 1, 1)}, "labels").is_labels
    True
    """
    bigvol = (meta.get("metadata") or {}).get("bigvol", {})
    is_labels = layer_type.startswith("labels")
    names = meta.get("name")
    channel_axis = meta.get("channel_axis", bigvol.get("channel_axis"))
    keywords: dict[str, Any] = {"channel_names": bigvol.get("channel_names"), "name": names}
    if isinstance(names, list | tuple):
        keywords["channel_names"] = keywords["channel_names"] or list(names)
        keywords["name"] = bigvol.get("name") or _common_prefix([str(n) for n in names]) or "image"
    if not is_labels:
        keywords.update(_display_keywords(meta, channel_axis))
    return LayerDescription(
        scale=meta.get("scale"),
        translate=meta.get("translate"),
        axis_labels=meta.get("axis_labels"),
        units=meta.get("units"),
        is_labels=is_labels,
        multiscale=meta.get("multiscale"),
        rgb=bool(meta.get("rgb")),
        channel_axis=channel_axis,
        sources=tuple(_metadata_paths(meta.get("metadata"))),
        **keywords,
    )


def _display_keywords(meta: dict[str, Any], channel_axis: int | None) -> dict[str, Any]:
    # An image layer's colours (one per channel, or its colormap's) and contrast limits.
    keywords: dict[str, Any] = {"contrast_limits": meta.get("contrast_limits")}
    colormap = meta.get("colormap")
    colormaps = (
        colormap if isinstance(colormap, list | tuple) and channel_axis is not None else [colormap]
    )
    if channel_axis is not None or colormap is not None:
        hex_colors = [_hex_color(c) for c in colormaps]
        if channel_axis is None or len(hex_colors) > 1:
            keywords["channel_colors"] = hex_colors
    return keywords


def _common_prefix(names: list[str]) -> str:
    prefix = ""
    for letters in zip(*names, strict=False):
        if len(set(letters)) > 1:
            break
        prefix += letters[0]
    return prefix.strip(" -_[")


def export_layers(
    path: str | os.PathLike,
    layer_data: Sequence[tuple[Any, dict[str, Any], str]],
    *,
    overwrite: bool = False,
    **options: Any,
) -> str:
    """Write napari layer data (``(data, meta, layer_type)`` tuples) to one OME-Zarr store.

    Image layers become the image: one layer as it is, several layers of the same shape
    and dtype as the channels of one image (named after the layers). Labels layers become
    NGFF labels of that image. Labels alone are written as an image of their values plus
    the same data as NGFF labels, so both image viewers and label-aware readers show them.

    Parameters
    ----------
    path : str or os.PathLike
        The store to create.
    layer_data : sequence of tuple
        What napari hands a writer, or what :func:`napari_bigvol.read` returns.
    overwrite : bool, optional
        As for :func:`export_zarr`.
    **options
        ``chunks``, ``compressor``, ``pyramid``, ``zarr_format``, ``sharding``,
        ``progress``, ``should_stop``, as for :func:`export_zarr`.

    Returns
    -------
    str
        As :func:`export_zarr` returns it: the absolute path of the new store.

    Raises
    ------
    OperationError
        For any reason :func:`export_zarr` gives, and when the layers cannot share one
        store (image layers of different shapes, labels that do not match the image).

    Examples
    --------
    >>> from napari.layers import Image, Labels
    >>> image = Image(np.ones((4, 16, 16), np.uint16), name="scan")
    >>> mask = Labels(np.zeros((4, 16, 16), np.uint8), name="mask")
    >>> export_layers("out.zarr", [image.as_layer_data_tuple(), mask.as_layer_data_tuple()])
    '/.../out.zarr'
    """
    image, label_volumes = _store_contents(layer_data)
    sources = [p for _, m, _ in layer_data for p in _metadata_paths(m.get("metadata"))]
    progress, should_stop = options.get("progress"), options.get("should_stop")
    return _write_store(
        path, image, label_volumes, _options(options), overwrite, sources, progress, should_stop
    )


def _store_contents(
    layer_data: Sequence[tuple[Any, dict[str, Any], str]],
) -> tuple[Volume, list[Volume]]:
    """Return the store's image (layers stacked as channels, or the labels) and labels."""
    images = [(d, m) for d, m, t in layer_data if not t.startswith("labels")]
    labels = [(d, m) for d, m, t in layer_data if t.startswith("labels")]
    unsupported = [t for _, _, t in layer_data if not t.startswith(("image", "labels"))]
    if unsupported:
        raise OperationError(f"cannot write {', '.join(unsupported)} layers to OME-Zarr")
    if not images and not labels:
        raise OperationError("no image or labels layer to write")
    label_volumes = [volume(d, describe_layer_data(m, "labels")) for d, m in labels]
    if len(images) == 1:
        data, meta = images[0]
        return volume(data, describe_layer_data(meta, "image")), label_volumes
    if images:
        return _stack_images(images), label_volumes
    return label_volumes[0], label_volumes


def _options(options: dict[str, Any]) -> ExportOptions:
    known = {"chunks", "compressor", "pyramid", "zarr_format", "sharding", "unit_bytes"}
    unknown = set(options) - known - {"progress", "should_stop"}
    if unknown:
        raise OperationError(f"unknown export option(s): {', '.join(sorted(unknown))}")
    return ExportOptions(**{k: v for k, v in options.items() if k in known})


def _stack_images(images: list[tuple[Any, dict[str, Any]]]) -> Volume:
    # Several image layers (for example split channels) become the channels of one image.
    volumes = [volume(d, describe_layer_data(m, "image")) for d, m in images]
    first = volumes[0]
    _check_stackable(volumes)
    position = 1 if first.axes[0].type == "time" else 0
    limits = [v.contrast_limits[0] if v.contrast_limits else None for v in volumes]
    return Volume(
        data=da.stack([v.data for v in volumes], axis=position),
        axes=_inserted(first.axes, position, ngff.Axis("c", "channel")),
        scale=_inserted(first.scale, position, 1.0),
        translate=_inserted(first.translate, position, 0.0),
        name=first.name,
        channel_names=tuple(v.name for v in volumes),
        channel_colors=tuple(
            v.channel_colors[0] if v.channel_colors[0] != "FFFFFF" else _CHANNEL_COLORS[i % 6]
            for i, v in enumerate(volumes)
        ),
        contrast_limits=tuple(limits) if all(limits) else None,
        is_labels=False,
        slicing_is_free=all(v.slicing_is_free for v in volumes),
    )


def _check_stackable(volumes: list[Volume]) -> None:
    first = volumes[0]
    for other in volumes[1:]:
        if (
            other.data.shape != first.data.shape
            or other.data.dtype != first.data.dtype
            or other.channel_axis is not None
            or first.channel_axis is not None
        ):
            raise OperationError(
                f"cannot save image layers {first.name!r} {first.data.shape} {first.data.dtype} "
                f"and {other.name!r} {other.data.shape} {other.data.dtype} as one OME-Zarr: "
                "only single-channel layers of one shape and dtype become channels; "
                "save them one at a time"
            )


def _inserted(values: Sequence[T], position: int, value: T) -> tuple[T, ...]:
    return (*values[:position], value, *values[position:])
