"""Lazy reader for zarr stores: v2 and v3 arrays and groups, and OME-Zarr images.

* An OME-Zarr image (NGFF 0.4 on zarr v2, NGFF 0.5 on zarr v3; older versions too) opens
  as one napari multiscale layer with the scale, translation, axis names and units of its
  metadata, split into one layer per channel when it has a channel axis (names, colours
  and contrast windows from ``omero``), plus one Labels layer per image of its ``labels``
  group.
* A plain array opens as one layer. A plain group opens as a multiscale layer when its
  arrays shrink level after level, and as one layer per array otherwise; OME-Zarr images
  inside it (a bioformats2raw layout, for example) open too.

Stores are opened read-only. Local arrays of the plain layout (zarr v2 in C order without
filters, zarr v3 of bytes and one zstd, blosc or gzip compressor, unsharded) are read
straight from their chunk files (:mod:`napari_bigvol.io._zarr_chunks`) in dask blocks of
many chunks; any other array is wrapped like :func:`dask.array.from_zarr` on the store's
own chunks. Opening reads metadata files only, plus, when neither the metadata nor the
dtype settle the contrast limits, the smallest pyramid level (if small) or one chunk.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize
from zarr.storage import LocalStore

from napari_bigvol.errors import ReadError
from napari_bigvol.io import _ngff
from napari_bigvol.io._paths import PathLike, natural_key
from napari_bigvol.io._tiled_array import tiled_array
from napari_bigvol.io._zarr_chunks import CHUNK_ERRORS, ChunkedLevel, ChunkFiles

if TYPE_CHECKING:
    from napari_bigvol.io import LayerData

STORE_SUFFIX = ".zarr"
METADATA_FILES = ("zarr.json", ".zarray", ".zgroup", ".zattrs")
# Files whose presence makes a folder a zarr node; .zattrs alone does not.
_NODE_FILES = ("zarr.json", ".zarray", ".zgroup")
#: Largest pyramid level read whole to pick contrast limits, in bytes and in chunks (each
#: chunk is a file to open); beyond either, only its centre chunk is read.
CONTRAST_SAMPLE_BYTES = 32 * 2**20
CONTRAST_SAMPLE_CHUNKS = 64
#: Chunks bigger than this are never decoded for contrast limits (zarr allocates a chunk
#: whole to decode it, and a corrupt header can claim any size); the dtype decides then.
LARGEST_SAMPLED_CHUNK_BYTES = 256 * 2**20
#: Most chunks along one axis: 2**24 chunks of even one voxel cover any real image, and dask
#: keeps one number per chunk boundary in memory.
MAX_CHUNKS_PER_AXIS = 2**24
# What zarr raises for missing or malformed metadata: FileNotFoundError, JSON and pydantic
# errors (ValueError subclasses), KeyError/TypeError for well-formed JSON of the wrong shape,
# OverflowError for a fill value out of the dtype's range.
_METADATA_ERRORS = (OSError, ValueError, KeyError, TypeError, OverflowError)
__all__ = [
    "CONTRAST_SAMPLE_BYTES",
    "CONTRAST_SAMPLE_CHUNKS",
    "LARGEST_SAMPLED_CHUNK_BYTES",
    "accepts",
    "read",
]


def accepts(path: str) -> bool:
    """Whether ``path`` names a zarr store, or a node inside one. Cheap; never raises.

    A folder qualifies if its name ends in ``.zarr`` (``.ome.zarr`` included) or it holds
    zarr metadata (``zarr.json``, ``.zarray``, ``.zgroup`` or ``.zattrs``), so
    ``image.zarr/0`` and ``image.zarr/labels/cells`` are taken too. A missing path ending
    in ``.zarr`` is taken as well, so that :func:`read` can say what is wrong with it.

    Parameters
    ----------
    path : str
        A path napari or a script asked to open.

    Returns
    -------
    bool

    Examples
    --------
    >>> accepts("/data/brain.ome.zarr"), accepts("/data/scan.nii.gz")
    (True, False)
    """
    try:
        text = os.fspath(path).rstrip("/" + os.sep)
        if not text:
            return False
        if text.lower().endswith(STORE_SUFFIX):
            return True
        return os.path.isdir(text) and _holds_any(text, METADATA_FILES)
    except (TypeError, ValueError, OSError):
        return False


def read(path: PathLike) -> list[LayerData]:
    """Open a zarr array, group or OME-Zarr image lazily as napari layer data.

    Parameters
    ----------
    path : str or os.PathLike
        A zarr store folder, or a group or array inside one.

    Returns
    -------
    list of tuple
        ``(data, kwargs, layer_type)`` tuples. ``data`` is a dask array, or a list of
        them (largest first) for a multiscale layer. ``kwargs`` hold ``name``, ``scale``,
        ``translate``, ``axis_labels``, ``units``, ``contrast_limits``, ``multiscale``
        and, for several channels, ``channel_axis``, ``colormap`` and ``blending``, as
        the file gives them; ``metadata["bigvol"]`` records the source, format and
        channel names. ``layer_type`` is ``"image"`` or ``"labels"``.

    Raises
    ------
    ReadError
        If the path is missing or not a folder, its zarr metadata is missing or
        corrupt, OME-Zarr metadata points at missing datasets or is malformed, or it
        holds nothing napari can show. The message names the path and the problem.

    Warns
    -----
    UserWarning
        If a label image listed in an OME-Zarr ``labels`` group is missing or broken;
        the image itself still opens.

    Examples
    --------
    >>> from napari_bigvol.ops.export import export_zarr
    >>> from napari_bigvol.sample import brain_volume
    >>> _ = export_zarr(brain_volume((16, 64, 64)), "brain.ome.zarr")
    >>> layers = read("brain.ome.zarr")
    >>> data, kwargs, layer_type = layers[0]
    >>> data.shape, layer_type  # one resolution: an array; a pyramid gives a list of levels
    ((16, 64, 64), 'image')
    >>> from napari.layers import Image
    >>> Image(data, **kwargs).multiscale  # as viewer.add_image(data, **kwargs) builds it
    False
    """
    root = _require_folder(path)
    node = _open_node(root)
    if isinstance(node, zarr.Array):
        return [_array_layer(node, root)]
    return _group_layers(node, root)


# --- opening ------------------------------------------------------------------------------


def _require_folder(path: PathLike) -> str:
    text = os.fspath(path)
    if len(text) > 1:
        text = text.rstrip("/" + os.sep)
    if not os.path.exists(text):
        raise ReadError(text, "no such file or folder")
    if not os.path.isdir(text):
        raise ReadError(
            text, "is a file, not a zarr store folder (zipped and remote stores are not supported)"
        )
    # Absolute, so the store inside the dask graph still resolves on a dask.distributed
    # worker or after a change of working directory.
    return os.path.abspath(text)


def _open_node(root: str) -> zarr.Array | zarr.Group:
    # A read-only store: nothing napari or a widget does can write through these handles.
    try:
        node = zarr.open(store=LocalStore(root, read_only=True), mode="r")
    except _METADATA_ERRORS as error:
        raise ReadError(root, _metadata_problem(root, error)) from error
    return _checked(node, root)


def _checked(node: zarr.Array | zarr.Group, where: str) -> zarr.Array | zarr.Group:
    """Refuse attributes that are not an object, and arrays whose chunks cannot be."""
    if not isinstance(node.metadata.attributes, Mapping):
        raise ReadError(
            where,
            f"invalid zarr metadata: the attributes are {node.metadata.attributes!r}, "
            "not an object",
        )
    if isinstance(node, zarr.Array):
        chunks = node.chunks
        if len(chunks) != node.ndim or not all(isinstance(c, int) and c > 0 for c in chunks):
            raise ReadError(
                where, f"invalid zarr metadata: chunk sizes {tuple(chunks)} for shape {node.shape}"
            )
        # dask lists every chunk boundary; a corrupt shape must not make that list huge.
        counts = [-(-size // chunk) for size, chunk in zip(node.shape, chunks, strict=True)]
        if max(counts, default=0) > MAX_CHUNKS_PER_AXIS:
            raise ReadError(
                where,
                f"invalid zarr metadata: shape {node.shape} in chunks of {tuple(chunks)} makes "
                f"{max(counts)} chunks along one axis, over the {MAX_CHUNKS_PER_AXIS} "
                "napari-bigvol indexes",
            )
    return node


def _child(group: zarr.Group, root: str, name: str, listed_by: str) -> zarr.Array | zarr.Group:
    """Open ``group[name]``, turning zarr's errors into a ReadError naming the child."""
    where = os.path.join(root, name)
    try:
        return _checked(group[name], where)
    except _METADATA_ERRORS as error:
        if not os.path.isdir(where):
            raise ReadError(where, f"is missing, though {listed_by} lists it") from error
        raise ReadError(where, _metadata_problem(where, error)) from error


def _metadata_problem(folder: str, error: Exception) -> str:
    """Say which metadata file is missing or broken, from what is on disk."""
    if not _holds_any(folder, _NODE_FILES):
        return "no zarr metadata: the folder holds no zarr.json, .zarray or .zgroup"
    for name in METADATA_FILES:
        file = Path(folder, name)
        if not file.is_file():
            continue
        try:
            json.loads(file.read_bytes())
        except ValueError as bad:
            return f"{name} is not valid JSON ({bad})"
        except OSError as bad:
            return f"{name} cannot be read ({bad.strerror})"
    if isinstance(error, KeyError):
        return f"invalid zarr metadata: the required entry {error} is missing"
    return f"invalid zarr metadata ({type(error).__name__}: {error})"


def _holds_any(folder: str, names: Sequence[str]) -> bool:
    return any(os.path.isfile(os.path.join(folder, name)) for name in names)


def _child_folders(root: str) -> list[str]:
    """Names of the zarr nodes directly inside ``root``, in natural order.

    Listed from the file system rather than through zarr so that a broken child gets
    an error naming it.
    """
    with os.scandir(root) as entries:
        names = [
            entry.name
            for entry in entries
            if not entry.name.startswith(".")
            and entry.is_dir()
            and _holds_any(entry.path, _NODE_FILES)
        ]
    return sorted(names, key=natural_key)


# --- groups -------------------------------------------------------------------------------


def _group_layers(group: zarr.Group, root: str) -> list[LayerData]:
    ome = _ngff.ome_attributes(group.attrs)
    if "multiscales" in ome:
        if "image-label" in ome:
            return [_label_layer(group, root)]
        levels = _levels(group, root, ome)
        spec = _ngff.describe_multiscale(ome, levels[0].ndim, root)
        labels = _labels_of_image(root, group, spec.axes)
        if labels and _ngff.is_image_of_labels(ome):
            return labels  # a Labels layer exported alone: its image only serves other viewers
        # "image" is ome-zarr-py's default name: the store's own name tells stores apart.
        name = spec.name if spec.name not in (None, "", "image") else _display_name(root)
        return [*_image_layers_from(levels, root, ome, spec, 0, name), *labels]
    if "labels" in ome:
        return _labels_layers(group, root, ome, skip_broken=False)
    for collection in ("plate", "well"):
        if collection in ome:
            raise ReadError(
                root,
                f"is an OME-Zarr {collection} (high-content screening); open one image "
                "inside it instead, for example the folder <row>/<column>/0",
            )
    return _plain_group_layers(group, root)


def _plain_group_layers(group: zarr.Group, root: str) -> list[LayerData]:
    arrays: list[zarr.Array] = []
    images: list[LayerData] = []
    subgroups: list[str] = []
    for name in _child_folders(root):
        child = _child(group, root, name, "the folder listing")
        if isinstance(child, zarr.Array):
            if _is_image_array(child):
                arrays.append(child)
        elif "multiscales" in _ngff.ome_attributes(child.attrs):
            images.extend(_group_layers(child, os.path.join(root, name)))
        else:
            subgroups.append(name)
    if not arrays and not images:
        hint = f"; open one of its groups instead: {', '.join(subgroups)}" if subgroups else ""
        raise ReadError(
            root,
            "the zarr group holds no image array (numeric, two or more dimensions) "
            f"and no OME-Zarr image{hint}",
        )
    by_size = sorted(arrays, key=lambda a: (-a.size, natural_key(a.basename)))
    if _is_pyramid(by_size):
        layers = [_plain_layer(by_size, root, _display_name(root))]
    else:
        layers = [_plain_layer([a], os.path.join(root, a.basename), a.basename) for a in arrays]
    return layers + images


def _is_pyramid(levels: Sequence[zarr.Array]) -> bool:
    """Whether the arrays, largest first, shrink level by level like a resolution pyramid."""
    if len(levels) < 2:
        return False
    first = levels[0]
    if any(a.ndim != first.ndim or a.dtype != first.dtype for a in levels):
        return False
    return all(
        all(s <= b for s, b in zip(small.shape, big.shape, strict=True))
        and any(s < b for s, b in zip(small.shape, big.shape, strict=True))
        for big, small in itertools.pairwise(levels)
    )


def _is_image_array(array: zarr.Array) -> bool:
    return array.ndim >= 2 and np.dtype(array.dtype).kind in "biuf"


# --- plain arrays -------------------------------------------------------------------------


def _array_layer(array: zarr.Array, root: str) -> LayerData:
    if not _is_image_array(array):
        raise ReadError(
            root,
            f"the zarr array has shape {array.shape} and dtype {array.dtype}; napari shows "
            "numeric arrays of two or more dimensions",
        )
    enclosing = _enclosing_image(root, array.ndim)
    if enclosing is not None:
        ome, spec = enclosing
        level = spec.paths.index(os.path.basename(root))
        return _image_layers_from(
            [array], os.path.dirname(root), ome, spec, level, _display_name(root)
        )[0]
    return _plain_layer([array], root, _display_name(root))


def _plain_layer(levels: Sequence[zarr.Array], root: str, name: str) -> LayerData:
    first = levels[0]
    # napari's own guess: a last axis of 3 or 4 is colour; only trusted for 8-bit data.
    rgb = first.ndim >= 3 and first.shape[-1] in (3, 4) and np.dtype(first.dtype) == np.uint8
    (limits,) = _contrast_limits(levels[-1], None, [None], whole_level=len(levels) > 1)
    kwargs: dict[str, Any] = {
        "name": name,
        "rgb": rgb,
        "multiscale": len(levels) > 1,
        "contrast_limits": limits,
        "metadata": _metadata(
            root, first, "zarr", datasets=[a.path for a in levels] if len(levels) > 1 else None
        ),
    }
    labels = _dimension_names(first) or _default_axis_labels(first.ndim)
    kwargs["axis_labels"] = labels[:-1] if rgb else labels
    return _layer_data(levels, kwargs, "image")


def _default_axis_labels(ndim: int) -> tuple[str, ...]:
    """``z, y, x`` for the last axes (``t`` before them), not napari's ``-3, -2, -1``.

    Examples
    --------
    >>> _default_axis_labels(2), _default_axis_labels(4), _default_axis_labels(5)
    (('y', 'x'), ('t', 'z', 'y', 'x'), ('axis 0', 't', 'z', 'y', 'x'))
    """
    named = ("t", "z", "y", "x")[-ndim:]
    return tuple(f"axis {i}" for i in range(ndim - len(named))) + named


def _dimension_names(array: zarr.Array) -> tuple[str, ...] | None:
    """Axis names zarr v3 stores in ``dimension_names``, or xarray in ``_ARRAY_DIMENSIONS``."""
    names = getattr(array.metadata, "dimension_names", None) or array.attrs.get(
        "_ARRAY_DIMENSIONS"
    )
    if (
        isinstance(names, list | tuple)
        and len(names) == array.ndim
        and all(isinstance(n, str) and n for n in names)
        and len(set(names)) == len(names)
    ):
        return tuple(names)
    return None


def _display_name(root: str) -> str:
    """``brain`` for ``brain.ome.zarr``; ``brain/0`` for an array inside it."""
    parts = [os.path.basename(root)]
    parent = os.path.dirname(root)
    while parent and parent != os.path.dirname(parent) and _holds_any(parent, METADATA_FILES):
        parts.append(os.path.basename(parent))
        parent = os.path.dirname(parent)
    for suffix in (".ome.zarr", STORE_SUFFIX):
        if parts[-1].lower().endswith(suffix) and len(parts[-1]) > len(suffix):
            parts[-1] = parts[-1][: -len(suffix)]
            break
    return "/".join(reversed(parts))


# --- OME-Zarr images ----------------------------------------------------------------------


def _levels(group: zarr.Group, root: str, ome: Mapping[str, Any]) -> list[zarr.Array]:
    """Open the arrays the first multiscale lists; check that they shrink in order."""
    levels = []
    for path in _ngff.dataset_paths(ome, root):
        node = _child(group, root, path, "the OME-Zarr multiscales metadata")
        if not isinstance(node, zarr.Array):
            raise ReadError(
                os.path.join(root, path), "an OME-Zarr dataset must be an array, not a group"
            )
        levels.append(node)
    for big, small in itertools.pairwise(levels):
        if small.ndim != big.ndim or any(
            s > b for s, b in zip(small.shape, big.shape, strict=True)
        ):
            raise ReadError(
                root,
                f"OME-Zarr dataset {small.path!r} {small.shape} is not a downsampled "
                f"version of {big.path!r} {big.shape}",
            )
    return levels


def _image_layers_from(
    levels: Sequence[zarr.Array],
    root: str,
    ome: Mapping[str, Any],
    spec: _ngff.Multiscale,
    first_level: int,
    name: str,
) -> list[LayerData]:
    """Image layer data for ``levels``, the datasets of ``spec`` from ``first_level`` on."""
    channel_axis = spec.channel_axis
    kept = [i for i in range(len(spec.axes)) if i != channel_axis]
    displays, limits = _channel_displays(levels, ome, channel_axis)
    kwargs: dict[str, Any] = {
        **_placement(spec, spec.axes, first_level, kept),
        "rgb": False,
        "multiscale": len(levels) > 1,
    }
    facts: dict[str, Any] = {
        "ngff_version": spec.version,
        "axes": [axis.name for axis in spec.axes],
        "datasets": list(spec.paths[first_level : first_level + len(levels)]),
    }
    if channel_axis is None:
        kwargs.update(_single_channel_kwargs(displays[0], limits[0], name))
    else:
        kwargs.update(_channel_kwargs(displays, limits, channel_axis, name))
        facts["channel_names"] = kwargs["name"]
    kwargs["metadata"] = _metadata(root, levels[0], "ome-zarr", **facts)
    return [_layer_data(levels, kwargs, "image")]


def _channel_displays(
    levels: Sequence[zarr.Array], ome: Mapping[str, Any], channel_axis: int | None
) -> tuple[list[_ngff.ChannelDisplay], list[tuple[float, float]]]:
    """Each channel's display settings from ``omero``, and its contrast limits."""
    count = levels[0].shape[channel_axis] if channel_axis is not None else 1
    displays = _ngff.channel_displays(ome, count)
    limits = _contrast_limits(
        levels[-1], channel_axis, [d.window for d in displays], whole_level=len(levels) > 1
    )
    return displays, limits


def _placement(
    spec: _ngff.Multiscale, axes: Sequence[_ngff.Axis], level: int, kept: Sequence[int]
) -> dict[str, Any]:
    """``scale``, ``translate``, ``axis_labels`` (and known ``units``) of the ``kept`` axes.

    ``level`` is the index in ``spec`` of the dataset napari shows as level 0.
    """
    kwargs: dict[str, Any] = {
        "scale": tuple(spec.scales[level][i] for i in kept),
        "translate": tuple(spec.translations[level][i] for i in kept),
        "axis_labels": tuple(axes[i].name for i in kept),
    }
    units = _ngff.napari_units([axes[i] for i in kept])
    if units is not None:
        kwargs["units"] = units
    return kwargs


def _single_channel_kwargs(
    display: _ngff.ChannelDisplay, limits: tuple[float, float], name: str
) -> dict[str, Any]:
    """Name, contrast limits and (when the metadata give one) colormap of a one-channel image."""
    kwargs: dict[str, Any] = {"name": name, "contrast_limits": limits}
    if display.colormap is not None:
        kwargs["colormap"] = display.colormap
    return kwargs


def _channel_kwargs(
    displays: Sequence[_ngff.ChannelDisplay],
    limits: list[tuple[float, float]],
    channel_axis: int,
    name: str,
) -> dict[str, Any]:
    """Return kwargs splitting ``channel_axis`` into layers, displayed as ``omero`` says."""
    kwargs: dict[str, Any] = {
        "channel_axis": channel_axis,
        "name": [d.name or f"{name} [{index}]" for index, d in enumerate(displays)],
        "contrast_limits": limits,
        "visible": [d.visible for d in displays],
    }
    if all(d.colormap is not None for d in displays):
        kwargs["colormap"] = [d.colormap for d in displays]
    if len(displays) > 1:
        kwargs["blending"] = "additive"
    return kwargs


def _enclosing_image(root: str, ndim: int) -> tuple[Mapping[str, Any], _ngff.Multiscale] | None:
    """Find the OME-Zarr image whose multiscales list the array at ``root`` as a dataset."""
    parent, leaf = os.path.split(root)
    if not _holds_any(parent, ("zarr.json", ".zattrs")):
        return None
    try:
        group = zarr.open_group(store=LocalStore(parent, read_only=True), mode="r")
    except _METADATA_ERRORS:
        return None  # the array stands on its own; an unreadable parent is not its problem
    ome = _ngff.ome_attributes(group.attrs)
    if "multiscales" not in ome or "image-label" in ome:
        return None
    try:
        listed = leaf in _ngff.dataset_paths(ome, parent)
    except ReadError:
        return None  # broken metadata next door; it does not describe this array
    # From here on the metadata is about this very array, so its errors are reported.
    return (ome, _ngff.describe_multiscale(ome, ndim, parent)) if listed else None


# --- OME-Zarr labels ----------------------------------------------------------------------


def _labels_of_image(
    root: str, group: zarr.Group, image_axes: Sequence[_ngff.Axis]
) -> list[LayerData]:
    folder = os.path.join(root, "labels")
    if not os.path.isdir(folder):
        return []
    try:
        labels_group = _child(group, root, "labels", "the OME-Zarr image")
        if not isinstance(labels_group, zarr.Group):
            return []
        return _labels_layers(
            labels_group,
            folder,
            _ngff.ome_attributes(labels_group.attrs),
            skip_broken=True,
            image_axes=image_axes,
        )
    except ReadError as error:
        # Broken labels should not hide the image they annotate; say so and carry on.
        warnings.warn(f"{error}; the image opens without these labels", stacklevel=3)
        return []


def _labels_layers(
    group: zarr.Group,
    root: str,
    ome: Mapping[str, Any],
    *,
    skip_broken: bool,
    image_axes: Sequence[_ngff.Axis] = (),
) -> list[LayerData]:
    """Build the Labels layers of a ``labels`` group; ``skip_broken`` warns, not raises."""
    names = ome.get("labels")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ReadError(root, f"the OME-Zarr 'labels' metadata is not a list of names: {names!r}")
    layers = []
    for name in names:
        try:
            node = _child(group, root, name, "the OME-Zarr labels metadata")
            if not isinstance(node, zarr.Group):
                raise ReadError(os.path.join(root, name), "a label image must be a group")
            layers.append(_label_layer(node, os.path.join(root, name), image_axes))
        except ReadError as error:
            if not skip_broken:
                raise
            warnings.warn(f"{error}; skipped this label image", stacklevel=3)
    return layers


def _label_layer(group: zarr.Group, root: str, image_axes: Sequence[_ngff.Axis] = ()) -> LayerData:
    """Build a Labels layer; axes without a unit take the unit of the image axis so named."""
    ome = _ngff.ome_attributes(group.attrs)
    levels = _levels(group, root, ome)
    dtype = np.dtype(levels[0].dtype)
    if dtype.kind not in "biu":
        raise ReadError(root, f"OME-Zarr labels must be integers, not {dtype}")
    spec = _ngff.describe_multiscale(ome, levels[0].ndim, root)
    image_units = {axis.name: axis.unit for axis in image_axes if axis.unit}
    axes = [replace(axis, unit=axis.unit or image_units.get(axis.name)) for axis in spec.axes]
    data = [_dask_array(level) for level in levels]
    kept = list(range(len(axes)))
    channel_axis = spec.channel_axis
    # napari Labels have no channel axis; a single-channel one is dropped, a real one kept.
    if channel_axis is not None and levels[0].shape[channel_axis] == 1:
        data = [np.take(level, 0, axis=channel_axis) for level in data]
        kept.remove(channel_axis)
    kwargs: dict[str, Any] = {
        "name": spec.name or os.path.basename(root),  # the layer's name, not its folder's
        **_placement(spec, axes, 0, kept),
        "multiscale": len(data) > 1,
        "metadata": _metadata(
            root,
            levels[0],
            "ome-zarr labels",
            ngff_version=spec.version,
            datasets=list(spec.paths),
        ),
    }
    return (data if len(data) > 1 else data[0], kwargs, "labels")


# --- shared -------------------------------------------------------------------------------


def _layer_data(
    levels: Sequence[zarr.Array], kwargs: dict[str, Any], layer_type: str
) -> LayerData:
    data = [_dask_array(level) for level in levels]
    return (data if len(data) > 1 else data[0], kwargs, layer_type)


def _dask_array(array: zarr.Array) -> da.Array:
    """Wrap ``array`` in dask, named after the array and its metadata's age.

    It is a :class:`~napari_bigvol.io._tiled_array.TiledArray` of one block per
    stored chunk, whose planes are read in tiles of chunks: plain local layouts from their
    chunk files directly, anything else through zarr. The name changes when the store is
    rewritten in place (a re-export to the same path), so napari's dask cache never
    serves chunks of the old data.
    """
    if not isinstance(array.store, LocalStore):  # a remote store (io._remote): no stamp
        token = tokenize(str(array.store), array.path, array.shape, str(array.dtype))
    else:
        # array.path is relative to the folder the LocalStore was opened on.
        store_root = str(array.store.root)
        metadata_file = "zarr.json" if array.metadata.zarr_format == 3 else ".zarray"
        try:
            stamp = os.stat(os.path.join(store_root, array.path, metadata_file)).st_mtime_ns
        except OSError:
            stamp = 0
        token = tokenize(
            os.path.abspath(store_root), array.path, stamp, array.shape, str(array.dtype)
        )
    name = f"bigvol-zarr-{token}"
    files = ChunkFiles.of(array)
    if files is not None:
        # Chunk files read and decoded directly, without zarr's per-chunk overhead.
        return tiled_array(ChunkedLevel(files), files.chunks, name)
    # Remote, sharded, filtered...: zarr reads a tile's chunks in one call (concurrently).
    return tiled_array(_ChunkReader(array, _location(array)), array.chunks, name)


def _location(array: zarr.Array) -> str:
    """Where ``array`` lives, for messages: its folder inside the store."""
    root = getattr(array.store, "root", None)
    return os.path.join(str(root), array.path) if root is not None else str(array.store)


class _ChunkReader:
    """A zarr array for dask whose damaged chunks raise a ReadError naming the array.

    What :func:`dask.array.from_zarr` would wrap, plus the error translation: dask calls
    ``__getitem__`` once per chunk when a widget computes, once per tile of chunks when a
    plane is shown (:mod:`napari_bigvol.io._tiled_array`).
    """

    def __init__(self, array: zarr.Array, where: str) -> None:
        self.array = array
        self.where = where
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, selection: Any) -> np.ndarray:
        return _read_chunks(self.array, selection, self.where)


def _read_chunks(array: zarr.Array, selection: Any, where: str) -> np.ndarray:
    """``array[selection]``, with damaged chunk data reported as a ReadError naming ``where``."""
    try:
        return np.asarray(array[selection])
    except CHUNK_ERRORS as error:
        reason = f"{type(error).__name__}: {error}".rstrip(": ")
        raise ReadError(
            where, f"cannot read zarr chunk data, a chunk file is damaged ({reason})"
        ) from error


def _metadata(root: str, array: zarr.Array, kind: str, **facts: Any) -> dict[str, Any]:
    info = {
        "source": root if "://" in root else os.path.abspath(root),
        "format": kind,
        "zarr_format": array.metadata.zarr_format,
        **{key: value for key, value in facts.items() if value is not None},
    }
    return {"bigvol": info}


# --- contrast limits ----------------------------------------------------------------------


def _contrast_limits(
    array: zarr.Array,
    channel_axis: int | None,
    windows: Sequence[tuple[float, float] | None],
    *,
    whole_level: bool,
) -> list[tuple[float, float]]:
    """Contrast limits per channel without reading the volume.

    Windows from the metadata win; then the full range of an 8-bit or boolean dtype;
    otherwise the range of a small sample: ``array`` whole when ``whole_level`` (the
    smallest pyramid level) and it is at most :data:`CONTRAST_SAMPLE_BYTES` in at most
    :data:`CONTRAST_SAMPLE_CHUNKS` chunks, else its centre chunk, unless that chunk is
    larger than :data:`LARGEST_SAMPLED_CHUNK_BYTES`.
    """
    if all(window is not None for window in windows):
        return [w for w in windows if w is not None]
    dtype = np.dtype(array.dtype)
    chunk_bytes = math.prod(array.chunks) * dtype.itemsize
    if dtype.kind == "b" or dtype.itemsize == 1 or chunk_bytes > LARGEST_SAMPLED_CHUNK_BYTES:
        ranges = [_dtype_range(dtype)] * len(windows)
    else:
        ranges = _sample_ranges(array, channel_axis, len(windows), whole_level=whole_level)
    return [window or fallback for window, fallback in zip(windows, ranges, strict=True)]


def _dtype_range(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return (float(info.min), float(info.max))
    return (0.0, 1.0)  # booleans; floats have no natural range, the user adjusts it


def _sample_ranges(
    array: zarr.Array, channel_axis: int | None, count: int, *, whole_level: bool
) -> list[tuple[float, float]]:
    if (
        whole_level
        and array.nbytes <= CONTRAST_SAMPLE_BYTES
        and array.nchunks <= CONTRAST_SAMPLE_CHUNKS
    ):
        selection: tuple[slice, ...] = (slice(None),) * array.ndim
    else:
        selection = _centre_chunk(array, channel_axis)
    sample = _read_chunks(array, selection, _location(array))
    if channel_axis is None:
        per_channel = [sample.ravel()]
    else:
        per_channel = list(np.moveaxis(sample, channel_axis, 0).reshape(count, -1))
    return [_value_range(values) for values in per_channel]


def _centre_chunk(array: zarr.Array, channel_axis: int | None) -> tuple[slice, ...]:
    """Select the chunk holding the centre voxel, every channel included.

    napari first shows the middle plane, so this chunk is read for display anyway.
    """
    selection = []
    for axis, (size, chunk) in enumerate(zip(array.shape, array.chunks, strict=True)):
        if axis == channel_axis:
            selection.append(slice(None))
        else:
            start = (size // 2) // chunk * chunk
            selection.append(slice(start, min(start + chunk, size)))
    return tuple(selection)


def _value_range(values: np.ndarray) -> tuple[float, float]:
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    # napari needs a non-empty range: a constant sample is widened by one.
    return (low, high) if high > low else (low, low + 1.0)
