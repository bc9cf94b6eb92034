"""Lazy readers for TIFF, image sequences, NIfTI, DICOM and zarr; no Qt, no napari.

Every reader returns napari layer data, a list of ``(data, kwargs, layer_type)`` tuples
whose data are dask arrays (a list of them for multiscale), so the same result feeds
drag-and-drop, ``viewer.add_image(data, **kwargs)`` and plain scripts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from napari_bigvol.errors import ReadError
from napari_bigvol.io import _remote, dicom, nifti, sequence, zarr_store
from napari_bigvol.io._paths import PathLike, is_glob, require_exists
from napari_bigvol.io._slider_steps import keep_every_plane
from napari_bigvol.io._store_swap import recover_interrupted_swap

LayerData = tuple[Any, dict[str, Any], str]
Reader = Callable[[PathLike | Sequence[PathLike]], list[LayerData]]

# Most specific first: a folder ending in .zarr is a store, not a folder of slices, and a
# folder of DICOM files is a series (sequence takes folders of TIFF/PNG/JPEG, and empty ones).
_FORMATS = (zarr_store, nifti, dicom, sequence)

__all__ = ["LayerData", "read", "reader_for"]


def _format_for(path: str) -> Any | None:
    if "://" in path:  # a URL, decided from its text: no request here
        return _remote if _remote.accepts(path) else None
    for module in _FORMATS:
        if module.accepts(path):
            return module
    return None


def reader_for(path: PathLike | Sequence[PathLike]) -> Reader | None:
    """Return :func:`read` if napari-bigvol can open ``path``, else None. Never raises.

    The check looks only at names and, for folders, at a directory listing; it reads no
    pixel data.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        What napari hands a reader: one path (file, folder or glob) or several.

    Returns
    -------
    callable or None
        :func:`read`, or None for paths this plugin does not handle.

    Examples
    --------
    >>> reader_for("notes.txt") is None
    True
    """
    try:
        paths = [path] if isinstance(path, str | os.PathLike) else list(path)
        if not paths:
            return None
        if all(_format_for(os.fspath(p)) is not None for p in paths):
            return read
    except Exception:  # napari asks every plugin; a reader must never raise here
        return None
    return None


def read(
    path: PathLike | Sequence[PathLike],
    *,
    cache: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> list[LayerData]:
    """Open a volume lazily and return napari layer data.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        A file (TIFF, OME-TIFF, NIfTI, DICOM, PNG/JPEG), a folder of slices or of DICOM
        series, a zarr or OME-Zarr store, a glob pattern such as ``"/data/Axial_*.tiff"``,
        or a list of files (slices of one volume, DICOM files, or several NIfTI files).
        ``http(s)://`` and ``s3://`` URLs of zarr and OME-Zarr stores are read remotely.
    cache : bool, optional
        Back single-scale volumes by the view cache (a chunked OME-Zarr pyramid in the
        user cache folder, see :mod:`napari_bigvol.ops.view_cache`), building it first
        when it is missing or stale, so planes along any axis and 3-D are fast.
    storage_options : mapping, optional
        For URLs only: fsspec options such as S3 credentials and ``endpoint_url``, or
        HTTP headers (see :doc:`/scripting`).

    Returns
    -------
    list of tuple
        ``(data, kwargs, layer_type)`` tuples, exactly what drag-and-drop produces; the
        data are dask arrays, or lists of them for multiscale images.

    Raises
    ------
    ReadError
        If a path is missing or empty, a file is corrupt, slices disagree in shape or
        dtype, or a header claims an impossible size. The message names the file.

    Examples
    --------
    >>> import napari_bigvol
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((4, 32, 32)), "axial")
    >>> layers = napari_bigvol.read("axial/Synthesized_FLASH25_Axial_*.tiff")
    >>> data, kwargs, layer_type = layers[0]
    >>> data.shape, layer_type
    ((4, 32, 32), 'image')
    >>> from napari.layers import Image
    >>> Image(data, **kwargs).ndim  # as viewer.add_image(data, **kwargs) builds it
    3
    """
    if cache:
        # Deferred: the cache composes these readers with the export's pyramid writer.
        from napari_bigvol.ops.view_cache import cached_read

        return cached_read(path)
    return [keep_every_plane(layer) for layer in _read_layers(path, storage_options)]


def _read_layers(
    path: PathLike | Sequence[PathLike], storage_options: Mapping[str, Any] | None
) -> list[LayerData]:
    if isinstance(path, str | os.PathLike):
        return _read_one(os.fspath(path), storage_options)
    paths = [os.fspath(p) for p in path]
    if not paths:
        raise ReadError("<empty list>", "no paths were given")
    formats = {_format_for(p) for p in paths}
    if formats == {sequence}:
        # Several image files dropped together are the slices of one volume.
        for p in paths:
            require_exists(p)
        return sequence.read(paths)
    if formats == {dicom}:
        return dicom.read(paths)  # grouped into series, whatever order they were dropped in
    return [layer for p in paths for layer in _read_one(p, storage_options)]


def _read_one(path: str, storage_options: Mapping[str, Any] | None = None) -> list[LayerData]:
    if _remote.is_remote(path):
        if not _remote.accepts(path):
            raise ReadError(path, "napari-bigvol reads zarr and OME-Zarr stores from URLs only")
        return _remote.read(path, storage_options)
    if not is_glob(path):
        if not os.path.lexists(path):
            # An export that crashed while replacing this store left it aside: put it back.
            recover_interrupted_swap(path)
        require_exists(path)
    module = _format_for(path)
    if module is None:
        raise ReadError(path, "napari-bigvol cannot read this kind of file")
    return module.read(path)
