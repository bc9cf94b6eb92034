"""npe2 reader contribution: hands napari the pure readers of :mod:`napari_bigvol.io`."""

from __future__ import annotations

from collections.abc import Sequence

from napari_bigvol.io import LayerData, Reader, reader_for
from napari_bigvol.io._paths import PathLike


def napari_get_reader(path: PathLike | Sequence[PathLike]) -> Reader | None:
    """Return a reader for ``path`` if napari-bigvol handles it, otherwise None.

    The check is cheap (names and at most a directory listing) and never raises; the
    returned reader raises :class:`~napari_bigvol.errors.ReadError` with the file name
    and the problem for broken input, which napari shows as a notification.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        The path(s) napari was asked to open.

    Returns
    -------
    callable or None
        A function returning a list of ``(data, kwargs, layer_type)`` tuples.
    """
    return reader_for(path)


__all__ = ["LayerData", "napari_get_reader"]
