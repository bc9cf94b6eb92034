"""napari glue for the export: File > Save Layers to ``.zarr``, and layers to OME-Zarr.

The export (:mod:`napari_bigvol.ops.export`) takes plain arrays and a
:class:`~napari_bigvol.ops.export.LayerDescription`; :func:`export_layer` turns a napari
layer into those with :func:`~napari_bigvol.ops.export.describe_layer`, through napari's
own ``as_layer_data_tuple()``, so the export never inspects a
napari class.

Image layers become the image (several same-shaped image layers become its channels);
Labels layers become NGFF labels of it. The export is streamed, so saving a lazy
100 GB layer works the same as a small one.

Overwriting: the npe2 writer never replaces an existing path. napari's save dialog offers
to replace existing *files*, but a ``.zarr`` store is a folder, which the dialog opens
instead of confirming, and ``viewer.layers.save()`` from a script asks nobody; so there
is no reliable consent to rely on here. An existing path raises an error that names it,
and the "Export to zarr" widget (or ``export_layer(..., overwrite=True)``) is the way to
replace a store on purpose.

Importing this module does not import napari (``napari_bigvol`` re-exports
:func:`export_layer` and must import without a viewer).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from napari_bigvol.ops.export import describe_layer, export_layers, export_zarr

if TYPE_CHECKING:
    import napari

LayerDataTuple = tuple[Any, dict[str, Any], str]

__all__ = ["export_layer", "write_zarr"]


def export_layer(
    layer: napari.layers.Layer,
    path: str | os.PathLike,
    *,
    labels: Sequence[napari.layers.Layer] = (),
    **options: Any,
) -> str:
    """Write a napari Image or Labels layer to an OME-Zarr store, streamed and safely.

    Parameters
    ----------
    layer : napari.layers.Image or napari.layers.Labels
        Its scale, translate, axis labels, units, name, colormap, contrast limits and RGB
        flag go into the metadata; a Labels layer is stored as labels.
    path : str or os.PathLike
        The store to create.
    labels : sequence of napari.layers.Labels, optional
        Labels layers stored as NGFF labels of the image.
    **options
        As for :func:`~napari_bigvol.ops.export.export_zarr`: ``overwrite``, ``chunks``,
        ``compressor``, ``pyramid``, ``zarr_format``, ``sharding``, ``progress``,
        ``should_stop``, and description fields that override the layer's.

    Returns
    -------
    str
        The absolute path written.

    Examples
    --------
    >>> export_layer(viewer.layers["mask"], "mask.zarr", zarr_format=3)  # doctest: +SKIP
    '/home/me/mask.zarr'
    """
    data, description = describe_layer(layer)
    return export_zarr(
        data,
        path,
        description=description,
        labels=[describe_layer(item) for item in labels],
        **options,
    )


def write_zarr(path: str, layer_data: Sequence[LayerDataTuple]) -> list[str]:
    """Write napari layers to a new OME-Zarr store at ``path`` (npe2 writer).

    Parameters
    ----------
    path : str
        The store to create (``.zarr`` or ``.ome.zarr``); it must not exist yet.
    layer_data : sequence of tuple
        ``(data, meta, layer_type)`` for every selected layer, as napari hands them.

    Returns
    -------
    list of str
        The path written, as npe2 expects.

    Raises
    ------
    OperationError
        If ``path`` exists, cannot be written, or the layers cannot share one store.

    Examples
    --------
    napari calls it for ``viewer.layers.save("brain.ome.zarr", plugin="napari-bigvol")``:

    >>> from napari.layers import Image
    >>> write_zarr("brain.ome.zarr", [Image(np.ones((4, 16, 16))).as_layer_data_tuple()])
    ['/.../brain.ome.zarr']
    """
    return [export_layers(path, layer_data, overwrite=False)]
