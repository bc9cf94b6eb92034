"""npe2 reader contribution: hands napari the pure readers of :mod:`napari_bigvol.io`."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence

from napari_bigvol.errors import ReadError, ReadWarning
from napari_bigvol.io import LayerData, reader_for
from napari_bigvol.io._paths import PathLike
from napari_bigvol.ops.view_cache import read_for_viewer


def napari_get_reader(
    path: PathLike | Sequence[PathLike],
) -> Callable[[PathLike | Sequence[PathLike]], list[LayerData]] | None:
    """Return a reader for ``path`` if napari-bigvol handles it, otherwise None.

    The check is cheap (names and at most a directory listing) and never raises.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        The path(s) napari was asked to open.

    Returns
    -------
    callable or None
        A function returning a list of ``(data, kwargs, layer_type)`` tuples.

    Examples
    --------
    >>> napari_get_reader("notes.txt") is None
    True
    """
    return read_with_notification if reader_for(path) is not None else None


def read_with_notification(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Run :func:`napari_bigvol.read`, showing a broken file's problem as a notification.

    napari wraps a reader's exception in a generic "the plugin gave an error" message;
    showing ours first puts the file name and the problem in front of the user. The error
    is re-raised so napari adds no layer and scripts still get the exception. A
    :class:`~napari_bigvol.ReadWarning` (a header value left out) is shown as a warning
    notification and the layers open. NIfTI and DICOM (RAS) layers also install
    :func:`napari_bigvol.anatomical_view` on napari's current viewer, the one the layers
    are about to be added to, and every read installs the view-cache offers there. A
    source with a view cache opens from it, and a volume over the 3-D budget gets a
    smaller level for 3-D (:func:`~napari_bigvol.ops.view_cache.read_for_viewer`).

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        The path(s) to read.

    Returns
    -------
    list of tuple
        Layer data, as :func:`napari_bigvol.read` returns it.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # Cache-backed when a view cache exists; big volumes get a level napari can
            # show in 3-D.
            layer_data = read_for_viewer(path)
        except ReadError as error:
            from napari.utils.notifications import show_error

            show_error(str(error))
            raise
    for warning in caught:
        if issubclass(warning.category, ReadWarning):
            # What the file said but could not be used (a NaN voxel size): the layers open,
            # and the notification says what was left out.
            from napari.utils.notifications import show_warning

            show_warning(str(warning.message))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if layer_data:
        # Scanner (RAS) layers: turn the receiving viewer's camera upright.
        from napari_bigvol._napari._anatomical import follow_current_viewer

        follow_current_viewer(layer_data)
        watch_current_viewer()
    return layer_data


def watch_current_viewer() -> None:
    """Offer the view cache in the viewer that is opening our layers (if napari is running).

    Deferred imports: this module stays importable without Qt and napari.
    """
    if "napari" not in sys.modules:
        return
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        from napari_bigvol._qt.view_cache_widget import ViewCacheOffers

        ViewCacheOffers.install(viewer)


__all__ = ["napari_get_reader", "read_with_notification"]
