"""Remote zarr and OME-Zarr stores: ``http(s)://`` and ``s3://`` URLs, read lazily.

Stores are opened with zarr's own :class:`zarr.storage.FsspecStore` (fsspec with aiohttp
for HTTP, s3fs for S3, from the ``remote`` extra) and read by the same layer builders as
local stores (:mod:`napari_bigvol.io.zarr_store`), so an OME-Zarr image served over HTTP
opens exactly as it does from disk. Opening fetches metadata documents only (plus the
chunk or small level that sets the contrast limits); each displayed plane fetches only
its chunks.

Every request has a timeout (:data:`CONNECT_TIMEOUT`, :data:`READ_TIMEOUT`), so an
unreachable or silent server becomes a :class:`~napari_bigvol.errors.ReadError` naming
the URL instead of a frozen viewer. Credentials and endpoints come from fsspec's usual
places (for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``~/.aws``), or from ``storage_options`` given to :func:`napari_bigvol.read`, which are
passed to fsspec as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import zarr

from napari_bigvol.errors import ReadError
from napari_bigvol.io import _ngff, zarr_store

if TYPE_CHECKING:
    from napari_bigvol.io import LayerData

#: URL schemes read through fsspec.
REMOTE_SCHEMES = ("http", "https", "s3")
#: Seconds to wait for a connection, and for each response, before giving up.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
# What fsspec's HTTP and S3 file systems raise for unreachable hosts, refusals and
# timeouts (aiohttp's and botocore's connection errors are OSError subclasses, as is
# TimeoutError), beside zarr's own metadata errors.
_REMOTE_ERRORS = (OSError, ValueError, KeyError, TypeError, asyncio.TimeoutError)

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "REMOTE_SCHEMES", "accepts", "is_remote", "read"]


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URL this package reads remotely. Cheap; never raises.

    Examples
    --------
    >>> is_remote("https://example.org/image.ome.zarr"), is_remote("/data/image.zarr")
    (True, False)
    """
    return isinstance(path, str) and urlsplit(path).scheme.lower() in REMOTE_SCHEMES


def accepts(url: str) -> bool:
    """Whether ``url`` names a remote zarr store or a node inside one, from its text only.

    No request is made: napari asks every reader about every path. A URL qualifies when
    its scheme is ``http``, ``https`` or ``s3`` and a path component ends in ``.zarr``
    (``image.ome.zarr``, ``image.zarr/0``, ``image.zarr/labels/cells``).

    Examples
    --------
    >>> accepts("https://example.org/data/image.ome.zarr/0")
    True
    >>> accepts("https://example.org/scan.nii.gz"), accepts("ftp://host/image.zarr")
    (False, False)
    """
    if not is_remote(url):
        return False
    parts = urlsplit(url).path.lower().split("/")
    return any(part.endswith(zarr_store.STORE_SUFFIX) for part in parts)


def read(url: str, storage_options: Mapping[str, Any] | None = None) -> list[LayerData]:
    """Open the zarr array, group or OME-Zarr image at ``url`` lazily as layer data.

    Parameters
    ----------
    url : str
        An ``http(s)://`` or ``s3://`` URL of a zarr store or of a node inside one.
    storage_options : mapping, optional
        Passed to fsspec, for example ``{"anon": True}`` or
        ``{"endpoint_url": "http://127.0.0.1:9000", "key": ..., "secret": ...}`` for S3,
        ``{"headers": {"Authorization": "Bearer ..."}}`` for HTTP. Timeouts are added
        unless given.

    Returns
    -------
    list of tuple
        ``(data, kwargs, layer_type)`` tuples, as for a local store.

    Raises
    ------
    ReadError
        If the host cannot be reached or does not answer in time, nothing is found at
        the URL, or its metadata is not zarr. The message names the URL.

    Examples
    --------
    >>> read("https://example.org/image.ome.zarr")  # doctest: +SKIP
    """
    url = url.rstrip("/")
    store = _open_store(url, storage_options)
    try:
        node = zarr.open(store=store, mode="r")
    except FileNotFoundError as error:
        raise ReadError(url, "nothing found at this URL (no zarr metadata)") from error
    except _REMOTE_ERRORS as error:
        raise ReadError(url, _problem(error)) from error
    try:
        if isinstance(node, zarr.Array):
            return [zarr_store._array_layer(node, url)]
        if not _lists_its_children(node):
            raise ReadError(
                url,
                "a remote zarr group without OME-Zarr metadata cannot be listed; "
                "open one of its arrays instead (<url>/<name>)",
            )
        return zarr_store._group_layers(node, url)
    except ReadError:
        raise
    except _REMOTE_ERRORS as error:
        raise ReadError(url, _problem(error)) from error


def _open_store(url: str, storage_options: Mapping[str, Any] | None) -> zarr.storage.FsspecStore:
    options = dict(storage_options or {})
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        import aiohttp  # from the remote extra, with fsspec's HTTP file system

        client_kwargs = dict(options.get("client_kwargs", {}))
        client_kwargs.setdefault(
            "timeout", aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        )
        options["client_kwargs"] = client_kwargs
    elif scheme == "s3":
        config_kwargs = dict(options.get("config_kwargs", {}))
        config_kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
        config_kwargs.setdefault("read_timeout", READ_TIMEOUT)
        config_kwargs.setdefault("retries", {"max_attempts": 2})
        options["config_kwargs"] = config_kwargs
    try:
        return zarr.storage.FsspecStore.from_url(url, storage_options=options, read_only=True)
    except ImportError as error:
        raise ReadError(
            url,
            f"reading {scheme}:// URLs needs the remote extra: "
            f"pip install 'napari-bigvol[remote]' ({error})",
        ) from error
    except _REMOTE_ERRORS as error:
        raise ReadError(url, _problem(error)) from error


def _lists_its_children(group: zarr.Group) -> bool:
    # OME-Zarr metadata names every child to open; a plain group needs a listing, which
    # HTTP servers do not give.
    ome = _ngff.ome_attributes(group.attrs)
    return any(key in ome for key in ("multiscales", "labels", "plate", "well"))


def _problem(error: BaseException) -> str:
    """Word a network or metadata failure for a user."""
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return (
            f"the server did not answer within {READ_TIMEOUT:g} s (timed out); "
            "check the URL and your network"
        )
    if isinstance(error, ConnectionError | OSError) and not isinstance(error, FileNotFoundError):
        return f"cannot reach the server ({type(error).__name__}: {error})"
    if isinstance(error, FileNotFoundError):
        return f"not found on the server ({error})"
    return f"invalid zarr metadata ({type(error).__name__}: {error})"
