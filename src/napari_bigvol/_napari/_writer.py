"""npe2 writer contribution: File > Save Layers to a ``.zarr`` path writes OME-Zarr.

Image layers become the image (several same-shaped image layers become its channels);
Labels layers become NGFF labels of it. The export is streamed, so saving a lazy
100 GB layer works the same as a small one.

Overwriting: this writer never replaces an existing path. napari's save dialog offers
to replace existing *files*, but a ``.zarr`` store is a folder, which the dialog opens
instead of confirming, and ``viewer.layers.save()`` from a script asks nobody; so there
is no reliable consent to rely on here. An existing path raises an error that names it,
and the "Export to zarr" widget (or ``export_zarr(..., overwrite=True)``) is the way to
replace a store on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from napari_bigvol.ops.export import export_layers

LayerDataTuple = tuple[Any, dict[str, Any], str]


def write_zarr(path: str, layer_data: Sequence[LayerDataTuple]) -> list[str]:
    """Write napari layers to a new OME-Zarr store at ``path``.

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
