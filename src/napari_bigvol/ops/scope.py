"""What a widget works on: the slice napari is displaying, or the whole volume.

Every dock widget and the exporter ask this module for their input, so "visible slice"
means the same thing everywhere. :func:`visible_slice` follows the viewer's dims order,
its current point (converted to the layer's data coordinates through the layer's scale,
translate, rotation, shear and affine, as napari's own slicing does), the displayed level
of a multiscale layer, and keeps the colour axis of RGB layers. :func:`whole_volume` is
level 0 of the whole layer.

Both return a :class:`ScopedData`: a lazy array plus where it sits in the world, so
outputs built from it line up with the source (:meth:`ScopedData.layer_kwargs`).

This module is duck-typed on napari's layer and viewer attributes and never imports
napari: ``layer.data``, ``layer.ndim``, ``layer.multiscale``, ``layer.data_level``,
``layer.rgb``, ``layer.scale``, ``layer.translate``, ``layer.rotate``, ``layer.shear``,
``layer.affine``, ``layer.axis_labels``, ``layer.units``, ``layer.world_to_data``,
``layer.data_to_world``, and ``viewer.dims`` (``ndim``, ``ndisplay``, ``order``,
``point``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from napari_bigvol.errors import OperationError

__all__ = ["Scope", "ScopedData", "scoped_data", "visible_slice", "whole_volume"]

Scope = Literal["slice", "volume"]


@dataclass(frozen=True)
class ScopedData:
    """A lazy array taken from a layer, with its place in world coordinates.

    Attributes
    ----------
    data : array
        The selected data, not computed (dask stays dask, numpy is a view). Its axes are
        the layer's data axes listed in ``axes``, in that order, then the colour axis
        for RGB layers.
    axes : tuple of int
        The layer's data axes kept in ``data`` (ascending); the others are fixed by
        ``index``.
    index : tuple
        The index into the level's array that gives ``data``: an int for each fixed
        axis, ``slice(None)`` for kept axes (and the colour axis).
    level : int
        The multiscale level ``data`` comes from (0 for single-scale layers).
    rgb : bool
        Whether the last axis of ``data`` holds RGB(A) colours.
    scale, translate : tuple of float
        World size of a pixel of ``data`` along each kept axis and the world position
        of its first pixel (taking the multiscale level into account).
    affine : numpy.ndarray or None
        The homogeneous data-to-world matrix of ``data`` when the layer is rotated,
        sheared or has an affine; None when ``scale`` and ``translate`` say it all.
    axis_labels, units : tuple of str
        The layer's labels and units of the kept axes.
    is_slice : bool
        True when ``data`` is a slice of the layer rather than all of it; a 2-D layer
        is its own slice.
    source : str
        The layer's name, for messages and output names.
    """

    data: Any
    axes: tuple[int, ...]
    index: tuple[int | slice, ...]
    level: int
    rgb: bool
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    affine: np.ndarray | None
    axis_labels: tuple[str, ...]
    units: tuple[str, ...]
    is_slice: bool
    source: str

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that place a layer of ``data`` on top of the source.

        Returns
        -------
        dict
            ``scale`` and ``translate`` (or ``affine`` for rotated or sheared sources),
            ``axis_labels`` and ``units``, for ``viewer.add_image``/``add_labels``.

        Examples
        --------
        >>> scoped = ScopedData(np.zeros((2, 3)), (0, 1), (slice(None),) * 2, 0, False,
        ...                     (1.0, 2.0), (0.0, 5.0), None, ("y", "x"), ("mm", "mm"),
        ...                     False, "img")
        >>> scoped.layer_kwargs()["translate"]
        (0.0, 5.0)
        """
        placement: dict[str, Any] = (
            {"scale": self.scale, "translate": self.translate}
            if self.affine is None
            else {"affine": self.affine}
        )
        return {**placement, "axis_labels": self.axis_labels, "units": self.units}


def _require_layer(layer: Any) -> None:
    if layer is None:
        raise OperationError("no image layer selected: select an image layer in the layer list")
    if getattr(layer, "data", None) is None or not hasattr(layer, "ndim"):
        raise OperationError(f"layer {getattr(layer, 'name', layer)!r} holds no image data")


def _level_arrays(layer: Any) -> list[Any]:
    return list(layer.data) if getattr(layer, "multiscale", False) else [layer.data]


def _is_axis_aligned(layer: Any) -> bool:
    ndim = layer.ndim
    affine = np.asarray(getattr(getattr(layer, "affine", None), "affine_matrix", np.eye(ndim + 1)))
    rotate = np.asarray(getattr(layer, "rotate", np.eye(ndim)))
    shear = np.asarray(getattr(layer, "shear", np.zeros(0)))
    return (
        np.array_equal(affine, np.eye(ndim + 1))
        and np.array_equal(rotate, np.eye(ndim))
        and not np.any(shear)
    )


def _placement(
    layer: Any, axes: tuple[int, ...], index_level0: np.ndarray, factors: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray | None]:
    """Scale, translate and (for non-aligned layers) affine of the kept axes."""
    scale = np.asarray(layer.scale, dtype=float)
    translate = np.asarray(layer.translate, dtype=float)
    kept = list(axes)
    plane_scale = tuple(float(s) for s in scale[kept] * factors[kept])
    plane_translate = tuple(float(t) for t in translate[kept])
    if _is_axis_aligned(layer):
        return plane_scale, plane_translate, None
    # Sample the composed data-to-world transform at the plane's origin and one step
    # along each kept axis; the columns of the result are its linear part.
    origin = np.asarray(layer.data_to_world(index_level0), dtype=float)
    matrix = np.eye(len(kept) + 1)
    for column, axis in enumerate(kept):
        step = index_level0.copy()
        step[axis] += factors[axis]
        moved = np.asarray(layer.data_to_world(step), dtype=float)
        matrix[: len(kept), column] = (moved - origin)[kept]
    matrix[: len(kept), -1] = origin[kept]
    return plane_scale, plane_translate, matrix


def _labels_and_units(layer: Any, axes: tuple[int, ...]) -> tuple[tuple[str, ...], ...]:
    ndim = layer.ndim
    labels = tuple(getattr(layer, "axis_labels", None) or (f"axis {i}" for i in range(ndim)))
    units = tuple(str(u) for u in (getattr(layer, "units", None) or ("pixel",) * ndim))
    return tuple(labels[a] for a in axes), tuple(units[a] for a in axes)


def visible_slice(layer: Any, viewer: Any) -> ScopedData:
    """Return the part of ``layer`` that ``viewer`` displays now, as a lazy array.

    In 2-D display this is the plane at the viewer's current point; in 3-D display it is
    the displayed volume at the current point of the remaining axes. The displayed axes
    follow ``viewer.dims.order``; the current point is converted to the layer's data
    coordinates with ``layer.world_to_data``; the array comes from the displayed
    multiscale level (``layer.data_level``). Thick-slice projections are ignored: the
    plane through the current point is returned.

    Parameters
    ----------
    layer : napari.layers.Image or Labels
        The source layer (any object with the attributes listed in the module docstring).
    viewer : napari.Viewer or napari.components.ViewerModel
        The viewer whose ``dims`` define what is displayed.

    Returns
    -------
    ScopedData
        The lazy slice and its place in the world.

    Raises
    ------
    OperationError
        When no layer is given, or the current point lies outside the layer (napari
        then displays nothing of it).

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> layer = viewer.add_image(np.arange(60).reshape(3, 4, 5), scale=(2, 1, 1))
    >>> viewer.dims.set_point(0, 4.0)
    >>> plane = visible_slice(layer, viewer)
    >>> plane.index, plane.data.shape
    ((2, slice(None, None, None), slice(None, None, None)), (4, 5))
    """
    _require_layer(layer)
    ndim = layer.ndim
    dims = viewer.dims
    offset = dims.ndim - ndim
    layer_order = [axis - offset for axis in dims.order if axis >= offset]
    displayed = tuple(sorted(layer_order[-dims.ndisplay :]))
    levels = _level_arrays(layer)
    level = int(getattr(layer, "data_level", 0)) if len(levels) > 1 else 0
    shape0 = np.asarray(levels[0].shape[:ndim])
    shape = np.asarray(levels[level].shape[:ndim])
    factors = shape0 / shape
    point0 = np.asarray(layer.world_to_data(dims.point), dtype=float)
    index: list[int | slice] = []
    index_level0 = np.zeros(ndim)
    for axis in range(ndim):
        if axis in displayed:
            index.append(slice(None))
            continue
        nearest = np.round(point0[axis])
        if not 0 <= nearest <= shape0[axis] - 1:
            raise OperationError(
                f"layer {layer.name!r} has no data at the current position: "
                f"index {nearest:g} along axis {axis} is outside 0..{shape0[axis] - 1}"
            )
        at_level = int(np.round(np.clip(point0[axis] / factors[axis], 0, shape[axis] - 1)))
        index.append(at_level)
        index_level0[axis] = at_level * factors[axis]
    rgb = bool(getattr(layer, "rgb", False))
    if rgb:
        index.append(slice(None))
    scale, translate, affine = _placement(layer, displayed, index_level0, factors)
    labels, units = _labels_and_units(layer, displayed)
    return ScopedData(
        data=levels[level][tuple(index)],
        axes=displayed,
        index=tuple(index),
        level=level,
        rgb=rgb,
        scale=scale,
        translate=translate,
        affine=affine,
        axis_labels=labels,
        units=units,
        is_slice=len(displayed) < ndim,
        source=str(getattr(layer, "name", "")),
    )


def whole_volume(layer: Any) -> ScopedData:
    """All of ``layer``'s data at full resolution (level 0), as a lazy array.

    Parameters
    ----------
    layer : napari.layers.Image or Labels
        The source layer. For a 2-D layer the whole volume is the displayed plane, and
        ``is_slice`` is True.

    Returns
    -------
    ScopedData
        The lazy level-0 array and the layer's placement.

    Raises
    ------
    OperationError
        When no layer is given.

    Examples
    --------
    >>> from napari.layers import Image
    >>> volume = whole_volume(Image([np.zeros((8, 8)), np.zeros((4, 4))], multiscale=True))
    >>> volume.level, volume.data.shape, volume.is_slice
    (0, (8, 8), True)
    """
    _require_layer(layer)
    ndim = layer.ndim
    axes = tuple(range(ndim))
    rgb = bool(getattr(layer, "rgb", False))
    index = (slice(None),) * (ndim + rgb)
    scale, translate, affine = _placement(layer, axes, np.zeros(ndim), np.ones(ndim))
    labels, units = _labels_and_units(layer, axes)
    return ScopedData(
        data=_level_arrays(layer)[0],
        axes=axes,
        index=index,
        level=0,
        rgb=rgb,
        scale=scale,
        translate=translate,
        affine=affine,
        axis_labels=labels,
        units=units,
        is_slice=ndim <= 2,
        source=str(getattr(layer, "name", "")),
    )


def scoped_data(layer: Any, viewer: Any, scope: Scope) -> ScopedData:
    """Return the widget input for a scope choice: ``"slice"`` or ``"volume"``.

    Parameters
    ----------
    layer : napari.layers.Image or Labels
        The source layer.
    viewer : napari.Viewer or napari.components.ViewerModel
        Needed for the visible slice.
    scope : {"slice", "volume"}
        Visible slice (:func:`visible_slice`) or whole volume (:func:`whole_volume`).

    Returns
    -------
    ScopedData
        The selected data.

    Raises
    ------
    OperationError
        For an unknown scope, no layer, or a position outside the layer.

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> layer = viewer.add_image(np.zeros((3, 4, 5)))
    >>> scoped_data(layer, viewer, "volume").data.shape
    (3, 4, 5)
    """
    if scope == "slice":
        return visible_slice(layer, viewer)
    if scope == "volume":
        return whole_volume(layer)
    raise OperationError(f"scope must be 'slice' or 'volume', not {scope!r}")
