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

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from napari_bigvol.errors import OperationError

__all__ = [
    "Scope",
    "ScopedData",
    "displayed_values",
    "scoped_data",
    "visible_slice",
    "whole_volume",
]

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
    source_placement : dict
        Layer keywords (``scale``/``translate`` or ``affine``, ``axis_labels``,
        ``units``) for an array with all of the source's axes, the fixed ones of length
        1 at their current index; used by :meth:`place`.
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
    source_placement: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """Data type of ``data``."""
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        """Number of dimensions of ``data``."""
        return len(self.shape)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """Compute ``data`` for ``numpy.asarray(scoped)``; numpy 2's ``copy`` semantics.

        Lazy (dask) data are computed, which always makes a new array, so ``copy=False``
        raises ``ValueError`` for them, as numpy asks. Mind the size: the visible slice
        is one plane, the whole volume is all of it.
        """
        if hasattr(self.data, "compute"):
            if copy is False:
                raise ValueError(
                    f"{self.source}: lazy data cannot be viewed without computing a copy"
                )
            return np.asarray(self.data.compute(), dtype=dtype)
        return np.asarray(self.data, dtype=dtype, copy=copy)

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that place a layer of ``data`` on top of the source.

        A layer of ``data`` itself has only the kept axes; napari aligns it with the
        viewer's last world axes, which are the kept ones unless the dims order was
        changed. :meth:`place` lines up in any dims order.

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

    def place(self, result: Any) -> tuple[Any, dict[str, Any]]:
        """Give an array computed from ``data`` the source's axes and placement.

        Parameters
        ----------
        result : array
            An array of ``data``'s shape (a mask, a masked image ...), numpy or dask;
            with or without ``data``'s colour axis.

        Returns
        -------
        tuple
            ``(array, layer_kwargs)``: ``result`` with a length-1 axis inserted (lazily,
            no copy) for each fixed axis, and the keywords that put it exactly on the
            displayed plane of the source, whatever the viewer's dims order.

        Examples
        --------
        >>> from napari.components import ViewerModel
        >>> viewer = ViewerModel()
        >>> layer = viewer.add_image(np.zeros((3, 4, 5)), scale=(2, 1, 1))
        >>> viewer.dims.set_point(0, 4.0)
        >>> array, kwargs = visible_slice(layer, viewer).place(np.ones((4, 5), bool))
        >>> array.shape, kwargs["translate"]
        ((1, 4, 5), (4.0, 0.0, 0.0))
        """
        if len(self.axes) == len(self.index) - self.rgb:  # no fixed axis to restore
            return result, self.layer_kwargs()
        expand = tuple(
            slice(None) if isinstance(entry, slice) else None
            for entry in self.index[: len(self.index) - self.rgb]
        )
        if result.ndim > len(self.axes):  # the colour axis came along
            expand = (*expand, slice(None))
        return result[expand], dict(self.source_placement)


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
    layer: Any, origin_level0: np.ndarray, factors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """World scale, translate and (for non-aligned layers) affine of all the layer's axes.

    For an array of the level whose first pixel sits at ``origin_level0`` (level-0 data
    coordinates) and whose pixels are ``factors`` level-0 pixels wide.
    """
    scale = np.asarray(layer.scale, dtype=float)
    translate = np.asarray(layer.translate, dtype=float)
    if _is_axis_aligned(layer):
        return scale * factors, translate + scale * origin_level0, None
    # Sample the composed data-to-world transform at the origin and one pixel along each
    # axis; the differences are the columns of its linear part.
    origin = np.asarray(layer.data_to_world(origin_level0), dtype=float)
    ndim = origin.size
    matrix = np.eye(ndim + 1)
    for axis in range(ndim):
        step = origin_level0.astype(float)
        step[axis] += factors[axis]
        matrix[:ndim, axis] = np.asarray(layer.data_to_world(step), dtype=float) - origin
    matrix[:ndim, -1] = origin
    return scale * factors, translate + scale * origin_level0, matrix


def _scoped(
    layer: Any,
    data: Any,
    axes: tuple[int, ...],
    index: tuple[int | slice, ...],
    level: int,
    origin_level0: np.ndarray,
    factors: np.ndarray,
) -> ScopedData:
    ndim = layer.ndim
    scale, translate, affine = _placement(layer, origin_level0, factors)
    labels, units = _labels_and_units(layer)
    kept = list(axes)
    return ScopedData(
        data=data,
        axes=axes,
        index=index,
        level=level,
        rgb=bool(getattr(layer, "rgb", False)),
        scale=tuple(scale[kept].tolist()),
        translate=tuple(translate[kept].tolist()),
        affine=None if affine is None else _kept_affine(affine, kept),
        axis_labels=tuple(labels[a] for a in axes),
        units=tuple(units[a] for a in axes),
        is_slice=len(axes) < ndim or ndim <= 2,
        source=str(getattr(layer, "name", "")),
        source_placement=_layer_placement(scale, translate, affine, labels, units),
    )


def _layer_placement(
    scale: np.ndarray,
    translate: np.ndarray,
    affine: np.ndarray | None,
    labels: tuple[str, ...],
    units: tuple[str, ...],
) -> dict[str, Any]:
    """Return the keywords that place a layer on all of the source's axes."""
    placement: dict[str, Any] = (
        {"scale": tuple(scale.tolist()), "translate": tuple(translate.tolist())}
        if affine is None
        else {"affine": affine}
    )
    return {**placement, "axis_labels": labels, "units": units}


def _kept_affine(affine: np.ndarray, kept: list[int]) -> np.ndarray:
    """Return the part of a homogeneous ``affine`` acting on the ``kept`` axes."""
    rows = [*kept, len(affine) - 1]
    return affine[np.ix_(rows, rows)]


def _labels_and_units(layer: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    ndim = layer.ndim
    labels = tuple(getattr(layer, "axis_labels", None) or (f"axis {i}" for i in range(ndim)))
    units = tuple(str(u) for u in (getattr(layer, "units", None) or ("pixel",) * ndim))
    return labels, units


def _point_in_layer_units(layer: Any, dims: Any) -> np.ndarray:
    """Convert the viewer's current point from world units to the layer's units.

    napari's slicing does the same (``apply_units_to_transform``): a layer in µm in a
    world in mm is sliced at 1000 times the world coordinate.
    """
    point = np.asarray(dims.point, dtype=float)[-layer.ndim :]
    world_units = getattr(dims, "units", None)
    layer_units = getattr(layer, "units", None)
    if world_units is None or layer_units is None:
        return point
    import pint  # napari's unit library; only needed when units are set

    registry = pint.get_application_registry()
    factors = [
        registry.get_base_units(world)[0] / registry.get_base_units(own)[0]
        for world, own in zip(world_units[-layer.ndim :], layer_units, strict=True)
    ]
    return point * np.asarray(factors, dtype=float)


def visible_slice(layer: Any, viewer: Any) -> ScopedData:
    """Return the part of ``layer`` that ``viewer`` displays now, as a lazy array.

    In 2-D display this is the plane at the viewer's current point; in 3-D display it is
    the displayed volume at the current point of the remaining axes. The displayed axes
    follow ``viewer.dims.order``; the current point is converted to the layer's data
    coordinates with ``layer.world_to_data`` (after converting world units to the
    layer's units, as napari does); the array comes from the displayed
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
    level = _displayed_level(layer, dims, len(levels))
    shape0 = np.asarray(levels[0].shape[:ndim])
    shape = np.asarray(levels[level].shape[:ndim])
    factors = shape0 / shape
    point0 = np.asarray(layer.world_to_data(_point_in_layer_units(layer, dims)), dtype=float)
    index, index_level0 = _plane_index(layer, point0, displayed, shape0, shape)
    if getattr(layer, "rgb", False):
        index.append(slice(None))
    return _scoped(
        layer, levels[level][tuple(index)], displayed, tuple(index), level, index_level0, factors
    )


def _displayed_level(layer: Any, dims: Any, count: int) -> int:
    """Return the multiscale level napari displays, by napari's own rule.

    In 3-D napari shows the coarsest level (the one napari-bigvol's reader keeps under the
    3-D budget), unless the user locked a level; ``layer.data_level`` may still name the
    2-D level then (napari updates it at the next draw), and a widget following it would
    read a far bigger level than the one on screen.
    """
    if count == 1:
        return 0
    locked = getattr(layer, "locked_data_level", None)
    if locked is not None:
        return int(locked)
    if dims.ndisplay == 3:
        return count - 1
    return int(getattr(layer, "data_level", 0))


def _plane_index(
    layer: Any,
    point0: np.ndarray,
    displayed: tuple[int, ...],
    shape0: np.ndarray,
    shape: np.ndarray,
) -> tuple[list[int | slice], np.ndarray]:
    """Return the index of the plane through ``point0`` in the level of ``shape``.

    Also returns that plane's position at level 0 (of ``shape0``, whose data coordinates
    ``point0`` is in). Raises :class:`OperationError` when the point lies outside the layer.
    """
    factors = shape0 / shape
    index: list[int | slice] = []
    index_level0 = np.zeros(layer.ndim)
    for axis in range(layer.ndim):
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
    return index, index_level0


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
    index = (slice(None),) * (ndim + bool(getattr(layer, "rgb", False)))
    data = _level_arrays(layer)[0]
    return _scoped(layer, data, tuple(range(ndim)), index, 0, np.zeros(ndim), np.ones(ndim))


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


def displayed_values(layer: Any, plane: ScopedData) -> np.ndarray | None:
    """Return the values napari already read for ``plane``, or None when it holds others.

    Widgets that histogram or count the visible slice use these instead of reading the
    plane again: with a TIFF folder a plane is a file, and reading it twice per step
    doubles the cost of scrolling. napari keeps the plane it draws in the layer's slice
    (transposed to the display order; this puts it back). In 3-D that is the whole
    displayed level, so the widgets of a 3-D display allocate and read nothing more. A
    pyramid's 2-D slice is usually only the tile in view and a thick slice is a
    projection, so those give None, as does a slice napari has not finished.

    Parameters
    ----------
    layer : napari.layers.Image
        The source layer.
    plane : ScopedData
        Its visible slice, from :func:`visible_slice`.

    Returns
    -------
    numpy.ndarray or None
        The values of ``plane.data``, or None.
    """
    response = getattr(layer, "_slice", None)
    if (
        response is None
        or response.empty
        or tuple(sorted(response.slice_input.displayed)) != plane.axes
    ):
        return None
    factors = _response_factors(layer, response, plane.level)
    if factors is None:
        return None
    data_slice = layer._data_slice
    margins = np.concatenate([data_slice.margin_left, data_slice.margin_right])
    if np.nansum(np.abs(margins)) > 0:  # a thick slice: napari shows a projection
        return None
    point = np.asarray(data_slice.point, dtype=float) / factors
    for axis, index in enumerate(plane.index[: layer.ndim]):
        if isinstance(index, int) and int(np.round(point[axis])) != index:
            return None
    raw = response.image.raw
    # napari transposed the plane to the order its axes are displayed in.
    ranks = np.argsort(np.argsort(response.slice_input.displayed))
    undo = [*np.argsort(ranks).tolist(), *([len(ranks)] if plane.rgb else [])]
    values = np.transpose(raw, undo) if raw.ndim == len(undo) else raw
    # The shape also tells a pyramid's tile from its whole plane (or 3-D level).
    return values if values.shape == tuple(plane.data.shape) else None


def _response_factors(layer: Any, response: Any, level: int) -> np.ndarray | None:
    """Return the downsampling factors of ``level`` if napari's slice is of that level.

    A single-scale layer has factors of 1. napari places a multiscale slice with its
    ``tile_to_data`` transform: the level's factors on the displayed axes and the tile's
    offset, which must be zero.
    """
    if not getattr(layer, "multiscale", False):
        return np.ones(layer.ndim)
    factors = np.asarray(layer.downsample_factors[level], dtype=float)
    tile = response.tile_to_data
    displayed = list(response.slice_input.displayed)
    if np.any(tile.translate) or not np.allclose(tile.scale[displayed], factors[displayed]):
        return None
    return factors
