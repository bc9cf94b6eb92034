"""The view cache: a chunked, multi-resolution OME-Zarr copy of a volume, for any-axis views.

A TIFF folder or a ``.nii.gz`` is fast to read along the axis it was saved in and slow
along the others: every sagittal plane of a 2,000-file folder opens all 2,000 files.
The view cache is a copy of the volume in 64-voxel cubes with a pyramid, written by the
one-pass pyramid writer of :func:`~napari_bigvol.ops.export.export_layers`, so a plane
along any axis, and every pyramid level, reads only the few cubes it crosses. Its levels
are read straight from the chunk files (:mod:`napari_bigvol.io._zarr_chunks`), in dask
blocks of many cubes: a plane costs a few tasks, not one per cube.

* **Where:** ``$NAPARI_BIGVOL_CACHE`` when set, else the user cache folder that
  :mod:`platformdirs` names (``~/.cache/napari-bigvol`` on Linux). Never beside the data.
* **Size cap:** ``$NAPARI_BIGVOL_CACHE_SIZE`` (``"50GB"``, ``"500MiB"``, bytes; default
  :data:`DEFAULT_CACHE_SIZE`). The least recently used entries are evicted to make room.
* **Validity:** an entry records the size and modification time of every source file and
  is used only while they all match; otherwise it is deleted and rebuilt.
* **Safety:** an entry is built in a hidden ``.KEY.partial-HOST-PID-RANDOM`` folder, its
  marker file (``complete.json``) written last, then renamed into place. A killed build
  leaves only a partial folder, which is never read and is removed by the next build.

The pure functions here import neither Qt nor napari; the viewer glue lives in
:mod:`napari_bigvol._qt.view_cache_widget`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import platformdirs
import psutil
import zarr
from dask.base import tokenize
from dask.utils import format_bytes, parse_bytes

from napari_bigvol.errors import BigVolError, OperationError
from napari_bigvol.io import _ngff, zarr_store
from napari_bigvol.io import read as read_uncached
from napari_bigvol.io._paths import PathLike, expand_glob, is_glob
from napari_bigvol.io._tiled_array import tiled_array
from napari_bigvol.io._zarr_chunks import ChunkedLevel, ChunkFiles
from napari_bigvol.ops._pyramid import downsample_mean
from napari_bigvol.ops.compute import ProgressCallback, StopCheck, stream_blocks
from napari_bigvol.ops.export import export_layers

LayerData = tuple[Any, dict[str, Any], str]

CACHE_ENV = "NAPARI_BIGVOL_CACHE"
CACHE_SIZE_ENV = "NAPARI_BIGVOL_CACHE_SIZE"
BUDGET_3D_ENV = "NAPARI_BIGVOL_3D_BUDGET"
#: Total size the cache may grow to before least-recently-used entries are evicted.
DEFAULT_CACHE_SIZE = "50GB"
#: Memory napari may add to show a volume in 3-D: it loads the smallest level whole and
#: keeps TEXTURE_COPIES copies of it, so a level of up to 64 MiB by default.
DEFAULT_3D_BUDGET = "320MiB"
#: Compressor of the cache stores. Blosc lz4 reads a sagittal plane of 64^3 chunks about
#: 2x faster than the export's default zstd (143 vs 322 ms, 1000 x 512^2 uint16) for 9%
#: more disk; docs/performance/view_cache.md.
CACHE_COMPRESSOR = "lz4"
#: Work units of the cache build grow to at most this size (the export's are 256 MiB), so
#: peak memory is flat in the plane size where planes are read by rows (TIFF, uncompressed
#: or in strips): 234 MB at 1 GB, 244 MB at 4 GB, against 641 MB for 64 whole slices.
#: Below it (the smallest units, 8 MiB) the build was 1.1-1.4x slower; at 64 MiB, 70 MB
#: more for no gain (docs/performance/view_cache.md). Sources read by whole planes keep
#: their smallest unit, 64 planes, when that is larger.
CACHE_UNIT_BYTES = 32 * 2**20
#: napari keeps about this many copies of the level it shows in 3-D (the level, its
#: float32 texture, the GL upload): RSS growth / level bytes measured 4.4 (62.5 MiB uint16
#: level read from a TIFF folder) and 4.7 (15.6 MiB from the cache), Xvfb/Mesa; rounded up
#: so that the growth stays within the budget.
TEXTURE_COPIES = 5
#: In-plane size a 3-D level keeps before its depth axis is halved too.
SMALLEST_PLANE = 64
MARKER = "complete.json"
# Bump when the layout of an entry changes: older entries are then not found, and removed.
# 2: every chunk written (none left to the fill value), read directly as chunk files.
_LAYOUT = 2
_PARTIAL = ".partial-"
_TRASH = ".trash-"
# Worst case of a pyramid beside level 0, when only the plane is halved: 1/4 + 1/16 + ...
_PYRAMID_OVERHEAD = 4 / 3

__all__ = [
    "ByteSetting",
    "CacheEntry",
    "budget_3d",
    "build_cache",
    "cache_entries",
    "cache_key",
    "cache_root",
    "cache_size_limit",
    "cached_layer",
    "cached_read",
    "clear_cache",
    "discard",
    "downsampled_level",
    "factors_for_budget",
    "find_cache",
    "lazy_downsampled",
    "needs_cache",
    "read_for_viewer",
    "source_files",
    "source_stamp",
]


# --- settings -----------------------------------------------------------------------------


def cache_root() -> str:
    """Folder of the view cache: ``$NAPARI_BIGVOL_CACHE`` or the platform's user cache.

    Examples
    --------
    >>> os.path.isabs(cache_root())
    True
    """
    folder = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("napari-bigvol")
    return os.path.abspath(os.path.expanduser(folder))


@dataclass(frozen=True)
class ByteSetting:
    """A size in bytes set by an environment variable (``"50GB"``, ``"500MiB"``, bytes).

    Calling it reads the variable, or ``default`` when it is unset or empty.

    Examples
    --------
    >>> ByteSetting("NAPARI_BIGVOL_EXAMPLE_SIZE", "2KiB")()
    2048
    >>> cache_size_limit() > 0 and budget_3d() > 0
    True
    """

    variable: str
    default: str

    def __call__(self) -> int:
        """Return the size; raise OperationError naming the variable when it is not one."""
        text = os.environ.get(self.variable) or self.default
        try:
            value = parse_bytes(text)
        except (ValueError, TypeError) as error:
            raise OperationError(
                f"{self.variable}={text!r} is not a size; write it like 50GB, 500MiB or 1000000"
            ) from error
        if value <= 0:
            raise OperationError(
                f"{self.variable}={text!r} is not a size; write it like 50GB, 500MiB"
            )
        return int(value)


#: Size cap of the cache in bytes: ``$NAPARI_BIGVOL_CACHE_SIZE`` or 50 GB.
cache_size_limit = ByteSetting(CACHE_SIZE_ENV, DEFAULT_CACHE_SIZE)
#: Memory showing a volume in 3-D may add: ``$NAPARI_BIGVOL_3D_BUDGET`` or 320 MiB.
budget_3d = ByteSetting(BUDGET_3D_ENV, DEFAULT_3D_BUDGET)


# --- sources and their stamps -------------------------------------------------------------


def _paths(source: PathLike | Sequence[PathLike]) -> list[str]:
    if isinstance(source, str | os.PathLike):
        return [os.fspath(source)]
    return [os.fspath(p) for p in source]


def source_files(source: PathLike | Sequence[PathLike]) -> list[str]:
    """Every file whose change makes a cached copy of ``source`` stale.

    A folder of slices counts all its visible files, a zarr store every file below it, a
    glob the files it matches, a file itself.

    Examples
    --------
    >>> source_files(__file__) == [__file__]
    True
    """
    files: list[str] = []
    for path in _paths(source):
        if is_glob(path):
            files.extend(expand_glob(path))
        elif zarr_store.accepts(path):
            for folder, _, names in os.walk(path):
                files.extend(os.path.join(folder, name) for name in sorted(names))
        elif os.path.isdir(path):
            with os.scandir(path) as entries:
                names = sorted(e.name for e in entries if e.name[0] != "." and e.is_file())
            files.extend(os.path.join(path, name) for name in names)
        else:
            files.append(path)
    return files


def source_stamp(source: PathLike | Sequence[PathLike]) -> str:
    """Digest of the name, size and modification time of every source file.

    One ``stat`` per file: about 10 ms for a 2,000-file folder.

    Examples
    --------
    >>> source_stamp(__file__) == source_stamp(__file__)
    True
    """
    digest = hashlib.sha256()
    for file in source_files(source):
        stat = os.stat(file)
        digest.update(f"{file}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return digest.hexdigest()


def cache_key(source: PathLike | Sequence[PathLike]) -> str:
    """Name of the cache entry of ``source``: a digest of its resolved path(s).

    Examples
    --------
    >>> cache_key("/data/a.nii") == cache_key("/data/../data/a.nii")
    True
    """
    resolved = [os.path.realpath(os.path.expanduser(p)) for p in _paths(source)]
    text = "\0".join(sorted(resolved)) + f"\0layout={_LAYOUT}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- entries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheEntry:
    """One complete cached copy.

    Attributes
    ----------
    folder : str
        The entry's folder in the cache.
    source : list of str
        The path(s) it was built from.
    stamp : str
        :func:`source_stamp` of the source when the build started.
    size : int
        Bytes on disk.
    stores : dict
        Layer index (in the order :func:`napari_bigvol.read` returns layers) to the
        OME-Zarr store holding that layer.
    last_used : float
        Time of the last use (the marker's modification time), for LRU eviction.
    layout : int
        Version of the entry's layout; entries of other versions are only removed.
    """

    folder: str
    source: list[str]
    stamp: str
    size: int
    stores: dict[int, str]
    last_used: float
    layout: int = 1

    @classmethod
    def load(cls, folder: str) -> CacheEntry | None:
        """Read an entry's marker; None for a folder without a valid one (incomplete)."""
        marker = os.path.join(folder, MARKER)
        try:
            with open(marker, encoding="utf-8") as file:
                facts = json.load(file)
            last_used = os.stat(marker).st_mtime
            stores = {int(k): os.path.join(folder, v) for k, v in facts["stores"].items()}
            return cls(
                folder,
                list(facts["source"]),
                str(facts["stamp"]),
                int(facts["size"]),
                stores,
                last_used,
                int(facts.get("layout", 1)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def touch(self) -> None:
        """Mark the entry as just used (least recently used entries are evicted first)."""
        with contextlib.suppress(OSError):
            os.utime(os.path.join(self.folder, MARKER))


def _folder_size(folder: str) -> int:
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_blocks * 512
    return total


def cache_entries(root: str | None = None) -> list[CacheEntry]:
    """Complete entries in the cache, least recently used first.

    Examples
    --------
    >>> isinstance(cache_entries(), list)
    True
    """
    root = root or cache_root()
    if not os.path.isdir(root):
        return []
    entries = []
    with os.scandir(root) as listing:
        for item in listing:
            if item.is_dir() and not item.name.startswith("."):
                entry = CacheEntry.load(item.path)
                if entry is not None:
                    entries.append(entry)
    return sorted(entries, key=lambda e: e.last_used)


def _discard(folder: str) -> None:
    # Rename first: a folder half deleted must not look like an entry to anyone.
    root, name = os.path.split(folder)
    aside = os.path.join(root, f"{_TRASH}{name}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def discard(entry: CacheEntry) -> None:
    """Delete one cache entry (layers reading from it can no longer load its pixels)."""
    _discard(entry.folder)


def clear_cache(root: str | None = None) -> int:
    """Delete every entry (and leftover of a killed build) in the cache; return bytes freed.

    Examples
    --------
    >>> import tempfile
    >>> clear_cache(tempfile.mkdtemp())
    0
    """
    root = root or cache_root()
    if not os.path.isdir(root):
        return 0
    freed = 0
    with os.scandir(root) as listing:
        folders = [item.path for item in listing if item.is_dir()]
    for folder in folders:
        freed += _folder_size(folder)
        _discard(folder)
    return freed


def find_cache(source: PathLike | Sequence[PathLike]) -> CacheEntry | None:
    """Return the complete, up-to-date entry of ``source``, or None; delete a stale one.

    Parameters
    ----------
    source : str, os.PathLike or sequence of them
        What was passed to :func:`napari_bigvol.read`.

    Returns
    -------
    CacheEntry or None
        The entry (marked as used), or None when there is none or the source changed.

    Examples
    --------
    >>> find_cache("/no/such/volume.nii") is None
    True
    """
    folder = os.path.join(cache_root(), cache_key(source))
    entry = CacheEntry.load(folder)
    if entry is None:
        return None
    try:
        fresh = source_stamp(source) == entry.stamp
    except (OSError, BigVolError):
        fresh = False
    if not fresh:
        _discard(folder)  # never serve stale pixels
        return None
    entry.touch()
    return entry


# --- building -----------------------------------------------------------------------------


def needs_cache(layer: LayerData) -> bool:
    """Whether a layer would gain from the view cache: a single-scale image.

    Examples
    --------
    >>> needs_cache((da.zeros((4, 8, 8)), {}, "image"))
    True
    >>> needs_cache(([da.zeros((4, 8, 8)), da.zeros((2, 4, 4))], {"multiscale": True}, "image"))
    False
    """
    data, meta, kind = layer
    multiscale = meta.get("multiscale")
    if multiscale is None:
        multiscale = isinstance(data, list | tuple)
    return kind == "image" and not multiscale and getattr(data, "ndim", 0) >= 3


def _estimate(layers: Sequence[LayerData]) -> int:
    return int(sum(layer[0].nbytes for layer in layers) * _PYRAMID_OVERHEAD)


def _check_outside_sources(root: str, source: PathLike | Sequence[PathLike]) -> None:
    real_root = os.path.realpath(root)
    for path in _paths(source):
        real = os.path.realpath(os.path.expanduser(path))
        # A folder source must not contain the cache (its files would join the source);
        # a file source must not share its folder with it.
        inside = os.path.isdir(real) and real_root.startswith(real + os.sep)
        folder = real if os.path.isdir(real) else os.path.dirname(real)
        if real_root == folder or inside:
            raise OperationError(
                f"the view cache folder {root} is inside the data folder {folder}; set "
                f"{CACHE_ENV} to a folder elsewhere"
            )


def _remove_leftovers(root: str) -> None:
    # Entries of older layouts (never read again), leftovers of discards, and of killed
    # builds on this host (their process is gone).
    for entry in cache_entries(root):
        if entry.layout != _LAYOUT:
            _discard(entry.folder)
    host = socket.gethostname()
    with os.scandir(root) as listing:
        for item in listing:
            if item.name.startswith(_TRASH):
                shutil.rmtree(item.path, ignore_errors=True)
            elif _PARTIAL in item.name:
                parts = item.name.split(_PARTIAL, 1)[1].rsplit("-", 2)
                if (
                    len(parts) == 3
                    and parts[0] == host
                    and parts[1].isdigit()
                    and not psutil.pid_exists(int(parts[1]))
                ):
                    shutil.rmtree(item.path, ignore_errors=True)


def _make_room(root: str, needed: int, limit: int, keep: str) -> None:
    if needed > limit:
        raise OperationError(
            f"the view cache needs up to {format_bytes(needed)} but its size cap is "
            f"{format_bytes(limit)}; raise {CACHE_SIZE_ENV} or export to OME-Zarr instead"
        )
    entries = [e for e in cache_entries(root) if os.path.basename(e.folder) != keep]
    used = sum(e.size for e in entries)
    for entry in entries:  # least recently used first
        if used + needed <= limit:
            break
        _discard(entry.folder)
        used -= entry.size


def _check_free_space(root: str, needed: int) -> None:
    free = shutil.disk_usage(root).free
    if free < needed:
        raise OperationError(
            f"not enough free disk space for the view cache in {root}: it needs up to "
            f"{format_bytes(needed)}, {format_bytes(free)} are free; free some space, set "
            f"{CACHE_ENV} to another disk, or clear the cache"
        )


def build_cache(
    source: PathLike | Sequence[PathLike],
    layers: Sequence[LayerData] | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> CacheEntry:
    """Build (or rebuild) the cache entry of ``source``, streamed, and return it.

    Every single-scale image layer of the source is written as an OME-Zarr store of
    64-voxel cubes with a pyramid, in one pass through the source (at most a few work
    units per thread in memory). Before starting, least recently used entries are evicted
    to keep the cache under its size cap, and the free disk space is checked against the
    uncompressed size of the copy.

    Parameters
    ----------
    source : str, os.PathLike or sequence of them
        What :func:`napari_bigvol.read` accepts.
    layers : sequence of tuple, optional
        The uncached layer data of ``source``, if already read.
    progress, should_stop : callable, optional
        As for :func:`~napari_bigvol.ops.compute.stream_blocks`.

    Returns
    -------
    CacheEntry
        The complete entry.

    Raises
    ------
    OperationError
        Not enough free disk space, the copy is larger than the size cap, the cache folder
        is inside the data, or writing failed (nothing partial is left behind).
    Cancelled
        When ``should_stop`` returned True.

    Examples
    --------
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((80, 96, 96)), "axial")
    >>> entry = build_cache("axial")
    >>> sorted(entry.stores), entry.size > 0
    ([0], True)
    """
    layers = list(layers) if layers is not None else read_uncached(source)
    stamp = source_stamp(source)  # before reading pixels: a change during the build shows
    wanted = {i: layer for i, layer in enumerate(layers) if needs_cache(layer)}
    root, key = _prepare_room(source, _estimate(list(wanted.values())))
    host = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temporary = os.path.join(root, f".{key}{_PARTIAL}{host}")
    os.mkdir(temporary)
    try:
        stores = _write_stores(temporary, wanted, progress, should_stop)
        facts = {"source": [os.path.abspath(p) for p in _paths(source)], "stamp": stamp}
        target = _seal(temporary, os.path.join(root, key), {**facts, "stores": stores})
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    entry = CacheEntry.load(target)
    assert entry is not None  # just written
    _make_room(root, 0, cache_size_limit(), key)
    return entry


def _prepare_room(source: PathLike | Sequence[PathLike], needed: int) -> tuple[str, str]:
    """Check and clean the cache folder before a build; return it and the entry's key."""
    root = cache_root()
    os.makedirs(root, exist_ok=True)
    _check_outside_sources(root, source)
    _remove_leftovers(root)
    key = cache_key(source)
    _make_room(root, needed, cache_size_limit(), key)
    _check_free_space(root, needed)
    return root, key


def _write_stores(
    folder: str,
    layers: dict[int, LayerData],
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
) -> dict[str, str]:
    """Write one OME-Zarr store per layer into ``folder``; return index to store name."""
    stores = {}
    for position, (index, layer) in enumerate(layers.items()):

        def report(done: int, total: int, before: int = position) -> None:
            if progress is not None:
                progress(before * total + done, len(layers) * total)

        name = f"{index}.ome.zarr"
        export_layers(
            os.path.join(folder, name),
            [layer],
            compressor=CACHE_COMPRESSOR,
            unit_bytes=CACHE_UNIT_BYTES,
            progress=report,
            should_stop=should_stop,
        )
        stores[str(index)] = name
    return stores


def _seal(temporary: str, target: str, facts: dict[str, Any]) -> str:
    """Write the marker into a finished build, then rename it into place; return it."""
    facts = {**facts, "size": _folder_size(temporary), "created": time.time()}
    # The marker last: without it the folder is never taken for a complete entry.
    with open(os.path.join(temporary, MARKER), "w", encoding="utf-8") as file:
        json.dump({**facts, "layout": _LAYOUT}, file)
    if os.path.lexists(target):
        _discard(target)
    os.rename(temporary, target)
    return target


# --- reading ------------------------------------------------------------------------------


def _channel_position(meta: dict[str, Any], ndim: int) -> int | None:
    if meta.get("channel_axis") is not None:
        return int(meta["channel_axis"]) % ndim
    return ndim - 1 if meta.get("rgb") else None


def _level_array(array: zarr.Array) -> da.Array:
    files = ChunkFiles.of(array)
    if files is None:  # not the plain layout this version writes: read through zarr
        return da.from_zarr(array)
    stamp = os.stat(os.path.join(files.folder, ".zarray")).st_mtime_ns
    # Planes read in a few tiles of grouped chunks, even as napari slices: see TiledArray.
    name = f"bigvol-cache-{tokenize(files.folder, stamp, files.shape, str(files.dtype))}"
    return tiled_array(ChunkedLevel(files), files.chunks, name)


def _store_levels(store: str) -> tuple[list[da.Array], int | None]:
    """Open the levels of a cache store; also return the position of its channel axis."""
    group = zarr.open_group(store, mode="r")
    ome = _ngff.ome_attributes(group.attrs)
    axes = ome["multiscales"][0]["axes"]
    kinds = [axis.get("type") for axis in axes]
    channel = kinds.index("channel") if "channel" in kinds else None
    levels = [group[path] for path in _ngff.dataset_paths(ome, store)]
    return [_level_array(level) for level in levels], channel


def cached_layer(layer: LayerData, store: str, entry_folder: str) -> LayerData:
    """Return ``layer`` (uncached) with its data replaced by the levels of ``store``.

    Name, scale, translate, affine, units, axis labels, contrast limits and metadata stay
    those of the uncached read; axes come back in the reader's order (the store keeps a
    channel or RGB axis where OME-Zarr wants it). When even the smallest stored level is
    over the 3-D budget, a further level, downsampled lazily from it, is appended.

    Examples
    --------
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((80, 96, 96)), "axial")
    >>> entry = build_cache("axial")
    >>> [layer] = read_uncached("axial")
    >>> data, kwargs, kind = cached_layer(layer, entry.stores[0], entry.folder)
    >>> kwargs["multiscale"], zarr.open_array(f"{entry.stores[0]}/0").chunks
    (True, (64, 64, 64))
    """
    data, meta, kind = layer
    levels, stored_channel = _store_levels(store)
    wanted_channel = _channel_position(meta, data.ndim)
    if stored_channel is not None and wanted_channel is not None:
        levels = [da.moveaxis(level, stored_channel, wanted_channel) for level in levels]
    smaller = _level_for_3d(levels[-1], meta)
    if smaller is not None:
        levels.append(smaller)
    kwargs = dict(meta)
    kwargs["multiscale"] = True
    bigvol = dict((kwargs.get("metadata") or {}).get("bigvol", {}))
    bigvol["view_cache"] = entry_folder
    kwargs["metadata"] = {**(kwargs.get("metadata") or {}), "bigvol": bigvol}
    return levels, kwargs, kind


def cached_read(
    source: PathLike | Sequence[PathLike],
    *,
    build: bool = True,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> list[LayerData]:
    """Open ``source`` backed by its view cache, building the cache first when needed.

    Parameters
    ----------
    source : str, os.PathLike or sequence of them
        What :func:`napari_bigvol.read` accepts.
    build : bool, optional
        Build a missing or stale cache (default). False returns the uncached layers then.
    progress, should_stop : callable, optional
        For the build, as for :func:`build_cache`.

    Returns
    -------
    list of tuple
        The same layers as the uncached read, single-scale images replaced by multiscale
        levels read from the cache. Layers that already are pyramids (OME-Zarr) are
        returned as they are and nothing is built for them.

    Examples
    --------
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((80, 96, 96)), "axial")
    >>> layers = cached_read("axial")
    >>> [level.shape for level in layers[0][0]]
    [(80, 96, 96)]
    """
    layers = read_uncached(source)
    if not any(needs_cache(layer) for layer in layers):
        return layers
    entry = find_cache(source)
    if entry is None:
        if not build:
            return layers
        entry = build_cache(source, layers, progress=progress, should_stop=should_stop)
    return [
        cached_layer(layer, entry.stores[index], entry.folder) if index in entry.stores else layer
        for index, layer in enumerate(layers)
    ]


def read_for_viewer(source: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Layers for napari's File > Open: cache-backed when a cache exists, safe in 3-D.

    Nothing is built here. A source with an up-to-date view cache opens from it (also in
    a later session); otherwise a single-scale volume over the 3-D budget
    (:func:`budget_3d`) gets a second, lazily downsampled level, so that napari, which
    shows the smallest level of a multiscale image in 3-D, loads that level (read in one
    streamed pass) instead of the whole volume. A pyramid whose smallest level is over the
    budget gets one more level the same way.

    Examples
    --------
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((80, 96, 96)), "axial")
    >>> _ = build_cache("axial")
    >>> [(data, kwargs, kind)] = read_for_viewer("axial")  # opens the cache, builds nothing
    >>> [level.shape for level in data], "view_cache" in kwargs["metadata"]["bigvol"]
    ([(80, 96, 96)], True)
    """
    return [_with_3d_level(layer) for layer in cached_read(source, build=False)]


def _with_3d_level(layer: LayerData) -> LayerData:
    data, meta, kind = layer
    levels = list(data) if isinstance(data, list | tuple) else [data]
    non_spatial = bool(meta.get("rgb")) + (meta.get("channel_axis") is not None)
    if kind != "image" or levels[0].ndim - non_spatial < 3:
        return layer
    # Also for a pyramid (OME-Zarr) whose smallest level is still over the budget.
    smaller = _level_for_3d(levels[-1], meta)
    if smaller is None:
        return layer
    return [*levels, smaller], {**meta, "multiscale": True}, kind


def _level_for_3d(level: da.Array, meta: dict[str, Any]) -> da.Array | None:
    """Return a lazily downsampled level under the 3-D budget, or None if ``level`` fits."""
    factors = factors_for_budget(
        level.shape,
        level.dtype.itemsize,
        budget_3d() // TEXTURE_COPIES,
        spatial=4 if meta.get("rgb") else 3,  # an RGB axis is last, after z, y, x
        skip=_channel_position(meta, level.ndim),
    )
    return lazy_downsampled(level, factors) if any(f > 1 for f in factors) else None


# --- levels for 3-D -----------------------------------------------------------------------


def factors_for_budget(
    shape: Sequence[int],
    itemsize: int,
    budget: int,
    *,
    spatial: int = 3,
    skip: int | None = None,
) -> tuple[int, ...]:
    """Power-of-two downsampling factors that bring a level under ``budget`` bytes.

    The two in-plane axes (the last two that may shrink) are halved first, down to
    :data:`SMALLEST_PLANE` voxels; only then is the depth axis halved too. A plane of the
    level then comes from one source plane, which napari has just read for the view: the
    thumbnail napari draws from the smallest level of a multiscale layer costs no extra
    file read while scrolling through the saved planes.

    Parameters
    ----------
    shape : sequence of int
        Shape of the level.
    itemsize : int
        Bytes per voxel.
    budget : int
        Bytes the result may take.
    spatial : int, optional
        How many trailing axes may shrink.
    skip : int, optional
        An axis among them that must not shrink (a channel or RGB axis).

    Returns
    -------
    tuple of int
        One factor per axis; all 1 when the level already fits.

    Examples
    --------
    >>> factors_for_budget((2000, 512, 512), 2, 256 * 2**20)
    (1, 2, 2)
    >>> factors_for_budget((20000, 512, 512), 2, 256 * 2**20)
    (1, 8, 8)
    >>> factors_for_budget((100, 64, 64), 2, 256 * 2**20)
    (1, 1, 1)
    """
    ndim = len(shape)
    factors = [1] * ndim
    skipped = None if skip is None else skip % ndim
    movable = [a for a in range(max(0, ndim - spatial), ndim) if a != skipped]
    plane = movable[-2:]

    def size(axis: int) -> int:
        return math.ceil(shape[axis] / factors[axis])

    while math.prod(size(a) for a in range(ndim)) * itemsize > budget:
        in_plane = [a for a in plane if size(a) > SMALLEST_PLANE]
        shrinking = in_plane or [a for a in movable if size(a) > 1]
        if not shrinking:
            break
        for axis in shrinking:
            factors[axis] *= 2
    return tuple(factors)


class _Downsample:
    """Block kernel: mean-downsample by power-of-two ``factors`` (pickles for a cluster)."""

    def __init__(self, factors: Sequence[int]) -> None:
        self.factors = tuple(factors)

    def __call__(self, block: np.ndarray, index: tuple[int, ...] | None = None) -> np.ndarray:
        remaining = list(self.factors)
        while any(f > 1 for f in remaining):
            step = [2 if f > 1 else 1 for f in remaining]
            block = downsample_mean(block, step)
            remaining = [f // s for f, s in zip(remaining, step, strict=True)]
        return block


def _aligned(array: da.Array, factors: Sequence[int]) -> da.Array:
    # Chunks that are whole multiples of the factors, so blocks downsample independently.
    chunks = tuple(
        f * math.ceil(max(sizes) / f) for sizes, f in zip(array.chunks, factors, strict=True)
    )
    return array.rechunk(tuple(min(c, n) for c, n in zip(chunks, array.shape, strict=True)))


def lazy_downsampled(array: da.Array, factors: Sequence[int]) -> da.Array:
    """``array`` mean-downsampled by ``factors``, lazily (a dask array, same dtype).

    Its tasks depend on the very plane tasks of ``array``: a plane of the level that
    napari draws as the thumbnail while you scroll reuses the source plane just read for
    the view (napari's chunk cache holds it) instead of reading the file again.

    Examples
    --------
    >>> lazy_downsampled(da.ones((8, 8, 8), chunks=4, dtype="uint8"), (2, 2, 2)).shape
    (4, 4, 4)
    """
    work = _aligned(array, factors)
    chunks = tuple(
        tuple(math.ceil(c / f) for c in sizes)
        for sizes, f in zip(work.chunks, factors, strict=True)
    )
    return work.map_blocks(_Downsample(factors), chunks=chunks, dtype=array.dtype)


def downsampled_level(
    array: da.Array,
    factors: Sequence[int],
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> np.ndarray:
    """Read ``array`` once, streamed, and return it mean-downsampled by ``factors``.

    Memory is the result plus a few source blocks per thread: the full-resolution volume
    is never held.

    Parameters
    ----------
    array : dask.array.Array
        The source, for example a TIFF folder.
    factors : sequence of int
        Power-of-two factor per axis, from :func:`factors_for_budget`.
    progress, should_stop : callable, optional
        As for :func:`~napari_bigvol.ops.compute.stream_blocks`.

    Returns
    -------
    numpy.ndarray
        Shape ``ceil(shape / factors)``, dtype of ``array``.

    Examples
    --------
    >>> downsampled_level(da.arange(16, chunks=4).reshape(4, 4), (2, 2))
    array([[ 3,  5],
           [11, 13]])
    """
    work = _aligned(array, factors)
    out = np.empty(
        tuple(math.ceil(n / f) for n, f in zip(array.shape, factors, strict=True)), array.dtype
    )
    starts = [
        np.concatenate([[0], np.cumsum(sizes)[:-1]]) // f
        for sizes, f in zip(work.chunks, factors, strict=True)
    ]
    kernel = _Downsample(factors)
    for index, block in stream_blocks(work, kernel, progress=progress, should_stop=should_stop):
        region = tuple(
            slice(int(s[i]), int(s[i]) + n)
            for s, i, n in zip(starts, index, block.shape, strict=True)
        )
        out[region] = block
    return out
